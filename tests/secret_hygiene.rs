//! Secret hygiene (issue 10, SPEC §2, §7): with a known key, token, signing secret and pepper,
//! every engine method and every C ABI function is driven through its successes and failures;
//! every error (`Display`, JSON), audit record, `Debug` and C ABI answer is collected, and none
//! holds a secret, nor any 20-character piece of one.
//!
//! The two answers whose purpose is to hand a secret over (a key at creation or rotation, a
//! token at session creation or issue) are checked to hold that one new secret and no other.

use std::ffi::{c_char, CStr, CString};
use std::ptr;

use astack::ffi::{self, astack_decision, astack_result};
use astack::keys::CreateKey;
use astack::session::{CreateSession, EndSession};
use astack::usage::{CreateAlert, RecordUsage};
use astack::users::{CreateUser, UpdateUser};
use astack::workers::{UpdateWorker, Worker};
use astack::{validate, Config, Engine, Error, Operation};

const T0: u64 = 1_700_000_000_000;
/// The operator's admin key, chosen (well-formed).
const ADMIN_KEY: &str = "ak_FuzzFuzzFuzzFuzzFuzzFuzzFuzzFu21MAPA";
const SECRET: &str = "hygiene-signing-secret-0123456789abcdef";
const OLD_SECRET: &str = "hygiene-older-secret-0123456789abcdefgh";
const PEPPER: &str = "hygiene-pepper-0123456789";

fn config_json() -> String {
    format!(
        r#"{{"signing_keys": [{{"kid": "k1", "secret": "{SECRET}"}}, {{"kid": "k0", "secret": "{OLD_SECRET}"}}],
            "key_pepper": "{PEPPER}", "limits": {{"requests_per_minute": 3, "concurrent_sessions": 2}}}}"#
    )
}

fn request<T: serde::de::DeserializeOwned>(json: &str) -> T {
    validate::from_json(json, |field, message| Error::InvalidRequest { field, message }).expect("a valid request")
}

/// Everything the engine said, and the secrets it must not have said.
#[derive(Default)]
struct Sink {
    said: Vec<String>,
    secrets: Vec<String>,
}

impl Sink {
    fn secret(&mut self, secret: &str) {
        self.secrets.push(secret.to_owned());
    }

    fn say(&mut self, text: impl Into<String>) {
        self.said.push(text.into());
    }

    fn error(&mut self, error: &Error) {
        self.say(error.to_string());
        self.say(error.to_json().to_string());
        self.say(format!("{error:?}"));
    }

    fn outcome<T: std::fmt::Debug + serde::Serialize>(&mut self, outcome: &Result<T, Error>) {
        match outcome {
            Ok(value) => {
                self.say(serde_json::to_string(value).expect("serializes"));
                self.say(format!("{value:?}"));
            }
            Err(error) => self.error(error),
        }
    }

    /// Checks that nothing said holds a secret or a 20-character piece of one.
    fn check(&self) {
        assert!(self.said.len() > 50, "the test drove the engine: {} texts", self.said.len());
        for secret in &self.secrets {
            let pieces: Vec<&str> = (0..=secret.len().saturating_sub(20)).map(|i| &secret[i..(i + 20).min(secret.len())]).collect();
            for text in &self.said {
                for piece in &pieces {
                    assert!(!text.contains(piece), "{piece:?} (of a secret) appears in {text:?}");
                }
            }
        }
    }
}

#[test]
fn no_engine_output_holds_a_key_a_token_or_a_secret() {
    let mut sink = Sink::default();
    for secret in [ADMIN_KEY, SECRET, OLD_SECRET, PEPPER] {
        sink.secret(secret);
    }
    let config = Config::from_json(&config_json()).expect("config");
    sink.say(format!("{config:?}"));
    sink.say(format!("{:?}", config.keyring().expect("keyring")));
    let engine = Engine::with_manual_clock(config, T0).expect("engine");
    sink.say(format!("{engine:?}"));
    assert_eq!(engine.bootstrap_admin_key(Some(ADMIN_KEY)), Ok(None));

    // Authorize: success and every refusal.
    let admin = engine.authorize(ADMIN_KEY, Operation::Admin).expect("admin");
    sink.say(format!("{admin:?}"));
    sink.say(format!("{:?}", admin.headers()));
    let admin = admin.principal;
    sink.say(format!("{admin:?}"));
    sink.say(format!("{:?}", admin.record()));

    let created = engine.create_key(&admin, request(r#"{"name": "app", "scopes": ["sessions:write", "sessions:read"]}"#)).expect("key");
    let app_key = created.key.clone();
    assert!(serde_json::to_string(&created).unwrap().contains(&app_key));
    sink.secret(&app_key);
    let worker_key = engine.create_key(&admin, request(r#"{"scopes": ["workers:write"], "limits": {"requests_per_minute": 1000}}"#)).expect("key").key;
    sink.secret(&worker_key);

    let unknown = astack::keys::generate().expect("a well-formed key no one holds");
    for key in ["", "ak_short", &unknown, "ak_FuzzFuzzFuzzFuzzFuzzFuzzFuzzFu21MAPB", &app_key[..38], &format!("{app_key}x")] {
        for operation in Operation::ALL {
            let denial = engine.authorize(key, *operation).expect_err("refused");
            sink.error(&denial.error);
            sink.say(format!("{denial:?}"));
        }
    }
    for operation in [Operation::Admin, Operation::UserRead, Operation::WorkerWrite] {
        let denial = engine.authorize(&app_key, operation).expect_err("insufficient scope");
        sink.say(format!("{denial:?}"));
        sink.error(&denial.error);
    }
    let app = engine.authorize(&app_key, Operation::SessionCreate).expect("app").principal;
    let worker = engine.authorize(&worker_key, Operation::WorkerWrite).expect("worker").principal;
    // Rate limited: 3 a minute.
    let mut limited = None;
    for _ in 0..5 {
        if let Err(denial) = engine.authorize(&app_key, Operation::SessionRead) {
            limited = Some(denial);
        }
    }
    let limited = limited.expect("rate limited");
    assert_eq!(limited.error.code(), "rate_limited");
    sink.say(format!("{limited:?} {:?}", limited.headers()));
    sink.error(&limited.error);

    // Sessions and tokens.
    let session = engine.create_session(&app, CreateSession::new("user-1")).expect("session");
    let token = session.session_token.clone();
    sink.secret(&token);
    let id = session.session.id.clone();
    sink.outcome(&engine.create_session(&app, request(r#"{"end_user_id": "u", "features": ["nope"]}"#)));
    let second = engine.create_session(&app, CreateSession::new("user-2")).expect("second");
    sink.secret(&second.session_token);
    sink.outcome(&engine.create_session(&app, CreateSession::new("user-3")));
    sink.outcome(&engine.get_session(&app, &id));
    sink.outcome(&engine.get_session(&app, "sess_nope"));
    sink.outcome(&engine.list_sessions(&app, 50));
    let issued = engine.issue_token(&app, &id).expect("issue");
    sink.secret(&issued);
    sink.outcome(&engine.verify_token(&token, None, None));
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for bad in [tampered.as_str(), &token[..token.len() - 10], &format!("{token}.x"), "x.y.z", "", &token.replace("eyJ", "eyK")] {
        sink.outcome(&engine.verify_token(bad, None, None));
        sink.outcome(&engine.connect_session(&worker, &id, bad));
    }
    sink.outcome(&engine.verify_token(&token, Some("elsewhere"), None));
    sink.outcome(&engine.verify_token(&token, None, Some("sess_other")));
    sink.outcome(&engine.connect_session(&worker, &second.session.id, &token));
    sink.outcome(&engine.connect_session(&app, &id, &token));
    sink.outcome(&engine.connect_session(&worker, &id, &token));
    sink.outcome(&engine.connect_session(&worker, &id, &token));
    sink.outcome(&engine.end_session(&worker, &id, request::<EndSession>(r#"{"outcome": "failed", "reason": "boom"}"#)));
    sink.outcome(&engine.end_session(&worker, &id, request::<EndSession>(r#"{"outcome": "completed"}"#)));
    sink.outcome(&engine.terminate_session(&app, &second.session.id));
    sink.outcome(&engine.terminate_session(&app, &second.session.id));
    sink.outcome(&engine.issue_token(&app, &id));
    engine.clock().as_manual().unwrap().advance(3_600_000);
    sink.outcome(&engine.verify_token(&issued, None, None));
    sink.outcome(&engine.sweep());

    // Keys.
    let app_id = app.key_id();
    sink.outcome(&engine.get_key(&admin, &app_id));
    sink.outcome(&engine.list_keys(&admin, 1000));
    sink.outcome(&engine.get_key(&app, &app_id));
    sink.outcome(&engine.create_key(&admin, request::<CreateKey>(r#"{"scopes": ["nope"]}"#)));
    sink.outcome(&engine.create_key(&admin, request::<CreateKey>(r#"{"scopes": []}"#)));
    let rotated = engine.rotate_key(&admin, &app_id, 60).expect("rotate");
    sink.secret(&rotated.key);
    assert!(!serde_json::to_string(&rotated).unwrap().contains(&app_key));
    sink.outcome(&engine.rotate_key(&admin, &app_id, u64::MAX));
    sink.outcome(&engine.revoke_key(&admin, &app_id));
    sink.outcome(&engine.rotate_key(&admin, &app_id, 0));
    let revoked = engine.authorize(&app_key, Operation::SessionRead).expect_err("revoked");
    sink.error(&revoked.error);
    sink.outcome(&engine.principal(&app_id).map(|p| p.record()));
    let expiring = engine
        .create_key(&admin, request(&format!(r#"{{"scopes": ["users:read"], "expires_at": {}}}"#, engine.now() + 1000)))
        .expect("key");
    sink.secret(&expiring.key);
    engine.clock().as_manual().unwrap().advance(2000);
    sink.error(&engine.authorize(&expiring.key, Operation::UserRead).expect_err("expired").error);
    sink.outcome(&engine.bootstrap_admin_key(Some("ak_not_well_formed")));

    // Workers, users, usage, alerts, audit, metrics.
    sink.outcome(&engine.register_worker(&admin, Worker { node_id: "w1".into(), url: "wss://w1".into(), capacity: 5, draining: false }));
    sink.outcome(&engine.register_worker(&admin, Worker { node_id: "w1".into(), url: "wss://w1".into(), capacity: 5, draining: false }));
    sink.outcome(&engine.update_worker(&admin, "w1", request::<UpdateWorker>(r#"{"draining": true}"#)));
    sink.outcome(&engine.update_worker(&admin, "nope", UpdateWorker::default()));
    sink.outcome(&engine.list_workers(&admin));
    let user = engine.create_user(&admin, request::<CreateUser>(r#"{"name": "Ann", "email": "ann@example.com"}"#)).expect("user");
    sink.outcome(&engine.create_user(&admin, request::<CreateUser>(r#"{"name": ""}"#)));
    sink.outcome(&engine.get_user(&admin, &user.id));
    sink.outcome(&engine.list_users(&admin, 10));
    sink.outcome(&engine.update_user(&admin, &user.id, request::<UpdateUser>(r#"{"email": null}"#)));
    sink.outcome(&engine.delete_user(&admin, &user.id));
    sink.outcome(&engine.delete_user(&admin, &user.id));
    sink.outcome(&engine.record_usage(&admin, request::<RecordUsage>(r#"{"metric": "minutes", "quantity": 5, "idempotency_key": "i"}"#)));
    sink.outcome(&engine.record_usage(&admin, request::<RecordUsage>(r#"{"metric": "requests", "quantity": 5}"#)));
    sink.outcome(&engine.usage(&admin));
    sink.outcome(&engine.create_alert(&admin, request::<CreateAlert>(r#"{"metric": "minutes", "threshold": 1}"#)));
    sink.outcome(&engine.list_alerts(&admin));
    sink.outcome(&engine.metrics(&admin));
    sink.outcome(&engine.metrics(&worker));
    let audit = engine.audit(&admin, 1000).expect("audit");
    assert!(audit.len() > 20, "every change is audited");
    sink.outcome(&Ok::<_, Error>(audit));
    sink.outcome(&engine.audit(&worker, 10));

    // Configuration errors name fields, never secrets.
    for json in [
        format!(r#"{{"signing_keys": [{{"kid": "k1", "secret": "{SECRET}"}}, {{"kid": "k1", "secret": "{OLD_SECRET}"}}]}}"#),
        format!(r#"{{"signing_keys": [{{"kid": "", "secret": "{SECRET}"}}]}}"#),
        format!(r#"{{"signing_keys": [{{"kid": "k", "secret": "{}"}}]}}"#, &SECRET[..20]),
        format!(r#"{{"key_pepper": "{}"}}"#, &PEPPER[..12]),
        format!(r#"{{"key_pepper": "{PEPPER}", "bogus": 1}}"#),
        format!(r#"{{"signing_keys": [{{"kid": "k", "secret": "{SECRET}", "extra": 1}}]}}"#),
        format!(r#"{{"signing_keys": [{{"kid": "k", "secret": "{SECRET}"}}], "signing_keys": []}}"#),
    ] {
        let error = Config::from_json(&json).expect_err("invalid");
        sink.error(&error);
    }
    sink.check();
}

// ---------------------------------------------------------------------------------------------
// The C ABI.

fn take(out: *mut c_char) -> String {
    assert!(!out.is_null());
    let text = unsafe { CStr::from_ptr(out) }.to_str().unwrap().to_owned();
    ffi::astack_string_free(out);
    text
}

fn c(text: &str) -> CString {
    CString::new(text).unwrap()
}

#[test]
fn no_c_abi_answer_holds_a_key_a_token_or_a_secret() {
    let mut sink = Sink::default();
    for secret in [ADMIN_KEY, SECRET, OLD_SECRET, PEPPER] {
        sink.secret(secret);
    }
    let config = c(&config_json());
    let mut out = ptr::null_mut();
    assert_eq!(ffi::astack_config_check(config.as_ptr(), &mut out), astack_result::ASTACK_OK);
    let shown = take(out);
    assert!(shown.contains("<redacted>"));
    sink.say(shown);
    let bad_config = c(&format!(r#"{{"signing_keys": [{{"kid": "k", "secret": "{}"}}], "key_pepper": "{PEPPER}"}}"#, &SECRET[..20]));
    ffi::astack_config_check(bad_config.as_ptr(), &mut out);
    sink.say(take(out));

    let mut engine = ptr::null_mut();
    assert_eq!(ffi::astack_engine_new_with_manual_clock(config.as_ptr(), T0, &mut engine), astack_result::ASTACK_OK);
    ffi::astack_engine_config(engine, &mut out);
    sink.say(take(out));
    let admin_key = c(ADMIN_KEY);
    ffi::astack_bootstrap_admin_key(engine, admin_key.as_ptr(), &mut out);
    sink.say(take(out));
    let decide = |key: &CString, operation: u32| {
        let mut decision = std::mem::MaybeUninit::<astack_decision>::uninit();
        let result = ffi::astack_authorize_op(engine, key.as_ptr(), operation, decision.as_mut_ptr());
        (result, unsafe { decision.assume_init() })
    };
    let (result, decision) = decide(&admin_key, 10);
    assert_eq!(result, astack_result::ASTACK_OK);
    let admin = unsafe { CStr::from_ptr(decision.key_id.as_ptr()) }.to_owned();
    let (mut policy, mut ratelimit) = (ptr::null_mut(), ptr::null_mut());
    ffi::astack_decision_headers(&decision, &mut policy, &mut ratelimit);
    sink.say(take(policy));
    sink.say(take(ratelimit));

    let body = c(r#"{"scopes": ["sessions:write", "sessions:read", "workers:write"]}"#);
    assert_eq!(ffi::astack_key_create(engine, admin.as_ptr(), body.as_ptr(), &mut out), astack_result::ASTACK_OK);
    let created: serde_json::Value = serde_json::from_str(&take(out)).unwrap();
    let app_key = created["key"].as_str().unwrap().to_owned();
    sink.secret(&app_key);
    let app = c(created["id"].as_str().unwrap());
    let well_formed_unknown = c("ak_FuzzFuzzFuzzFuzzFuzzFuzzFuzzFu21MAPB");
    for key in [c(""), c("ak_x"), well_formed_unknown, c(&app_key[..38])] {
        for operation in 0..12 {
            let (result, _) = decide(&key, operation);
            assert_ne!(result, astack_result::ASTACK_OK);
        }
    }
    for code in astack_result::ALL {
        sink.say(unsafe { CStr::from_ptr(ffi::astack_result_message(*code as u32)) }.to_str().unwrap());
        sink.say(unsafe { CStr::from_ptr(ffi::astack_result_code(*code as u32)) }.to_str().unwrap());
    }

    let session_body = c(r#"{"end_user_id": "u1"}"#);
    assert_eq!(ffi::astack_session_create(engine, app.as_ptr(), session_body.as_ptr(), &mut out), astack_result::ASTACK_OK);
    let session: serde_json::Value = serde_json::from_str(&take(out)).unwrap();
    let token = session["session_token"].as_str().unwrap().to_owned();
    sink.secret(&token);
    let id = c(session["id"].as_str().unwrap());
    let bad_tokens = [c(&token[..token.len() - 3]), c(&format!("{}x", &token[..token.len() - 1])), c("a.b.c"), c(&token.replace('.', ""))];
    for bad in &bad_tokens {
        ffi::astack_token_verify(engine, bad.as_ptr(), ptr::null(), ptr::null(), &mut out);
        sink.say(take(out));
        ffi::astack_session_connect(engine, app.as_ptr(), id.as_ptr(), bad.as_ptr(), &mut out);
        sink.say(take(out));
    }
    let good = c(&token);
    let other = c("sess_other");
    ffi::astack_token_verify(engine, good.as_ptr(), other.as_ptr(), other.as_ptr(), &mut out);
    sink.say(take(out));
    ffi::astack_token_verify(engine, good.as_ptr(), ptr::null(), ptr::null(), &mut out);
    sink.say(take(out));
    ffi::astack_session_connect(engine, app.as_ptr(), id.as_ptr(), good.as_ptr(), &mut out);
    sink.say(take(out));
    ffi::astack_session_connect(engine, app.as_ptr(), id.as_ptr(), good.as_ptr(), &mut out);
    sink.say(take(out));
    let end = c(r#"{"outcome": "failed", "reason": "r"}"#);
    ffi::astack_session_end(engine, app.as_ptr(), id.as_ptr(), end.as_ptr(), &mut out);
    sink.say(take(out));
    ffi::astack_session_get(engine, app.as_ptr(), id.as_ptr(), &mut out);
    sink.say(take(out));
    ffi::astack_session_list(engine, app.as_ptr(), 0, &mut out);
    sink.say(take(out));
    ffi::astack_key_list(engine, admin.as_ptr(), 0, &mut out);
    sink.say(take(out));
    ffi::astack_key_get(engine, admin.as_ptr(), app.as_ptr(), &mut out);
    sink.say(take(out));
    ffi::astack_key_revoke(engine, admin.as_ptr(), app.as_ptr(), &mut out);
    sink.say(take(out));
    let app_c = c(&app_key);
    let (result, _) = decide(&app_c, 2);
    assert_eq!(result, astack_result::ASTACK_API_KEY_REVOKED);
    ffi::astack_session_list(engine, app.as_ptr(), 0, &mut out);
    sink.say(take(out));
    ffi::astack_audit_list(engine, admin.as_ptr(), 1000, &mut out);
    let audit = take(out);
    assert!(audit.contains("key.revoked") && audit.contains("request.denied"));
    sink.say(audit);
    ffi::astack_metrics(engine, admin.as_ptr(), &mut out);
    sink.say(take(out));
    for json in ["{", "[]", r#"{"name": 1}"#, r#"{"scopes": ["x"]}"#] {
        let body = c(json);
        ffi::astack_key_create(engine, admin.as_ptr(), body.as_ptr(), &mut out);
        sink.say(take(out));
        ffi::astack_user_create(engine, admin.as_ptr(), body.as_ptr(), &mut out);
        sink.say(take(out));
        ffi::astack_usage_record(engine, admin.as_ptr(), body.as_ptr(), &mut out);
        sink.say(take(out));
    }
    let mut limiter = ptr::null_mut();
    let windows = c(r#"[{"name": "m", "limit": 0, "period_seconds": 60}]"#);
    ffi::astack_limiter_new(windows.as_ptr(), &mut limiter, &mut out);
    sink.say(take(out));
    ffi::astack_engine_free(engine);
    sink.check();
}
