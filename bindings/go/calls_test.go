package astack_test

import (
	"strings"
	"testing"
	"time"

	astack "github.com/astack-dev/astack/bindings/go"
)

func TestBootstrapAdminKey(t *testing.T) {
	e := must(astack.New(nil))
	defer e.Close()
	key := must(e.BootstrapAdminKey(""))
	if len(key) != 39 || !strings.HasPrefix(key, "ak_") {
		t.Fatalf("key %q", key)
	}
	d := must(e.Authorize(key, astack.OpAdmin))
	if d.AccountID != "default" {
		t.Fatalf("account %q", d.AccountID)
	}
	// Installing a chosen key answers "".
	e2 := must(astack.New(nil))
	defer e2.Close()
	if got := must(e2.BootstrapAdminKey(key)); got != "" {
		t.Fatalf("installed %q", got)
	}
	must(e2.Authorize(key, astack.OpAdmin))
	_, err := e2.BootstrapAdminKey("ak_bad")
	wantCode(t, err, astack.ErrInvalidConfig)
	_, err = e2.BootstrapAdminKey("ak_\x00")
	wantCode(t, err, astack.ErrInvalidRequest)
}

func TestKeys(t *testing.T) {
	f := newFixture(t)
	created := must(f.e.CreateKey(f.admin, astack.CreateKeyRequest{AccountID: "acme", Name: "app",
		Scopes: []string{"sessions:write", "admin:all"}, Permissions: []string{"usage_read"},
		Limits: &astack.Limits{RequestsPerMinute: 7}, ExpiresAt: t0.Add(48 * time.Hour).UnixMilli()}))
	if created.AccountID != "acme" || created.Name != "app" || !strings.HasPrefix(created.Secret, created.Prefix) ||
		len(created.Prefix) != 7 || created.Limits.RequestsPerMinute != 7 || created.ExpiresAt == nil ||
		created.CreatedAt != t0.UnixMilli() || len(created.Scopes) != 2 || created.Permissions[0] != "usage_read" {
		t.Fatalf("%+v", created)
	}
	got := must(f.e.GetKey(f.admin, created.ID))
	if got.ID != created.ID || got.RevokedAt != nil || got.LastUsedAt != nil {
		t.Fatalf("%+v", got)
	}
	keys := must(f.e.ListKeys(f.admin, 0))
	if len(keys) != 2 || keys[0].ID != created.ID {
		t.Fatalf("list %+v", keys)
	}
	if keys := must(f.e.ListKeys(f.admin, 1)); len(keys) != 1 {
		t.Fatalf("limit 1: %d", len(keys))
	}
	_, err := f.e.ListKeys(f.admin, -1)
	wantCode(t, err, astack.ErrInvalidArgument)
	_, err = f.e.ListKeys(f.admin, 1001)
	if e := wantCode(t, err, astack.ErrInvalidRequest); e.Field != "limit" {
		t.Fatalf("field %q", e.Field)
	}

	// A key of acme may act in acme only.
	acme := f.authorize(created.Secret, astack.OpAdmin)
	_, err = f.e.CreateKey(acme.KeyID, astack.CreateKeyRequest{AccountID: "other", Scopes: []string{"users:read"}})
	wantCode(t, err, astack.ErrForbidden)
	_, err = f.e.GetKey(acme.KeyID, f.admin)
	wantCode(t, err, astack.ErrNotFound)

	rotated := must(f.e.RotateKey(f.admin, created.ID, time.Minute))
	if rotated.ID == created.ID || rotated.Secret == created.Secret || rotated.AccountID != "acme" {
		t.Fatalf("%+v", rotated)
	}
	old := must(f.e.GetKey(f.admin, created.ID))
	if old.ExpiresAt == nil || *old.ExpiresAt != t0.Add(time.Minute).UnixMilli() {
		t.Fatalf("grace: %+v", old)
	}
	_, err = f.e.RotateKey(f.admin, created.ID, -time.Second)
	wantCode(t, err, astack.ErrInvalidArgument)
	_, err = f.e.RotateKey(f.admin, created.ID, 31*24*time.Hour)
	wantCode(t, err, astack.ErrInvalidRequest)

	revoked := must(f.e.RevokeKey(f.admin, created.ID))
	if revoked.RevokedAt == nil {
		t.Fatalf("%+v", revoked)
	}
	must(f.e.RevokeKey(f.admin, created.ID))
	_, err = f.e.GetKey(f.admin, "key_nope")
	wantCode(t, err, astack.ErrNotFound)
	_, err = f.e.CreateKey(f.admin, astack.CreateKeyRequest{Scopes: []string{"bogus"}})
	e := wantCode(t, err, astack.ErrInvalidRequest)
	if !strings.HasPrefix(e.Field, "scopes") {
		t.Fatalf("field %q", e.Field)
	}
	_, err = f.e.CreateKey("key_unknown", astack.CreateKeyRequest{Scopes: []string{"users:read"}})
	if err == nil {
		t.Fatal("an unknown acting key may not create keys")
	}
	_, err = f.e.CreateKey(f.admin+"\x00", astack.CreateKeyRequest{Scopes: []string{"users:read"}})
	e = wantCode(t, err, astack.ErrInvalidRequest)
	if e.Field != "key_id" {
		t.Fatalf("field %q", e.Field)
	}
}

func TestSessionsLifecycle(t *testing.T) {
	f := newFixture(t)
	app, _ := f.key(astack.CreateKeyRequest{AccountID: "acme", Scopes: []string{"sessions:write", "sessions:read"}})
	worker, _ := f.key(astack.CreateKeyRequest{Scopes: []string{"workers:write"}})
	a := f.authorize(app, astack.OpSessionCreate).KeyID
	w := f.authorize(worker, astack.OpWorkerWrite).KeyID

	s := must(f.e.CreateSession(a, astack.CreateSessionRequest{EndUserID: "user-42", ConnectionType: "webrtc",
		Quality: "high", Features: []string{"vision"}, Metadata: map[string]any{"plan": "pro"}}))
	if s.Status != astack.StatusPending || s.AccountID != "acme" || s.ConnectionType != "webrtc" || s.Quality != "high" ||
		s.Features[0] != "vision" || s.Metadata["plan"] != "pro" || s.NodeID != "local" || s.WorkerURL == "" ||
		s.ExpiresAt != t0.Add(300*time.Second).UnixMilli() || s.SessionToken == "" || s.ConnectedAt != nil {
		t.Fatalf("%+v", s)
	}
	if got := must(f.e.GetSession(a, s.ID)); got.ID != s.ID || got.Status != astack.StatusPending {
		t.Fatalf("%+v", got)
	}
	if l := must(f.e.ListSessions(a, 10)); len(l) != 1 || l[0].ID != s.ID {
		t.Fatalf("%+v", l)
	}
	// Another account does not see it.
	_, err := f.e.GetSession(f.admin, s.ID)
	wantCode(t, err, astack.ErrNotFound)

	token := must(f.e.IssueToken(a, s.ID))
	noErr(t, f.e.Advance(10*time.Second))
	c := must(f.e.ConnectSession(w, s.ID, token))
	if c.Status != astack.StatusActive || c.ConnectedAt == nil || *c.ConnectedAt != t0.Add(10*time.Second).UnixMilli() {
		t.Fatalf("%+v", c)
	}
	_, err = f.e.ConnectSession(w, s.ID, token)
	wantCode(t, err, astack.ErrInvalidTransition)

	noErr(t, f.e.Advance(42*time.Second))
	ended := must(f.e.EndSession(w, s.ID, astack.EndSessionRequest{Outcome: astack.OutcomeFailed, Reason: "codec error"}))
	if ended.Status != astack.StatusFailed || *ended.EndReason != "codec error" {
		t.Fatalf("%+v", ended)
	}
	_, err = f.e.EndSession(w, s.ID, astack.EndSessionRequest{Outcome: "completed"})
	wantCode(t, err, astack.ErrInvalidTransition)
	_, err = f.e.IssueToken(a, s.ID)
	wantCode(t, err, astack.ErrInvalidTransition)
	// Terminating an ended session returns it unchanged.
	if tt := must(f.e.TerminateSession(a, s.ID)); tt.Status != astack.StatusFailed {
		t.Fatalf("%+v", tt)
	}
	usage := must(f.e.Usage(f.authorizeBilling(t, "acme")))
	if usage.SessionSeconds != 42 {
		t.Fatalf("usage %+v", usage)
	}

	// Terminate, expiry and the sweep.
	s2 := must(f.e.CreateSession(a, astack.CreateSessionRequest{EndUserID: "u2"}))
	if tt := must(f.e.TerminateSession(a, s2.ID)); tt.Status != astack.StatusCompleted || *tt.EndReason != "terminated" {
		t.Fatalf("%+v", tt)
	}
	s3 := must(f.e.CreateSession(a, astack.CreateSessionRequest{EndUserID: "u3"}))
	noErr(t, f.e.Advance(301*time.Second))
	if n := must(f.e.SweepSessions()); n != 1 {
		t.Fatalf("swept %d", n)
	}
	if g := must(f.e.GetSession(a, s3.ID)); g.Status != astack.StatusExpired || *g.EndedAt != g.ExpiresAt {
		t.Fatalf("%+v", g)
	}
	_, err = f.e.ConnectSession(w, s3.ID, s3.SessionToken)
	if err == nil {
		t.Fatal("connected an expired session")
	}

	// Invalid requests name the field.
	for field, req := range map[string]astack.CreateSessionRequest{
		"end_user_id":     {},
		"quality":         {EndUserID: "u", Quality: "ultra"},
		"connection_type": {EndUserID: "u", ConnectionType: "carrier-pigeon"},
		"features":        {EndUserID: "u", Features: []string{"teleport"}},
		"metadata":        {EndUserID: "u", Metadata: map[string]any{"x": strings.Repeat("a", 5000)}},
	} {
		_, err := f.e.CreateSession(a, req)
		e := wantCode(t, err, astack.ErrInvalidRequest)
		if !strings.HasPrefix(e.Field, field) {
			t.Errorf("%s: field %q", field, e.Field)
		}
	}
	_, err = f.e.EndSession(w, s2.ID, astack.EndSessionRequest{Outcome: "exploded"})
	wantCode(t, err, astack.ErrInvalidRequest)
	_, err = f.e.GetSession(a, "sess_nope")
	wantCode(t, err, astack.ErrNotFound)
	_, err = f.e.CreateSession(a, astack.CreateSessionRequest{EndUserID: "u", Metadata: map[string]any{"x": strings.Repeat("a", 70000)}})
	wantCode(t, err, astack.ErrPayloadTooLarge)
}

// authorizeBilling makes a billing key for account and returns its id.
func (f *fixture) authorizeBilling(t *testing.T, account string) string {
	key, _ := f.key(astack.CreateKeyRequest{AccountID: account, Scopes: []string{"billing:read", "billing:write"}})
	return f.authorize(key, astack.OpBillingRead).KeyID
}

func TestTokens(t *testing.T) {
	f := newFixture(t)
	s := must(f.e.CreateSession(f.admin, astack.CreateSessionRequest{EndUserID: "user-7", Features: []string{"transcription"}}))
	c := must(f.e.VerifyToken(s.SessionToken, "local", s.ID))
	if c.Iss != "astack" || c.Sub != s.ID || c.Aud != "local" || c.Acc != "default" || c.UID != "user-7" ||
		c.Quality != "standard" || c.Features[0] != "transcription" || c.Iat != t0.Unix() || c.Exp != t0.Unix()+300 || c.Jti == "" {
		t.Fatalf("%+v", c)
	}
	must(f.e.VerifyToken(s.SessionToken, "", ""))
	reasons := map[string]func() error{
		"wrong_audience": func() error { _, err := f.e.VerifyToken(s.SessionToken, "other", ""); return err },
		"wrong_session":  func() error { _, err := f.e.VerifyToken(s.SessionToken, "", "sess_x"); return err },
		"malformed":      func() error { _, err := f.e.VerifyToken("not.a.jwt", "", ""); return err },
		"bad_signature": func() error {
			_, err := f.e.VerifyToken(s.SessionToken[:len(s.SessionToken)-2]+"AA", "", "")
			return err
		},
		"expired": func() error {
			noErr(t, f.e.Advance(301*time.Second))
			_, err := f.e.VerifyToken(s.SessionToken, "", "")
			noErr(t, f.e.SetTime(t0))
			return err
		},
	}
	for reason, call := range reasons {
		e := wantCode(t, call(), astack.ErrInvalidToken)
		if e.Reason != reason || e.Details["reason"] != reason {
			t.Errorf("%s: got %+v", reason, e)
		}
		if strings.Contains(e.Message, s.SessionToken) {
			t.Errorf("%s: token in the message", reason)
		}
	}
	_, err := f.e.IssueToken(f.admin, "sess_nope")
	wantCode(t, err, astack.ErrNotFound)
}

func TestWorkers(t *testing.T) {
	f := newFixture(t)
	w := must(f.e.RegisterWorker(f.admin, astack.Worker{NodeID: "gpu-1", URL: "wss://gpu-1.example", Capacity: 1}))
	if w.NodeID != "gpu-1" || w.Capacity != 1 || w.Draining {
		t.Fatalf("%+v", w)
	}
	_, err := f.e.RegisterWorker(f.admin, astack.Worker{NodeID: "gpu-1", URL: "wss://x", Capacity: 1})
	wantCode(t, err, astack.ErrAlreadyExists)
	_, err = f.e.RegisterWorker(f.admin, astack.Worker{NodeID: "bad id!", URL: "wss://x", Capacity: 1})
	if e := wantCode(t, err, astack.ErrInvalidRequest); e.Field != "node_id" {
		t.Fatalf("field %q", e.Field)
	}
	s := must(f.e.CreateSession(f.admin, astack.CreateSessionRequest{EndUserID: "u"}))
	if s.NodeID != "gpu-1" || s.WorkerURL != "wss://gpu-1.example" {
		t.Fatalf("%+v", s)
	}
	_, err = f.e.CreateSession(f.admin, astack.CreateSessionRequest{EndUserID: "u"})
	wantCode(t, err, astack.ErrNoWorkerAvailable)
	list := must(f.e.ListWorkers(f.admin))
	if len(list) != 1 || list[0].ActiveSessions != 1 || list[0].NodeID != "gpu-1" {
		t.Fatalf("%+v", list)
	}
	capacity, draining := uint32(5), true
	u := must(f.e.UpdateWorker(f.admin, "gpu-1", astack.WorkerUpdate{Capacity: &capacity, Draining: &draining}))
	if u.Capacity != 5 || !u.Draining || u.URL != "wss://gpu-1.example" {
		t.Fatalf("%+v", u)
	}
	_, err = f.e.CreateSession(f.admin, astack.CreateSessionRequest{EndUserID: "u"})
	wantCode(t, err, astack.ErrNoWorkerAvailable)
	_, err = f.e.UpdateWorker(f.admin, "gpu-9", astack.WorkerUpdate{})
	wantCode(t, err, astack.ErrNotFound)
	// Only the operator's keys manage workers.
	acme, _ := f.key(astack.CreateKeyRequest{AccountID: "acme", Scopes: []string{"workers:write", "workers:read"}})
	k := f.authorize(acme, astack.OpWorkerWrite).KeyID
	_, err = f.e.RegisterWorker(k, astack.Worker{NodeID: "x", URL: "wss://x", Capacity: 1})
	wantCode(t, err, astack.ErrForbidden)
	// A key without the scope may not list them.
	users, _ := f.key(astack.CreateKeyRequest{Scopes: []string{"users:read"}})
	_, err = f.e.ListWorkers(f.authorize(users, astack.OpUserRead).KeyID)
	wantCode(t, err, astack.ErrInsufficientScope)
}

func TestUsers(t *testing.T) {
	f := newFixture(t)
	key, _ := f.key(astack.CreateKeyRequest{AccountID: "acme", Scopes: []string{"users:read", "users:write"}})
	k := f.authorize(key, astack.OpUserWrite).KeyID
	u := must(f.e.CreateUser(k, astack.CreateUserRequest{Name: "Ada", Email: "ada@example.com", Metadata: map[string]any{"tier": 1}}))
	if u.Name != "Ada" || *u.Email != "ada@example.com" || u.AccountID != "acme" || u.Metadata["tier"] != 1.0 {
		t.Fatalf("%+v", u)
	}
	if g := must(f.e.GetUser(k, u.ID)); g.ID != u.ID {
		t.Fatalf("%+v", g)
	}
	must(f.e.CreateUser(k, astack.CreateUserRequest{Name: "Bob"}))
	if l := must(f.e.ListUsers(k, 0)); len(l) != 2 || l[0].Name != "Bob" {
		t.Fatalf("%+v", l)
	}
	name := "Ada L."
	noErr(t, f.e.Advance(time.Second))
	up := must(f.e.UpdateUser(k, u.ID, astack.UserUpdate{Name: &name, ClearEmail: true}))
	if up.Name != name || up.Email != nil || up.UpdatedAt != t0.Add(time.Second).UnixMilli() {
		t.Fatalf("%+v", up)
	}
	email := "ada@lovelace.org"
	if up := must(f.e.UpdateUser(k, u.ID, astack.UserUpdate{Email: &email})); *up.Email != email || up.Name != name {
		t.Fatalf("%+v", up)
	}
	_, err := f.e.UpdateUser(k, u.ID, astack.UserUpdate{Email: &name})
	if e := wantCode(t, err, astack.ErrInvalidRequest); e.Field != "email" {
		t.Fatalf("field %q", e.Field)
	}
	if d := must(f.e.DeleteUser(k, u.ID)); d.ID != u.ID {
		t.Fatalf("%+v", d)
	}
	_, err = f.e.GetUser(k, u.ID)
	wantCode(t, err, astack.ErrNotFound)
	_, err = f.e.DeleteUser(k, u.ID)
	wantCode(t, err, astack.ErrNotFound)
	_, err = f.e.CreateUser(k, astack.CreateUserRequest{})
	wantCode(t, err, astack.ErrInvalidRequest)
}

func TestUsageAndAlerts(t *testing.T) {
	f := newFixture(t)
	k := f.authorizeBilling(t, "acme")
	a := must(f.e.CreateAlert(k, astack.AlertRequest{Metric: "minutes", Threshold: 10}))
	if a.Metric != "minutes" || a.Threshold != 10 || a.FiredAt != nil || a.AccountID != "acme" {
		t.Fatalf("%+v", a)
	}
	r := must(f.e.RecordUsage(k, astack.UsageRecord{Metric: "minutes", Quantity: 6, IdempotencyKey: "i1"}))
	if r.Total != 6 || !r.Counted {
		t.Fatalf("%+v", r)
	}
	if r := must(f.e.RecordUsage(k, astack.UsageRecord{Metric: "minutes", Quantity: 6, IdempotencyKey: "i1"})); r.Total != 6 || r.Counted {
		t.Fatalf("idempotent: %+v", r)
	}
	must(f.e.RecordUsage(k, astack.UsageRecord{Metric: "minutes", Quantity: 4}))
	alerts := must(f.e.ListAlerts(k))
	if len(alerts) != 1 || alerts[0].FiredAt == nil || *alerts[0].FiredAt != t0.UnixMilli() {
		t.Fatalf("%+v", alerts)
	}
	u := must(f.e.Usage(k))
	if u.AccountID != "acme" || u.Metrics["minutes"] != 10 || u.Requests != 1 {
		t.Fatalf("%+v", u)
	}
	_, err := f.e.RecordUsage(k, astack.UsageRecord{Metric: "", Quantity: 1})
	wantCode(t, err, astack.ErrInvalidRequest)
	_, err = f.e.CreateAlert(k, astack.AlertRequest{Metric: "minutes"})
	if e := wantCode(t, err, astack.ErrInvalidRequest); e.Field != "threshold" {
		t.Fatalf("field %q", e.Field)
	}
}

func TestAuditAndMetrics(t *testing.T) {
	f := newFixture(t)
	_, id := f.key(astack.CreateKeyRequest{AccountID: "acme", Scopes: []string{"users:read"}})
	_, _ = f.e.Authorize("ak_"+strings.Repeat("0", 36), astack.OpAdmin)
	s := must(f.e.CreateSession(f.admin, astack.CreateSessionRequest{EndUserID: "u"}))
	audit := must(f.e.ListAudit(f.admin, 0))
	actions := map[string]bool{}
	for _, r := range audit {
		if r.Target != nil && *r.Target == id {
			actions[r.Action] = true
			if r.ActorKeyID == nil || *r.ActorKeyID != f.admin || r.ActorPrefix == nil {
				t.Fatalf("%+v", r)
			}
		}
		if r.Target != nil && *r.Target == s.ID {
			actions[r.Action] = true
		}
	}
	if !actions["key.created"] || !actions["session.created"] {
		t.Fatalf("actions %v", actions)
	}
	if l := must(f.e.ListAudit(f.admin, 1)); len(l) != 1 {
		t.Fatalf("%d", len(l))
	}
	m := must(f.e.Metrics(f.admin))
	if m.Keys != 2 || m.Sessions["PENDING"] != 1 {
		t.Fatalf("%+v", m)
	}
}

func TestLimiter(t *testing.T) {
	l := must(astack.NewLimiter(astack.Window{Name: "second", Limit: 2, PeriodSeconds: 1},
		astack.Window{Name: "day", Limit: 3, PeriodSeconds: 86400}))
	defer l.Close()
	now := t0
	for i := 0; i < 2; i++ {
		d := must(l.Allow("10.0.0.1", now))
		if !d.Allowed {
			t.Fatalf("%+v", d)
		}
	}
	d, err := l.Allow("10.0.0.1", now)
	e := wantCode(t, err, astack.ErrRateLimited)
	if d.Allowed || d.Window != "second" || e.RetryAfter != 1 {
		t.Fatalf("%+v %+v", d, e)
	}
	p, r := d.Headers()
	if p != `"second";q=2;w=1, "day";q=3;w=86400` {
		t.Fatalf("policy %q", p)
	}
	if cp, cr := astack.CLimiterHeaders(l, &d, 106, 0); cp != p || cr != r {
		t.Fatalf("library %q %q vs %q %q", cp, cr, p, r)
	}
	d = must(l.Allow("10.0.0.1", now.Add(time.Second)))
	if d.Window != "day" || d.Remaining != 0 {
		t.Fatalf("%+v", d)
	}
	if n := must(l.Sweep(now.Add(48 * time.Hour))); n != 0 {
		t.Fatalf("swept to %d", n)
	}
	_, err = astack.NewLimiter()
	wantCode(t, err, astack.ErrInvalidRequest)
	_, err = astack.NewLimiter(astack.Window{Name: "x", Limit: 0, PeriodSeconds: 1})
	wantCode(t, err, astack.ErrInvalidRequest)
	_, err = l.Allow("a\x00b", now)
	wantCode(t, err, astack.ErrInvalidRequest)
	noErr(t, l.Close())
	noErr(t, l.Close())
	_, err = l.Allow("x", now)
	wantCode(t, err, astack.ErrClosed)
	_, err = l.Sweep(now)
	wantCode(t, err, astack.ErrClosed)
}
