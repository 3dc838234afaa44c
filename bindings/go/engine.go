// Package astack embeds the astack control plane (API keys, scopes, rate limits, sessions,
// session tokens, workers, users, usage, audit) in a Go program through its C ABI.
//
// The static library is linked through cgo from the repository (target/release/libastack.a,
// built by `cargo build --release`, which `make test-go` runs first); no linker flags are set
// by hand.
//
//	engine, err := astack.New(nil)
//	defer engine.Close()
//	admin, _ := engine.BootstrapAdminKey("")
//	d, err := engine.Authorize(admin, astack.OpAdmin)
//	key, err := engine.CreateKey(d.KeyID, astack.CreateKeyRequest{Name: "app", Scopes: []string{"sessions:write"}})
//
// Every method is safe for concurrent use by many goroutines. Errors are *Error values that
// match the sentinels (ErrRateLimited, ErrNotFound…) under errors.Is.
package astack

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: ${SRCDIR}/../../target/release/libastack.a -lpthread -ldl -lm
#cgo noescape astack_authorize_bytes
#cgo nocallback astack_authorize_bytes
#cgo noescape astack_limiter_check
#cgo nocallback astack_limiter_check
#include <stdlib.h>
#include <string.h>
#include <astack.h>
*/
import "C"

import (
	"encoding/json"
	"runtime"
	"strings"
	"time"
	"unsafe"
)

// Version is the version of the linked library ("MAJOR.MINOR.PATCH").
func Version() string { return C.GoString(C.astack_version()) }

// Engine is one astack engine: keys, scopes, limits, sessions, tokens, workers, users, usage
// and audit. It is safe for concurrent use. Release it with Close; a finalizer releases an
// engine that was dropped without Close, as a safety net only.
type Engine struct {
	// gate admits every call into the library, and lets Close wait for the calls in flight
	// before it releases ptr: a call racing Close either completes first or sees a closed
	// engine, and never touches freed memory.
	gate gate
	ptr  *C.astack_engine
	// keyIDs hands out each allowed key's id strings without allocating them per call.
	keyIDs keyIDs
}

// Option changes how New makes an engine.
type Option func(*options)

type options struct {
	manual bool
	start  time.Time
}

// WithManualClock makes the engine read a manual clock starting at start, for tests: time moves
// only with SetTime and Advance.
func WithManualClock(start time.Time) Option {
	return func(o *options) { o.manual, o.start = true, start }
}

// New makes an engine from a configuration (SPEC §11); nil gives every default.
// An invalid configuration is an *Error with code invalid_config naming the Field.
func New(config *Config, opts ...Option) (*Engine, error) {
	doc := ""
	if config != nil {
		raw, err := json.Marshal(config)
		if err != nil {
			return nil, newError("invalid_config", err.Error())
		}
		doc = string(raw)
	}
	return NewFromJSON(doc, opts...)
}

// NewFromJSON makes an engine from a JSON configuration document (SPEC §11); "" gives every
// default.
func NewFromJSON(config string, opts ...Option) (*Engine, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	cconfig, err := cString("config", config)
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cconfig))
	var ptr *C.astack_engine
	var rc C.astack_result
	if o.manual {
		rc = C.astack_engine_new_with_manual_clock(cconfig, C.uint64_t(o.start.UnixMilli()), &ptr)
	} else {
		rc = C.astack_engine_new(cconfig, &ptr)
	}
	if rc != C.ASTACK_OK {
		if rc == C.ASTACK_INVALID_CONFIG {
			_, err := CheckConfig(config)
			if err != nil {
				return nil, err
			}
		}
		return nil, resultError(uint32(rc), "config")
	}
	e := &Engine{ptr: ptr}
	runtime.SetFinalizer(e, (*Engine).Close)
	return e, nil
}

// Close releases the engine. It is idempotent and safe to call while other goroutines use the
// engine: every call that starts after it returns ErrClosed, and the first Close waits for the
// calls in flight before releasing the engine (a later Close returns at once).
func (e *Engine) Close() error {
	if e.gate.close() {
		C.astack_engine_free(e.ptr)
		runtime.SetFinalizer(e, nil)
	}
	return nil
}

// Flush writes what the store holds back, now: request counts, keys' last_used_at and held
// audit records. The SQLite and Redis stores have them written behind by a thread of the engine
// every Store.FlushMs (500 ms by default), and by Close; with that thread off (FlushMs 0),
// by whichever call falls due a second after the last write, unless the host calls Flush more
// often, from a goroutine of its own.
func (e *Engine) Flush() error {
	return e.do(func(p *C.astack_engine) C.astack_result { return C.astack_engine_flush(p) })
}

// CheckConfig checks a JSON configuration without making an engine and returns it with every
// default filled in (secrets redacted), or the invalid_config error naming the field.
func CheckConfig(config string) (json.RawMessage, error) {
	cconfig, err := cString("config", config)
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cconfig))
	var out *C.char
	rc := C.astack_config_check(cconfig, &out)
	return takeJSON(rc, out)
}

// Config is the configuration in force, as CheckConfig shows it (secrets redacted).
func (e *Engine) Config() (json.RawMessage, error) {
	return e.jsonCall(func(p *C.astack_engine, out **C.char) C.astack_result {
		return C.astack_engine_config(p, out)
	})
}

// Now is the engine's current time (its manual clock's, for a manual engine).
func (e *Engine) Now() (time.Time, error) {
	var ms C.uint64_t
	err := e.do(func(p *C.astack_engine) C.astack_result { return C.astack_clock_now(p, &ms) })
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(int64(ms)), nil
}

// SetTime sets a manual clock (it may go backwards). An engine on the system clock answers an
// *Error with code "unsupported".
func (e *Engine) SetTime(t time.Time) error {
	ms := t.UnixMilli()
	if ms < 0 {
		return &Error{Code: "invalid_argument", Status: 400, Message: "the time is before 1970", Field: "now"}
	}
	return e.do(func(p *C.astack_engine) C.astack_result { return C.astack_clock_set(p, C.uint64_t(ms)) })
}

// Advance moves a manual clock forward by d (whole milliseconds). An engine on the system
// clock answers an *Error with code "unsupported".
func (e *Engine) Advance(d time.Duration) error {
	if d < 0 {
		return &Error{Code: "invalid_argument", Status: 400, Message: "a clock only advances forward", Field: "ms"}
	}
	ms := uint64(d / time.Millisecond)
	return e.do(func(p *C.astack_engine) C.astack_result { return C.astack_clock_advance(p, C.uint64_t(ms)) })
}

// do runs a call answering only with a result code, admitted by the gate.
func (e *Engine) do(call func(*C.astack_engine) C.astack_result) error {
	ticket, ok := e.gate.enter()
	if !ok {
		return ErrClosed
	}
	defer e.gate.exit(ticket)
	rc := call(e.ptr)
	runtime.KeepAlive(e)
	if rc != C.ASTACK_OK {
		return resultError(uint32(rc), "")
	}
	return nil
}

// jsonCall runs a cold path admitted by the gate and returns its JSON answer, or the *Error
// its error body describes.
func (e *Engine) jsonCall(call func(*C.astack_engine, **C.char) C.astack_result) (json.RawMessage, error) {
	ticket, ok := e.gate.enter()
	if !ok {
		return nil, ErrClosed
	}
	defer e.gate.exit(ticket)
	var out *C.char
	rc := call(e.ptr, &out)
	runtime.KeepAlive(e)
	return takeJSON(rc, out)
}

// takeJSON copies and frees a returned string: the answer on success, else the error.
func takeJSON(rc C.astack_result, out *C.char) (json.RawMessage, error) {
	var body []byte
	if out != nil {
		body = C.GoBytes(unsafe.Pointer(out), C.int(C.strlen(out)))
		C.astack_string_free(out)
	}
	if rc != C.ASTACK_OK {
		if body == nil {
			return nil, resultError(uint32(rc), "")
		}
		return nil, parseError(body, resultCode(uint32(rc)))
	}
	return body, nil
}

// cString copies a Go string for C; a string holding a NUL byte cannot cross the ABI intact
// and is refused rather than truncated. The caller frees the result with C.free.
func cString(field, s string) (*C.char, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, &Error{Code: "invalid_request", Status: 400, Message: "`" + field + "` contains a NUL byte",
			Field: field, Details: map[string]any{"field": field}}
	}
	return C.CString(s), nil
}

// resultCode is the snake_case code of a result number.
func resultCode(rc uint32) string { return C.GoString(C.astack_result_code(C.uint32_t(rc))) }

// resultError is the *Error of a result number without a JSON body.
func resultError(rc uint32, field string) *Error {
	code := resultCode(rc)
	e := newError(code, C.GoString(C.astack_result_message(C.uint32_t(rc))))
	if field != "" {
		e.Field = field
	}
	return e
}
