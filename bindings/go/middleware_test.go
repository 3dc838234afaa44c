package astack_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	astack "github.com/astack-dev/astack/bindings/go"
)

type response struct {
	status int
	header http.Header
	body   map[string]any
}

func call(t *testing.T, srv *httptest.Server, method, path, auth string) response {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var body map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatalf("%s %s: body %q", method, path, raw)
		}
	}
	return response{res.StatusCode, res.Header, body}
}

func errCode(r response) string {
	e, _ := r.body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func TestMiddleware(t *testing.T) {
	f := newFixture(t)
	app, appID := f.key(astack.CreateKeyRequest{AccountID: "acme", Scopes: []string{"sessions:read"},
		Limits: &astack.Limits{RequestsPerMinute: 3, RequestsPerHour: 100}})

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := astack.PrincipalFrom(r.Context()); ok {
			t.Error("healthz has a principal")
		}
		fmt.Fprint(w, `{"ok":true}`)
	})
	mux.HandleFunc("GET /api/v1/sessions", func(w http.ResponseWriter, r *http.Request) {
		p, ok := astack.PrincipalFrom(r.Context())
		if !ok {
			t.Error("no principal")
			return
		}
		sessions, err := f.e.ListSessions(p.KeyID, 0)
		if err != nil {
			astack.WriteError(w, err)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"data": sessions, "key_id": p.KeyID, "account_id": p.AccountID,
			"operation": p.Operation.String()})
	})
	mux.HandleFunc("GET /api/v1/sessions/{id}", func(w http.ResponseWriter, r *http.Request) {
		p, _ := astack.PrincipalFrom(r.Context())
		s, err := f.e.GetSession(p.KeyID, r.PathValue("id"))
		if err != nil {
			astack.WriteError(w, err)
			return
		}
		_ = json.NewEncoder(w).Encode(s)
	})
	srv := httptest.NewServer(f.e.Middleware(astack.RouteOperation)(mux))
	defer srv.Close()

	// No key needed.
	if r := call(t, srv, "GET", "/healthz", ""); r.status != 200 || r.header.Get("RateLimit") != "" {
		t.Fatalf("%+v", r)
	}
	// Missing, malformed, unknown keys: 401 with the SPEC body, no rate headers.
	for auth, code := range map[string]string{"": "missing_api_key", "Bearer ": "missing_api_key",
		"Basic dXNlcjpwdw==": "invalid_api_key", "Bearer ak_nope": "invalid_api_key", "Bearer" + " " + app + "x": "invalid_api_key"} {
		r := call(t, srv, "GET", "/api/v1/sessions", auth)
		if r.status != 401 || errCode(r) != code || r.header.Get("RateLimit-Policy") != "" ||
			r.header.Get("Content-Type") != "application/json" || r.header.Get("WWW-Authenticate") == "" {
			t.Fatalf("%q: %+v", auth, r)
		}
	}
	// Allowed: the handler sees the principal; the rate headers are set.
	r := call(t, srv, "GET", "/api/v1/sessions", "Bearer "+app)
	if r.status != 200 || r.body["key_id"] != appID || r.body["account_id"] != "acme" || r.body["operation"] != "session.read" {
		t.Fatalf("%+v", r)
	}
	if r.header.Get("RateLimit-Policy") != `"minute";q=3;w=60, "hour";q=100;w=3600` || r.header.Get("RateLimit") != `"minute";r=2;t=20` {
		t.Fatalf("headers %v", r.header)
	}
	// A handler's error is the SPEC body too.
	r = call(t, srv, "GET", "/api/v1/sessions/sess_nope", "bearer "+app)
	if r.status != 404 || errCode(r) != "not_found" || r.header.Get("RateLimit") != `"minute";r=1;t=40` {
		t.Fatalf("%+v", r)
	}
	// Scope: 403 with the required scope, rate headers present.
	r = call(t, srv, "DELETE", "/api/v1/sessions/sess_x", "Bearer "+app)
	if r.status != 403 || errCode(r) != "insufficient_scope" || r.header.Get("RateLimit-Policy") == "" {
		t.Fatalf("%+v", r)
	}
	if req := r.body["error"].(map[string]any)["required_scopes"].([]any); req[0] != "sessions:write" {
		t.Fatalf("%+v", r.body)
	}
	call(t, srv, "GET", "/api/v1/sessions", "Bearer "+app)
	// Over the limit: 429, Retry-After, the SPEC body with retry_after.
	r = call(t, srv, "GET", "/api/v1/sessions", "Bearer "+app)
	if r.status != 429 || errCode(r) != "rate_limited" || r.header.Get("Retry-After") != "20" ||
		r.header.Get("RateLimit") != `"minute";r=0;t=60` {
		t.Fatalf("%+v %v", r, r.header)
	}
	if e := r.body["error"].(map[string]any); e["retry_after"] != 20.0 || !strings.Contains(e["message"].(string), "rate") {
		t.Fatalf("%+v", e)
	}
	noErr(t, f.e.Advance(20*time.Second))
	if r := call(t, srv, "GET", "/api/v1/sessions", "Bearer "+app); r.status != 200 {
		t.Fatalf("%+v", r)
	}
	// After Close the middleware answers with the closed error, not a crash.
	noErr(t, f.e.Close())
	r = call(t, srv, "GET", "/api/v1/sessions", "Bearer "+app)
	if r.status != 500 || errCode(r) != "engine_closed" {
		t.Fatalf("%+v", r)
	}
}

func TestRouteOperation(t *testing.T) {
	cases := map[string]astack.Operation{
		"POST /api/v1/sessions":                astack.OpSessionCreate,
		"GET /api/v1/sessions":                 astack.OpSessionRead,
		"GET /api/v1/sessions/sess_1":          astack.OpSessionRead,
		"DELETE /api/v1/sessions/sess_1":       astack.OpSessionTerminate,
		"POST /api/v1/sessions/sess_1/connect": astack.OpWorkerWrite,
		"POST /api/v1/sessions/sess_1/end":     astack.OpWorkerWrite,
		"GET /api/v1/users":                    astack.OpUserRead,
		"GET /api/v1/users/u":                  astack.OpUserRead,
		"POST /api/v1/users":                   astack.OpUserWrite,
		"PATCH /api/v1/users/u":                astack.OpUserWrite,
		"DELETE /api/v1/users/u":               astack.OpUserWrite,
		"GET /api/v1/usage":                    astack.OpBillingRead,
		"GET /api/v1/usage/alerts":             astack.OpBillingRead,
		"POST /api/v1/usage":                   astack.OpBillingWrite,
		"POST /api/v1/usage/alerts":            astack.OpBillingWrite,
		"GET /api/v1/workers":                  astack.OpWorkerRead,
		"POST /api/v1/workers":                 astack.OpWorkerWrite,
		"PATCH /api/v1/workers/n":              astack.OpWorkerWrite,
		"POST /api/v1/keys":                    astack.OpAdmin,
		"POST /api/v1/keys/k/rotate":           astack.OpAdmin,
		"GET /api/v1/audit":                    astack.OpAdmin,
		"GET /api/v1/metrics":                  astack.OpAdmin,
		"GET /api/v1/unknown":                  astack.OpAdmin,
	}
	for route, want := range cases {
		method, path, _ := strings.Cut(route, " ")
		got, ok := astack.RouteOperation(httptest.NewRequest(method, path, nil))
		if !ok || got != want {
			t.Errorf("%s: %v %v, want %v", route, got, ok, want)
		}
	}
	if _, ok := astack.RouteOperation(httptest.NewRequest("GET", "/healthz", nil)); ok {
		t.Error("/healthz is protected")
	}
}

func TestWriteError(t *testing.T) {
	w := httptest.NewRecorder()
	astack.WriteError(w, fmt.Errorf("secret detail"))
	if w.Code != 500 || strings.Contains(w.Body.String(), "secret") || !strings.Contains(w.Body.String(), "internal_error") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	astack.WriteError(w, fmt.Errorf("wrapped: %w", &astack.Error{Code: "rate_limited", Status: 429, Message: "m", RetryAfter: 4}))
	if w.Code != 429 || w.Header().Get("Retry-After") != "4" {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
}
