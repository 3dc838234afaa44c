//! Hostile input to the core (issue 10): the regressions found while attacking it, and the
//! decisions about ambiguous input, at the engine's level (the server's suite is
//! `examples/server/tests/test_hostile.py`, the C ABI's `tests/c/test_misuse.c`).

mod common;

use astack::keys::CreateKey;
use astack::limits::{Limiter, Window};
use astack::session::CreateSession;
use astack::{validate, Config, Engine, Error, Operation};
use common::{config, Fixture};

fn parse<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, Error> {
    validate::from_json(json, |field, message| Error::InvalidRequest { field, message })
}

fn field(error: Error) -> String {
    match error {
        Error::InvalidRequest { field, .. } | Error::InvalidConfig { field, .. } => field,
        other => panic!("not a field error: {other:?}"),
    }
}

/// Found by tests/c/test_misuse.c: a clock at the end of time overflowed the token buckets
/// (a panic in debug builds, a wrapped-around time in release builds).
#[test]
fn the_end_of_time_refuses_instead_of_overflowing() {
    let limiter = Limiter::new(vec![Window::new("m", 2, 60_000).unwrap()]).unwrap();
    for now in [u64::MAX, u64::MAX / 1_000_000 + 1, u64::MAX - 1] {
        let decision = limiter.check("k", now);
        assert!(!decision.allowed);
        assert!(decision.retry_after >= 1);
    }
    assert!(limiter.check("k", 1_700_000_000_000).allowed, "time going back works again");

    let fixture = Fixture::new();
    fixture.clock().set(u64::MAX);
    let denial = fixture.engine.authorize(&fixture.admin_key, Operation::SessionRead).unwrap_err();
    assert_eq!(denial.error.code(), "rate_limited");
    let created = fixture.engine.create_session(&fixture.admin, CreateSession::new("u")).unwrap();
    assert_eq!(created.session.expires_at, u64::MAX, "saturates, does not wrap");
    assert!(fixture.engine.sweep().is_ok());
}

/// JSON that repeats a member name is refused wherever JSON comes in: requests and the
/// configuration, at any depth.
#[test]
fn repeated_member_names_are_refused_everywhere() {
    let key = parse::<CreateKey>(r#"{"scopes":["sessions:read"],"account_id":"a","account_id":"default"}"#);
    assert_eq!(field(key.unwrap_err()), "account_id");
    let session = parse::<CreateSession>(r#"{"end_user_id":"u","metadata":{"role":"x","role":"admin"}}"#);
    assert_eq!(field(session.unwrap_err()), "metadata.role");
    let config = Config::from_json(r#"{"key_pepper":"0123456789abcdef0","key_pepper":null}"#);
    assert_eq!(field(config.unwrap_err()), "key_pepper");
    let config = Config::from_json(r#"{"limits":{"requests_per_minute":1,"requests_per_minute":1}}"#);
    assert_eq!(field(config.unwrap_err()), "limits.requests_per_minute");
    let config = Config::from_json(r#"{"workers":[{"node_id":"a","node_id":"b","url":"ws://x","capacity":1}]}"#);
    assert_eq!(field(config.unwrap_err()), "workers[0].node_id");
}

#[test]
fn deep_huge_and_out_of_range_input_is_an_invalid_request() {
    for json in ["[".repeat(100_000), "{\"a\":".repeat(10_000), "1e400".into(), "\"\\udc00\"".into()] {
        assert_eq!(field(parse::<serde_json::Value>(&json).unwrap_err()), "body");
    }
    assert!(matches!(Engine::from_json(&"[".repeat(100_000)), Err(Error::InvalidConfig { .. })));
    for quantity in ["-1", "18446744073709551616", "1e400", "1.5", "9007199254740992"] {
        let request = parse::<astack::usage::RecordUsage>(&format!(r#"{{"metric":"m","quantity":{quantity}}}"#));
        let refused = request.and_then(|r| r.validate());
        assert!(matches!(refused, Err(Error::InvalidRequest { .. })), "{quantity}");
    }
    let features = format!(r#"{{"end_user_id":"u","features":[{}]}}"#, vec!["\"vision\""; 10_000].join(","));
    let request: CreateSession = parse(&features).unwrap();
    let catalog = config().features;
    assert_eq!(field(request.validate(&catalog).unwrap_err()), "features[1]");
}

#[test]
fn control_characters_and_odd_unicode_in_ids_are_refused_or_inert() {
    let fixture = Fixture::new();
    for id in ["", "\0", "sess_\0", "../../etc/passwd", "sess_\u{202e}", &"a".repeat(100_000)] {
        assert_eq!(fixture.engine.get_session(&fixture.admin, id).unwrap_err().code(), "not_found");
        assert_eq!(fixture.engine.get_user(&fixture.admin, id).unwrap_err().code(), "not_found");
        assert_eq!(fixture.engine.get_key(&fixture.admin, id).unwrap_err().code(), "not_found");
        assert!(fixture.engine.principal(id).is_err());
    }
    for end_user in ["", "a\u{0}b", "a\nb", "\u{7f}", &"u".repeat(129)] {
        let refused = fixture.engine.create_session(&fixture.admin, CreateSession::new(end_user));
        assert_eq!(field(refused.unwrap_err()), "end_user_id");
    }
    let accounts = ["", "a\u{0}", &"x".repeat(129)];
    for account in accounts {
        let request = CreateKey { account_id: Some(account.into()), scopes: vec!["sessions:read".into()], ..Default::default() };
        assert_eq!(field(fixture.engine.create_key(&fixture.admin, request).unwrap_err()), "account_id");
    }
}
