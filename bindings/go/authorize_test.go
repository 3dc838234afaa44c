package astack_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	astack "github.com/astack-dev/astack/bindings/go"
)

func TestOperations(t *testing.T) {
	names := []string{"session.create", "session.read", "session.terminate", "user.read", "user.write",
		"billing.read", "billing.write", "worker.read", "worker.write", "admin"}
	for i, name := range names {
		op, ok := astack.ParseOperation(name)
		if !ok || op != astack.Operation(i+1) || op.String() != name || op.Scope() == "" {
			t.Fatalf("%s: %v %v %q", name, op, ok, op.Scope())
		}
	}
	if _, ok := astack.ParseOperation("nope"); ok {
		t.Fatal("parsed nope")
	}
	if astack.Operation(99).String() != "Operation(99)" || astack.Operation(0).Scope() != "" {
		t.Fatal("unknown operation")
	}
}

func TestAuthorizeAllowsAndReportsTheRate(t *testing.T) {
	f := newFixture(t)
	key, id := f.key(astack.CreateKeyRequest{AccountID: "acme", Scopes: []string{"sessions:read"},
		Limits: &astack.Limits{RequestsPerMinute: 5, RequestsPerHour: 50, ConcurrentSessions: 2}})
	d := f.authorize(key, astack.OpSessionRead)
	want := astack.Decision{Allowed: true, Code: "ok", KeyID: id, AccountID: "acme", Window: "minute",
		Limit: 5, Remaining: 4, Reset: 12, RequestsPerMinute: 5, RequestsPerHour: 50, ConcurrentSessions: 2}
	if d != want {
		t.Fatalf("decision\n got %+v\nwant %+v", d, want)
	}
	policy, ratelimit := d.Headers()
	if policy != `"minute";q=5;w=60, "hour";q=50;w=3600` || ratelimit != `"minute";r=4;t=12` {
		t.Fatalf("headers %q %q", policy, ratelimit)
	}
	// The Go formatting is the library's.
	cp, cr := astack.CDecisionHeaders(&d, 0)
	if cp != policy || cr != ratelimit {
		t.Fatalf("library headers %q %q", cp, cr)
	}
}

func TestAuthorizeDenials(t *testing.T) {
	f := newFixture(t)
	scoped, _ := f.key(astack.CreateKeyRequest{Scopes: []string{"users:read"}})
	revoked, revokedID := f.key(astack.CreateKeyRequest{Scopes: []string{"users:read"}})
	must(f.e.RevokeKey(f.admin, revokedID))
	expiring, _ := f.key(astack.CreateKeyRequest{Scopes: []string{"users:read"}, ExpiresAt: t0.Add(time.Minute).UnixMilli()})

	d, err := f.e.Authorize("", astack.OpUserRead)
	wantCode(t, err, astack.ErrMissingAPIKey)
	if d.Allowed || d.Code != "missing_api_key" || d.HasRate() || d.KeyID != "" {
		t.Fatalf("%+v", d)
	}
	// The key with its last character changed (to one it does not already have).
	edited := scoped[:len(scoped)-1] + "x"
	if edited == scoped {
		edited = scoped[:len(scoped)-1] + "y"
	}
	for _, bad := range []string{"nope", "ak_" + strings.Repeat("a", 36), edited,
		strings.Repeat("k", 300), scoped + "\x00trailing", "ak_" + strings.Repeat("A", 30) + "000000"} {
		_, err := f.e.Authorize(bad, astack.OpUserRead)
		wantCode(t, err, astack.ErrInvalidAPIKey)
	}
	// A NUL cannot cut a valid key out of a longer string.
	_, err = f.e.Authorize(scoped+"\x00", astack.OpUserRead)
	wantCode(t, err, astack.ErrInvalidAPIKey)

	_, err = f.e.Authorize(revoked, astack.OpUserRead)
	wantCode(t, err, astack.ErrAPIKeyRevoked)
	f.authorize(expiring, astack.OpUserRead)
	noErr(t, f.e.Advance(time.Minute))
	_, err = f.e.Authorize(expiring, astack.OpUserRead)
	wantCode(t, err, astack.ErrAPIKeyExpired)

	d, err = f.e.Authorize(scoped, astack.OpUserWrite)
	e := wantCode(t, err, astack.ErrInsufficientScope)
	if req := e.Details["required_scopes"].([]any); len(req) != 1 || req[0] != "users:write" {
		t.Fatalf("details %v", e.Details)
	}
	if !d.HasRate() || d.Limit != 100 || d.KeyID != "" {
		t.Fatalf("an authenticated denial reports the rate: %+v", d)
	}

	_, err = f.e.Authorize(scoped, astack.Operation(0))
	wantCode(t, err, astack.ErrInvalidArgument)
	_, err = f.e.Authorize(scoped, astack.Operation(11))
	wantCode(t, err, astack.ErrInvalidArgument)
}

func TestAuthorizeRateLimited(t *testing.T) {
	f := newFixture(t)
	key, _ := f.key(astack.CreateKeyRequest{Scopes: []string{"users:read"}, Limits: &astack.Limits{RequestsPerMinute: 3}})
	for i := 0; i < 3; i++ {
		f.authorize(key, astack.OpUserRead)
	}
	d, err := f.e.Authorize(key, astack.OpUserRead)
	e := wantCode(t, err, astack.ErrRateLimited)
	if e.RetryAfter != 20 || d.RetryAfter != 20 || d.Remaining != 0 || d.Window != "minute" || d.Code != "rate_limited" {
		t.Fatalf("%+v %+v", e, d)
	}
	if e.Details["window"] != "minute" || e.Details["retry_after"] != uint64(20) {
		t.Fatalf("details %v", e.Details)
	}
	h := map[string][]string{}
	d.SetHeaders(h)
	if h["Retry-After"][0] != "20" || h["Ratelimit"][0] != `"minute";r=0;t=60` {
		t.Fatalf("headers %v", h)
	}
	cp, cr := astack.CDecisionHeaders(&d, 106)
	if p, r := d.Headers(); cp != p || cr != r {
		t.Fatalf("library headers %q %q vs %q %q", cp, cr, p, r)
	}
	noErr(t, f.e.Advance(20*time.Second))
	f.authorize(key, astack.OpUserRead)
}

func TestAuthorizeConcurrentSessionLimit(t *testing.T) {
	f := newFixture(t)
	key, _ := f.key(astack.CreateKeyRequest{Scopes: []string{"sessions:write"}, Limits: &astack.Limits{ConcurrentSessions: 1}})
	d := f.authorize(key, astack.OpSessionCreate)
	must(f.e.CreateSession(d.KeyID, astack.CreateSessionRequest{EndUserID: "u"}))
	if n := must(f.e.SlotsInUse(d.KeyID)); n != 1 {
		t.Fatalf("slots %d", n)
	}
	d2, err := f.e.Authorize(key, astack.OpSessionCreate)
	e := wantCode(t, err, astack.ErrConcurrentSessionLimit)
	if e.Details["limit"] != uint32(1) || d2.ConcurrentSessions != 1 {
		t.Fatalf("%+v %+v", e, d2)
	}
	_, err = f.e.CreateSession(d.KeyID, astack.CreateSessionRequest{EndUserID: "u"})
	wantCode(t, err, astack.ErrConcurrentSessionLimit)
}

func TestAuthorizeLongKeyAllocates(t *testing.T) {
	f := newFixture(t)
	_, err := f.e.Authorize(strings.Repeat("x", 5000), astack.OpAdmin)
	wantCode(t, err, astack.ErrInvalidAPIKey)
}

// A key's ids are allocated once per engine: later calls with the key allocate nothing, and
// every call still names its own key, across keys, accounts and engines.
func TestAuthorizeIDsAreAllocatedOncePerKey(t *testing.T) {
	cfg := testConfig()
	cfg.Limits = &astack.Limits{RequestsPerMinute: 1000, RequestsPerHour: 10000}
	engines := []*fixture{newFixtureWith(t, cfg), newFixtureWith(t, cfg)}
	type key struct{ plain, id, account string }
	var keys [][]key
	for n, f := range engines {
		var made []key
		for i := 0; i < 2500; i++ { // more than two chunks of the ids table
			account := fmt.Sprintf("acct-%d-%d", n, i%7)
			plain, id := f.key(astack.CreateKeyRequest{AccountID: account, Scopes: []string{"sessions:read"}})
			made = append(made, key{plain, id, account})
		}
		keys = append(keys, made)
	}
	for round := 0; round < 2; round++ {
		for n, f := range engines {
			for _, k := range keys[n] {
				d := f.authorize(k.plain, astack.OpSessionRead)
				if d.KeyID != k.id || d.AccountID != k.account {
					t.Fatalf("engine %d: got %s/%s, want %s/%s", n, d.KeyID, d.AccountID, k.id, k.account)
				}
			}
		}
	}
	f, k := engines[1], keys[1][2048]
	if allocs := testing.AllocsPerRun(100, func() { f.authorize(k.plain, astack.OpSessionRead) }); allocs != 0 {
		t.Fatalf("Authorize of a key seen before: %v allocations, want 0", allocs)
	}
}
