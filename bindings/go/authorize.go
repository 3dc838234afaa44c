package astack

/*
#include <astack.h>
*/
import "C"

import (
	"bytes"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"unsafe"
)

// Operation is one kind of request (SPEC §3).
type Operation uint32

// The operations of SPEC §3.
const (
	OpSessionCreate    Operation = C.ASTACK_OP_SESSION_CREATE    // session.create
	OpSessionRead      Operation = C.ASTACK_OP_SESSION_READ      // session.read
	OpSessionTerminate Operation = C.ASTACK_OP_SESSION_TERMINATE // session.terminate
	OpUserRead         Operation = C.ASTACK_OP_USER_READ         // user.read
	OpUserWrite        Operation = C.ASTACK_OP_USER_WRITE        // user.write
	OpBillingRead      Operation = C.ASTACK_OP_BILLING_READ      // billing.read
	OpBillingWrite     Operation = C.ASTACK_OP_BILLING_WRITE     // billing.write
	OpWorkerRead       Operation = C.ASTACK_OP_WORKER_READ       // worker.read
	OpWorkerWrite      Operation = C.ASTACK_OP_WORKER_WRITE      // worker.write
	OpAdmin            Operation = C.ASTACK_OP_ADMIN             // admin
)

// operations lists each operation's SPEC §3 name and the scope it needs.
var operations = [...]struct{ name, scope string }{
	OpSessionCreate:    {"session.create", "sessions:write"},
	OpSessionRead:      {"session.read", "sessions:read"},
	OpSessionTerminate: {"session.terminate", "sessions:write"},
	OpUserRead:         {"user.read", "users:read"},
	OpUserWrite:        {"user.write", "users:write"},
	OpBillingRead:      {"billing.read", "billing:read"},
	OpBillingWrite:     {"billing.write", "billing:write"},
	OpWorkerRead:       {"worker.read", "workers:read"},
	OpWorkerWrite:      {"worker.write", "workers:write"},
	OpAdmin:            {"admin", "admin:all"},
}

func (op Operation) valid() bool { return op >= OpSessionCreate && op <= OpAdmin }

// String is the SPEC §3 name ("session.create"…).
func (op Operation) String() string {
	if !op.valid() {
		return "Operation(" + strconv.FormatUint(uint64(op), 10) + ")"
	}
	return operations[op].name
}

// Scope is the scope that allows the operation ("sessions:write"…).
func (op Operation) Scope() string {
	if !op.valid() {
		return ""
	}
	return operations[op].scope
}

// ParseOperation reads a SPEC §3 name.
func ParseOperation(name string) (Operation, bool) {
	for op := OpSessionCreate; op <= OpAdmin; op++ {
		if operations[op].name == name {
			return op, true
		}
	}
	return 0, false
}

// Decision is the outcome of Authorize. When the key was authenticated (allowed,
// insufficient_scope, rate_limited, concurrent_session_limit) the rate fields describe the
// tightest window and the key's limits in force; otherwise they are zero.
type Decision struct {
	// Allowed is true when the request may proceed.
	Allowed bool `json:"allowed"`
	// Code is "ok" or the SPEC code of the denial.
	Code string `json:"code"`
	// KeyID names the key ("" unless allowed): pass it to the cold paths.
	KeyID string `json:"key_id,omitempty"`
	// AccountID is the key's account ("" unless allowed).
	AccountID string `json:"account_id,omitempty"`
	// Window is the window reported: "minute" or "hour" ("" when not authenticated).
	Window string `json:"window,omitempty"`
	// Limit is that window's capacity.
	Limit uint32 `json:"limit"`
	// Remaining is the tokens left in it.
	Remaining uint32 `json:"remaining"`
	// Reset is the seconds until it is full again.
	Reset uint64 `json:"reset"`
	// RetryAfter is, when denied for rate, the seconds until a token is back (never 0).
	RetryAfter uint64 `json:"retry_after"`
	// RequestsPerMinute, RequestsPerHour and ConcurrentSessions are the key's limits in force.
	RequestsPerMinute  uint32 `json:"requests_per_minute"`
	RequestsPerHour    uint32 `json:"requests_per_hour"`
	ConcurrentSessions uint32 `json:"concurrent_sessions"`
}

// HasRate reports whether the decision carries rate-limit figures (the key was authenticated).
func (d *Decision) HasRate() bool { return d.RequestsPerMinute > 0 && d.RequestsPerHour > 0 }

// Headers are the SPEC §5 header values: RateLimit-Policy and RateLimit ("" when the decision
// carries no rate).
func (d *Decision) Headers() (policy, ratelimit string) {
	if !d.HasRate() {
		return "", ""
	}
	policy = `"minute";q=` + strconv.FormatUint(uint64(d.RequestsPerMinute), 10) +
		`;w=60, "hour";q=` + strconv.FormatUint(uint64(d.RequestsPerHour), 10) + `;w=3600`
	ratelimit = `"` + d.Window + `";r=` + strconv.FormatUint(uint64(d.Remaining), 10) +
		`;t=` + strconv.FormatUint(d.Reset, 10)
	return policy, ratelimit
}

// SetHeaders writes the SPEC §5 headers into h: RateLimit-Policy and RateLimit when the
// decision carries a rate, and Retry-After when it was denied for rate.
func (d *Decision) SetHeaders(h http.Header) {
	policy, ratelimit := d.Headers()
	if policy != "" {
		h.Set("RateLimit-Policy", policy)
		h.Set("RateLimit", ratelimit)
	}
	if d.Code == "rate_limited" && d.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatUint(d.RetryAfter, 10))
	}
}

// Authorize decides a request (SPEC §4): apiKey is the presented key ("" when none was),
// op the operation. It runs the checks in order; a denied request consumes no tokens.
//
// It returns the decision, and on denial also an *Error with the SPEC code, status and
// details (RetryAfter for rate_limited) — the decision still carries the rate-limit figures
// for the response headers. One cgo call, handed the key's bytes in place (never copied). An
// allowed request allocates nothing once its key has been seen: the engine keeps each key's
// two id strings (about 100 bytes a key; see keyIDs), except over stores that give no key slot
// (Redis), where each allowed request allocates the two ids once.
func (e *Engine) Authorize(apiKey string, op Operation) (d Decision, err error) {
	var cd C.astack_decision
	ticket, ok := e.gate.enter()
	if !ok {
		d.Code = ErrClosed.Code
		return d, ErrClosed
	}
	key := (*C.char)(unsafe.Pointer(unsafe.StringData(apiKey)))
	rc := uint32(C.astack_authorize_bytes(e.ptr, key, C.size_t(len(apiKey)), C.uint32_t(op), &cd))
	e.gate.exit(ticket)
	runtime.KeepAlive(e)

	// The result is filled in place: a Decision is over 100 bytes.
	d.setRate(&cd)
	if rc == C.ASTACK_OK {
		d.Allowed = true
		d.Code = "ok"
		d.KeyID, d.AccountID = e.keyIDs.get(&cd)
		return d, nil
	}
	denied := denial(rc, &d, op)
	d.Code = denied.Code
	return d, denied
}

// setRate copies the rate-limit figures of a C decision (all zero when the key was not
// authenticated).
func (d *Decision) setRate(cd *C.astack_decision) {
	d.Limit = uint32(cd.limit)
	d.Remaining = uint32(cd.remaining)
	d.Reset = uint64(cd.reset)
	d.RetryAfter = uint64(cd.retry_after)
	d.RequestsPerMinute = uint32(cd.requests_per_minute)
	d.RequestsPerHour = uint32(cd.requests_per_hour)
	d.ConcurrentSessions = uint32(cd.concurrent_sessions)
	if d.HasRate() {
		if cd.window == C.ASTACK_WINDOW_HOUR {
			d.Window = "hour"
		} else {
			d.Window = "minute"
		}
	}
}

// ids copies the key and account ids of an allowed C decision into Go strings, sharing one
// allocation.
func ids(cd *C.astack_decision) (keyID, accountID string) {
	k, a := cbytes(cd.key_id[:]), cbytes(cd.account_id[:])
	var b strings.Builder
	b.Grow(len(k) + len(a))
	b.Write(k)
	b.Write(a)
	both := b.String()
	return both[:len(k)], both[len(k):]
}

// cbytes is the bytes of a NUL-terminated C array, without copying.
func cbytes(array []C.char) []byte {
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(array))), len(array))
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// denial is the *Error of a denied decision, with the details the JSON body would carry.
func denial(rc uint32, d *Decision, op Operation) *Error {
	var err *Error
	switch rc {
	case C.ASTACK_MISSING_API_KEY:
		err = newError("missing_api_key", "no API key was presented")
	case C.ASTACK_INVALID_API_KEY:
		err = newError("invalid_api_key", "the API key is malformed or unknown")
	case C.ASTACK_API_KEY_REVOKED:
		err = newError("api_key_revoked", "the API key was revoked")
	case C.ASTACK_API_KEY_EXPIRED:
		err = newError("api_key_expired", "the API key has expired")
	case C.ASTACK_INSUFFICIENT_SCOPE:
		err = newError("insufficient_scope", "the API key lacks the scope "+op.Scope())
		err.Details = map[string]any{"required_scopes": []any{op.Scope()}}
	case C.ASTACK_RATE_LIMITED:
		err = newError("rate_limited", "rate limit exceeded for the "+d.Window+" window; retry after "+
			strconv.FormatUint(d.RetryAfter, 10)+" s")
		err.RetryAfter = int(d.RetryAfter)
		err.Details = map[string]any{"window": d.Window, "limit": d.Limit, "retry_after": d.RetryAfter}
	case C.ASTACK_CONCURRENT_SESSION_LIMIT:
		err = newError("concurrent_session_limit", "the key already has its maximum of "+
			strconv.FormatUint(uint64(d.ConcurrentSessions), 10)+" live sessions")
		err.Details = map[string]any{"limit": d.ConcurrentSessions}
	case C.ASTACK_INVALID_ARGUMENT:
		err = &Error{Code: "invalid_argument", Status: 400, Message: "unknown operation " + op.String(), Field: "operation"}
	default:
		err = resultError(rc, "")
	}
	return err
}
