//! The C ABI: every capability of the [`Engine`], in the manner of rustls-ffi.
//!
//! - Every symbol and type starts with `astack_`. The engine is the opaque `astack_engine`,
//!   made by `astack_engine_new` and released by `astack_engine_free` (`NULL` is a no-op).
//! - Every function returns an [`astack_result`]: explicit, grouped numbers that are never
//!   reused. `astack_result_code` and `astack_result_message` give its text with no allocation
//!   and no thread-local state.
//! - Every body runs inside one panic boundary (`boundary`): a panic becomes
//!   `ASTACK_INTERNAL_ERROR`, never an abort. Every pointer is checked for `NULL`; invalid UTF-8
//!   is `ASTACK_INVALID_UTF8`; malformed JSON is `ASTACK_INVALID_REQUEST` naming the field.
//! - The hot path, `astack_authorize` (with the operation as a number, `astack_authorize_op`;
//!   with the key as bytes and a length, `astack_authorize_bytes`), fills a caller-owned
//!   [`astack_decision`] and allocates nothing. Cold paths exchange JSON: on success `*out_json` is the result, on failure the
//!   SPEC §9 error body `{"error": {"code", "message", ...}}`; either way the caller frees it
//!   with `astack_string_free`.
//! - The acting key of a cold path is named by its `key_id`, as an earlier authorize reported it.
//! - Every function taking a `const astack_engine *` may be called from many threads at once.
//!
//! The header `include/astack.h` is generated from this module by `build.rs` (cbindgen).

#![allow(non_camel_case_types)]
#![allow(clippy::not_unsafe_ptr_arg_deref)]

mod authorize;
mod calls;

pub use authorize::*;
pub use calls::*;

use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::config::Config;
use crate::engine::{Engine, Principal};
use crate::error::Error;
use crate::validate;

/// The outcome of every call. The numbers are grouped by kind, explicit, and never reused:
/// 0 success; 1xx authentication and authorization (SPEC §4); 2xx the request; 3xx the
/// configuration; 4xx misuse of the ABI; 5xx the library itself. The codes of 1xx–3xx and 5xx
/// are the SPEC §9 error codes (`astack_result_code`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum astack_result {
    /// Success.
    ASTACK_OK = 0,
    /// `missing_api_key`: no API key was presented (an empty string).
    ASTACK_MISSING_API_KEY = 101,
    /// `invalid_api_key`: the key is malformed or unknown.
    ASTACK_INVALID_API_KEY = 102,
    /// `api_key_revoked`: the key was revoked.
    ASTACK_API_KEY_REVOKED = 103,
    /// `api_key_expired`: the key is past its expiry.
    ASTACK_API_KEY_EXPIRED = 104,
    /// `insufficient_scope`: the key may not perform the operation.
    ASTACK_INSUFFICIENT_SCOPE = 105,
    /// `rate_limited`: a rate-limit window is empty; see `retry_after`.
    ASTACK_RATE_LIMITED = 106,
    /// `concurrent_session_limit`: the key already has its maximum of live sessions.
    ASTACK_CONCURRENT_SESSION_LIMIT = 107,
    /// `invalid_request`: a field is missing, of the wrong type or out of range, or the JSON is
    /// malformed.
    ASTACK_INVALID_REQUEST = 201,
    /// `not_found`: no such resource in the key's account.
    ASTACK_NOT_FOUND = 202,
    /// `forbidden`: the key may not act on that account or resource.
    ASTACK_FORBIDDEN = 203,
    /// `already_exists`: a resource with that identity exists.
    ASTACK_ALREADY_EXISTS = 204,
    /// `invalid_transition`: the session's state does not allow the event.
    ASTACK_INVALID_TRANSITION = 205,
    /// `invalid_token`: a session token was refused (the JSON error names the `reason`).
    ASTACK_INVALID_TOKEN = 206,
    /// `payload_too_large`: a request document is over 64 KiB.
    ASTACK_PAYLOAD_TOO_LARGE = 207,
    /// `no_worker_available`: no worker has room for a new session.
    ASTACK_NO_WORKER_AVAILABLE = 208,
    /// `invalid_config`: the configuration is invalid (`astack_config_check` names the field).
    ASTACK_INVALID_CONFIG = 301,
    /// `null_argument`: a required pointer argument was `NULL`.
    ASTACK_NULL_ARGUMENT = 401,
    /// `invalid_utf8`: a string argument is not valid UTF-8.
    ASTACK_INVALID_UTF8 = 402,
    /// `buffer_too_small`: a caller-supplied buffer cannot hold the answer (reserved).
    ASTACK_BUFFER_TOO_SMALL = 403,
    /// `unsupported`: the engine cannot do this (e.g. setting a system clock).
    ASTACK_UNSUPPORTED = 404,
    /// `invalid_argument`: a numeric or enumerated argument is out of range, or a name is not
    /// one of those accepted.
    ASTACK_INVALID_ARGUMENT = 405,
    /// `unavailable`: the state store cannot be reached.
    ASTACK_UNAVAILABLE = 501,
    /// `internal_error`: a bug, such as a panic caught at the boundary.
    ASTACK_INTERNAL_ERROR = 502,
}

use astack_result::*;

impl astack_result {
    /// Every value, in numeric order.
    pub const ALL: &'static [astack_result] = &[
        ASTACK_OK,
        ASTACK_MISSING_API_KEY,
        ASTACK_INVALID_API_KEY,
        ASTACK_API_KEY_REVOKED,
        ASTACK_API_KEY_EXPIRED,
        ASTACK_INSUFFICIENT_SCOPE,
        ASTACK_RATE_LIMITED,
        ASTACK_CONCURRENT_SESSION_LIMIT,
        ASTACK_INVALID_REQUEST,
        ASTACK_NOT_FOUND,
        ASTACK_FORBIDDEN,
        ASTACK_ALREADY_EXISTS,
        ASTACK_INVALID_TRANSITION,
        ASTACK_INVALID_TOKEN,
        ASTACK_PAYLOAD_TOO_LARGE,
        ASTACK_NO_WORKER_AVAILABLE,
        ASTACK_INVALID_CONFIG,
        ASTACK_NULL_ARGUMENT,
        ASTACK_INVALID_UTF8,
        ASTACK_BUFFER_TOO_SMALL,
        ASTACK_UNSUPPORTED,
        ASTACK_INVALID_ARGUMENT,
        ASTACK_UNAVAILABLE,
        ASTACK_INTERNAL_ERROR,
    ];

    /// The value with this number, if any.
    pub fn from_u32(n: u32) -> Option<astack_result> {
        Self::ALL.iter().copied().find(|r| *r as u32 == n)
    }

    /// The stable snake_case code, NUL-terminated.
    fn code_cstr(self) -> &'static CStr {
        let text: &'static [u8] = match self {
            ASTACK_OK => b"ok\0",
            ASTACK_MISSING_API_KEY => b"missing_api_key\0",
            ASTACK_INVALID_API_KEY => b"invalid_api_key\0",
            ASTACK_API_KEY_REVOKED => b"api_key_revoked\0",
            ASTACK_API_KEY_EXPIRED => b"api_key_expired\0",
            ASTACK_INSUFFICIENT_SCOPE => b"insufficient_scope\0",
            ASTACK_RATE_LIMITED => b"rate_limited\0",
            ASTACK_CONCURRENT_SESSION_LIMIT => b"concurrent_session_limit\0",
            ASTACK_INVALID_REQUEST => b"invalid_request\0",
            ASTACK_NOT_FOUND => b"not_found\0",
            ASTACK_FORBIDDEN => b"forbidden\0",
            ASTACK_ALREADY_EXISTS => b"already_exists\0",
            ASTACK_INVALID_TRANSITION => b"invalid_transition\0",
            ASTACK_INVALID_TOKEN => b"invalid_token\0",
            ASTACK_PAYLOAD_TOO_LARGE => b"payload_too_large\0",
            ASTACK_NO_WORKER_AVAILABLE => b"no_worker_available\0",
            ASTACK_INVALID_CONFIG => b"invalid_config\0",
            ASTACK_NULL_ARGUMENT => b"null_argument\0",
            ASTACK_INVALID_UTF8 => b"invalid_utf8\0",
            ASTACK_BUFFER_TOO_SMALL => b"buffer_too_small\0",
            ASTACK_UNSUPPORTED => b"unsupported\0",
            ASTACK_INVALID_ARGUMENT => b"invalid_argument\0",
            ASTACK_UNAVAILABLE => b"unavailable\0",
            ASTACK_INTERNAL_ERROR => b"internal_error\0",
        };
        static_cstr(text)
    }

    /// A generic human message, NUL-terminated (the detailed one is in the JSON error body).
    fn message_cstr(self) -> &'static CStr {
        let text: &'static [u8] = match self {
            ASTACK_OK => b"success\0",
            ASTACK_MISSING_API_KEY => b"an API key is required\0",
            ASTACK_INVALID_API_KEY => b"the API key is not valid\0",
            ASTACK_API_KEY_REVOKED => b"the API key has been revoked\0",
            ASTACK_API_KEY_EXPIRED => b"the API key has expired\0",
            ASTACK_INSUFFICIENT_SCOPE => b"the API key lacks the scope this operation requires\0",
            ASTACK_RATE_LIMITED => b"rate limit exceeded\0",
            ASTACK_CONCURRENT_SESSION_LIMIT => b"concurrent session limit reached\0",
            ASTACK_INVALID_REQUEST => b"the request is invalid\0",
            ASTACK_NOT_FOUND => b"not found\0",
            ASTACK_FORBIDDEN => b"forbidden\0",
            ASTACK_ALREADY_EXISTS => b"already exists\0",
            ASTACK_INVALID_TRANSITION => b"the session's state does not allow this\0",
            ASTACK_INVALID_TOKEN => b"the session token was refused\0",
            ASTACK_PAYLOAD_TOO_LARGE => b"the request document is too large\0",
            ASTACK_NO_WORKER_AVAILABLE => b"no worker has capacity for a new session\0",
            ASTACK_INVALID_CONFIG => b"the configuration is invalid\0",
            ASTACK_NULL_ARGUMENT => b"a required argument was NULL\0",
            ASTACK_INVALID_UTF8 => b"a string argument is not valid UTF-8\0",
            ASTACK_BUFFER_TOO_SMALL => b"the buffer is too small\0",
            ASTACK_UNSUPPORTED => b"not supported by this engine\0",
            ASTACK_INVALID_ARGUMENT => b"an argument is out of range\0",
            ASTACK_UNAVAILABLE => b"the state store is unavailable\0",
            ASTACK_INTERNAL_ERROR => b"internal error\0",
        };
        static_cstr(text)
    }
}

fn static_cstr(bytes: &'static [u8]) -> &'static CStr {
    CStr::from_bytes_with_nul(bytes).unwrap_or_default()
}

impl From<&Error> for astack_result {
    /// The one mapping from the core's errors to result codes.
    fn from(error: &Error) -> Self {
        match error {
            Error::MissingApiKey => ASTACK_MISSING_API_KEY,
            Error::InvalidApiKey => ASTACK_INVALID_API_KEY,
            Error::ApiKeyRevoked => ASTACK_API_KEY_REVOKED,
            Error::ApiKeyExpired => ASTACK_API_KEY_EXPIRED,
            Error::InsufficientScope { .. } => ASTACK_INSUFFICIENT_SCOPE,
            Error::RateLimited { .. } => ASTACK_RATE_LIMITED,
            Error::ConcurrentSessionLimit { .. } => ASTACK_CONCURRENT_SESSION_LIMIT,
            Error::InvalidRequest { .. } => ASTACK_INVALID_REQUEST,
            Error::NotFound { .. } => ASTACK_NOT_FOUND,
            Error::Forbidden(_) => ASTACK_FORBIDDEN,
            Error::AlreadyExists { .. } => ASTACK_ALREADY_EXISTS,
            Error::InvalidTransition { .. } => ASTACK_INVALID_TRANSITION,
            Error::InvalidToken { .. } => ASTACK_INVALID_TOKEN,
            Error::NoWorkerAvailable => ASTACK_NO_WORKER_AVAILABLE,
            Error::PayloadTooLarge => ASTACK_PAYLOAD_TOO_LARGE,
            Error::InvalidConfig { .. } => ASTACK_INVALID_CONFIG,
            Error::Unavailable(_) => ASTACK_UNAVAILABLE,
            Error::Internal(_) => ASTACK_INTERNAL_ERROR,
        }
    }
}

/// Largest request document a cold path accepts, as the server's body limit (SPEC §9).
pub const ASTACK_MAX_REQUEST_BYTES: usize = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// The boundary: failures, panics, pointers and strings.

/// Why a call failed: an error of the core, or a misuse of the ABI.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The core refused.
    Core(Error),
    /// The caller misused the ABI: the code and the argument concerned.
    Abi(astack_result, &'static str),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Core(error)
    }
}

impl Failure {
    fn result(&self) -> astack_result {
        match self {
            Failure::Core(error) => error.into(),
            Failure::Abi(result, _) => *result,
        }
    }

    /// The SPEC §9 error body.
    fn to_json(&self) -> Value {
        match self {
            Failure::Core(error) => error.to_json(),
            Failure::Abi(result, argument) => {
                let what = match result {
                    ASTACK_NULL_ARGUMENT => "must not be NULL",
                    ASTACK_INVALID_UTF8 => "is not valid UTF-8",
                    ASTACK_INVALID_ARGUMENT => "is out of range",
                    ASTACK_UNSUPPORTED => "is not supported by this engine",
                    _ => "is invalid",
                };
                let code = result.code_cstr().to_str().unwrap_or_default();
                json!({ "error": {
                    "code": code,
                    "message": format!("`{argument}` {what}"),
                    "argument": argument,
                }})
            }
        }
    }
}

pub(crate) type Outcome<T> = Result<T, Failure>;

/// The panic boundary: runs `body`, turning a panic into `on_panic`. Every exported function
/// runs its whole body inside it.
pub(crate) fn boundary<T>(on_panic: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(on_panic)
}

/// Runs a call that answers only with a result code.
pub(crate) fn call(body: impl FnOnce() -> Outcome<()>) -> astack_result {
    boundary(ASTACK_INTERNAL_ERROR, || match body() {
        Ok(()) => ASTACK_OK,
        Err(failure) => failure.result(),
    })
}

/// Runs a cold path answering with JSON in `*out_json`: the result on success, the error body
/// on failure. With `out_json` NULL nothing runs and the answer is `ASTACK_NULL_ARGUMENT`.
pub(crate) fn json_call(out_json: *mut *mut c_char, body: impl FnOnce() -> Outcome<String>) -> astack_result {
    boundary(ASTACK_INTERNAL_ERROR, || {
        if out_json.is_null() {
            return ASTACK_NULL_ARGUMENT;
        }
        // SAFETY: checked non-NULL; the caller provides a writable `char *`.
        unsafe { out_json.write(ptr::null_mut()) };
        let answered = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| {
            Err(Failure::Core(Error::Internal("a panic was caught at the C ABI boundary".into())))
        });
        let (result, text) = match answered {
            Ok(text) => (ASTACK_OK, text),
            Err(failure) => (failure.result(), failure.to_json().to_string()),
        };
        // SAFETY: as above.
        unsafe { out_json.write(owned_string(&text)) };
        result
    })
}

/// A string the caller frees with `astack_string_free` (NULL if it held a NUL byte, which
/// serialized JSON never does).
pub(crate) fn owned_string(text: &str) -> *mut c_char {
    CString::new(text).map_or(ptr::null_mut(), CString::into_raw)
}

/// A required string argument.
pub(crate) fn text<'a>(pointer: *const c_char, argument: &'static str) -> Outcome<&'a str> {
    if pointer.is_null() {
        return Err(Failure::Abi(ASTACK_NULL_ARGUMENT, argument));
    }
    // SAFETY: non-NULL; the caller passes a NUL-terminated string valid for the call.
    let bytes = unsafe { CStr::from_ptr(pointer) };
    bytes.to_str().map_err(|_| Failure::Abi(ASTACK_INVALID_UTF8, argument))
}

/// An optional string argument: NULL is `None`.
pub(crate) fn optional_text<'a>(pointer: *const c_char, argument: &'static str) -> Outcome<Option<&'a str>> {
    if pointer.is_null() {
        Ok(None)
    } else {
        text(pointer, argument).map(Some)
    }
}

/// A required JSON request document, parsed into `T` (at most [`ASTACK_MAX_REQUEST_BYTES`]).
pub(crate) fn request<T: DeserializeOwned>(pointer: *const c_char, argument: &'static str) -> Outcome<T> {
    let json = text(pointer, argument)?;
    if json.len() > ASTACK_MAX_REQUEST_BYTES {
        return Err(Error::PayloadTooLarge.into());
    }
    Ok(validate::from_json(json, |field, message| Error::InvalidRequest { field, message })?)
}

/// Writes `value` into a required out-parameter. The old content is never read nor
/// referenced, so whatever the caller left there (uninitialized memory included) is fine.
pub(crate) fn put<T>(pointer: *mut T, argument: &'static str, value: T) -> Outcome<()> {
    if pointer.is_null() {
        return Err(Failure::Abi(ASTACK_NULL_ARGUMENT, argument));
    }
    // SAFETY: non-NULL; the caller provides a writable, aligned `T`.
    unsafe { pointer.write(value) };
    Ok(())
}

/// Serializes an answer, fields in the order of the SPEC.
pub(crate) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Outcome<String> {
    serde_json::to_string(value).map_err(|e| Failure::Core(Error::Internal(format!("serializing the answer: {e}"))))
}

/// A list answer: `{"data": [...]}`.
pub(crate) fn list<T: serde::Serialize>(items: &[T]) -> Outcome<String> {
    Ok(format!("{{\"data\":{}}}", to_json(items)?))
}

/// The `limit` of a list: 0 for the default (50), else 1 to 1,000.
pub(crate) fn page(limit: u32) -> Outcome<usize> {
    Ok(validate::page_limit((limit != 0).then_some(u64::from(limit)))?)
}

// ---------------------------------------------------------------------------------------------
// The engine.

/// An engine: keys, scopes, limits, sessions, tokens, workers, users, usage and audit.
/// Opaque; made by `astack_engine_new` or `astack_engine_new_with_manual_clock`, released by
/// `astack_engine_free`. One engine serves any number of threads at once.
pub struct astack_engine {
    _private: [u8; 0],
}

/// The engine behind a pointer.
pub(crate) fn engine_ref<'a>(pointer: *const astack_engine) -> Outcome<&'a Engine> {
    // SAFETY: the pointer came from `astack_engine_new*` (a `Box<Engine>`) and is not freed.
    unsafe { pointer.cast::<Engine>().as_ref() }.ok_or(Failure::Abi(ASTACK_NULL_ARGUMENT, "engine"))
}

/// The acting key, by id.
fn principal(engine: &Engine, key_id: *const c_char) -> Outcome<Principal> {
    Ok(engine.principal(text(key_id, "key_id")?)?)
}

/// A cold call made as the key `key_id`, as [`json_call`]: resolves the engine and the acting
/// key, then runs `body` with them.
pub(crate) fn acting(
    engine: *const astack_engine,
    key_id: *const c_char,
    out_json: *mut *mut c_char,
    body: impl FnOnce(&Engine, &Principal) -> Outcome<String>,
) -> astack_result {
    json_call(out_json, || {
        let engine = engine_ref(engine)?;
        body(engine, &principal(engine, key_id)?)
    })
}

fn config_of(config_json: *const c_char) -> Outcome<Config> {
    match optional_text(config_json, "config_json")? {
        None | Some("") => Ok(Config::default()),
        Some(json) => Ok(Config::from_json(json)?),
    }
}

fn new_engine(out: *mut *mut astack_engine, make: impl FnOnce() -> Outcome<Engine>) -> astack_result {
    call(|| {
        put(out, "out", ptr::null_mut())?;
        let engine = make()?;
        put(out, "out", Box::into_raw(Box::new(engine)).cast::<astack_engine>())
    })
}

/// Makes an engine reading the system clock, from a JSON configuration (SPEC §11); NULL or ""
/// gives every default.
///
/// On success `*out` is the new engine, which the caller releases with `astack_engine_free`;
/// on failure `*out` is NULL. Returns `ASTACK_OK`, `ASTACK_INVALID_CONFIG` (call
/// `astack_config_check` for the field and message), `ASTACK_NULL_ARGUMENT` (`out` NULL),
/// `ASTACK_INVALID_UTF8`, `ASTACK_INTERNAL_ERROR`. Thread-safe.
#[no_mangle]
pub extern "C" fn astack_engine_new(config_json: *const c_char, out: *mut *mut astack_engine) -> astack_result {
    new_engine(out, || Ok(Engine::new(config_of(config_json)?)?))
}

/// Makes an engine on a manual clock reading `start_ms` (Unix epoch milliseconds), for tests:
/// time moves only with `astack_clock_set` and `astack_clock_advance`. Otherwise as
/// `astack_engine_new`.
#[no_mangle]
pub extern "C" fn astack_engine_new_with_manual_clock(
    config_json: *const c_char,
    start_ms: u64,
    out: *mut *mut astack_engine,
) -> astack_result {
    new_engine(out, || Ok(Engine::with_manual_clock(config_of(config_json)?, start_ms)?))
}

/// Releases an engine. NULL is a no-op. The engine must not be in use by another thread, nor
/// used after this call.
#[no_mangle]
pub extern "C" fn astack_engine_free(engine: *mut astack_engine) {
    boundary((), || {
        if !engine.is_null() {
            // SAFETY: made by `astack_engine_new*` from a `Box<Engine>`, released once.
            drop(unsafe { Box::from_raw(engine.cast::<Engine>()) });
        }
    })
}

/// Writes what the engine's store holds back, now: request counts, keys' `last_used_at` and
/// held audit records. The SQLite and Redis stores have them written behind by a thread of the
/// engine every `store.flush_ms` (500 by default), and when the engine is freed; with that
/// thread off (`flush_ms` 0), by whichever call falls due a second after the last write,
/// unless the host calls this more often, on a thread of its own.
/// Returns `ASTACK_OK`, `ASTACK_NULL_ARGUMENT` (`engine` NULL), `ASTACK_UNAVAILABLE`.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn astack_engine_flush(engine: *const astack_engine) -> astack_result {
    call(|| Ok(engine_ref(engine)?.flush()?))
}

fn config_json(config: &Config) -> Value {
    let s = &config.sessions;
    json!({
        "limits": config.limits,
        "sessions": {
            "pending_ttl_seconds": s.pending_ttl_seconds,
            "max_duration_seconds": s.max_duration_seconds,
            "token_ttl_seconds": s.token_ttl_seconds,
            "token_leeway_seconds": s.token_leeway_seconds,
        },
        "features": config.features,
        "signing_keys": config.signing_keys.iter().map(|k| json!({ "kid": k.kid })).collect::<Vec<_>>(),
        "key_pepper": config.key_pepper.as_ref().map(|_| "<redacted>"),
        "workers": config.workers,
        "default_worker": config.default_worker,
    })
}

/// Checks a JSON configuration without making an engine. `*out_json` is, on success, the
/// configuration with every default filled in (secrets replaced by `"<redacted>"`, signing keys
/// shown by `kid` only); on failure the error body naming the field. NULL or "" is the default
/// configuration. The caller frees `*out_json` with `astack_string_free`.
///
/// Returns `ASTACK_OK`, `ASTACK_INVALID_CONFIG`, `ASTACK_NULL_ARGUMENT` (`out_json` NULL),
/// `ASTACK_INVALID_UTF8`. Thread-safe.
#[no_mangle]
pub extern "C" fn astack_config_check(config_json: *const c_char, out_json: *mut *mut c_char) -> astack_result {
    json_call(out_json, || Ok(self::config_json(&config_of(config_json)?).to_string()))
}

/// The configuration in force in `engine`, as `astack_config_check` shows it. The caller frees
/// `*out_json` with `astack_string_free`. Returns `ASTACK_OK` or `ASTACK_NULL_ARGUMENT`.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn astack_engine_config(engine: *const astack_engine, out_json: *mut *mut c_char) -> astack_result {
    json_call(out_json, || Ok(config_json(engine_ref(engine)?.config()).to_string()))
}

// ---------------------------------------------------------------------------------------------
// The clock.

/// The engine's current time (Unix epoch milliseconds) in `*out_ms`.
/// Returns `ASTACK_OK` or `ASTACK_NULL_ARGUMENT`. Thread-safe.
#[no_mangle]
pub extern "C" fn astack_clock_now(engine: *const astack_engine, out_ms: *mut u64) -> astack_result {
    call(|| {
        let engine = self::engine_ref(engine)?;
        put(out_ms, "out_ms", engine.now())
    })
}

fn manual_clock(engine: &Engine) -> Outcome<&crate::ManualClock> {
    engine.clock().as_manual().ok_or(Failure::Abi(ASTACK_UNSUPPORTED, "engine"))
}

/// Sets a manual clock to `now_ms` (Unix epoch milliseconds); it may go backwards.
/// Returns `ASTACK_OK`, `ASTACK_NULL_ARGUMENT`, or `ASTACK_UNSUPPORTED` for an engine on the
/// system clock. Thread-safe.
#[no_mangle]
pub extern "C" fn astack_clock_set(engine: *const astack_engine, now_ms: u64) -> astack_result {
    call(|| {
        manual_clock(self::engine_ref(engine)?)?.set(now_ms);
        Ok(())
    })
}

/// Moves a manual clock forward by `ms` milliseconds (saturating).
/// Returns `ASTACK_OK`, `ASTACK_NULL_ARGUMENT`, or `ASTACK_UNSUPPORTED` for an engine on the
/// system clock. Thread-safe.
#[no_mangle]
pub extern "C" fn astack_clock_advance(engine: *const astack_engine, ms: u64) -> astack_result {
    call(|| {
        manual_clock(self::engine_ref(engine)?)?.advance(ms);
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Strings, codes, version.

/// Releases a string returned by this library (every `char **out_*`). NULL is a no-op.
/// Each string must be released once, with this function only.
#[no_mangle]
pub extern "C" fn astack_string_free(string: *mut c_char) {
    boundary((), || {
        if !string.is_null() {
            // SAFETY: made by `CString::into_raw` in this library, released once.
            drop(unsafe { CString::from_raw(string) });
        }
    })
}

/// The stable snake_case code of a result (`"ok"`, `"invalid_api_key"`…): a static string the
/// caller must not free. An unknown number gives `"unknown"`. Allocates nothing; thread-safe.
#[no_mangle]
pub extern "C" fn astack_result_code(result: u32) -> *const c_char {
    boundary(ptr::null(), || match astack_result::from_u32(result) {
        Some(result) => result.code_cstr().as_ptr(),
        None => static_cstr(b"unknown\0").as_ptr(),
    })
}

/// A generic human message for a result: a static string the caller must not free (the
/// detailed message is in the JSON error body of the cold paths). An unknown number gives
/// `"unknown result"`. Allocates nothing; thread-safe.
#[no_mangle]
pub extern "C" fn astack_result_message(result: u32) -> *const c_char {
    boundary(ptr::null(), || match astack_result::from_u32(result) {
        Some(result) => result.message_cstr().as_ptr(),
        None => static_cstr(b"unknown result\0").as_ptr(),
    })
}

/// The library's version, `"MAJOR.MINOR.PATCH"` as in `Cargo.toml` (and `ASTACK_VERSION` in
/// the header it was built with): a static string the caller must not free.
#[no_mangle]
pub extern "C" fn astack_version() -> *const c_char {
    boundary(ptr::null(), || static_cstr(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()).as_ptr())
}

#[cfg(test)]
mod tests;
