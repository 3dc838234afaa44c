package astack_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	astack "github.com/astack-dev/astack/bindings/go"
)

// 64 goroutines hammer one engine: the limits stay exact.
func TestSixtyFourGoroutinesKeepTheLimitsExact(t *testing.T) {
	const perMinute, goroutines, each = 500, 64, 40 // 2,560 attempts for 500 tokens
	f := newFixture(t)
	key, _ := f.key(astack.CreateKeyRequest{Scopes: []string{"sessions:read"},
		Limits: &astack.Limits{RequestsPerMinute: perMinute, RequestsPerHour: 100_000}})
	other, _ := f.key(astack.CreateKeyRequest{Scopes: []string{"sessions:read"},
		Limits: &astack.Limits{RequestsPerMinute: 10_000, RequestsPerHour: 100_000}})

	var allowed, limited, otherAllowed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			<-start
			for i := 0; i < each; i++ {
				d, err := f.e.Authorize(key, astack.OpSessionRead)
				switch {
				case err == nil && d.Allowed:
					allowed.Add(1)
				case errors.Is(err, astack.ErrRateLimited):
					limited.Add(1)
				default:
					t.Errorf("goroutine %d: %v", g, err)
					return
				}
				// A second key on the same engine is unaffected by the first's limit.
				if _, err := f.e.Authorize(other, astack.OpSessionRead); err == nil {
					otherAllowed.Add(1)
				}
			}
		}(g)
	}
	close(start)
	wg.Wait()
	if allowed.Load() != perMinute || limited.Load() != goroutines*each-perMinute {
		t.Fatalf("allowed %d, limited %d; want exactly %d allowed", allowed.Load(), limited.Load(), perMinute)
	}
	if otherAllowed.Load() != goroutines*each {
		t.Fatalf("other key: %d allowed", otherAllowed.Load())
	}
	// A refill of 0.12 s gives back exactly one token on the manual clock.
	noErr(t, f.e.Advance(120*time.Millisecond))
	if _, err := f.e.Authorize(key, astack.OpSessionRead); err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.Authorize(key, astack.OpSessionRead); !errors.Is(err, astack.ErrRateLimited) {
		t.Fatalf("want rate_limited, got %v", err)
	}
	// Usage counted every allowed request exactly.
	u := must(f.e.Usage(f.authorizeBilling(t, "default")))
	if want := uint64(perMinute + goroutines*each + 1 + 1 + 1); u.Requests != want {
		t.Fatalf("requests %d (admin authorizations included), want %d", u.Requests, want)
	}
}

// Concurrent session creation never exceeds the concurrent-session limit.
func TestConcurrentSessionsStayWithinTheLimit(t *testing.T) {
	f := newFixture(t)
	key, _ := f.key(astack.CreateKeyRequest{Scopes: []string{"sessions:write"},
		Limits: &astack.Limits{RequestsPerMinute: 10_000, RequestsPerHour: 100_000, ConcurrentSessions: 7}})
	var created atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 4; i++ {
				d, err := f.e.Authorize(key, astack.OpSessionCreate)
				if err != nil {
					if !errors.Is(err, astack.ErrConcurrentSessionLimit) {
						t.Errorf("authorize: %v", err)
					}
					continue
				}
				if _, err := f.e.CreateSession(d.KeyID, astack.CreateSessionRequest{EndUserID: "u"}); err == nil {
					created.Add(1)
				} else if !errors.Is(err, astack.ErrConcurrentSessionLimit) {
					t.Errorf("create: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if created.Load() != 7 {
		t.Fatalf("created %d sessions, limit 7", created.Load())
	}
}
