package astack

import "encoding/json"

// Config is the engine configuration (SPEC §11). Every field is optional; a zero field takes
// the engine's default.
type Config struct {
	Limits        *Limits          `json:"limits,omitempty"`
	Sessions      *SessionSettings `json:"sessions,omitempty"`
	Features      []string         `json:"features,omitempty"`
	SigningKeys   []SigningKey     `json:"signing_keys,omitempty"`
	KeyPepper     string           `json:"key_pepper,omitempty"`
	Workers       []Worker         `json:"workers,omitempty"`
	DefaultWorker *Worker          `json:"default_worker,omitempty"`
	// Store is where the engine keeps its state; nil keeps it in memory.
	Store *Store `json:"store,omitempty"`
}

// Store chooses where an engine keeps its state: Kind "memory" (the default), "sqlite" (one
// file at Path, which survives a restart) or "redis" (a server at URL, shared by many
// processes; the other fields are its settings).
type Store struct {
	Kind string `json:"kind"`
	// Path is the SQLite database file, created with its directory if missing.
	Path string `json:"path,omitempty"`
	// URL is the Redis server: redis://[:password@]host:port/db or unix:///path.
	URL string `json:"url,omitempty"`
	// Prefix of every Redis key (default "astack:"), so that engines may share a server.
	Prefix string `json:"prefix,omitempty"`
	// KeyCacheMs is how long a key's record is served from the process before Redis is read
	// again (nil: 1,000 ms; 0 to 60,000): the longest a revocation takes to reach it.
	KeyCacheMs *uint64 `json:"key_cache_ms,omitempty"`
	// FailOpen allows the requests of keys this process knows while Redis is unreachable.
	FailOpen bool `json:"fail_open,omitempty"`
	// Lease, when set, leases tokens from Redis in batches, so that the hot path stays in memory.
	Lease *Lease `json:"lease,omitempty"`
	// FlushMs is how often a thread of the engine writes what a SQLite or Redis store holds
	// back (nil: 500 ms; 10 to 60,000, or 0 for no thread: see Engine.Flush).
	FlushMs *uint64 `json:"flush_ms,omitempty"`
}

// Lease is the Redis store's token leasing: Batch tokens (1 to 10,000) taken at once, per key.
type Lease struct {
	Batch uint32 `json:"batch"`
}

// Limits are the three limits of a key (SPEC §5); a zero field takes the default.
type Limits struct {
	RequestsPerMinute  uint32 `json:"requests_per_minute,omitempty"`
	RequestsPerHour    uint32 `json:"requests_per_hour,omitempty"`
	ConcurrentSessions uint32 `json:"concurrent_sessions,omitempty"`
}

// SessionSettings are the session and token lifetimes, in seconds.
type SessionSettings struct {
	PendingTTLSeconds  uint64 `json:"pending_ttl_seconds,omitempty"`
	MaxDurationSeconds uint64 `json:"max_duration_seconds,omitempty"`
	TokenTTLSeconds    uint64 `json:"token_ttl_seconds,omitempty"`
	TokenLeewaySeconds uint64 `json:"token_leeway_seconds,omitempty"`
}

// SigningKey is a session-token signing key: Secret is at least 32 bytes, used as the HMAC
// key as-is. The first key of the list signs; the others still verify.
type SigningKey struct {
	Kid    string `json:"kid"`
	Secret string `json:"secret"`
}

// Key is what is known of an API key: everything but the key itself. Times are Unix epoch
// milliseconds.
type Key struct {
	ID          string   `json:"id"`
	AccountID   string   `json:"account_id"`
	Name        string   `json:"name"`
	Prefix      string   `json:"prefix"`
	Scopes      []string `json:"scopes"`
	Permissions []string `json:"permissions"`
	Limits      Limits   `json:"limits"`
	CreatedAt   int64    `json:"created_at"`
	ExpiresAt   *int64   `json:"expires_at"`
	RevokedAt   *int64   `json:"revoked_at"`
	LastUsedAt  *int64   `json:"last_used_at"`
}

// CreatedKey is a new key: its record and the plaintext Key, shown this once.
type CreatedKey struct {
	Key
	// Secret is the API key itself ("ak_…"), returned this once and never again.
	Secret string `json:"key"`
}

// CreateKeyRequest creates a key. Only the operator's (account "default") admin keys may name
// another AccountID. One of Scopes or Permissions is needed.
type CreateKeyRequest struct {
	AccountID   string   `json:"account_id,omitempty"`
	Name        string   `json:"name,omitempty"`
	Scopes      []string `json:"scopes,omitempty"`
	Permissions []string `json:"permissions,omitempty"`
	Limits      *Limits  `json:"limits,omitempty"`
	// ExpiresAt is the expiry in Unix epoch milliseconds (0: never).
	ExpiresAt int64 `json:"expires_at,omitempty"`
}

// The session states (SPEC §6).
const (
	StatusPending   = "PENDING"
	StatusActive    = "ACTIVE"
	StatusCompleted = "COMPLETED"
	StatusFailed    = "FAILED"
	StatusExpired   = "EXPIRED"
)

// Session is a session record (SPEC §6). Times are Unix epoch milliseconds.
type Session struct {
	ID             string         `json:"id"`
	AccountID      string         `json:"account_id"`
	Status         string         `json:"status"`
	EndUserID      string         `json:"end_user_id"`
	ConnectionType string         `json:"connection_type"`
	Quality        string         `json:"quality"`
	Features       []string       `json:"features"`
	Metadata       map[string]any `json:"metadata"`
	KeyID          string         `json:"key_id"`
	NodeID         string         `json:"node_id"`
	WorkerURL      string         `json:"worker_url"`
	CreatedAt      int64          `json:"created_at"`
	ExpiresAt      int64          `json:"expires_at"`
	ConnectedAt    *int64         `json:"connected_at"`
	EndedAt        *int64         `json:"ended_at"`
	EndReason      *string        `json:"end_reason"`
}

// CreatedSession is a new session and the token its client presents to its worker.
type CreatedSession struct {
	Session
	SessionToken string `json:"session_token"`
}

// CreateSessionRequest creates a session; only EndUserID is required.
type CreateSessionRequest struct {
	EndUserID      string         `json:"end_user_id"`
	ConnectionType string         `json:"connection_type,omitempty"` // "websocket" (default) or "webrtc"
	Quality        string         `json:"quality,omitempty"`         // "low", "standard" (default) or "high"
	Features       []string       `json:"features,omitempty"`
	Metadata       map[string]any `json:"metadata,omitempty"`
}

// The outcomes a worker reports (EndSessionRequest.Outcome).
const (
	OutcomeCompleted = "completed"
	OutcomeFailed    = "failed"
)

// EndSessionRequest is a worker's report of a session's end.
type EndSessionRequest struct {
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
}

// Claims are a verified session token's claims (SPEC §7); times are Unix seconds.
type Claims struct {
	Iss      string   `json:"iss"`
	Sub      string   `json:"sub"` // the session id
	Aud      string   `json:"aud"` // the worker's node_id
	Acc      string   `json:"acc"` // the account id
	UID      string   `json:"uid"` // the end user id
	Features []string `json:"features"`
	Quality  string   `json:"quality"`
	Iat      int64    `json:"iat"`
	Nbf      int64    `json:"nbf"`
	Exp      int64    `json:"exp"`
	Jti      string   `json:"jti"`
}

// Worker is a worker node that hosts sessions.
type Worker struct {
	NodeID   string `json:"node_id"`
	URL      string `json:"url"`
	Capacity uint32 `json:"capacity"`
	Draining bool   `json:"draining"`
}

// WorkerStatus is a worker as listed, with its live sessions.
type WorkerStatus struct {
	Worker
	ActiveSessions uint32 `json:"active_sessions"`
}

// WorkerUpdate changes a worker; nil fields stay.
type WorkerUpdate struct {
	URL      *string `json:"url,omitempty"`
	Capacity *uint32 `json:"capacity,omitempty"`
	Draining *bool   `json:"draining,omitempty"`
}

// User is an end user of an account.
type User struct {
	ID        string         `json:"id"`
	AccountID string         `json:"account_id"`
	Name      string         `json:"name"`
	Email     *string        `json:"email"`
	Metadata  map[string]any `json:"metadata"`
	CreatedAt int64          `json:"created_at"`
	UpdatedAt int64          `json:"updated_at"`
}

// CreateUserRequest creates an end user.
type CreateUserRequest struct {
	Name     string         `json:"name"`
	Email    string         `json:"email,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

// UserUpdate changes a user: nil fields stay; ClearEmail removes the email.
type UserUpdate struct {
	Name       *string
	Email      *string
	ClearEmail bool
	Metadata   map[string]any
}

// MarshalJSON writes the change document ("email": null when ClearEmail).
func (u UserUpdate) MarshalJSON() ([]byte, error) {
	doc := map[string]any{}
	if u.Name != nil {
		doc["name"] = *u.Name
	}
	if u.ClearEmail {
		doc["email"] = nil
	} else if u.Email != nil {
		doc["email"] = *u.Email
	}
	if u.Metadata != nil {
		doc["metadata"] = u.Metadata
	}
	return json.Marshal(doc)
}

// UsageRecord records a custom metric; the same IdempotencyKey twice counts once.
type UsageRecord struct {
	Metric         string `json:"metric"`
	Quantity       uint64 `json:"quantity"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// UsageRecorded is a metric's total after recording (Counted false for a repeated
// idempotency key).
type UsageRecorded struct {
	Metric  string `json:"metric"`
	Total   uint64 `json:"total"`
	Counted bool   `json:"counted"`
}

// Usage is an account's usage: authorized requests, seconds ACTIVE, every metric's total.
type Usage struct {
	AccountID      string            `json:"account_id"`
	Requests       uint64            `json:"requests"`
	SessionSeconds uint64            `json:"session_seconds"`
	Metrics        map[string]uint64 `json:"metrics"`
}

// AlertRequest sets an alert that fires once when Metric's total reaches Threshold.
type AlertRequest struct {
	Metric    string `json:"metric"`
	Threshold uint64 `json:"threshold"`
}

// Alert is an alert on a metric's total; FiredAt is set once it has fired.
type Alert struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
	Metric    string `json:"metric"`
	Threshold uint64 `json:"threshold"`
	CreatedAt int64  `json:"created_at"`
	FiredAt   *int64 `json:"fired_at"`
}

// AuditRecord is one audited event.
type AuditRecord struct {
	ID          string         `json:"id"`
	AccountID   string         `json:"account_id"`
	At          int64          `json:"at"`
	Action      string         `json:"action"`
	ActorKeyID  *string        `json:"actor_key_id"`
	ActorPrefix *string        `json:"actor_prefix"`
	Target      *string        `json:"target"`
	Detail      map[string]any `json:"detail"`
}

// Metrics are engine-wide figures: keys, sessions by status, workers.
type Metrics struct {
	Keys     uint64            `json:"keys"`
	Sessions map[string]uint64 `json:"sessions"`
	Workers  uint64            `json:"workers"`
}
