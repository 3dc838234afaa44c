package astack

/*
#include <stdlib.h>
#include <astack.h>
*/
import "C"

import (
	"encoding/json"
	"math"
	"time"
	"unsafe"
)

// The cold paths. Each takes the acting keyID (Decision.KeyID of an earlier Authorize) and
// answers with the SPEC's objects, or an *Error carrying the SPEC §9 code, status and details.

// cstrings copies field/value pairs for C; free releases them.
type cstrings []*C.char

func toC(pairs ...string) (cstrings, error) {
	out := make(cstrings, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		s, err := cString(pairs[i], pairs[i+1])
		if err != nil {
			out.free()
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (s cstrings) free() {
	for _, p := range s {
		C.free(unsafe.Pointer(p))
	}
}

// marshal encodes a request document.
func marshal(field string, v any) (string, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return "", &Error{Code: "invalid_request", Status: 400, Message: err.Error(), Field: field,
			Details: map[string]any{"field": field}}
	}
	return string(raw), nil
}

// decode reads a JSON answer into a T.
func decode[T any](raw json.RawMessage, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	v := new(T)
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, newError("internal_error", "unreadable answer: "+err.Error())
	}
	return v, nil
}

// list reads a {"data": [...]} answer.
func list[T any](raw json.RawMessage, err error) ([]T, error) {
	doc, err := decode[struct {
		Data []T `json:"data"`
	}](raw, err)
	if err != nil {
		return nil, err
	}
	if doc.Data == nil {
		doc.Data = []T{}
	}
	return doc.Data, nil
}

// limitArg checks a list limit: 0 gives 50, at most 1,000.
func limitArg(limit int) (C.uint32_t, error) {
	if limit < 0 {
		return 0, &Error{Code: "invalid_argument", Status: 400, Message: "`limit` must not be negative", Field: "limit",
			Details: map[string]any{"argument": "limit"}}
	}
	if limit > math.MaxUint32 {
		limit = math.MaxUint32
	}
	return C.uint32_t(limit), nil
}

// strCall runs a cold path whose arguments are strings (field/value pairs).
func (e *Engine) strCall(call func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result, pairs ...string) (json.RawMessage, error) {
	s, err := toC(pairs...)
	if err != nil {
		return nil, err
	}
	defer s.free()
	return e.jsonCall(func(p *C.astack_engine, out **C.char) C.astack_result { return call(p, s, out) })
}

// ---- keys ----------------------------------------------------------------------------------

// BootstrapAdminKey creates the operator's first admin key (admin:all, account "default").
// With plaintext "" a key is generated and returned, shown this once; with a well-formed
// plaintext that key is installed (an existing one is kept) and "" is returned.
func (e *Engine) BootstrapAdminKey(plaintext string) (string, error) {
	var cplain *C.char
	if plaintext != "" {
		s, err := cString("plaintext", plaintext)
		if err != nil {
			return "", err
		}
		defer C.free(unsafe.Pointer(s))
		cplain = s
	}
	doc, err := decode[struct {
		Key *string `json:"key"`
	}](e.jsonCall(func(p *C.astack_engine, out **C.char) C.astack_result {
		return C.astack_bootstrap_admin_key(p, cplain, out)
	}))
	if err != nil {
		return "", err
	}
	if doc.Key == nil {
		return "", nil
	}
	return *doc.Key, nil
}

// CreateKey creates a key (admin); the answer holds the plaintext, shown this once.
func (e *Engine) CreateKey(keyID string, req CreateKeyRequest) (*CreatedKey, error) {
	doc, err := marshal("request", req)
	if err != nil {
		return nil, err
	}
	return decode[CreatedKey](e.strCall(func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result {
		return C.astack_key_create(p, s[0], s[1], out)
	}, "key_id", keyID, "request", doc))
}

// ListKeys lists keys, newest first (admin); limit 0 gives 50, at most 1,000.
func (e *Engine) ListKeys(keyID string, limit int) ([]Key, error) {
	n, err := limitArg(limit)
	if err != nil {
		return nil, err
	}
	return list[Key](e.strCall(func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result {
		return C.astack_key_list(p, s[0], n, out)
	}, "key_id", keyID))
}

// GetKey is the record of key id (admin).
func (e *Engine) GetKey(keyID, id string) (*Key, error) {
	return decode[Key](e.strCall(func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result {
		return C.astack_key_get(p, s[0], s[1], out)
	}, "key_id", keyID, "id", id))
}

// RevokeKey revokes key id (admin); revoking it again changes nothing.
func (e *Engine) RevokeKey(keyID, id string) (*Key, error) {
	return decode[Key](e.strCall(func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result {
		return C.astack_key_revoke(p, s[0], s[1], out)
	}, "key_id", keyID, "id", id))
}

// RotateKey rotates key id (admin): a new key with the same account, scopes, permissions,
// limits and expiry; the old key expires at the earlier of its expiry and now + grace (whole
// seconds, at most 30 days).
func (e *Engine) RotateKey(keyID, id string, grace time.Duration) (*CreatedKey, error) {
	if grace < 0 {
		return nil, &Error{Code: "invalid_argument", Status: 400, Message: "`grace_period_seconds` must not be negative",
			Field: "grace_period_seconds", Details: map[string]any{"argument": "grace_period_seconds"}}
	}
	secs := C.uint64_t(grace / time.Second)
	return decode[CreatedKey](e.strCall(func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result {
		return C.astack_key_rotate(p, s[0], s[1], secs, out)
	}, "key_id", keyID, "id", id))
}

// ---- sessions ------------------------------------------------------------------------------

// CreateSession creates a session (session.create) and its token.
func (e *Engine) CreateSession(keyID string, req CreateSessionRequest) (*CreatedSession, error) {
	doc, err := marshal("request", req)
	if err != nil {
		return nil, err
	}
	return decode[CreatedSession](e.strCall(func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result {
		return C.astack_session_create(p, s[0], s[1], out)
	}, "key_id", keyID, "request", doc))
}

// GetSession is session id of the key's account (session.read), expiry applied.
func (e *Engine) GetSession(keyID, id string) (*Session, error) {
	return decode[Session](e.strCall(func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result {
		return C.astack_session_get(p, s[0], s[1], out)
	}, "key_id", keyID, "id", id))
}

// ListSessions lists the account's sessions, newest first (session.read); limit 0 gives 50.
func (e *Engine) ListSessions(keyID string, limit int) ([]Session, error) {
	n, err := limitArg(limit)
	if err != nil {
		return nil, err
	}
	return list[Session](e.strCall(func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result {
		return C.astack_session_list(p, s[0], n, out)
	}, "key_id", keyID))
}

// TerminateSession ends session id (session.terminate): PENDING/ACTIVE → COMPLETED; an ended
// session is returned unchanged, so retries are safe.
func (e *Engine) TerminateSession(keyID, id string) (*Session, error) {
	return decode[Session](e.strCall(func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result {
		return C.astack_session_terminate(p, s[0], s[1], out)
	}, "key_id", keyID, "id", id))
}

// ConnectSession is a worker connecting session id (worker.write) with the token its client
// presented: PENDING → ACTIVE, once. A refused token is ErrInvalidToken with its Reason.
func (e *Engine) ConnectSession(keyID, id, sessionToken string) (*Session, error) {
	return decode[Session](e.strCall(func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result {
		return C.astack_session_connect(p, s[0], s[1], s[2], out)
	}, "key_id", keyID, "id", id, "session_token", sessionToken))
}

// EndSession is a worker reporting the end of session id (worker.write): COMPLETED or FAILED.
func (e *Engine) EndSession(keyID, id string, req EndSessionRequest) (*Session, error) {
	doc, err := marshal("request", req)
	if err != nil {
		return nil, err
	}
	return decode[Session](e.strCall(func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result {
		return C.astack_session_end(p, s[0], s[1], s[2], out)
	}, "key_id", keyID, "id", id, "request", doc))
}

// SweepSessions expires every live session past its expiry and returns how many this call
// expired (a sweep running at the same time expires the others: each session once).
func (e *Engine) SweepSessions() (int, error) {
	var n C.uint64_t
	err := e.do(func(p *C.astack_engine) C.astack_result { return C.astack_session_sweep(p, &n) })
	return int(n), err
}

// SlotsInUse is the number of live sessions held by key keyID (its concurrent-session slots).
func (e *Engine) SlotsInUse(keyID string) (int, error) {
	s, err := toC("key_id", keyID)
	if err != nil {
		return 0, err
	}
	defer s.free()
	var n C.uint32_t
	err = e.do(func(p *C.astack_engine) C.astack_result { return C.astack_session_slots_in_use(p, s[0], &n) })
	return int(n), err
}

// ---- tokens --------------------------------------------------------------------------------

// IssueToken issues a new session token for live session id (session.create).
func (e *Engine) IssueToken(keyID, id string) (string, error) {
	doc, err := decode[struct {
		SessionToken string `json:"session_token"`
	}](e.strCall(func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result {
		return C.astack_token_issue(p, s[0], s[1], out)
	}, "key_id", keyID, "id", id))
	if err != nil {
		return "", err
	}
	return doc.SessionToken, nil
}

// VerifyToken verifies a session token (SPEC §7) at the engine's time. A non-empty audience
// (the worker's node_id) and sessionID must equal aud and sub. Needs no key. A refused token
// is ErrInvalidToken with the Reason ("expired", "wrong_audience"…).
func (e *Engine) VerifyToken(token, audience, sessionID string) (*Claims, error) {
	s, err := toC("session_token", token, "audience", audience, "session_id", sessionID)
	if err != nil {
		return nil, err
	}
	defer s.free()
	aud, sub := s[1], s[2]
	if audience == "" {
		aud = nil
	}
	if sessionID == "" {
		sub = nil
	}
	return decode[Claims](e.jsonCall(func(p *C.astack_engine, out **C.char) C.astack_result {
		return C.astack_token_verify(p, s[0], aud, sub, out)
	}))
}

// ---- workers -------------------------------------------------------------------------------

// RegisterWorker registers a worker (worker.write, the operator's keys only).
func (e *Engine) RegisterWorker(keyID string, w Worker) (*Worker, error) {
	doc, err := marshal("worker", w)
	if err != nil {
		return nil, err
	}
	return decode[Worker](e.strCall(func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result {
		return C.astack_worker_register(p, s[0], s[1], out)
	}, "key_id", keyID, "worker", doc))
}

// UpdateWorker changes worker nodeID (worker.write, the operator's keys only).
func (e *Engine) UpdateWorker(keyID, nodeID string, change WorkerUpdate) (*Worker, error) {
	doc, err := marshal("change", change)
	if err != nil {
		return nil, err
	}
	return decode[Worker](e.strCall(func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result {
		return C.astack_worker_update(p, s[0], s[1], s[2], out)
	}, "key_id", keyID, "node_id", nodeID, "change", doc))
}

// ListWorkers lists the registered workers with their live sessions (worker.read).
func (e *Engine) ListWorkers(keyID string) ([]WorkerStatus, error) {
	return list[WorkerStatus](e.strCall(func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result {
		return C.astack_worker_list(p, s[0], out)
	}, "key_id", keyID))
}

// ---- users ---------------------------------------------------------------------------------

// CreateUser creates an end user in the key's account (user.write).
func (e *Engine) CreateUser(keyID string, req CreateUserRequest) (*User, error) {
	doc, err := marshal("request", req)
	if err != nil {
		return nil, err
	}
	return decode[User](e.strCall(func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result {
		return C.astack_user_create(p, s[0], s[1], out)
	}, "key_id", keyID, "request", doc))
}

// GetUser is user id of the key's account (user.read).
func (e *Engine) GetUser(keyID, id string) (*User, error) {
	return decode[User](e.strCall(func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result {
		return C.astack_user_get(p, s[0], s[1], out)
	}, "key_id", keyID, "id", id))
}

// ListUsers lists the account's users, newest first (user.read); limit 0 gives 50.
func (e *Engine) ListUsers(keyID string, limit int) ([]User, error) {
	n, err := limitArg(limit)
	if err != nil {
		return nil, err
	}
	return list[User](e.strCall(func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result {
		return C.astack_user_list(p, s[0], n, out)
	}, "key_id", keyID))
}

// UpdateUser changes user id (user.write).
func (e *Engine) UpdateUser(keyID, id string, change UserUpdate) (*User, error) {
	doc, err := marshal("change", change)
	if err != nil {
		return nil, err
	}
	return decode[User](e.strCall(func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result {
		return C.astack_user_update(p, s[0], s[1], s[2], out)
	}, "key_id", keyID, "id", id, "change", doc))
}

// DeleteUser deletes user id (user.write) and returns it.
func (e *Engine) DeleteUser(keyID, id string) (*User, error) {
	return decode[User](e.strCall(func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result {
		return C.astack_user_delete(p, s[0], s[1], out)
	}, "key_id", keyID, "id", id))
}

// ---- usage and alerts ----------------------------------------------------------------------

// RecordUsage records a custom metric (billing.write).
func (e *Engine) RecordUsage(keyID string, rec UsageRecord) (*UsageRecorded, error) {
	doc, err := marshal("request", rec)
	if err != nil {
		return nil, err
	}
	return decode[UsageRecorded](e.strCall(func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result {
		return C.astack_usage_record(p, s[0], s[1], out)
	}, "key_id", keyID, "request", doc))
}

// Usage is the key's account's usage (billing.read).
func (e *Engine) Usage(keyID string) (*Usage, error) {
	return decode[Usage](e.strCall(func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result {
		return C.astack_usage_get(p, s[0], out)
	}, "key_id", keyID))
}

// CreateAlert sets an alert (billing.write).
func (e *Engine) CreateAlert(keyID string, req AlertRequest) (*Alert, error) {
	doc, err := marshal("request", req)
	if err != nil {
		return nil, err
	}
	return decode[Alert](e.strCall(func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result {
		return C.astack_alert_create(p, s[0], s[1], out)
	}, "key_id", keyID, "request", doc))
}

// ListAlerts lists the account's alerts, newest first (billing.read).
func (e *Engine) ListAlerts(keyID string) ([]Alert, error) {
	return list[Alert](e.strCall(func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result {
		return C.astack_alert_list(p, s[0], out)
	}, "key_id", keyID))
}

// ---- audit and metrics ---------------------------------------------------------------------

// ListAudit lists the audit log, newest first (admin; the operator's admins see every
// account); limit 0 gives 50, at most 1,000.
func (e *Engine) ListAudit(keyID string, limit int) ([]AuditRecord, error) {
	n, err := limitArg(limit)
	if err != nil {
		return nil, err
	}
	return list[AuditRecord](e.strCall(func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result {
		return C.astack_audit_list(p, s[0], n, out)
	}, "key_id", keyID))
}

// Metrics are engine-wide figures for the key's view (admin).
func (e *Engine) Metrics(keyID string) (*Metrics, error) {
	return decode[Metrics](e.strCall(func(p *C.astack_engine, s cstrings, out **C.char) C.astack_result {
		return C.astack_metrics(p, s[0], out)
	}, "key_id", keyID))
}
