//! The fuzz targets of astack, as plain functions of the input bytes.
//!
//! `fuzz/fuzz_targets/*.rs` hand each of them to libFuzzer (`make fuzz`, nightly); the stable
//! test `tests/fuzz_corpus.rs` includes this very file and replays every committed seed and
//! regression input through the same functions, so a crash once found stays fixed.
//!
//! Every function must return normally for every input: a panic, an abort or a failed assertion
//! is a finding. Besides "does not crash", each checks properties that hostile input must not
//! break: the answer's code agrees with its JSON, no secret comes back, an accepted token is
//! exactly the one that was signed.

#![allow(dead_code)]

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::ptr;

use astack::ffi::{self, astack_decision, astack_engine, astack_limiter, astack_result};
use astack::keys::{self, Hasher};
use astack::session::CreateSession;
use astack::token::{Claims, Expect, Keyring, SigningKey};
use astack::{validate, Config, Engine, Error, Operation, Principal};
use serde_json::Value;

/// The engines' clock start: 2023-11-14T22:13:20Z.
pub const T0: u64 = 1_700_000_000_000;
/// A well-formed admin key every fuzz engine knows; no answer may ever contain it.
pub const ADMIN_KEY: &str = "ak_FuzzFuzzFuzzFuzzFuzzFuzzFuzzFu21MAPA";
/// The signing secret of the fuzz engines and keyrings.
pub const SECRET: &str = "fuzz-signing-secret-of-32-bytes!!";
/// The pepper of the fuzz engines.
pub const PEPPER: &str = "fuzz-pepper-0123456789";
/// Uses of one engine before it is rebuilt, so that memory stays bounded in long runs.
const REBUILD_EVERY: u32 = 2_000;

fn invalid(field: String, message: String) -> Error {
    Error::InvalidRequest { field, message }
}

/// The configuration of the fuzz engines: a fixed signing key and pepper, roomy limits.
pub fn engine_config() -> Config {
    let json = format!(
        r#"{{"limits": {{"requests_per_minute": 10000000, "requests_per_hour": 100000000,
            "concurrent_sessions": 1000000}},
            "signing_keys": [{{"kid": "k1", "secret": "{SECRET}"}}],
            "key_pepper": "{PEPPER}",
            "default_worker": {{"node_id": "local", "url": "ws://127.0.0.1:8081", "capacity": 1000000}}}}"#
    );
    Config::from_json(&json).expect("the fuzz configuration is valid")
}

/// Asserts that `text`, something the engine produced from `input`, holds no secret (but for
/// one the input itself carried, which may be echoed back as any other text).
fn assert_no_secret(text: &str, input: &[u8]) {
    for secret in [ADMIN_KEY, SECRET, PEPPER] {
        let echoed = input.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(echoed || !text.contains(secret), "a secret leaked into {text:?}");
    }
}

/// Checks what the engine says about an error: a stable code, a message without secrets.
fn check_error(error: &Error, input: &[u8]) {
    let json = error.to_json();
    assert_eq!(json["error"]["code"], error.code());
    assert!((400..600).contains(&error.status()));
    assert_no_secret(&json.to_string(), input);
    assert_no_secret(&format!("{error:?}"), input);
}

// ---------------------------------------------------------------------------------------------
// The engine of the Rust-level targets.

struct Fixture {
    engine: Engine,
    admin: Principal,
    uses: u32,
}

impl Fixture {
    fn new() -> Self {
        let engine = Engine::with_manual_clock(engine_config(), T0).expect("engine");
        assert_eq!(engine.bootstrap_admin_key(Some(ADMIN_KEY)).expect("bootstrap"), None);
        let admin = engine.authorize(ADMIN_KEY, Operation::Admin).expect("the admin key authorizes").principal;
        Fixture { engine, admin, uses: 0 }
    }
}

thread_local! {
    static FIXTURE: RefCell<Option<Fixture>> = const { RefCell::new(None) };
}

fn with_fixture<R>(f: impl FnOnce(&Fixture) -> R) -> R {
    FIXTURE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().map_or(true, |fixture| fixture.uses >= REBUILD_EVERY) {
            *slot = Some(Fixture::new());
        }
        let fixture = slot.as_mut().expect("just built");
        fixture.uses += 1;
        f(fixture)
    })
}

// ---------------------------------------------------------------------------------------------
// key_format

/// The key parser, the digest, and `authorize` with arbitrary bytes as the key (the first byte
/// picks the operation; the rest is also tried as an operation name).
pub fn key_format(data: &[u8]) {
    let Some((&op, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let well_formed = keys::is_well_formed(&text);
    if well_formed {
        assert_eq!(text.len(), keys::KEY_LEN);
        assert!(text.starts_with(keys::PREFIX));
        assert!(text[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
    }
    let _ = keys::display_prefix(&text);
    let plain = Hasher::new(None);
    assert_eq!(plain.digest(&text), plain.digest(&text));
    let peppered = Hasher::new(Some(rest));
    let _ = peppered.digest(&text);
    assert!(keys::digests_equal(&plain.digest(&text), &plain.digest(&text)));
    let _ = Operation::parse(&text);

    let operation = Operation::ALL[usize::from(op) % Operation::ALL.len()];
    with_fixture(|fixture| match fixture.engine.authorize(&text, operation) {
        Ok(_) => assert_eq!(text, ADMIN_KEY, "only the admin key is known"),
        Err(denial) => {
            check_error(&denial.error, data);
            if !well_formed {
                assert!(matches!(denial.error, Error::MissingApiKey | Error::InvalidApiKey), "{:?}", denial.error);
                assert!(denial.rate.is_none(), "an unauthenticated request reports no rate");
            }
            if text.len() >= 8 {
                assert!(!denial.error.to_json().to_string().contains(text.as_ref()), "the key came back");
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// token_verify

fn keyring() -> Keyring {
    Keyring::new(vec![
        SigningKey::new("k1", SECRET.as_bytes().to_vec()).expect("key"),
        SigningKey::new("k0", b"an-older-signing-secret-of-32-bytes".to_vec()).expect("key"),
    ])
    .expect("keyring")
}

const NOW_S: i64 = (T0 / 1000) as i64;

fn expect() -> Expect<'static> {
    Expect { now: NOW_S, leeway: 5, audience: Some("node-1"), session_id: Some("sess_1") }
}

fn claims() -> Claims {
    Claims {
        iss: "astack".into(),
        sub: "sess_1".into(),
        aud: "node-1".into(),
        acc: "acct".into(),
        uid: "user-1".into(),
        features: vec!["vision".into()],
        quality: "standard".into(),
        iat: NOW_S,
        nbf: NOW_S,
        exp: NOW_S + 600,
        jti: "0123456789abcdef0123456789abcdef".into(),
    }
}

fn b64(bytes: &[u8]) -> String {
    // Unpadded base64url, written out here so the target needs no extra crate.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// A token signed by `keyring` over an arbitrary header and payload.
fn sign_raw(header: &[u8], payload: &[u8]) -> String {
    let signing_input = format!("{}.{}", b64(header), b64(payload));
    let tag = hmac_sha256(SECRET.as_bytes(), signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&tag))
}

/// HMAC-SHA-256 through the library's own digest (`Hasher` with a pepper is exactly that).
fn hmac_sha256(secret: &[u8], message: &[u8]) -> [u8; 32] {
    match std::str::from_utf8(message) {
        Ok(text) => Hasher::new(Some(secret)).digest(text),
        Err(_) => [0; 32],
    }
}

/// `Keyring::verify` on arbitrary input (mode 0), on mutations of a valid token (mode 1), on
/// tokens correctly signed over an arbitrary payload (mode 2) or header (mode 3).
pub fn token_verify(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let keyring = keyring();
    let expect = expect();
    let valid = keyring.sign(&claims());
    assert_eq!(keyring.verify(&valid, &expect), Ok(claims()));
    let check_accepted = |claims: &Claims| {
        assert_eq!(claims.iss, "astack");
        assert_eq!(claims.aud, "node-1");
        assert_eq!(claims.sub, "sess_1");
        assert!(NOW_S < claims.exp.saturating_add(5));
        assert!(claims.nbf <= NOW_S + 5);
    };
    match mode % 4 {
        0 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                match keyring.verify(text, &expect) {
                    Ok(claims) => check_accepted(&claims),
                    Err(refusal) => assert!(!refusal.as_str().is_empty()),
                }
                let _ = keyring.verify(text, &Expect::at(i64::MAX));
                let _ = keyring.verify(text, &Expect { leeway: i64::MAX, ..Expect::at(i64::MIN) });
            }
        }
        1 => {
            // Each pair of bytes is an edit: (position, new byte); a lone byte deletes.
            let mut token = valid.clone().into_bytes();
            for edit in rest.chunks(2) {
                if token.is_empty() {
                    break;
                }
                let at = usize::from(edit[0]) * 7 % token.len();
                match edit.get(1) {
                    Some(&byte) => token[at] = byte,
                    None => {
                        token.remove(at);
                    }
                }
            }
            if let Ok(text) = String::from_utf8(token) {
                if let Ok(claims) = keyring.verify(&text, &expect) {
                    check_accepted(&claims);
                    assert_eq!(text, valid, "a changed token was accepted");
                }
            }
        }
        2 => {
            let token = sign_raw(br#"{"alg":"HS256","typ":"JWT","kid":"k1"}"#, rest);
            if let Ok(claims) = keyring.verify(&token, &expect) {
                check_accepted(&claims);
            }
        }
        _ => {
            let payload = serde_json::to_vec(&claims()).expect("claims serialize");
            let token = sign_raw(rest, &payload);
            if keyring.verify(&token, &expect).is_ok() {
                let header: Value = serde_json::from_slice(rest).expect("an accepted header is JSON");
                assert_eq!(header["alg"], "HS256");
                assert_eq!(header["kid"], "k1");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// config

/// `Config::from_json` on arbitrary bytes; a configuration it accepts must make an engine, and
/// its secrets must not show in its `Debug`.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Config::from_json(text) {
        Ok(config) => {
            let secrets: Vec<&str> = config
                .signing_keys
                .iter()
                .map(|k| k.secret.0.as_str())
                .chain(config.key_pepper.as_ref().map(|p| p.0.as_str()))
                .collect();
            let shown = format!("{:?} {:?}", config.signing_keys, config.key_pepper);
            for secret in secrets {
                assert!(!shown.contains(secret), "a configured secret shows in Debug");
            }
            let engine = Engine::with_manual_clock(config, T0);
            assert!(engine.is_ok(), "a valid configuration must make an engine: {:?}", engine.err());
        }
        Err(error) => {
            assert_eq!(error.code(), "invalid_config", "{error:?}");
            let _ = error.to_json();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// session_create

/// A create-session request from arbitrary bytes, validated with the catalog, then created: a
/// request that validates must create a session whose token verifies.
pub fn session_create(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = validate::from_json::<Value>(text, invalid);
    let request = match validate::from_json::<CreateSession>(text, invalid) {
        Ok(request) => request,
        Err(error) => {
            assert_eq!(error.code(), "invalid_request");
            return check_error(&error, data);
        }
    };
    with_fixture(|fixture| {
        let engine = &fixture.engine;
        let catalog = engine.config().features.clone();
        let validated = request.validate(&catalog);
        match engine.create_session(&fixture.admin, request.clone()) {
            Ok(created) => {
                assert!(validated.is_ok(), "the engine created what validation refused");
                let session = &created.session;
                assert_eq!(session.end_user_id, request.end_user_id);
                assert_eq!(session.features, request.features);
                let claims = engine
                    .verify_token(&created.session_token, Some(&session.node_id), Some(&session.id))
                    .expect("a new session's token verifies");
                assert_eq!(claims.uid, request.end_user_id);
                let json = serde_json::to_string(&created).expect("serializes");
                assert_no_secret(&json, data);
                engine.terminate_session(&fixture.admin, &session.id).expect("terminates");
            }
            Err(error) => {
                check_error(&error, data);
                assert_eq!(Err(error), validated, "only validation may refuse a create");
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// ffi_json

struct Ffi {
    engine: *mut astack_engine,
    admin_id: CString,
    user_id: CString,
    uses: u32,
}

impl Drop for Ffi {
    fn drop(&mut self) {
        ffi::astack_engine_free(self.engine);
    }
}

thread_local! {
    static FFI: RefCell<Option<Ffi>> = const { RefCell::new(None) };
}

/// Takes the JSON answer of a cold path, checks it agrees with the result code, frees it.
fn answer(result: astack_result, out: *mut c_char, input: &[u8]) -> Value {
    assert!(!out.is_null(), "every JSON call answers");
    // SAFETY: a string of the library, NUL-terminated, freed below.
    let text = unsafe { CStr::from_ptr(out) }.to_str().expect("answers are UTF-8").to_owned();
    ffi::astack_string_free(out);
    assert_no_secret(&text, input);
    let json: Value = serde_json::from_str(&text).expect("answers are JSON");
    // SAFETY: a static string of the library.
    let code = unsafe { CStr::from_ptr(ffi::astack_result_code(result as u32)) }.to_str().expect("code").to_owned();
    if result == astack_result::ASTACK_OK {
        assert!(json.get("error").is_none(), "success with an error body: {text}");
    } else {
        assert_eq!(json["error"]["code"], code.as_str(), "{text}");
        assert!(json["error"]["message"].is_string());
        assert_ne!(result, astack_result::ASTACK_INTERNAL_ERROR, "internal error on input: {text}");
    }
    json
}

fn string_of(json: &Value, field: &str) -> CString {
    CString::new(json[field].as_str().expect(field)).expect("no NUL")
}

impl Ffi {
    fn new() -> Self {
        let config = CString::new(format!(
            r#"{{"limits": {{"requests_per_minute": 10000000, "requests_per_hour": 100000000,
               "concurrent_sessions": 1000000}},
               "signing_keys": [{{"kid": "k1", "secret": "{SECRET}"}}], "key_pepper": "{PEPPER}",
               "workers": [{{"node_id": "w1", "url": "wss://w1.example", "capacity": 1000000}}]}}"#
        ))
        .expect("no NUL");
        let mut engine = ptr::null_mut();
        let r = ffi::astack_engine_new_with_manual_clock(config.as_ptr(), T0, &mut engine);
        assert_eq!(r, astack_result::ASTACK_OK);
        let key = CString::new(ADMIN_KEY).expect("no NUL");
        let mut out = ptr::null_mut();
        let r = ffi::astack_bootstrap_admin_key(engine, key.as_ptr(), &mut out);
        answer(r, out, b"");
        let mut decision = std::mem::MaybeUninit::<astack_decision>::uninit();
        let r = ffi::astack_authorize_op(engine, key.as_ptr(), 10, decision.as_mut_ptr());
        assert_eq!(r, astack_result::ASTACK_OK);
        // SAFETY: written by a successful authorize.
        let decision = unsafe { decision.assume_init() };
        // SAFETY: NUL-terminated by authorize.
        let admin_id = unsafe { CStr::from_ptr(decision.key_id.as_ptr()) }.to_owned();
        let request = CString::new(r#"{"name": "fuzz user"}"#).expect("no NUL");
        let r = ffi::astack_user_create(engine, admin_id.as_ptr(), request.as_ptr(), &mut out);
        let user = answer(r, out, b"");
        Ffi { engine, admin_id, user_id: string_of(&user, "id"), uses: 0 }
    }

    /// A new session's id; an id of no session when none can be made (the input may have
    /// drained or shrunk every worker: `no_worker_available`).
    fn session(&self) -> CString {
        let request = CString::new(r#"{"end_user_id": "fuzz"}"#).expect("no NUL");
        let mut out = ptr::null_mut();
        let r = ffi::astack_session_create(self.engine, self.admin_id.as_ptr(), request.as_ptr(), &mut out);
        let created = answer(r, out, b"");
        match created["id"].as_str() {
            Some(id) => CString::new(id).expect("no NUL"),
            None => CString::new("sess_none").expect("no NUL"),
        }
    }
}

/// Whether `input` is a configuration naming a store outside the process (a SQLite file, a
/// Redis server): the target does not make such engines, so that replaying an input never
/// writes files or opens connections (the fuzz build also leaves those stores out).
fn names_an_outside_store(input: &CStr) -> bool {
    let config = input.to_str().ok().and_then(|text| Config::from_json(text).ok());
    config.is_some_and(|config| config.store.kind != astack::config::StoreKind::Memory)
}

type JsonCall = fn(&Ffi, *const c_char, *mut *mut c_char) -> astack_result;

/// Each JSON-taking function of the C ABI, called with arbitrary bytes (cut at the first NUL)
/// as its JSON or string argument. The first byte picks the function.
pub fn ffi_json(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else { return };
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    let input = CString::new(&rest[..end]).expect("cut at the first NUL");
    let calls: &[JsonCall] = &[
        |f, j, o| ffi::astack_key_create(f.engine, f.admin_id.as_ptr(), j, o),
        |f, j, o| ffi::astack_session_create(f.engine, f.admin_id.as_ptr(), j, o),
        |f, j, o| {
            let id = f.session();
            ffi::astack_session_end(f.engine, f.admin_id.as_ptr(), id.as_ptr(), j, o)
        },
        |f, j, o| ffi::astack_user_create(f.engine, f.admin_id.as_ptr(), j, o),
        |f, j, o| ffi::astack_user_update(f.engine, f.admin_id.as_ptr(), f.user_id.as_ptr(), j, o),
        |f, j, o| ffi::astack_usage_record(f.engine, f.admin_id.as_ptr(), j, o),
        |f, j, o| ffi::astack_alert_create(f.engine, f.admin_id.as_ptr(), j, o),
        |f, j, o| ffi::astack_worker_register(f.engine, f.admin_id.as_ptr(), j, o),
        |f, j, o| {
            let node = CString::new("w1").expect("no NUL");
            ffi::astack_worker_update(f.engine, f.admin_id.as_ptr(), node.as_ptr(), j, o)
        },
        |_, j, o| ffi::astack_config_check(j, o),
        |f, j, o| ffi::astack_token_verify(f.engine, j, ptr::null(), ptr::null(), o),
        |f, j, o| ffi::astack_token_verify(f.engine, j, j, j, o),
        |f, j, o| ffi::astack_session_get(f.engine, f.admin_id.as_ptr(), j, o),
        |f, j, o| ffi::astack_session_terminate(f.engine, f.admin_id.as_ptr(), j, o),
        |f, j, o| ffi::astack_user_get(f.engine, f.admin_id.as_ptr(), j, o),
        |f, j, o| ffi::astack_key_get(f.engine, f.admin_id.as_ptr(), j, o),
        |f, j, o| ffi::astack_key_rotate(f.engine, f.admin_id.as_ptr(), j, 0, o),
        |f, j, o| ffi::astack_session_list(f.engine, j, 0, o),
        |f, j, o| {
            let id = f.session();
            ffi::astack_session_connect(f.engine, f.admin_id.as_ptr(), id.as_ptr(), j, o)
        },
    ];
    // Calls that do not answer with one JSON string.
    const OTHERS: usize = 5;
    let n = usize::from(pick) % (calls.len() + OTHERS);
    FFI.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().map_or(true, |f| f.uses >= REBUILD_EVERY) {
            *slot = None;
            *slot = Some(Ffi::new());
        }
        let f = slot.as_mut().expect("just built");
        f.uses += 1;
        if let Some(call) = calls.get(n) {
            let mut out = ptr::null_mut();
            let result = call(f, input.as_ptr(), &mut out);
            answer(result, out, rest);
            return;
        }
        match n - calls.len() {
            0 | 1 if names_an_outside_store(&input) => {}
            0 => {
                let mut engine = ptr::null_mut();
                let result = ffi::astack_engine_new(input.as_ptr(), &mut engine);
                assert_eq!(result == astack_result::ASTACK_OK, !engine.is_null());
                assert_ne!(result, astack_result::ASTACK_INTERNAL_ERROR);
                ffi::astack_engine_free(engine);
            }
            1 => {
                let mut engine = ptr::null_mut();
                let result = ffi::astack_engine_new_with_manual_clock(input.as_ptr(), u64::MAX, &mut engine);
                assert_eq!(result == astack_result::ASTACK_OK, !engine.is_null());
                ffi::astack_engine_free(engine);
            }
            2 => {
                let mut limiter: *mut astack_limiter = ptr::null_mut();
                let mut error = ptr::null_mut();
                let result = ffi::astack_limiter_new(input.as_ptr(), &mut limiter, &mut error);
                if result == astack_result::ASTACK_OK {
                    assert!(!limiter.is_null() && error.is_null());
                    let key = CString::new("client").expect("no NUL");
                    let mut decision = std::mem::MaybeUninit::<astack_decision>::uninit();
                    let r = ffi::astack_limiter_check(limiter, key.as_ptr(), T0, decision.as_mut_ptr());
                    assert!(matches!(r, astack_result::ASTACK_OK | astack_result::ASTACK_RATE_LIMITED));
                    let (mut policy, mut ratelimit) = (ptr::null_mut(), ptr::null_mut());
                    let r = ffi::astack_limiter_headers(limiter, decision.as_ptr(), &mut policy, &mut ratelimit);
                    assert_eq!(r, astack_result::ASTACK_OK);
                    ffi::astack_string_free(policy);
                    ffi::astack_string_free(ratelimit);
                    ffi::astack_limiter_free(limiter);
                } else {
                    assert!(limiter.is_null());
                    answer(result, error, rest);
                }
            }
            3 => {
                // Arbitrary bytes as the key and as the operation name, UTF-8 or not.
                let mut decision = std::mem::MaybeUninit::<astack_decision>::uninit();
                // Only a well-formed key (one the fuzzer bootstrapped) may be allowed.
                let well_formed = input.to_str().is_ok_and(keys::is_well_formed);
                let result = ffi::astack_authorize(f.engine, input.as_ptr(), input.as_ptr(), decision.as_mut_ptr());
                assert!(result != astack_result::ASTACK_OK || well_formed);
                assert_ne!(result, astack_result::ASTACK_INTERNAL_ERROR);
                let result = ffi::astack_authorize_op(f.engine, input.as_ptr(), u32::from(pick), decision.as_mut_ptr());
                assert!(result != astack_result::ASTACK_OK || well_formed);
                assert_ne!(result, astack_result::ASTACK_INTERNAL_ERROR);
            }
            _ => {
                let mut out = ptr::null_mut();
                let result = ffi::astack_bootstrap_admin_key(f.engine, input.as_ptr(), &mut out);
                answer(result, out, rest);
            }
        }
    });
}

/// A fuzz target: its name and its entry point.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, by name, for the replay test.
pub const TARGETS: &[Target] = &[
    ("key_format", key_format),
    ("token_verify", token_verify),
    ("config", config),
    ("session_create", session_create),
    ("ffi_json", ffi_json),
];
