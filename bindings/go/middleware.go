package astack

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// Principal is who an authorized request acts as: the key and its account, the operation it
// was authorized for and the decision (its rate-limit figures).
type Principal struct {
	KeyID     string
	AccountID string
	Operation Operation
	Decision  Decision
}

type principalKey struct{}

// WithPrincipal returns a copy of ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom is the principal the middleware authorized the request as.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok
}

// BearerKey extracts the API key of an "Authorization: Bearer <key>" header: "" when the
// header is absent or empty, and ok false when it is present in another form.
func BearerKey(r *http.Request) (key string, ok bool) {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if h == "" {
		return "", true
	}
	scheme, rest, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(rest), true
}

// Middleware authorizes each request as the reference server does: the operation comes from
// opFor (false: the route needs no key, e.g. /healthz, and passes through untouched), the key
// from the Bearer header; Authorize decides. Every response to an authenticated request
// carries the RateLimit-Policy and RateLimit headers (and Retry-After on 429); a denial is
// answered with the SPEC §9 JSON error and its status; an allowed request reaches next with
// its Principal in the context (PrincipalFrom).
//
// opFor may be RouteOperation, which maps the SPEC §3 REST routes.
func (e *Engine) Middleware(opFor func(*http.Request) (Operation, bool)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			op, protected := opFor(r)
			if !protected {
				next.ServeHTTP(w, r)
				return
			}
			key, ok := BearerKey(r)
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="astack"`)
				WriteError(w, newError("invalid_api_key", "the Authorization header must be `Bearer <API key>`"))
				return
			}
			d, err := e.Authorize(key, op)
			d.SetHeaders(w.Header())
			if err != nil {
				if errors.Is(err, ErrMissingAPIKey) || errors.Is(err, ErrInvalidAPIKey) ||
					errors.Is(err, ErrAPIKeyRevoked) || errors.Is(err, ErrAPIKeyExpired) {
					w.Header().Set("WWW-Authenticate", `Bearer realm="astack"`)
				}
				WriteError(w, err)
				return
			}
			p := &Principal{KeyID: d.KeyID, AccountID: d.AccountID, Operation: op, Decision: d}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		})
	}
}

// WriteError answers with the SPEC §9 JSON error body and the error's status; an error that
// is not an *Error is answered as internal_error (500) without its text.
func WriteError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = newError("internal_error", "internal error")
	}
	if e.Code == "rate_limited" && e.RetryAfter > 0 && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	body, mErr := json.Marshal(e)
	if mErr != nil {
		body = []byte(`{"error":{"code":"internal_error","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(e.Status)
	_, _ = w.Write(append(body, '\n'))
}

// RouteOperation maps the REST routes of SPEC §3 to their operations; every other route
// (GET /healthz…) is not protected.
func RouteOperation(r *http.Request) (Operation, bool) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	rest, ok := strings.CutPrefix(path, "/api/v1/")
	if !ok {
		return 0, false
	}
	parts := strings.Split(rest, "/")
	m := r.Method
	switch parts[0] {
	case "sessions":
		switch {
		case len(parts) == 1 && m == http.MethodPost:
			return OpSessionCreate, true
		case len(parts) <= 2 && m == http.MethodGet:
			return OpSessionRead, true
		case len(parts) == 2 && m == http.MethodDelete:
			return OpSessionTerminate, true
		case len(parts) == 3 && m == http.MethodPost && (parts[2] == "connect" || parts[2] == "end"):
			return OpWorkerWrite, true
		}
	case "users":
		if m == http.MethodGet {
			return OpUserRead, true
		}
		return OpUserWrite, true
	case "usage":
		if m == http.MethodGet {
			return OpBillingRead, true
		}
		return OpBillingWrite, true
	case "workers":
		if m == http.MethodGet {
			return OpWorkerRead, true
		}
		return OpWorkerWrite, true
	case "keys", "audit", "metrics":
		return OpAdmin, true
	}
	// An unknown route under /api/v1 still needs an admin key rather than none.
	return OpAdmin, true
}
