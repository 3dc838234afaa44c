// Package authbench compares Authorize through cgo with the same policy written in plain Go
// (crypto/sha256, a map behind a sync.RWMutex, two golang.org/x/time/rate limiters per key),
// over 100,000 keys. Used by the package's benchmarks and by cmd/authbench, which prints
// both figures and their ratio.
package authbench

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	astack "github.com/astack-dev/astack/bindings/go"
)

// Keys is how many keys both sides hold.
const Keys = 100_000

// High limits, so that nothing is denied during a run.
const (
	perMinute = 10_000_000
	perHour   = 100_000_000
)

// Fixture is an engine and a plain-Go policy holding the same keys.
type Fixture struct {
	Engine *astack.Engine
	Plain  *Plain
	Keys   []string
}

var (
	once    sync.Once
	fixture *Fixture
)

// Setup builds the fixture once per process.
func Setup() *Fixture {
	once.Do(func() {
		e, err := astack.New(&astack.Config{Limits: &astack.Limits{RequestsPerMinute: perMinute, RequestsPerHour: perHour}})
		if err != nil {
			panic(err)
		}
		admin, err := e.BootstrapAdminKey("")
		if err != nil {
			panic(err)
		}
		d, err := e.Authorize(admin, astack.OpAdmin)
		if err != nil {
			panic(err)
		}
		f := &Fixture{Engine: e, Plain: NewPlain(), Keys: make([]string, Keys)}
		for i := range f.Keys {
			k, err := e.CreateKey(d.KeyID, astack.CreateKeyRequest{Name: fmt.Sprintf("bench %d", i),
				Scopes: []string{"sessions:read", "sessions:write"}})
			if err != nil {
				panic(err)
			}
			f.Keys[i] = k.Secret
			f.Plain.Add(k.Secret, k.ID, k.AccountID, scopeSessions)
		}
		fixture = f
	})
	return fixture
}

// ---- the same policy in plain Go -------------------------------------------------------------

const scopeSessions = 1

type record struct {
	digest    [32]byte
	keyID     string
	accountID string
	scopes    uint16
	revoked   atomic.Bool
	expiresAt int64
	minute    *rate.Limiter
	hour      *rate.Limiter
}

// Plain is the policy in plain Go: SHA-256 of the key, a map behind a lock, and a minute and
// an hour limiter per key.
type Plain struct {
	mu   sync.RWMutex
	keys map[[32]byte]*record
}

// NewPlain makes an empty policy.
func NewPlain() *Plain { return &Plain{keys: make(map[[32]byte]*record, Keys)} }

// Add installs a key.
func (p *Plain) Add(key, keyID, accountID string, scopes uint16) {
	digest := sha256.Sum256([]byte(key))
	p.mu.Lock()
	p.keys[digest] = &record{digest: digest, keyID: keyID, accountID: accountID, scopes: scopes,
		minute: rate.NewLimiter(rate.Limit(float64(perMinute)/60), perMinute),
		hour:   rate.NewLimiter(rate.Limit(float64(perHour)/3600), perHour)}
	p.mu.Unlock()
}

// Authorize decides as the engine does: known, not revoked, not expired, scope, then both
// windows (one Allow each: not all-or-nothing, which favours plain Go).
func (p *Plain) Authorize(key string, scope uint16) (keyID, accountID string, ok bool) {
	if len(key) != 39 {
		return "", "", false
	}
	digest := sha256.Sum256([]byte(key))
	p.mu.RLock()
	r := p.keys[digest]
	p.mu.RUnlock()
	if r == nil || subtle.ConstantTimeCompare(r.digest[:], digest[:]) != 1 || r.revoked.Load() {
		return "", "", false
	}
	now := time.Now()
	if r.expiresAt != 0 && now.UnixMilli() >= r.expiresAt || r.scopes&scope == 0 {
		return "", "", false
	}
	if !r.minute.AllowN(now, 1) || !r.hour.AllowN(now, 1) {
		return "", "", false
	}
	return r.keyID, r.accountID, true
}

// ---- the benchmarks --------------------------------------------------------------------------

// Ours is Authorize through cgo, one goroutine, cycling over the keys.
func Ours(b *testing.B) {
	f := Setup()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.Engine.Authorize(f.Keys[i%Keys], astack.OpSessionRead); err != nil {
			b.Fatal(err)
		}
	}
}

// OursParallel is Authorize through cgo from GOMAXPROCS goroutines.
func OursParallel(b *testing.B) {
	f := Setup()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(Keys)
		for pb.Next() {
			if _, err := f.Engine.Authorize(f.Keys[i%Keys], astack.OpSessionRead); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// PlainGo is the plain-Go policy, one goroutine.
func PlainGo(b *testing.B) {
	f := Setup()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, ok := f.Plain.Authorize(f.Keys[i%Keys], scopeSessions); !ok {
			b.Fatal("denied")
		}
	}
}

// PlainGoParallel is the plain-Go policy from GOMAXPROCS goroutines.
func PlainGoParallel(b *testing.B) {
	f := Setup()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(Keys)
		for pb.Next() {
			if _, _, ok := f.Plain.Authorize(f.Keys[i%Keys], scopeSessions); !ok {
				b.Error("denied")
				return
			}
			i++
		}
	})
}
