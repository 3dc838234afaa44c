package astack

/*
#include <stdlib.h>
#include <astack.h>
*/
import "C"

import (
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Window is one rate-limit window of a Limiter: Limit requests per PeriodSeconds.
type Window struct {
	Name          string `json:"name"`
	Limit         uint32 `json:"limit"`
	PeriodSeconds uint64 `json:"period_seconds"`
}

// Limiter is a rate limiter over any string key (a client IP, an end user…) with any set of
// windows (SPEC §5): a request takes one token from every window of its key, or none. It is
// safe for concurrent use; release it with Close.
type Limiter struct {
	// gate admits every call into the library, and lets Close wait for the calls in flight
	// before it releases ptr.
	gate    gate
	ptr     *C.astack_limiter
	windows []Window
}

// NewLimiter makes a limiter from at least one window.
func NewLimiter(windows ...Window) (*Limiter, error) {
	doc, err := marshal("windows", windows)
	if err != nil {
		return nil, err
	}
	s, err := toC("windows", doc)
	if err != nil {
		return nil, err
	}
	defer s.free()
	var ptr *C.astack_limiter
	var body *C.char
	rc := C.astack_limiter_new(s[0], &ptr, &body)
	if rc != C.ASTACK_OK {
		_, err := takeJSON(rc, body)
		return nil, err
	}
	l := &Limiter{ptr: ptr, windows: append([]Window(nil), windows...)}
	runtime.SetFinalizer(l, (*Limiter).Close)
	return l, nil
}

// Close releases the limiter; idempotent, and later calls return ErrClosed.
func (l *Limiter) Close() error {
	if l.gate.close() {
		C.astack_limiter_free(l.ptr)
		runtime.SetFinalizer(l, nil)
	}
	return nil
}

// LimitDecision is the outcome of Limiter.Allow, for the tightest window.
type LimitDecision struct {
	Allowed    bool   `json:"allowed"`
	Window     string `json:"window"`
	Limit      uint32 `json:"limit"`
	Remaining  uint32 `json:"remaining"`
	Reset      uint64 `json:"reset"`
	RetryAfter uint64 `json:"retry_after"`
	policy     string
}

// Allow takes one token from every window of key at now, or none. When a window is empty it
// returns the decision and an *Error matching ErrRateLimited, with RetryAfter.
func (l *Limiter) Allow(key string, now time.Time) (LimitDecision, error) {
	var d LimitDecision
	ms := now.UnixMilli()
	if ms < 0 {
		ms = 0
	}
	s, err := toC("key", key)
	if err != nil {
		return d, err
	}
	defer s.free()
	var cd C.astack_decision
	ticket, ok := l.gate.enter()
	if !ok {
		return d, ErrClosed
	}
	rc := C.astack_limiter_check(l.ptr, s[0], C.uint64_t(ms), &cd)
	l.gate.exit(ticket)
	runtime.KeepAlive(l)
	if rc != C.ASTACK_OK && rc != C.ASTACK_RATE_LIMITED {
		return d, resultError(uint32(rc), "key")
	}
	d = LimitDecision{
		Allowed:    rc == C.ASTACK_OK,
		Limit:      uint32(cd.limit),
		Remaining:  uint32(cd.remaining),
		Reset:      uint64(cd.reset),
		RetryAfter: uint64(cd.retry_after),
		policy:     l.policy(),
	}
	if i := int(cd.window); i < len(l.windows) {
		d.Window = l.windows[i].Name
	}
	if !d.Allowed {
		e := newError("rate_limited", "rate limit exceeded for the "+d.Window+" window; retry after "+
			strconv.FormatUint(d.RetryAfter, 10)+" s")
		e.RetryAfter = int(d.RetryAfter)
		e.Details = map[string]any{"window": d.Window, "limit": d.Limit, "retry_after": d.RetryAfter}
		return d, e
	}
	return d, nil
}

func (l *Limiter) policy() string {
	parts := make([]string, len(l.windows))
	for i, w := range l.windows {
		parts[i] = strconv.Quote(w.Name) + ";q=" + strconv.FormatUint(uint64(w.Limit), 10) +
			";w=" + strconv.FormatUint(w.PeriodSeconds, 10)
	}
	return strings.Join(parts, ", ")
}

// Headers are the RateLimit-Policy and RateLimit values of the decision.
func (d *LimitDecision) Headers() (policy, ratelimit string) {
	return d.policy, strconv.Quote(d.Window) + ";r=" + strconv.FormatUint(uint64(d.Remaining), 10) +
		";t=" + strconv.FormatUint(d.Reset, 10)
}

// SetHeaders writes RateLimit-Policy, RateLimit and, when denied, Retry-After into h.
func (d *LimitDecision) SetHeaders(h http.Header) {
	policy, ratelimit := d.Headers()
	h.Set("RateLimit-Policy", policy)
	h.Set("RateLimit", ratelimit)
	if !d.Allowed && d.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatUint(d.RetryAfter, 10))
	}
}

// Sweep forgets keys whose every bucket is full again at now and returns how many remain.
func (l *Limiter) Sweep(now time.Time) (int, error) {
	ticket, ok := l.gate.enter()
	if !ok {
		return 0, ErrClosed
	}
	defer l.gate.exit(ticket)
	var n C.uint64_t
	ms := now.UnixMilli()
	if ms < 0 {
		ms = 0
	}
	rc := C.astack_limiter_sweep(l.ptr, C.uint64_t(ms), &n)
	runtime.KeepAlive(l)
	if rc != C.ASTACK_OK {
		return 0, resultError(uint32(rc), "")
	}
	return int(n), nil
}

// cHeaders formats headers through the library (tests compare them with the Go formatting).
func (l *Limiter) cHeaders(d *LimitDecision, code uint32, window uint32) (string, string, error) {
	var cd C.astack_decision
	cd.code = C.astack_result(code)
	cd.window = C.uint32_t(window)
	cd.limit = C.uint32_t(d.Limit)
	cd.remaining = C.uint32_t(d.Remaining)
	cd.reset = C.uint64_t(d.Reset)
	cd.retry_after = C.uint64_t(d.RetryAfter)
	ticket, ok := l.gate.enter()
	if !ok {
		return "", "", ErrClosed
	}
	defer l.gate.exit(ticket)
	var policy, ratelimit *C.char
	rc := C.astack_limiter_headers(l.ptr, &cd, &policy, &ratelimit)
	runtime.KeepAlive(l)
	defer C.astack_string_free(policy)
	defer C.astack_string_free(ratelimit)
	if rc != C.ASTACK_OK {
		return "", "", resultError(uint32(rc), "")
	}
	return C.GoString(policy), C.GoString(ratelimit), nil
}

// cDecisionHeaders formats a Decision's headers through the library (for tests).
func cDecisionHeaders(d *Decision, code uint32) (string, string, error) {
	var cd C.astack_decision
	cd.code = C.astack_result(code)
	if d.Window == "hour" {
		cd.window = C.ASTACK_WINDOW_HOUR
	}
	cd.limit = C.uint32_t(d.Limit)
	cd.remaining = C.uint32_t(d.Remaining)
	cd.reset = C.uint64_t(d.Reset)
	cd.retry_after = C.uint64_t(d.RetryAfter)
	cd.requests_per_minute = C.uint32_t(d.RequestsPerMinute)
	cd.requests_per_hour = C.uint32_t(d.RequestsPerHour)
	var policy, ratelimit *C.char
	rc := C.astack_decision_headers(&cd, &policy, &ratelimit)
	defer C.astack_string_free(policy)
	defer C.astack_string_free(ratelimit)
	if rc != C.ASTACK_OK {
		return "", "", resultError(uint32(rc), "")
	}
	if policy == nil {
		return "", "", nil
	}
	return C.GoString(policy), C.GoString(ratelimit), nil
}
