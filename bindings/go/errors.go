package astack

import (
	"encoding/json"
	"fmt"
)

// Error is every error the engine returns: the SPEC §9 error with its stable snake_case Code,
// the HTTP Status that code maps to, a human Message and, where useful, details (the field,
// the required scopes, retry_after, the token refusal reason).
//
// Compare with the sentinels through errors.Is, which matches on Code:
//
//	if errors.Is(err, astack.ErrRateLimited) { ... }
//
// and reach the details through errors.As:
//
//	var e *astack.Error
//	if errors.As(err, &e) { retry := e.RetryAfter }
type Error struct {
	// Code is the stable snake_case code ("rate_limited", "invalid_token"…).
	Code string
	// Status is the HTTP status of the code (SPEC §4, §9).
	Status int
	// Message is a human message; it never contains a key or a token.
	Message string
	// Details holds every field of the error body beside code and message.
	Details map[string]any
	// RetryAfter is, for rate_limited, the seconds until a token is back (never 0).
	RetryAfter int
	// Field names the offending field of invalid_request and invalid_config.
	Field string
	// Reason is, for invalid_token, why the token was refused ("expired", "bad_signature"…).
	Reason string
}

// Error formats the error as "astack: code: message".
func (e *Error) Error() string {
	if e.Message == "" {
		return "astack: " + e.Code
	}
	return "astack: " + e.Code + ": " + e.Message
}

// Is reports whether target is an *Error with the same Code, so that errors.Is(err,
// astack.ErrNotFound) holds for every not_found error whatever its message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t != nil && e != nil && t.Code == e.Code
}

// MarshalJSON writes the SPEC §9 body: {"error": {"code", "message", ...details}}.
func (e *Error) MarshalJSON() ([]byte, error) {
	body := make(map[string]any, len(e.Details)+2)
	for k, v := range e.Details {
		body[k] = v
	}
	body["code"] = e.Code
	body["message"] = e.Message
	return json.Marshal(map[string]any{"error": body})
}

// The sentinels, one per SPEC §9 code (plus ErrClosed), for errors.Is. Their messages are
// generic; the errors the engine returns carry the detailed message.
var (
	ErrMissingAPIKey          = sentinel("missing_api_key", 401, "no API key was presented")
	ErrInvalidAPIKey          = sentinel("invalid_api_key", 401, "the API key is malformed or unknown")
	ErrAPIKeyRevoked          = sentinel("api_key_revoked", 401, "the API key was revoked")
	ErrAPIKeyExpired          = sentinel("api_key_expired", 401, "the API key has expired")
	ErrInsufficientScope      = sentinel("insufficient_scope", 403, "the API key may not perform this operation")
	ErrRateLimited            = sentinel("rate_limited", 429, "rate limit exceeded")
	ErrConcurrentSessionLimit = sentinel("concurrent_session_limit", 429, "too many live sessions for this key")
	ErrInvalidRequest         = sentinel("invalid_request", 400, "the request is invalid")
	ErrNotFound               = sentinel("not_found", 404, "not found")
	ErrForbidden              = sentinel("forbidden", 403, "forbidden")
	ErrAlreadyExists          = sentinel("already_exists", 409, "already exists")
	ErrInvalidTransition      = sentinel("invalid_transition", 409, "the session's state does not allow this")
	ErrInvalidToken           = sentinel("invalid_token", 401, "the session token was refused")
	ErrPayloadTooLarge        = sentinel("payload_too_large", 413, "the request document is over 64 KiB")
	ErrNoWorkerAvailable      = sentinel("no_worker_available", 503, "no worker has room for a new session")
	ErrInvalidConfig          = sentinel("invalid_config", 400, "the configuration is invalid")
	ErrUnavailable            = sentinel("unavailable", 503, "the state store is unavailable")
	ErrInternal               = sentinel("internal_error", 500, "internal error")
	// ErrClosed is returned by every method of an Engine or Limiter after Close.
	ErrClosed = sentinel("engine_closed", 500, "the engine is closed")
	// ErrInvalidArgument is a misuse of the binding: an argument out of range or containing a
	// NUL byte (the C ABI's 4xx results).
	ErrInvalidArgument = sentinel("invalid_argument", 400, "an argument is invalid")
)

func sentinel(code string, status int, message string) *Error {
	return &Error{Code: code, Status: status, Message: message}
}

// statusOf maps a code to its HTTP status (SPEC §4, §9).
func statusOf(code string) int {
	switch code {
	case "missing_api_key", "invalid_api_key", "api_key_revoked", "api_key_expired", "invalid_token":
		return 401
	case "insufficient_scope", "forbidden":
		return 403
	case "rate_limited", "concurrent_session_limit":
		return 429
	case "invalid_request", "invalid_config", "invalid_argument", "null_argument", "invalid_utf8", "unsupported", "buffer_too_small":
		return 400
	case "not_found":
		return 404
	case "already_exists", "invalid_transition":
		return 409
	case "payload_too_large":
		return 413
	case "no_worker_available", "unavailable":
		return 503
	default:
		return 500
	}
}

// newError builds an *Error from a code and message.
func newError(code, message string) *Error {
	return &Error{Code: code, Status: statusOf(code), Message: message}
}

// parseError turns a SPEC §9 error body into an *Error; fallback is used when the body is not
// one (it never should be).
func parseError(body []byte, fallback string) *Error {
	var doc struct {
		Error map[string]any `json:"error"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Error == nil {
		return newError(fallback, fmt.Sprintf("unreadable error body: %q", body))
	}
	code, _ := doc.Error["code"].(string)
	if code == "" {
		code = fallback
	}
	message, _ := doc.Error["message"].(string)
	e := newError(code, message)
	delete(doc.Error, "code")
	delete(doc.Error, "message")
	if len(doc.Error) > 0 {
		e.Details = doc.Error
	}
	if v, ok := doc.Error["retry_after"].(float64); ok {
		e.RetryAfter = int(v)
	}
	if v, ok := doc.Error["field"].(string); ok {
		e.Field = v
	}
	if v, ok := doc.Error["argument"].(string); ok && e.Field == "" {
		e.Field = v
	}
	if v, ok := doc.Error["reason"].(string); ok {
		e.Reason = v
	}
	return e
}
