package astack_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	astack "github.com/astack-dev/astack/bindings/go"
)

// secret is the test signing secret (32+ bytes), shared with the independent JWT library.
const secret = "a test signing secret of at least 32 bytes"

// t0 is the manual clock's start.
var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func testConfig() *astack.Config {
	return &astack.Config{SigningKeys: []astack.SigningKey{{Kid: "k1", Secret: secret}}}
}

// fixture is an engine on a manual clock with its admin key.
type fixture struct {
	t        *testing.T
	e        *astack.Engine
	adminKey string
	admin    string // the admin's key id
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, testConfig())
}

func newFixtureWith(t *testing.T, cfg *astack.Config) *fixture {
	t.Helper()
	e, err := astack.New(cfg, astack.WithManualClock(t0))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	key, err := e.BootstrapAdminKey("")
	if err != nil {
		t.Fatalf("BootstrapAdminKey: %v", err)
	}
	f := &fixture{t: t, e: e, adminKey: key}
	f.admin = f.authorize(key, astack.OpAdmin).KeyID
	return f
}

// authorize must allow.
func (f *fixture) authorize(key string, op astack.Operation) astack.Decision {
	f.t.Helper()
	d, err := f.e.Authorize(key, op)
	if err != nil {
		f.t.Fatalf("Authorize(%s): %v", op, err)
	}
	return d
}

// key creates a key and returns its plaintext and id.
func (f *fixture) key(req astack.CreateKeyRequest) (string, string) {
	f.t.Helper()
	if req.Name == "" {
		req.Name = "test"
	}
	k, err := f.e.CreateKey(f.admin, req)
	if err != nil {
		f.t.Fatalf("CreateKey: %v", err)
	}
	return k.Secret, k.ID
}

// wantCode checks err is an *Error with code, matching the sentinel under errors.Is.
func wantCode(t *testing.T, err error, sentinel *astack.Error) *astack.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s, got no error", sentinel.Code)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("want %s, got %v", sentinel.Code, err)
	}
	var e *astack.Error
	if !errors.As(err, &e) {
		t.Fatalf("not an *astack.Error: %T", err)
	}
	if e.Status != sentinel.Status {
		t.Fatalf("%s: status %d, want %d", e.Code, e.Status, sentinel.Status)
	}
	return e
}

// must returns v, stopping the test binary on an unexpected error (Go cannot pass a call's two
// results beside t).
func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprintf("unexpected error: %v", err))
	}
	return v
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}
