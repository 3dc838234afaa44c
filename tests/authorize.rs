//! Deciding a request (SPEC §3–§5): the order of the checks and their codes, tokens never
//! consumed by a denial, rate and concurrent-session limits, overrides, scopes and legacy flags.

mod common;

use std::collections::BTreeSet;

use astack::keys::CreateKey;
use astack::limits::KeyLimits;
use astack::session::Outcome;
use astack::{Config, Error, Operation};
use common::*;

fn limits(rpm: Option<u32>, rph: Option<u32>, concurrent: Option<u32>) -> KeyLimits {
    KeyLimits { requests_per_minute: rpm, requests_per_hour: rph, concurrent_sessions: concurrent }
}

/// Tokens left in the tightest window, as reported by an allowed request (which takes one).
fn remaining_after_one(f: &Fixture, key: &str) -> u32 {
    f.engine.authorize(key, Operation::SessionRead).expect("allowed").decision.remaining
}

#[test]
fn each_check_has_its_code_and_status() {
    let f = Fixture::new();
    let cases: Vec<(Error, &str, u16)> = {
        let revoked = f.key(&["sessions:read"]);
        f.engine.revoke_key(&f.admin, &revoked.record.id).unwrap();
        let expiring = f.create(CreateKey {
            scopes: strings(&["sessions:read"]),
            expires_at: Some(T0 + 1),
            ..Default::default()
        });
        f.advance(1);
        let reader = f.key(&["sessions:read"]);
        let limited = f.key_with_limits(None, &["sessions:read", "sessions:write"], limits(Some(1), None, Some(1)));
        f.auth(&limited.key, Operation::SessionRead);
        let slots = f.key_with_limits(None, &["sessions:write"], limits(None, None, Some(1)));
        f.session(&f.principal(&slots));
        vec![
            (f.denied("", Operation::SessionRead), "missing_api_key", 401),
            (f.denied("ak_short", Operation::SessionRead), "invalid_api_key", 401),
            (f.denied(&astack::keys::generate().unwrap(), Operation::SessionRead), "invalid_api_key", 401),
            (f.denied(&revoked.key, Operation::SessionRead), "api_key_revoked", 401),
            (f.denied(&expiring.key, Operation::SessionRead), "api_key_expired", 401),
            (f.denied(&reader.key, Operation::SessionCreate), "insufficient_scope", 403),
            (f.denied(&limited.key, Operation::SessionRead), "rate_limited", 429),
            (f.denied(&slots.key, Operation::SessionCreate), "concurrent_session_limit", 429),
        ]
    };
    for (error, code, status) in cases {
        assert_eq!((error.code(), error.status()), (code, status), "{error}");
        assert_eq!(error.to_json()["error"]["code"], code);
    }
}

#[test]
fn the_first_failing_check_wins() {
    let f = Fixture::new();
    // Revoked, expired and lacking the scope: revoked.
    let k = f.create(CreateKey {
        scopes: strings(&["users:read"]),
        limits: limits(Some(1), None, None),
        expires_at: Some(T0 + 10),
        ..Default::default()
    });
    f.auth(&k.key, Operation::UserRead); // empties the minute window
    f.engine.revoke_key(&f.admin, &k.record.id).unwrap();
    f.advance(10);
    assert_eq!(f.denied(&k.key, Operation::SessionCreate).code(), "api_key_revoked");

    // Expired and lacking the scope, rate-limited: expired.
    let k = f.create(CreateKey {
        scopes: strings(&["users:read"]),
        limits: limits(Some(1), None, None),
        expires_at: Some(f.now() + 10),
        ..Default::default()
    });
    f.auth(&k.key, Operation::UserRead);
    f.advance(10);
    assert_eq!(f.denied(&k.key, Operation::SessionCreate).code(), "api_key_expired");

    // Lacking the scope and rate-limited: insufficient_scope.
    let k = f.key_with_limits(None, &["users:read"], limits(Some(1), None, None));
    f.auth(&k.key, Operation::UserRead);
    assert_eq!(f.denied(&k.key, Operation::SessionCreate).code(), "insufficient_scope");
    assert_eq!(f.denied(&k.key, Operation::UserRead).code(), "rate_limited");

    // Rate-limited with every slot taken: rate_limited.
    let k = f.key_with_limits(None, &["sessions:write"], limits(Some(1), None, Some(1)));
    f.session(&f.principal(&k));
    f.auth(&k.key, Operation::SessionTerminate);
    assert_eq!(f.denied(&k.key, Operation::SessionCreate).code(), "rate_limited");
}

#[test]
fn a_denied_request_consumes_no_tokens() {
    let f = Fixture::new();
    let k = f.key_with_limits(None, &["sessions:read", "sessions:write"], limits(Some(10), Some(50), Some(1)));
    assert_eq!(remaining_after_one(&f, &k.key), 9);
    // insufficient_scope
    for _ in 0..5 {
        assert_eq!(f.denied(&k.key, Operation::UserRead).code(), "insufficient_scope");
    }
    assert_eq!(remaining_after_one(&f, &k.key), 8);
    // concurrent_session_limit: authorize takes the tokens and must give them back.
    f.session(&f.principal(&k));
    for _ in 0..5 {
        assert_eq!(f.denied(&k.key, Operation::SessionCreate).code(), "concurrent_session_limit");
    }
    assert_eq!(remaining_after_one(&f, &k.key), 7);
    // rate_limited denials take nothing either.
    for _ in 0..7 {
        f.auth(&k.key, Operation::SessionRead);
    }
    for _ in 0..5 {
        assert_eq!(f.denied(&k.key, Operation::SessionRead).code(), "rate_limited");
    }
    f.advance(6_000); // one minute-window token back
    assert_eq!(remaining_after_one(&f, &k.key), 0);

    // A minute-window denial leaves the hour window's tokens alone.
    let k = f.key_with_limits(None, &["sessions:read"], limits(Some(2), Some(3), None));
    f.auth(&k.key, Operation::SessionRead);
    f.auth(&k.key, Operation::SessionRead);
    for _ in 0..5 {
        assert_eq!(f.denied(&k.key, Operation::SessionRead).code(), "rate_limited");
    }
    f.advance(60_000);
    let last = f.engine.authorize(&k.key, Operation::SessionRead).expect("the hour window kept its third token");
    assert_eq!((last.decision.window, last.decision.limit, last.decision.remaining), (1, 3, 0));
    assert!(last.headers().ratelimit.starts_with("\"hour\";r=0;"));
    assert_eq!(
        f.denied(&k.key, Operation::SessionRead),
        Error::RateLimited { window: "hour".into(), limit: 3, retry_after: 1140 }
    );
}

#[test]
fn rate_limited_reports_the_window_and_a_positive_retry_after() {
    let f = Fixture::new();
    let k = f.key_with_limits(None, &["sessions:read"], limits(Some(3), None, None));
    for expected in [2, 1, 0] {
        assert_eq!(remaining_after_one(&f, &k.key), expected);
    }
    let denial = f.engine.authorize(&k.key, Operation::SessionRead).unwrap_err();
    assert_eq!(denial.error, Error::RateLimited { window: "minute".into(), limit: 3, retry_after: 20 });
    assert_eq!(denial.error.details()["retry_after"], 20);
    let headers = denial.headers().expect("headers for an authenticated key");
    assert_eq!(headers.retry_after.as_deref(), Some("20"));
    assert_eq!(headers.ratelimit, "\"minute\";r=0;t=60");
    // 19.999 s later: still one millisecond short, and retry_after never reads 0.
    f.advance(19_999);
    match f.denied(&k.key, Operation::SessionRead) {
        Error::RateLimited { retry_after, .. } => assert_eq!(retry_after, 1),
        other => panic!("{other:?}"),
    }
    f.advance(1);
    f.auth(&k.key, Operation::SessionRead);

    // The hour window refuses with its own name and wait.
    let k = f.key_with_limits(None, &["sessions:read"], limits(None, Some(2), None));
    f.auth(&k.key, Operation::SessionRead);
    f.auth(&k.key, Operation::SessionRead);
    assert_eq!(
        f.denied(&k.key, Operation::SessionRead),
        Error::RateLimited { window: "hour".into(), limit: 2, retry_after: 1800 }
    );
    // Denials of unauthenticated requests carry no rate-limit headers.
    assert!(f.engine.authorize("", Operation::SessionRead).unwrap_err().headers().is_none());
}

#[test]
fn concurrent_session_limit_applies_to_session_create_only_and_frees_on_a_final_state() {
    let f = Fixture::new();
    let k = f.key_with_limits(None, &["sessions:read", "sessions:write"], limits(None, None, Some(2)));
    let client = f.principal(&k);
    let worker = f.operator_worker();
    let a = f.session(&client);
    let b = f.session(&client);
    assert_eq!(f.engine.slots_in_use(&k.record.id).unwrap(), 2);
    let error = f.denied(&k.key, Operation::SessionCreate);
    assert_eq!(error, Error::ConcurrentSessionLimit { limit: 2 });
    assert_eq!(error.details()["limit"], 2);
    expect_code(
        f.engine.create_session(&client, astack::session::CreateSession::new("u")),
        "concurrent_session_limit",
    );
    // Other operations are not affected.
    f.auth(&k.key, Operation::SessionRead);
    f.auth(&k.key, Operation::SessionTerminate);
    // Terminating one frees its slot at once.
    f.engine.terminate_session(&client, &a.session.id).unwrap();
    assert_eq!(f.engine.slots_in_use(&k.record.id).unwrap(), 1);
    f.auth(&k.key, Operation::SessionCreate);
    let c = f.session(&client);
    f.denied(&k.key, Operation::SessionCreate);
    // A worker's end frees one too, ACTIVE or not.
    f.connect(&worker, &b);
    f.end(&worker, &b.session.id, Outcome::Failed, Some("crash")).unwrap();
    f.auth(&k.key, Operation::SessionCreate);
    f.session(&client);
    // Expiry frees slots too, even before anything reads the sessions.
    f.advance(300_000);
    assert_eq!(f.engine.slots_in_use(&k.record.id).unwrap(), 0);
    f.auth(&k.key, Operation::SessionCreate);
    assert_eq!(f.engine.get_session(&client, &c.session.id).unwrap().status, astack::session::Status::Expired);
}

#[test]
fn expired_sessions_free_their_slot_for_authorize_without_a_sweep() {
    let f = Fixture::new();
    let k = f.key_with_limits(None, &["sessions:write"], limits(None, None, Some(1)));
    f.session(&f.principal(&k));
    f.advance(299_999);
    assert_eq!(f.denied(&k.key, Operation::SessionCreate).code(), "concurrent_session_limit");
    f.advance(1);
    f.auth(&k.key, Operation::SessionCreate);
    f.session(&f.principal(&k));
}

#[test]
fn per_key_overrides_and_engine_defaults() {
    let mut config = config();
    config.limits = astack::limits::Limits { requests_per_minute: 4, requests_per_hour: 6, concurrent_sessions: 1 };
    let f = Fixture::with_config(config);
    let default = f.key(&["sessions:read", "sessions:write"]);
    let overridden = f.key_with_limits(None, &["sessions:read", "sessions:write"], limits(Some(2), None, Some(3)));
    let first = f.engine.authorize(&default.key, Operation::SessionRead).unwrap();
    assert_eq!(first.limits, astack::limits::Limits { requests_per_minute: 4, requests_per_hour: 6, concurrent_sessions: 1 });
    assert_eq!((first.decision.limit, first.decision.remaining), (4, 3));
    for _ in 0..3 {
        f.auth(&default.key, Operation::SessionRead);
    }
    assert_eq!(f.denied(&default.key, Operation::SessionRead).code(), "rate_limited");
    let first = f.engine.authorize(&overridden.key, Operation::SessionRead).unwrap();
    assert_eq!(first.limits, astack::limits::Limits { requests_per_minute: 2, requests_per_hour: 6, concurrent_sessions: 3 });
    f.auth(&overridden.key, Operation::SessionRead);
    assert_eq!(f.denied(&overridden.key, Operation::SessionRead).code(), "rate_limited");
    // The hour default of 6 (one token per 600 s) applies too: a minute later two are left.
    f.advance(60_000);
    f.auth(&default.key, Operation::SessionRead);
    f.auth(&default.key, Operation::SessionRead);
    assert_eq!(
        f.denied(&default.key, Operation::SessionRead),
        Error::RateLimited { window: "hour".into(), limit: 6, retry_after: 540 }
    );
    // Concurrent overrides: three sessions for the overridden key, one for the default.
    let p = f.principal(&overridden);
    for _ in 0..3 {
        f.session(&p);
    }
    expect_code(f.engine.create_session(&p, astack::session::CreateSession::new("u")), "concurrent_session_limit");
    let d = f.principal(&default);
    f.session(&d);
    expect_code(f.engine.create_session(&d, astack::session::CreateSession::new("u")), "concurrent_session_limit");
}

fn allowed_ops(f: &Fixture, scopes: &[&str], flags: &[&str]) -> BTreeSet<&'static str> {
    let key = f.create(CreateKey { scopes: strings(scopes), permissions: strings(flags), ..Default::default() });
    Operation::ALL
        .iter()
        .filter(|op| match f.engine.authorize(&key.key, **op) {
            Ok(_) => true,
            Err(denial) => {
                assert_eq!(denial.error.code(), "insufficient_scope");
                false
            }
        })
        .map(|op| op.as_str())
        .collect()
}

#[test]
fn each_scope_allows_exactly_its_operations() {
    let f = Fixture::new();
    let table: [(&str, &[&str]); 8] = [
        ("sessions:read", &["session.read"]),
        ("sessions:write", &["session.create", "session.terminate"]),
        ("users:read", &["user.read"]),
        ("users:write", &["user.write"]),
        ("billing:read", &["billing.read"]),
        ("billing:write", &["billing.write"]),
        ("workers:read", &["worker.read"]),
        ("workers:write", &["worker.write"]),
    ];
    for (scope, ops) in table {
        let expected: BTreeSet<&str> = ops.iter().copied().collect();
        assert_eq!(allowed_ops(&f, &[scope], &[]), expected, "{scope}");
    }
    let all: BTreeSet<&str> = Operation::ALL.iter().map(|o| o.as_str()).collect();
    assert_eq!(all.len(), 10);
    assert_eq!(allowed_ops(&f, &["admin:all"], &[]), all);
}

#[test]
fn legacy_flags_allow_exactly_their_operations() {
    let f = Fixture::new();
    let table: [(&str, &[&str]); 3] = [
        ("session_create", &["session.create"]),
        ("session_manage", &["session.read", "session.terminate"]),
        ("usage_read", &["billing.read"]),
    ];
    for (flag, ops) in table {
        let expected: BTreeSet<&str> = ops.iter().copied().collect();
        assert_eq!(allowed_ops(&f, &[], &[flag]), expected, "{flag}");
    }
    let union: BTreeSet<&str> =
        ["session.create", "session.read", "session.terminate", "billing.read", "user.read"].into_iter().collect();
    assert_eq!(allowed_ops(&f, &["users:read"], &["session_create", "session_manage", "usage_read"]), union);
}

#[test]
fn insufficient_scope_names_the_required_scope() {
    let f = Fixture::new();
    let k = f.key(&["sessions:read"]);
    let denial = f.engine.authorize(&k.key, Operation::BillingWrite).unwrap_err();
    assert_eq!(denial.error, Error::InsufficientScope { required: "billing:write" });
    assert_eq!(denial.error.details()["required_scopes"], serde_json::json!(["billing:write"]));
    // The key is authenticated: the refusal carries its rate-limit state.
    assert!(denial.headers().is_some());
}

#[test]
fn authorized_requests_are_metered_per_account() {
    let f = Fixture::new();
    let reader = f.key_in(Some("acme"), &["billing:read", "sessions:read"]);
    let other = f.key_in(Some("globex"), &["billing:read"]);
    let principal = f.principal(&reader);
    assert_eq!(f.engine.usage(&principal).unwrap().requests, 0);
    for _ in 0..5 {
        f.auth(&reader.key, Operation::SessionRead);
    }
    f.denied(&reader.key, Operation::UserRead);
    f.auth(&other.key, Operation::BillingRead);
    assert_eq!(f.engine.usage(&principal).unwrap().requests, 5);
    // Two keys of one account share its meter.
    let second = f.key_in(Some("acme"), &["sessions:read"]);
    f.auth(&second.key, Operation::SessionRead);
    assert_eq!(f.engine.usage(&principal).unwrap().requests, 6);
    assert_eq!(f.engine.usage(&f.principal(&other)).unwrap().requests, 1);
}

#[test]
fn engine_defaults_are_the_spec_seed() {
    let config = Config::default();
    assert_eq!(
        config.limits,
        astack::limits::Limits { requests_per_minute: 100, requests_per_hour: 1000, concurrent_sessions: 10 }
    );
    let f = Fixture::new();
    let k = f.key(&["sessions:read"]);
    for _ in 0..100 {
        f.auth(&k.key, Operation::SessionRead);
    }
    assert_eq!(
        f.denied(&k.key, Operation::SessionRead),
        Error::RateLimited { window: "minute".into(), limit: 100, retry_after: 1 }
    );
}
