//! The cold paths: keys, sessions, tokens, workers, users, usage, audit and metrics, exchanging
//! JSON.
//!
//! Each takes the engine, the acting key's `key_id` (from an allowed `astack_authorize`) and
//! its arguments, and answers in `*out_json` (never NULL after the call when `out_json` is not
//! NULL): the result on success, the SPEC §9 error body `{"error": {"code", "message", ...}}`
//! on failure. The caller frees `*out_json` with `astack_string_free`. Field names are those of
//! the SPEC. Every function is thread-safe.
//!
//! Results common to all: `ASTACK_NULL_ARGUMENT` (a required pointer is NULL; with `out_json`
//! NULL nothing runs), `ASTACK_INVALID_UTF8`, `ASTACK_NOT_FOUND` (unknown `key_id`, or a
//! resource outside the key's account), `ASTACK_API_KEY_REVOKED` / `ASTACK_API_KEY_EXPIRED`
//! (the acting key), `ASTACK_INSUFFICIENT_SCOPE` (the operation named in each function),
//! `ASTACK_INVALID_REQUEST` (malformed JSON or a bad field, named in the body),
//! `ASTACK_PAYLOAD_TOO_LARGE` (a request document over 64 KiB), `ASTACK_INTERNAL_ERROR`.

use std::ffi::c_char;

use serde_json::json;

use super::astack_result;
use super::{acting, astack_engine, call, engine_ref, json_call, list, optional_text, page, put, request, text, to_json, Failure};
use crate::keys::CreateKey;
use crate::session::{CreateSession, EndSession};
use crate::usage::{CreateAlert, RecordUsage};
use crate::users::{CreateUser, UpdateUser};
use crate::workers::{UpdateWorker, Worker};

// ---------------------------------------------------------------------------------------------
// Keys.

/// Creates the operator's first admin key (`admin:all`, account `default`). With `plaintext`
/// NULL a key is generated and `*out_json` is `{"key": "ak_…"}`, shown this once; with a
/// well-formed `plaintext` that key is installed (an existing one is kept) and `*out_json` is
/// `{"key": null}`. Authorize with the key to learn its `key_id`.
/// Also returns `ASTACK_INVALID_CONFIG` for a malformed `plaintext`.
#[no_mangle]
pub extern "C" fn astack_bootstrap_admin_key(
    engine: *const astack_engine,
    plaintext: *const c_char,
    out_json: *mut *mut c_char,
) -> astack_result {
    json_call(out_json, || {
        let engine = engine_ref(engine)?;
        let key = engine.bootstrap_admin_key(optional_text(plaintext, "plaintext")?)?;
        Ok(json!({ "key": key }).to_string())
    })
}

/// Creates a key (`admin`) from `request_json` `{account_id, name, scopes, permissions, limits,
/// expires_at}`; `*out_json` is its record plus `key`, the plaintext, shown this once.
/// Also returns `ASTACK_FORBIDDEN` (another account, by a non-operator key).
#[no_mangle]
pub extern "C" fn astack_key_create(
    engine: *const astack_engine,
    key_id: *const c_char,
    request_json: *const c_char,
    out_json: *mut *mut c_char,
) -> astack_result {
    acting(engine, key_id, out_json, |engine, principal| {
        let request: CreateKey = request(request_json, "request_json")?;
        to_json(&engine.create_key(principal, request)?)
    })
}

/// Keys, newest first (`admin`): `{"data": [...]}`. `limit` 0 gives 50; at most 1,000.
#[no_mangle]
pub extern "C" fn astack_key_list(
    engine: *const astack_engine,
    key_id: *const c_char,
    limit: u32,
    out_json: *mut *mut c_char,
) -> astack_result {
    acting(engine, key_id, out_json, |engine, principal| {
        list(&engine.list_keys(principal, page(limit)?)?)
    })
}

/// The record of key `id` (`admin`).
#[no_mangle]
pub extern "C" fn astack_key_get(
    engine: *const astack_engine,
    key_id: *const c_char,
    id: *const c_char,
    out_json: *mut *mut c_char,
) -> astack_result {
    acting(engine, key_id, out_json, |engine, principal| {
        to_json(&engine.get_key(principal, text(id, "id")?)?)
    })
}

/// Revokes key `id` (`admin`); revoking it again changes nothing. `*out_json` is its record.
#[no_mangle]
pub extern "C" fn astack_key_revoke(
    engine: *const astack_engine,
    key_id: *const c_char,
    id: *const c_char,
    out_json: *mut *mut c_char,
) -> astack_result {
    acting(engine, key_id, out_json, |engine, principal| {
        to_json(&engine.revoke_key(principal, text(id, "id")?)?)
    })
}

/// Rotates key `id` (`admin`): a new key with the same account, scopes, permissions, limits
/// and expiry (`*out_json`: its record plus `key`, shown once); the old key then expires at
/// the earlier of its expiry and now + `grace_period_seconds` (at most 30 days).
#[no_mangle]
pub extern "C" fn astack_key_rotate(
    engine: *const astack_engine,
    key_id: *const c_char,
    id: *const c_char,
    grace_period_seconds: u64,
    out_json: *mut *mut c_char,
) -> astack_result {
    acting(engine, key_id, out_json, |engine, principal| {
        to_json(&engine.rotate_key(principal, text(id, "id")?, grace_period_seconds)?)
    })
}

// ---------------------------------------------------------------------------------------------
// Sessions.

/// Creates a session (`session.create`) from `request_json` `{end_user_id, connection_type,
/// quality, features, metadata}`; `*out_json` is the session plus `session_token`.
/// Also returns `ASTACK_CONCURRENT_SESSION_LIMIT`, `ASTACK_NO_WORKER_AVAILABLE`.
#[no_mangle]
pub extern "C" fn astack_session_create(
    engine: *const astack_engine,
    key_id: *const c_char,
    request_json: *const c_char,
    out_json: *mut *mut c_char,
) -> astack_result {
    acting(engine, key_id, out_json, |engine, principal| {
        let request: CreateSession = request(request_json, "request_json")?;
        to_json(&engine.create_session(principal, request)?)
    })
}

/// Session `id` of the key's account (`session.read`), expiry applied.
#[no_mangle]
pub extern "C" fn astack_session_get(
    engine: *const astack_engine,
    key_id: *const c_char,
    id: *const c_char,
    out_json: *mut *mut c_char,
) -> astack_result {
    acting(engine, key_id, out_json, |engine, principal| {
        to_json(&engine.get_session(principal, text(id, "id")?)?)
    })
}

/// The key's account's sessions, newest first (`session.read`): `{"data": [...]}`. `limit` 0
/// gives 50; at most 1,000.
#[no_mangle]
pub extern "C" fn astack_session_list(
    engine: *const astack_engine,
    key_id: *const c_char,
    limit: u32,
    out_json: *mut *mut c_char,
) -> astack_result {
    acting(engine, key_id, out_json, |engine, principal| {
        list(&engine.list_sessions(principal, page(limit)?)?)
    })
}

/// Terminates session `id` (`session.terminate`): PENDING/ACTIVE → COMPLETED. An ended
/// session is returned unchanged, so retries are safe.
#[no_mangle]
pub extern "C" fn astack_session_terminate(
    engine: *const astack_engine,
    key_id: *const c_char,
    id: *const c_char,
    out_json: *mut *mut c_char,
) -> astack_result {
    acting(engine, key_id, out_json, |engine, principal| {
        to_json(&engine.terminate_session(principal, text(id, "id")?)?)
    })
}

/// A worker connects session `id` (`worker.write`) with the `session_token` its client
/// presented: it must verify with `sub` = `id` and `aud` = the session's `node_id`. Moves the
/// session PENDING → ACTIVE, once. Also returns `ASTACK_INVALID_TOKEN` (the body names the
/// `reason`), `ASTACK_INVALID_TRANSITION`.
#[no_mangle]
pub extern "C" fn astack_session_connect(
    engine: *const astack_engine,
    key_id: *const c_char,
    id: *const c_char,
    session_token: *const c_char,
    out_json: *mut *mut c_char,
) -> astack_result {
    acting(engine, key_id, out_json, |engine, principal| {
        let id = text(id, "id")?;
        let token = text(session_token, "session_token")?;
        to_json(&engine.connect_session(principal, id, token)?)
    })
}

/// A worker reports the end of session `id` (`worker.write`) with `request_json`
/// `{"outcome": "completed"|"failed", "reason": ...}`: COMPLETED or FAILED with `end_reason`.
/// Also returns `ASTACK_INVALID_TRANSITION` for an ended session.
#[no_mangle]
pub extern "C" fn astack_session_end(
    engine: *const astack_engine,
    key_id: *const c_char,
    id: *const c_char,
    request_json: *const c_char,
    out_json: *mut *mut c_char,
) -> astack_result {
    acting(engine, key_id, out_json, |engine, principal| {
        let id = text(id, "id")?;
        let request: EndSession = request(request_json, "request_json")?;
        to_json(&engine.end_session(principal, id, request)?)
    })
}

/// Expires every live session past its expiry (hosts may run it periodically);
/// `*out_expired` (may be NULL) receives how many this call expired (a sweep running at the
/// same time on another thread expires the others: each session once). Returns `ASTACK_OK`,
/// `ASTACK_NULL_ARGUMENT` (`engine` NULL), `ASTACK_UNAVAILABLE`. Thread-safe.
#[no_mangle]
pub extern "C" fn astack_session_sweep(engine: *const astack_engine, out_expired: *mut u64) -> astack_result {
    call(|| {
        let expired = engine_ref(engine)?.sweep()? as u64;
        if !out_expired.is_null() {
            // SAFETY: non-NULL; the caller provides a writable `uint64_t`.
            unsafe { out_expired.write(expired) };
        }
        Ok(())
    })
}

/// The live (PENDING or ACTIVE) sessions held by key `key_id`, its concurrent-session slots in
/// use, in `*out`. An unknown key holds 0. Returns `ASTACK_OK`, `ASTACK_NULL_ARGUMENT`,
/// `ASTACK_INVALID_UTF8`, `ASTACK_UNAVAILABLE`. Thread-safe.
#[no_mangle]
pub extern "C" fn astack_session_slots_in_use(
    engine: *const astack_engine,
    key_id: *const c_char,
    out: *mut u32,
) -> astack_result {
    call(|| {
        let engine = engine_ref(engine)?;
        let key_id = text(key_id, "key_id")?;
        if out.is_null() {
            return Err(Failure::Abi(astack_result::ASTACK_NULL_ARGUMENT, "out"));
        }
        put(out, "out", engine.slots_in_use(key_id)?)
    })
}

// ---------------------------------------------------------------------------------------------
// Tokens.

/// Issues a new session token for live session `id` of the key's account (`session.create`):
/// `*out_json` is `{"session_token": "…"}`. Also returns `ASTACK_INVALID_TRANSITION` for an
/// ended session.
#[no_mangle]
pub extern "C" fn astack_token_issue(
    engine: *const astack_engine,
    key_id: *const c_char,
    id: *const c_char,
    out_json: *mut *mut c_char,
) -> astack_result {
    acting(engine, key_id, out_json, |engine, principal| {
        let token = engine.issue_token(principal, text(id, "id")?)?;
        Ok(json!({ "session_token": token }).to_string())
    })
}

/// Verifies a session token (SPEC §7) at the engine's time with its leeway; `audience` and
/// `session_id` may be NULL, else they must equal `aud` and `sub`. `*out_json` is the claims
/// (`iss`, `sub`, `aud`, `acc`, `uid`, `features`, `quality`, `iat`, `nbf`, `exp`, `jti`).
/// Needs no key. Returns `ASTACK_OK`, `ASTACK_INVALID_TOKEN` (the body names the `reason`),
/// `ASTACK_NULL_ARGUMENT`, `ASTACK_INVALID_UTF8`.
#[no_mangle]
pub extern "C" fn astack_token_verify(
    engine: *const astack_engine,
    session_token: *const c_char,
    audience: *const c_char,
    session_id: *const c_char,
    out_json: *mut *mut c_char,
) -> astack_result {
    json_call(out_json, || {
        let engine = engine_ref(engine)?;
        let token = text(session_token, "session_token")?;
        let audience = optional_text(audience, "audience")?;
        let session_id = optional_text(session_id, "session_id")?;
        to_json(&engine.verify_token(token, audience, session_id)?)
    })
}

// ---------------------------------------------------------------------------------------------
// Workers.

/// Registers a worker (`worker.write`, operator's keys only) from `worker_json` `{node_id, url,
/// capacity, draining}`. Also returns `ASTACK_FORBIDDEN`, `ASTACK_ALREADY_EXISTS`.
#[no_mangle]
pub extern "C" fn astack_worker_register(
    engine: *const astack_engine,
    key_id: *const c_char,
    worker_json: *const c_char,
    out_json: *mut *mut c_char,
) -> astack_result {
    acting(engine, key_id, out_json, |engine, principal| {
        let worker: Worker = request(worker_json, "worker_json")?;
        to_json(&engine.register_worker(principal, worker)?)
    })
}

/// Changes worker `node_id` (`worker.write`, operator's keys only) with `change_json` `{url,
/// capacity, draining}` (absent fields stay). Also returns `ASTACK_FORBIDDEN`.
#[no_mangle]
pub extern "C" fn astack_worker_update(
    engine: *const astack_engine,
    key_id: *const c_char,
    node_id: *const c_char,
    change_json: *const c_char,
    out_json: *mut *mut c_char,
) -> astack_result {
    acting(engine, key_id, out_json, |engine, principal| {
        let node_id = text(node_id, "node_id")?;
        let change: UpdateWorker = request(change_json, "change_json")?;
        to_json(&engine.update_worker(principal, node_id, change)?)
    })
}

/// Registered workers with their live sessions (`worker.read`): `{"data": [{node_id, url,
/// capacity, draining, active_sessions}]}`.
#[no_mangle]
pub extern "C" fn astack_worker_list(
    engine: *const astack_engine,
    key_id: *const c_char,
    out_json: *mut *mut c_char,
) -> astack_result {
    acting(engine, key_id, out_json, |engine, principal| {
        list(&engine.list_workers(principal)?)
    })
}

// ---------------------------------------------------------------------------------------------
// Users.

/// Creates an end user in the key's account (`user.write`) from `request_json` `{name, email,
/// metadata}`.
#[no_mangle]
pub extern "C" fn astack_user_create(
    engine: *const astack_engine,
    key_id: *const c_char,
    request_json: *const c_char,
    out_json: *mut *mut c_char,
) -> astack_result {
    acting(engine, key_id, out_json, |engine, principal| {
        let request: CreateUser = request(request_json, "request_json")?;
        to_json(&engine.create_user(principal, request)?)
    })
}

/// User `id` of the key's account (`user.read`).
#[no_mangle]
pub extern "C" fn astack_user_get(
    engine: *const astack_engine,
    key_id: *const c_char,
    id: *const c_char,
    out_json: *mut *mut c_char,
) -> astack_result {
    acting(engine, key_id, out_json, |engine, principal| {
        to_json(&engine.get_user(principal, text(id, "id")?)?)
    })
}

/// The key's account's users, newest first (`user.read`): `{"data": [...]}`. `limit` 0 gives
/// 50; at most 1,000.
#[no_mangle]
pub extern "C" fn astack_user_list(
    engine: *const astack_engine,
    key_id: *const c_char,
    limit: u32,
    out_json: *mut *mut c_char,
) -> astack_result {
    acting(engine, key_id, out_json, |engine, principal| {
        list(&engine.list_users(principal, page(limit)?)?)
    })
}

/// Changes user `id` (`user.write`) with `change_json` `{name, email, metadata}`: absent
/// fields stay, `"email": null` clears it.
#[no_mangle]
pub extern "C" fn astack_user_update(
    engine: *const astack_engine,
    key_id: *const c_char,
    id: *const c_char,
    change_json: *const c_char,
    out_json: *mut *mut c_char,
) -> astack_result {
    acting(engine, key_id, out_json, |engine, principal| {
        let id = text(id, "id")?;
        let change: UpdateUser = request(change_json, "change_json")?;
        to_json(&engine.update_user(principal, id, change)?)
    })
}

/// Deletes user `id` (`user.write`); `*out_json` is the deleted user.
#[no_mangle]
pub extern "C" fn astack_user_delete(
    engine: *const astack_engine,
    key_id: *const c_char,
    id: *const c_char,
    out_json: *mut *mut c_char,
) -> astack_result {
    acting(engine, key_id, out_json, |engine, principal| {
        to_json(&engine.delete_user(principal, text(id, "id")?)?)
    })
}

// ---------------------------------------------------------------------------------------------
// Usage and alerts.

/// Records a custom metric (`billing.write`) from `request_json` `{metric, quantity,
/// idempotency_key}`: `*out_json` is `{metric, total, counted}` (`counted` false when the
/// idempotency key had been seen).
#[no_mangle]
pub extern "C" fn astack_usage_record(
    engine: *const astack_engine,
    key_id: *const c_char,
    request_json: *const c_char,
    out_json: *mut *mut c_char,
) -> astack_result {
    acting(engine, key_id, out_json, |engine, principal| {
        let request: RecordUsage = request(request_json, "request_json")?;
        to_json(&engine.record_usage(principal, request)?)
    })
}

/// The key's account's usage (`billing.read`): `{account_id, requests, session_seconds,
/// metrics}`.
#[no_mangle]
pub extern "C" fn astack_usage_get(
    engine: *const astack_engine,
    key_id: *const c_char,
    out_json: *mut *mut c_char,
) -> astack_result {
    acting(engine, key_id, out_json, |engine, principal| {
        to_json(&engine.usage(principal)?)
    })
}

/// Sets an alert (`billing.write`) from `request_json` `{metric, threshold}`; it fires once
/// when the metric's total reaches the threshold.
#[no_mangle]
pub extern "C" fn astack_alert_create(
    engine: *const astack_engine,
    key_id: *const c_char,
    request_json: *const c_char,
    out_json: *mut *mut c_char,
) -> astack_result {
    acting(engine, key_id, out_json, |engine, principal| {
        let request: CreateAlert = request(request_json, "request_json")?;
        to_json(&engine.create_alert(principal, request)?)
    })
}

/// The key's account's alerts, newest first (`billing.read`): `{"data": [{id, account_id,
/// metric, threshold, created_at, fired_at}]}`.
#[no_mangle]
pub extern "C" fn astack_alert_list(
    engine: *const astack_engine,
    key_id: *const c_char,
    out_json: *mut *mut c_char,
) -> astack_result {
    acting(engine, key_id, out_json, |engine, principal| {
        list(&engine.list_alerts(principal)?)
    })
}

// ---------------------------------------------------------------------------------------------
// Audit and metrics.

/// The audit log, newest first (`admin`; the operator's admins see every account):
/// `{"data": [{id, account_id, at, action, actor_key_id, actor_prefix, target, detail}]}`.
/// `limit` 0 gives 50; at most 1,000.
#[no_mangle]
pub extern "C" fn astack_audit_list(
    engine: *const astack_engine,
    key_id: *const c_char,
    limit: u32,
    out_json: *mut *mut c_char,
) -> astack_result {
    acting(engine, key_id, out_json, |engine, principal| {
        list(&engine.audit(principal, page(limit)?)?)
    })
}

/// Engine-wide figures for the key's view (`admin`): `{keys, sessions: {STATUS: n}, workers}`.
#[no_mangle]
pub extern "C" fn astack_metrics(
    engine: *const astack_engine,
    key_id: *const c_char,
    out_json: *mut *mut c_char,
) -> astack_result {
    acting(engine, key_id, out_json, |engine, principal| {
        to_json(&engine.metrics(principal)?)
    })
}
