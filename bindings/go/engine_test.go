package astack_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	astack "github.com/astack-dev/astack/bindings/go"
)

func TestVersion(t *testing.T) {
	if v := astack.Version(); len(strings.Split(v, ".")) != 3 {
		t.Fatalf("version %q", v)
	}
}

func TestNewDefaultsAndConfig(t *testing.T) {
	e, err := astack.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	raw := must(e.Config())
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	limits := cfg["limits"].(map[string]any)
	if limits["requests_per_minute"].(float64) != 100 || limits["requests_per_hour"].(float64) != 1000 {
		t.Fatalf("defaults: %s", raw)
	}
	if strings.Contains(string(must(e.Config())), secret) {
		t.Fatal("secret shown")
	}
	// The system clock cannot be set.
	wantCode(t, e.SetTime(t0), &astack.Error{Code: "unsupported", Status: 400})
	wantCode(t, e.Advance(time.Second), &astack.Error{Code: "unsupported", Status: 400})
	now := must(e.Now())
	if time.Since(now) > time.Minute || time.Since(now) < -time.Minute {
		t.Fatalf("system clock reads %v", now)
	}
}

func TestInvalidConfigNamesTheField(t *testing.T) {
	_, err := astack.New(&astack.Config{SigningKeys: []astack.SigningKey{{Kid: "k", Secret: "short"}}})
	e := wantCode(t, err, astack.ErrInvalidConfig)
	if !strings.Contains(e.Field, "signing_keys") {
		t.Fatalf("field %q (%v)", e.Field, e)
	}
	_, err = astack.NewFromJSON(`{"limits": {"requests_per_minute": 100}, "nope": 1}`)
	e = wantCode(t, err, astack.ErrInvalidConfig)
	if e.Field != "nope" {
		t.Fatalf("field %q", e.Field)
	}
	_, err = astack.NewFromJSON(`{not json`)
	wantCode(t, err, astack.ErrInvalidConfig)
	_, err = astack.NewFromJSON("{\x00}")
	wantCode(t, err, astack.ErrInvalidRequest)

	raw, err := astack.CheckConfig(`{"limits": {"requests_per_minute": 7}}`)
	if err != nil || !strings.Contains(string(raw), `"requests_per_minute":7`) {
		t.Fatalf("CheckConfig: %s %v", raw, err)
	}
	_, err = astack.CheckConfig(`{"limits": {"requests_per_minute": "x"}}`)
	wantCode(t, err, astack.ErrInvalidConfig)
	raw = must(astack.CheckConfig(""))
	if !strings.Contains(string(raw), "limits") {
		t.Fatalf("default config %s", raw)
	}
}

func TestManualClock(t *testing.T) {
	f := newFixture(t)
	if now := must(f.e.Now()); !now.Equal(t0) {
		t.Fatalf("now %v", now)
	}
	if err := f.e.Advance(1500 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if now := must(f.e.Now()); !now.Equal(t0.Add(1500 * time.Millisecond)) {
		t.Fatalf("now %v", now)
	}
	if err := f.e.SetTime(t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if now := must(f.e.Now()); !now.Equal(t0.Add(-time.Hour)) {
		t.Fatalf("now %v", now)
	}
	wantCode(t, f.e.Advance(-time.Second), astack.ErrInvalidArgument)
	wantCode(t, f.e.SetTime(time.Unix(-5, 0)), astack.ErrInvalidArgument)
}

func TestCloseIsIdempotentAndLaterCallsFail(t *testing.T) {
	f := newFixture(t)
	sess := must(f.e.CreateSession(f.admin, astack.CreateSessionRequest{EndUserID: "u"}))
	if err := f.e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.e.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := f.e.Authorize(f.adminKey, astack.OpAdmin)
	wantCode(t, err, astack.ErrClosed)
	if d.Allowed {
		t.Fatal("allowed after close")
	}
	id, k := f.admin, f.admin
	calls := map[string]func() error{
		"Config":            func() error { _, err := f.e.Config(); return err },
		"Now":               func() error { _, err := f.e.Now(); return err },
		"SetTime":           func() error { return f.e.SetTime(t0) },
		"Advance":           func() error { return f.e.Advance(time.Second) },
		"BootstrapAdminKey": func() error { _, err := f.e.BootstrapAdminKey(""); return err },
		"CreateKey": func() error {
			_, err := f.e.CreateKey(k, astack.CreateKeyRequest{Scopes: []string{"admin:all"}})
			return err
		},
		"ListKeys":         func() error { _, err := f.e.ListKeys(k, 0); return err },
		"GetKey":           func() error { _, err := f.e.GetKey(k, id); return err },
		"RevokeKey":        func() error { _, err := f.e.RevokeKey(k, id); return err },
		"RotateKey":        func() error { _, err := f.e.RotateKey(k, id, 0); return err },
		"CreateSession":    func() error { _, err := f.e.CreateSession(k, astack.CreateSessionRequest{EndUserID: "u"}); return err },
		"GetSession":       func() error { _, err := f.e.GetSession(k, sess.ID); return err },
		"ListSessions":     func() error { _, err := f.e.ListSessions(k, 0); return err },
		"TerminateSession": func() error { _, err := f.e.TerminateSession(k, sess.ID); return err },
		"ConnectSession":   func() error { _, err := f.e.ConnectSession(k, sess.ID, sess.SessionToken); return err },
		"EndSession": func() error {
			_, err := f.e.EndSession(k, sess.ID, astack.EndSessionRequest{Outcome: "completed"})
			return err
		},
		"SweepSessions": func() error { _, err := f.e.SweepSessions(); return err },
		"SlotsInUse":    func() error { _, err := f.e.SlotsInUse(k); return err },
		"IssueToken":    func() error { _, err := f.e.IssueToken(k, sess.ID); return err },
		"VerifyToken":   func() error { _, err := f.e.VerifyToken(sess.SessionToken, "", ""); return err },
		"RegisterWorker": func() error {
			_, err := f.e.RegisterWorker(k, astack.Worker{NodeID: "n", URL: "ws://x", Capacity: 1})
			return err
		},
		"UpdateWorker": func() error { _, err := f.e.UpdateWorker(k, "n", astack.WorkerUpdate{}); return err },
		"ListWorkers":  func() error { _, err := f.e.ListWorkers(k); return err },
		"CreateUser":   func() error { _, err := f.e.CreateUser(k, astack.CreateUserRequest{Name: "n"}); return err },
		"GetUser":      func() error { _, err := f.e.GetUser(k, "user_x"); return err },
		"ListUsers":    func() error { _, err := f.e.ListUsers(k, 0); return err },
		"UpdateUser":   func() error { _, err := f.e.UpdateUser(k, "user_x", astack.UserUpdate{}); return err },
		"DeleteUser":   func() error { _, err := f.e.DeleteUser(k, "user_x"); return err },
		"RecordUsage":  func() error { _, err := f.e.RecordUsage(k, astack.UsageRecord{Metric: "m", Quantity: 1}); return err },
		"Usage":        func() error { _, err := f.e.Usage(k); return err },
		"CreateAlert":  func() error { _, err := f.e.CreateAlert(k, astack.AlertRequest{Metric: "m", Threshold: 1}); return err },
		"ListAlerts":   func() error { _, err := f.e.ListAlerts(k); return err },
		"ListAudit":    func() error { _, err := f.e.ListAudit(k, 0); return err },
		"Metrics":      func() error { _, err := f.e.Metrics(k); return err },
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, astack.ErrClosed) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
	var e *astack.Error
	if !errors.As(calls["Metrics"](), &e) || e.Code != "engine_closed" {
		t.Fatalf("code %v", e)
	}
}

// Calls racing Close either complete or see ErrClosed; none touches freed memory (run with
// -race; a use after free would crash).
func TestCloseRacingCalls(t *testing.T) {
	for round := 0; round < 20; round++ {
		f := newFixture(t)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := 0; i < 50; i++ {
					_, err := f.e.Authorize(f.adminKey, astack.OpSessionRead)
					if err != nil && !errors.Is(err, astack.ErrClosed) && !errors.Is(err, astack.ErrRateLimited) {
						t.Errorf("authorize: %v", err)
						return
					}
					if _, err := f.e.ListSessions(f.admin, 1); err != nil && !errors.Is(err, astack.ErrClosed) {
						t.Errorf("list: %v", err)
						return
					}
				}
			}()
		}
		close(start)
		time.Sleep(time.Duration(round%5) * 100 * time.Microsecond)
		_ = f.e.Close()
		wg.Wait()
	}
}

// A result added to the C ABI must get its status here: unknown codes are answered 500.
func TestEveryResultOfTheHeaderHasItsStatus(t *testing.T) {
	header, err := os.ReadFile(filepath.Join("..", "..", "include", "astack.h"))
	if err != nil {
		t.Fatal(err)
	}
	enum := strings.SplitN(strings.SplitN(string(header), "enum astack_result", 2)[1], "}", 2)[0]
	results := regexp.MustCompile(`(?m)^\s*ASTACK_([A-Z_]+) = (\d+),$`).FindAllStringSubmatch(enum, -1)
	if len(results) < 20 {
		t.Fatalf("%d results in the header", len(results))
	}
	for _, m := range results {
		code := strings.ToLower(m[1])
		rc, _ := strconv.ParseUint(m[2], 10, 32)
		if got := astack.ResultCode(uint32(rc)); got != code {
			t.Fatalf("result %d: the library says %q, the header %q", rc, got, code)
		}
		if status := astack.StatusOf(code); rc != 0 && code != "internal_error" && status == 500 {
			t.Fatalf("%s has no status of its own", code)
		}
	}
}

func TestErrorTypeAndSentinels(t *testing.T) {
	sentinels := []*astack.Error{
		astack.ErrMissingAPIKey, astack.ErrInvalidAPIKey, astack.ErrAPIKeyRevoked, astack.ErrAPIKeyExpired,
		astack.ErrInsufficientScope, astack.ErrRateLimited, astack.ErrConcurrentSessionLimit,
		astack.ErrInvalidRequest, astack.ErrNotFound, astack.ErrForbidden, astack.ErrAlreadyExists,
		astack.ErrInvalidTransition, astack.ErrInvalidToken, astack.ErrPayloadTooLarge,
		astack.ErrNoWorkerAvailable, astack.ErrInvalidConfig, astack.ErrUnavailable, astack.ErrInternal,
		astack.ErrClosed, astack.ErrInvalidArgument,
	}
	seen := map[string]bool{}
	for _, s := range sentinels {
		if s.Code == "" || s.Status < 400 || seen[s.Code] {
			t.Fatalf("sentinel %+v", s)
		}
		seen[s.Code] = true
		e := &astack.Error{Code: s.Code, Status: s.Status, Message: "detailed"}
		var wrapped error = e
		if !errors.Is(wrapped, s) {
			t.Fatalf("%s does not match", s.Code)
		}
		for _, other := range sentinels {
			if other != s && errors.Is(wrapped, other) {
				t.Fatalf("%s matches %s", s.Code, other.Code)
			}
		}
	}
	e := &astack.Error{Code: "rate_limited", Status: 429, Message: "slow down", Details: map[string]any{"retry_after": 3}}
	if e.Error() != "astack: rate_limited: slow down" {
		t.Fatalf("%q", e.Error())
	}
	body, _ := json.Marshal(e)
	if string(body) != `{"error":{"code":"rate_limited","message":"slow down","retry_after":3}}` {
		t.Fatalf("%s", body)
	}
}

func TestStoreInConfig(t *testing.T) {
	// SQLite: a key made by one engine is known to the next one on the same file.
	path := filepath.Join(t.TempDir(), "state", "astack.db")
	first, err := astack.New(&astack.Config{Store: &astack.Store{Kind: "sqlite", Path: path}})
	if err != nil {
		t.Fatal(err)
	}
	admin := must(first.BootstrapAdminKey(""))
	d := must(first.Authorize(admin, astack.OpAdmin))
	app := must(first.CreateKey(d.KeyID, astack.CreateKeyRequest{Name: "app", AccountID: "acme", Scopes: []string{"sessions:read"}}))
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second, err := astack.New(&astack.Config{Store: &astack.Store{Kind: "sqlite", Path: path}})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if got := must(second.Authorize(app.Secret, astack.OpSessionRead)); got.KeyID != app.ID || got.AccountID != "acme" {
		t.Fatalf("after reopening: %+v", got)
	}
	// Flush writes the key's use at once: a third engine on the file reads it.
	if err := second.Flush(); err != nil {
		t.Fatal(err)
	}
	third, err := astack.New(&astack.Config{Store: &astack.Store{Kind: "sqlite", Path: path}})
	if err != nil {
		t.Fatal(err)
	}
	admin3 := must(third.Authorize(admin, astack.OpAdmin))
	if k := must(third.GetKey(admin3.KeyID, app.ID)); k.LastUsedAt == nil {
		t.Fatal("last_used_at not written by Flush")
	}
	third.Close()
	wantCode(t, third.Flush(), astack.ErrClosed)

	// Redis: nothing is sent before the first call; with no server, that call is unavailable.
	zero := uint64(0)
	redis, err := astack.New(&astack.Config{Store: &astack.Store{
		Kind: "redis", URL: "redis://127.0.0.1:1/0", Prefix: "t:", KeyCacheMs: &zero, Lease: &astack.Lease{Batch: 10},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer redis.Close()
	_, err = redis.Authorize(app.Secret, astack.OpSessionRead)
	wantCode(t, err, astack.ErrUnavailable)

	// Each setting reaches the engine under its configuration name.
	_, err = astack.New(&astack.Config{Store: &astack.Store{Kind: "redis", URL: "redis://127.0.0.1:1/0", Lease: &astack.Lease{}}})
	if e := wantCode(t, err, astack.ErrInvalidConfig); e.Field != "store.lease.batch" {
		t.Fatalf("field %q", e.Field)
	}
	_, err = astack.New(&astack.Config{Store: &astack.Store{Kind: "sqlite", URL: "redis://x"}})
	if e := wantCode(t, err, astack.ErrInvalidConfig); e.Field != "store.url" {
		t.Fatalf("field %q", e.Field)
	}
	for ms, ok := range map[uint64]bool{0: true, 50: true, 9: false} {
		flushed, err := astack.New(&astack.Config{Store: &astack.Store{Kind: "sqlite", Path: path, FlushMs: &ms}})
		if ok && err != nil {
			t.Fatalf("flush_ms %d: %v", ms, err)
		} else if ok {
			flushed.Close()
		} else if e := wantCode(t, err, astack.ErrInvalidConfig); e.Field != "store.flush_ms" {
			t.Fatalf("field %q", e.Field)
		}
	}
}
