//! The hot path: deciding a request into a caller-owned struct, with no allocation; and the
//! rate limiter on any string key.

use std::ffi::{c_char, CStr};

use serde::Deserialize;

use super::astack_result::{self, *};
use super::{boundary, call, engine_ref, owned_string, put, request, text, Failure, Outcome};
use crate::engine::{Authorization, Denial};
use crate::limits::{Decision, Headers, Limiter, Limits, Window};
use crate::scopes::Operation;

/// Bytes of `astack_decision.key_id`, its NUL included (ids are `key_` + 32 hex digits).
pub const ASTACK_KEY_ID_SIZE: usize = 48;

/// Bytes of `astack_decision.account_id`, its NUL included (an account id is at most 128
/// characters, so at most 512 bytes of UTF-8).
pub const ASTACK_ACCOUNT_ID_SIZE: usize = 516;

/// `astack_decision.key_slot` when there is none.
pub const ASTACK_NO_KEY_SLOT: u32 = u32::MAX;

/// One kind of request (SPEC §3), for `astack_authorize_op`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum astack_operation {
    /// `session.create`
    ASTACK_OP_SESSION_CREATE = 1,
    /// `session.read`
    ASTACK_OP_SESSION_READ = 2,
    /// `session.terminate`
    ASTACK_OP_SESSION_TERMINATE = 3,
    /// `user.read`
    ASTACK_OP_USER_READ = 4,
    /// `user.write`
    ASTACK_OP_USER_WRITE = 5,
    /// `billing.read`
    ASTACK_OP_BILLING_READ = 6,
    /// `billing.write`
    ASTACK_OP_BILLING_WRITE = 7,
    /// `worker.read`
    ASTACK_OP_WORKER_READ = 8,
    /// `worker.write`
    ASTACK_OP_WORKER_WRITE = 9,
    /// `admin`
    ASTACK_OP_ADMIN = 10,
}

/// The rate-limit window a decision reports (`astack_decision.window`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum astack_window {
    /// The per-minute window.
    ASTACK_WINDOW_MINUTE = 0,
    /// The per-hour window.
    ASTACK_WINDOW_HOUR = 1,
}

fn operation_of(number: u32) -> Option<Operation> {
    Some(match number {
        1 => Operation::SessionCreate,
        2 => Operation::SessionRead,
        3 => Operation::SessionTerminate,
        4 => Operation::UserRead,
        5 => Operation::UserWrite,
        6 => Operation::BillingRead,
        7 => Operation::BillingWrite,
        8 => Operation::WorkerRead,
        9 => Operation::WorkerWrite,
        10 => Operation::Admin,
        _ => return None,
    })
}

/// The decision on a request, written by `astack_authorize` into a struct the caller owns.
///
/// `code` is the result (also returned). On `ASTACK_OK`, `key_id` and `account_id` name the
/// key, NUL-terminated; pass `key_id` to the cold paths. Whenever the key was authenticated
/// (allowed, `ASTACK_INSUFFICIENT_SCOPE`, `ASTACK_RATE_LIMITED`,
/// `ASTACK_CONCURRENT_SESSION_LIMIT`), the rate-limit fields describe the tightest window
/// (`window`, `limit`, `remaining`, `reset` seconds until full, `retry_after` seconds until a
/// token is back when denied) and `requests_per_minute`, `requests_per_hour` and
/// `concurrent_sessions` are the key's limits in force; otherwise they are all 0.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct astack_decision {
    /// The result of the decision (an `astack_result`).
    pub code: astack_result,
    /// The window reported: an `astack_window`.
    pub window: u32,
    /// That window's capacity.
    pub limit: u32,
    /// Tokens left in it.
    pub remaining: u32,
    /// Seconds until it is full again.
    pub reset: u64,
    /// When denied for rate, seconds until one token is back (never 0); else 0.
    pub retry_after: u64,
    /// The key's requests-per-minute limit in force (0 when not authenticated).
    pub requests_per_minute: u32,
    /// The key's requests-per-hour limit in force (0 when not authenticated).
    pub requests_per_hour: u32,
    /// The key's concurrent-session limit in force (0 when not authenticated).
    pub concurrent_sessions: u32,
    /// When allowed, a number naming the key among this engine's keys for the engine's whole
    /// life (no other key ever has it), for hosts that cache what never changes about a key,
    /// such as `key_id` and `account_id`; `ASTACK_NO_KEY_SLOT` when the store gives none
    /// (Redis) or the request was not allowed.
    pub key_slot: u32,
    /// The key's id, NUL-terminated ("" unless allowed).
    pub key_id: [c_char; ASTACK_KEY_ID_SIZE],
    /// The key's account, NUL-terminated ("" unless allowed).
    pub account_id: [c_char; ASTACK_ACCOUNT_ID_SIZE],
}

impl astack_decision {
    fn denied(code: astack_result) -> Self {
        astack_decision {
            code,
            window: 0,
            limit: 0,
            remaining: 0,
            reset: 0,
            retry_after: 0,
            requests_per_minute: 0,
            requests_per_hour: 0,
            concurrent_sessions: 0,
            key_slot: ASTACK_NO_KEY_SLOT,
            key_id: [0; ASTACK_KEY_ID_SIZE],
            account_id: [0; ASTACK_ACCOUNT_ID_SIZE],
        }
    }

    fn rate(&mut self, decision: &Decision, limits: &Limits) {
        self.window = decision.window as u32;
        self.limit = decision.limit;
        self.remaining = decision.remaining;
        self.reset = decision.reset;
        self.retry_after = decision.retry_after;
        self.requests_per_minute = limits.requests_per_minute;
        self.requests_per_hour = limits.requests_per_hour;
        self.concurrent_sessions = limits.concurrent_sessions;
    }

    /// Fills a decision that starts empty (`denied`), `code` last.
    fn allowed(&mut self, authorization: &Authorization) {
        self.rate(&authorization.decision, &authorization.limits);
        self.key_slot = authorization.principal.key_slot().unwrap_or(ASTACK_NO_KEY_SLOT);
        authorization.principal.with_ids(|key_id, account_id| {
            copy_text(&mut self.key_id, key_id);
            copy_text(&mut self.account_id, account_id);
        });
        self.code = ASTACK_OK;
    }

    /// Fills a decision that starts empty (`denied`), `code` last.
    fn refused(&mut self, denial: &Denial) {
        if let Some((decision, limits)) = &denial.rate {
            self.rate(decision, limits);
        }
        self.code = (&denial.error).into();
    }
}

/// Copies `text` into `buffer`, NUL-terminated, cut at a character boundary if it is too long
/// (ids fit by construction).
fn copy_text(buffer: &mut [c_char], text: &str) {
    let mut end = text.len().min(buffer.len() - 1);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    for (slot, byte) in buffer.iter_mut().zip(&text.as_bytes()[..end]) {
        *slot = *byte as c_char;
    }
    buffer[end] = 0;
}

/// Decides a request into `*out`, built in place (no copy of the 600-byte struct). Runs inside
/// the caller's panic boundary: `*out` holds `ASTACK_INTERNAL_ERROR` until the decision is
/// complete, so a panic never leaves a half-written decision that reads as allowed.
fn decide(
    engine: *const super::astack_engine,
    api_key: Outcome<&[u8]>,
    operation: Outcome<Operation>,
    out: *mut astack_decision,
) -> astack_result {
    if out.is_null() {
        return ASTACK_NULL_ARGUMENT;
    }
    // SAFETY: checked non-NULL; the caller owns a writable, aligned `astack_decision`. Once
    // written whole it is initialized, so it may be borrowed.
    let out = unsafe {
        out.write(astack_decision::denied(ASTACK_INTERNAL_ERROR));
        &mut *out
    };
    let decided: Outcome<()> = (|| {
        let engine = engine_ref(engine)?;
        let operation = operation?;
        // A key that is not UTF-8 cannot be well-formed: it is `invalid_api_key`, as over HTTP.
        let api_key = std::str::from_utf8(api_key?).unwrap_or("\u{1}");
        match engine.authorize(api_key, operation) {
            Ok(authorization) => out.allowed(&authorization),
            Err(denial) => out.refused(&denial),
        }
        Ok(())
    })();
    if let Err(failure) = decided {
        out.code = failure.result();
    }
    out.code
}

/// A NUL-terminated key's bytes.
fn key_of<'a>(api_key: *const c_char) -> Outcome<&'a [u8]> {
    if api_key.is_null() {
        return Err(Failure::Abi(ASTACK_NULL_ARGUMENT, "api_key"));
    }
    // SAFETY: non-NULL; the caller passes a NUL-terminated string valid for the call.
    Ok(unsafe { CStr::from_ptr(api_key) }.to_bytes())
}

/// Decides a request (SPEC §4): `api_key` is the presented key ("" when none was presented),
/// `operation` one of SPEC §3's names (`"session.create"`, `"admin"`…). Runs the checks in
/// order and fills `*out` (see `astack_decision`); a denied request consumes no tokens.
/// Allocates nothing when the request is allowed.
///
/// Returns the decision's code: `ASTACK_OK`, `ASTACK_MISSING_API_KEY`, `ASTACK_INVALID_API_KEY`
/// (also for a key that is not UTF-8), `ASTACK_API_KEY_REVOKED`, `ASTACK_API_KEY_EXPIRED`,
/// `ASTACK_INSUFFICIENT_SCOPE`, `ASTACK_RATE_LIMITED`, `ASTACK_CONCURRENT_SESSION_LIMIT`
/// (`session.create` only); `ASTACK_INVALID_ARGUMENT` for an unknown operation,
/// `ASTACK_INVALID_UTF8` for an operation that is not UTF-8, `ASTACK_NULL_ARGUMENT` (when
/// `out` is NULL nothing is written). Thread-safe.
#[no_mangle]
pub extern "C" fn astack_authorize(
    engine: *const super::astack_engine,
    api_key: *const c_char,
    operation: *const c_char,
    out: *mut astack_decision,
) -> astack_result {
    boundary(ASTACK_INTERNAL_ERROR, || {
        let operation = text(operation, "operation")
            .and_then(|name| Operation::parse(name).ok_or(Failure::Abi(ASTACK_INVALID_ARGUMENT, "operation")));
        decide(engine, key_of(api_key), operation, out)
    })
}

/// As `astack_authorize`, with the operation as an `astack_operation` number (no string to
/// parse). An unknown number is `ASTACK_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn astack_authorize_op(
    engine: *const super::astack_engine,
    api_key: *const c_char,
    operation: u32,
    out: *mut astack_decision,
) -> astack_result {
    boundary(ASTACK_INTERNAL_ERROR, || {
        decide(engine, key_of(api_key), operation_number(operation), out)
    })
}

/// As `astack_authorize_op`, with the key as `api_key_len` bytes at `api_key`, which need no
/// NUL terminator: a binding passes its string's own bytes, without copying them. A key
/// holding a NUL byte is `ASTACK_INVALID_API_KEY`; `api_key` may be NULL only when
/// `api_key_len` is 0 (no key presented: `ASTACK_MISSING_API_KEY`), else it is
/// `ASTACK_NULL_ARGUMENT`. Thread-safe.
#[no_mangle]
pub extern "C" fn astack_authorize_bytes(
    engine: *const super::astack_engine,
    api_key: *const c_char,
    api_key_len: usize,
    operation: u32,
    out: *mut astack_decision,
) -> astack_result {
    boundary(ASTACK_INTERNAL_ERROR, || {
        let api_key: Outcome<&[u8]> = match (api_key.is_null(), api_key_len) {
            (true, 0) => Ok(&[]),
            (true, _) => Err(Failure::Abi(ASTACK_NULL_ARGUMENT, "api_key")),
            // SAFETY: non-NULL; the caller passes `api_key_len` readable bytes valid for the call.
            (false, len) => Ok(unsafe { std::slice::from_raw_parts(api_key.cast::<u8>(), len) }),
        };
        decide(engine, api_key, operation_number(operation), out)
    })
}

/// An `astack_operation` number, or `ASTACK_INVALID_ARGUMENT`.
fn operation_number(operation: u32) -> Outcome<Operation> {
    operation_of(operation).ok_or(Failure::Abi(ASTACK_INVALID_ARGUMENT, "operation"))
}

/// The SPEC §3 name of an `astack_operation` (`"session.create"`…): a static string the caller
/// must not free, or NULL for an unknown number. Thread-safe.
#[no_mangle]
pub extern "C" fn astack_operation_name(operation: u32) -> *const c_char {
    boundary(std::ptr::null(), || match operation_of(operation) {
        Some(operation) => operation_cstr(operation).as_ptr(),
        None => std::ptr::null(),
    })
}

fn operation_cstr(operation: Operation) -> &'static CStr {
    let bytes: &'static [u8] = match operation {
        Operation::SessionCreate => b"session.create\0",
        Operation::SessionRead => b"session.read\0",
        Operation::SessionTerminate => b"session.terminate\0",
        Operation::UserRead => b"user.read\0",
        Operation::UserWrite => b"user.write\0",
        Operation::BillingRead => b"billing.read\0",
        Operation::BillingWrite => b"billing.write\0",
        Operation::WorkerRead => b"worker.read\0",
        Operation::WorkerWrite => b"worker.write\0",
        Operation::Admin => b"admin\0",
    };
    super::static_cstr(bytes)
}

fn write_headers(headers: Option<Headers>, policy: *mut *mut c_char, ratelimit: *mut *mut c_char) -> Outcome<()> {
    if policy.is_null() || ratelimit.is_null() {
        return Err(Failure::Abi(ASTACK_NULL_ARGUMENT, if policy.is_null() { "policy" } else { "ratelimit" }));
    }
    let (policy_text, ratelimit_text) = match headers {
        Some(headers) => (owned_string(&headers.policy), owned_string(&headers.ratelimit)),
        None => (std::ptr::null_mut(), std::ptr::null_mut()),
    };
    put(policy, "policy", policy_text)?;
    put(ratelimit, "ratelimit", ratelimit_text)
}

/// Formats the rate-limit headers of SPEC §5 for a decision of `astack_authorize`:
/// `*policy` the `RateLimit-Policy` value (`"minute";q=100;w=60, "hour";q=1000;w=3600`) and
/// `*ratelimit` the `RateLimit` value (`"minute";r=42;t=12`). `Retry-After` is
/// `decision->retry_after` when the code is `ASTACK_RATE_LIMITED`. When the decision carries no
/// rate (the key was not authenticated) both are set to NULL. The caller frees each with
/// `astack_string_free`.
///
/// Returns `ASTACK_OK` or `ASTACK_NULL_ARGUMENT`. Thread-safe.
#[no_mangle]
pub extern "C" fn astack_decision_headers(
    decision: *const astack_decision,
    policy: *mut *mut c_char,
    ratelimit: *mut *mut c_char,
) -> astack_result {
    call(|| {
        if decision.is_null() {
            return Err(Failure::Abi(ASTACK_NULL_ARGUMENT, "decision"));
        }
        // SAFETY: non-NULL and caller-owned. Fields are read as plain integers (`code` through
        // its `u32` representation) so that no value the caller wrote is undefined behaviour.
        let (code, window, limit, remaining, reset, retry_after, per_minute, per_hour) = unsafe {
            (
                std::ptr::addr_of!((*decision).code).cast::<u32>().read_unaligned(),
                std::ptr::addr_of!((*decision).window).read_unaligned(),
                std::ptr::addr_of!((*decision).limit).read_unaligned(),
                std::ptr::addr_of!((*decision).remaining).read_unaligned(),
                std::ptr::addr_of!((*decision).reset).read_unaligned(),
                std::ptr::addr_of!((*decision).retry_after).read_unaligned(),
                std::ptr::addr_of!((*decision).requests_per_minute).read_unaligned(),
                std::ptr::addr_of!((*decision).requests_per_hour).read_unaligned(),
            )
        };
        let headers = (per_minute > 0 && per_hour > 0).then(|| {
            let limits = Limits { requests_per_minute: per_minute, requests_per_hour: per_hour, concurrent_sessions: 1 };
            let decision = Decision {
                allowed: code == ASTACK_OK as u32,
                window: window as usize,
                limit,
                remaining,
                reset,
                retry_after,
            };
            Headers::new(&limits.windows(), &decision)
        });
        write_headers(headers, policy, ratelimit)
    })
}

// ---------------------------------------------------------------------------------------------
// The limiter on any string key.

/// A rate limiter over any string key (a client IP, an end user…) with any set of windows
/// (SPEC §5). Opaque; made by `astack_limiter_new`, released by `astack_limiter_free`. One
/// limiter serves any number of threads at once.
pub struct astack_limiter {
    _private: [u8; 0],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowSpec {
    name: String,
    limit: u32,
    period_seconds: u64,
}

/// Longest window period accepted: a year.
const MAX_PERIOD_SECONDS: u64 = 366 * 86_400;

fn window_of(i: usize, spec: WindowSpec) -> Result<Window, crate::Error> {
    let field = |name: &str| format!("[{i}].{name}");
    let name_ok = !spec.name.is_empty()
        && spec.name.len() <= 64
        && spec.name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b));
    if !name_ok {
        return Err(crate::Error::invalid(field("name"), "must be 1 to 64 characters of A-Z a-z 0-9 _ -"));
    }
    if spec.limit == 0 {
        return Err(crate::Error::invalid(field("limit"), "must be at least 1"));
    }
    if spec.period_seconds == 0 || spec.period_seconds > MAX_PERIOD_SECONDS {
        return Err(crate::Error::invalid(field("period_seconds"), format!("must be 1 to {MAX_PERIOD_SECONDS}")));
    }
    Window::new(spec.name, spec.limit, spec.period_seconds * 1000)
}

fn limiter<'a>(pointer: *const astack_limiter) -> Outcome<&'a Limiter> {
    // SAFETY: the pointer came from `astack_limiter_new` (a `Box<Limiter>`) and is not freed.
    unsafe { pointer.cast::<Limiter>().as_ref() }.ok_or(Failure::Abi(ASTACK_NULL_ARGUMENT, "limiter"))
}

/// Makes a limiter from a JSON list of windows, each `{"name": "minute", "limit": 100,
/// "period_seconds": 60}` (at least one). A request takes one token from every window of its
/// key, or none. On success `*out` is the limiter, released with `astack_limiter_free`; on
/// failure `*out` is NULL and `*error_json`, when `error_json` is not NULL, the error body
/// (free it with `astack_string_free`).
///
/// Returns `ASTACK_OK`, `ASTACK_INVALID_REQUEST` (naming the field), `ASTACK_NULL_ARGUMENT`,
/// `ASTACK_INVALID_UTF8`, `ASTACK_PAYLOAD_TOO_LARGE`. Thread-safe.
#[no_mangle]
pub extern "C" fn astack_limiter_new(
    windows_json: *const c_char,
    out: *mut *mut astack_limiter,
    error_json: *mut *mut c_char,
) -> astack_result {
    boundary(ASTACK_INTERNAL_ERROR, || {
        let made = (|| {
            put(out, "out", std::ptr::null_mut())?;
            let specs: Vec<WindowSpec> = request(windows_json, "windows_json")?;
            let mut windows = Vec::with_capacity(specs.len());
            for (i, spec) in specs.into_iter().enumerate() {
                windows.push(window_of(i, spec)?);
            }
            let limiter = Limiter::new(windows)?;
            put(out, "out", Box::into_raw(Box::new(limiter)).cast::<astack_limiter>())
        })();
        match made {
            Ok(()) => {
                if !error_json.is_null() {
                    // SAFETY: non-NULL; the caller provides a writable `char *`.
                    unsafe { error_json.write(std::ptr::null_mut()) };
                }
                ASTACK_OK
            }
            Err(failure) => {
                if !error_json.is_null() {
                    // SAFETY: as above.
                    unsafe { error_json.write(owned_string(&failure.to_json().to_string())) };
                }
                failure.result()
            }
        }
    })
}

/// Releases a limiter. NULL is a no-op. It must not be in use by another thread, nor used
/// after this call.
#[no_mangle]
pub extern "C" fn astack_limiter_free(limiter: *mut astack_limiter) {
    boundary((), || {
        if !limiter.is_null() {
            // SAFETY: made by `astack_limiter_new` from a `Box<Limiter>`, released once.
            drop(unsafe { Box::from_raw(limiter.cast::<Limiter>()) });
        }
    })
}

/// Takes one token from every window of `key` at `now_ms` (Unix epoch milliseconds; pass the
/// engine's `astack_clock_now` or the wall clock), or none, and fills `*out` for the tightest
/// window: `code` is `ASTACK_OK` or `ASTACK_RATE_LIMITED`; `window` is the index of the window
/// in the list the limiter was made from; `key_id`, `account_id` and the key limits are empty.
///
/// Returns the decision's code, or `ASTACK_NULL_ARGUMENT` / `ASTACK_INVALID_UTF8` (then `*out`
/// is not written). Thread-safe.
#[no_mangle]
pub extern "C" fn astack_limiter_check(
    limiter: *const astack_limiter,
    key: *const c_char,
    now_ms: u64,
    out: *mut astack_decision,
) -> astack_result {
    boundary(ASTACK_INTERNAL_ERROR, || {
        let checked = (|| {
            let limiter = self::limiter(limiter)?;
            let key = text(key, "key")?;
            if out.is_null() {
                return Err(Failure::Abi(ASTACK_NULL_ARGUMENT, "out"));
            }
            let decision = limiter.check(key, now_ms);
            let mut answer = astack_decision::denied(if decision.allowed { ASTACK_OK } else { ASTACK_RATE_LIMITED });
            answer.window = decision.window as u32;
            answer.limit = decision.limit;
            answer.remaining = decision.remaining;
            answer.reset = decision.reset;
            answer.retry_after = decision.retry_after;
            put(out, "out", answer)?;
            Ok(answer.code)
        })();
        checked.unwrap_or_else(|failure: Failure| failure.result())
    })
}

/// Formats the `RateLimit-Policy` and `RateLimit` header values for a decision of
/// `astack_limiter_check` (the window names are the limiter's). The caller frees each with
/// `astack_string_free`. Returns `ASTACK_OK` or `ASTACK_NULL_ARGUMENT`. Thread-safe.
#[no_mangle]
pub extern "C" fn astack_limiter_headers(
    limiter: *const astack_limiter,
    decision: *const astack_decision,
    policy: *mut *mut c_char,
    ratelimit: *mut *mut c_char,
) -> astack_result {
    call(|| {
        let limiter = self::limiter(limiter)?;
        if decision.is_null() {
            return Err(Failure::Abi(ASTACK_NULL_ARGUMENT, "decision"));
        }
        // SAFETY: non-NULL and caller-owned; fields read as plain integers.
        let decision = unsafe {
            Decision {
                allowed: std::ptr::addr_of!((*decision).code).cast::<u32>().read_unaligned() == ASTACK_OK as u32,
                window: std::ptr::addr_of!((*decision).window).read_unaligned() as usize,
                limit: std::ptr::addr_of!((*decision).limit).read_unaligned(),
                remaining: std::ptr::addr_of!((*decision).remaining).read_unaligned(),
                reset: std::ptr::addr_of!((*decision).reset).read_unaligned(),
                retry_after: std::ptr::addr_of!((*decision).retry_after).read_unaligned(),
            }
        };
        write_headers(Some(limiter.headers(&decision)), policy, ratelimit)
    })
}

/// Forgets keys whose every bucket is full again at `now_ms`, so memory follows the active
/// keys; `*out_remaining` (may be NULL) receives how many keys remain.
/// Returns `ASTACK_OK` or `ASTACK_NULL_ARGUMENT` (`limiter` NULL). Thread-safe.
#[no_mangle]
pub extern "C" fn astack_limiter_sweep(limiter: *const astack_limiter, now_ms: u64, out_remaining: *mut u64) -> astack_result {
    call(|| {
        let remaining = self::limiter(limiter)?.sweep(now_ms) as u64;
        if !out_remaining.is_null() {
            // SAFETY: non-NULL; the caller provides a writable `uint64_t`.
            unsafe { out_remaining.write(remaining) };
        }
        Ok(())
    })
}
