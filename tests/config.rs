//! Configuration (SPEC §11) and the error catalogue (SPEC §9).

mod common;

use astack::session::Status;
use astack::token::Refusal;
use astack::{Config, Engine, Error};
use common::*;

#[test]
fn defaults_are_the_spec() {
    for config in [Config::default(), Config::from_json("{}").unwrap()] {
        assert_eq!(
            (config.limits.requests_per_minute, config.limits.requests_per_hour, config.limits.concurrent_sessions),
            (100, 1000, 10)
        );
        let s = config.sessions;
        assert_eq!(
            (s.pending_ttl_seconds, s.max_duration_seconds, s.token_ttl_seconds, s.token_leeway_seconds),
            (300, 3600, 600, 0)
        );
        assert_eq!(config.features, strings(&["vision", "transcription", "recording"]));
        assert!(config.signing_keys.is_empty());
        assert!(config.key_pepper.is_none());
        assert!(config.workers.is_empty());
        assert_eq!(config.default_worker, worker_with("local", "ws://127.0.0.1:8081", 1000));
    }
    // With no signing key configured, one is generated under kid `default`.
    let engine = Engine::from_json("{}").unwrap();
    let admin = engine.bootstrap_admin_key(None).unwrap().unwrap();
    let p = engine.authorize(&admin, astack::Operation::SessionCreate).unwrap().principal;
    let token = engine.create_session(&p, astack::session::CreateSession::new("u")).unwrap().session_token;
    let header = token.split('.').next().unwrap();
    use base64::Engine as _;
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&header).unwrap(),
        serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "default"})
    );
}

fn worker_with(node: &str, url: &str, capacity: u32) -> astack::workers::Worker {
    astack::workers::Worker { node_id: node.into(), url: url.into(), capacity, draining: false }
}

#[test]
fn the_full_example_parses() {
    let json = r#"{
      "limits": {"requests_per_minute": 100, "requests_per_hour": 1000, "concurrent_sessions": 10},
      "sessions": {"pending_ttl_seconds": 300, "max_duration_seconds": 3600,
                   "token_ttl_seconds": 600, "token_leeway_seconds": 0},
      "features": ["vision", "transcription", "recording"],
      "signing_keys": [{"kid": "default", "secret": "at least 32 bytes, used as the HMAC key as-is"}],
      "key_pepper": null,
      "workers": [],
      "default_worker": {"node_id": "local", "url": "ws://127.0.0.1:8081", "capacity": 1000}
    }"#;
    let config = Config::from_json(json).unwrap();
    assert_eq!(config.signing_keys[0].kid, "default");
    let custom = Config::from_json(
        r#"{"limits": {"requests_per_minute": 5}, "sessions": {"token_leeway_seconds": 30},
            "key_pepper": "sixteen-bytes-ok", "workers": [{"node_id": "w1", "url": "wss://w1", "capacity": 4, "draining": true}]}"#,
    )
    .unwrap();
    assert_eq!((custom.limits.requests_per_minute, custom.limits.requests_per_hour), (5, 1000), "partial objects");
    assert_eq!(custom.sessions.token_leeway_seconds, 30);
    assert_eq!(custom.sessions.pending_ttl_seconds, 300);
    assert!(custom.workers[0].draining);
    Engine::with_manual_clock(custom, T0).unwrap();
}

#[test]
fn unknown_fields_are_named_by_their_path() {
    let cases = [
        (r#"{"limit": {}}"#, "limit"),
        (r#"{"limits": {"requests_per_second": 1}}"#, "limits.requests_per_second"),
        (r#"{"sessions": {"ttl": 1}}"#, "sessions.ttl"),
        (r#"{"signing_keys": [{"kid": "a", "secret": "0123456789abcdef0123456789abcdef", "alg": "HS256"}]}"#, "signing_keys[0].alg"),
        (r#"{"workers": [{"node_id": "a", "url": "ws://a", "capacity": 1, "zone": "eu"}]}"#, "workers[0].zone"),
        (r#"{"default_worker": {"node_id": "a", "url": "ws://a", "capacity": 1, "region": 1}}"#, "default_worker.region"),
    ];
    for (json, field) in cases {
        expect_config_field(Config::from_json(json), field);
        expect_config_field(Engine::from_json(json), field);
    }
    expect_config_field(Config::from_json(r#"{"limits": {"requests_per_minute": "many"}}"#), "limits.requests_per_minute");
    expect_config_field(Config::from_json(r#"{"signing_keys": [{"kid": "a"}]}"#), "signing_keys[0].secret");
    expect_config_field(Config::from_json("{"), "body");
}

#[test]
fn every_out_of_range_value_is_named() {
    let cases = [
        (r#"{"limits": {"requests_per_minute": 0}}"#, "limits.requests_per_minute"),
        (r#"{"limits": {"requests_per_minute": 10000001}}"#, "limits.requests_per_minute"),
        (r#"{"limits": {"requests_per_hour": 0}}"#, "limits.requests_per_hour"),
        (r#"{"limits": {"requests_per_hour": 100000001}}"#, "limits.requests_per_hour"),
        (r#"{"limits": {"concurrent_sessions": 0}}"#, "limits.concurrent_sessions"),
        (r#"{"limits": {"concurrent_sessions": 1000001}}"#, "limits.concurrent_sessions"),
        (r#"{"limits": {"requests_per_minute": -1}}"#, "limits.requests_per_minute"),
        (r#"{"sessions": {"pending_ttl_seconds": 0}}"#, "sessions.pending_ttl_seconds"),
        (r#"{"sessions": {"pending_ttl_seconds": 86401}}"#, "sessions.pending_ttl_seconds"),
        (r#"{"sessions": {"max_duration_seconds": 0}}"#, "sessions.max_duration_seconds"),
        (r#"{"sessions": {"max_duration_seconds": 604801}}"#, "sessions.max_duration_seconds"),
        (r#"{"sessions": {"token_ttl_seconds": 0}}"#, "sessions.token_ttl_seconds"),
        (r#"{"sessions": {"token_ttl_seconds": 86401}}"#, "sessions.token_ttl_seconds"),
        (r#"{"sessions": {"token_leeway_seconds": 3601}}"#, "sessions.token_leeway_seconds"),
        (r#"{"features": ["Vision"]}"#, "features[0]"),
        (r#"{"features": ["vision", ""]}"#, "features[1]"),
        (r#"{"features": ["vision", "vision"]}"#, "features[1]"),
        (r#"{"default_worker": {"node_id": "", "url": "ws://a", "capacity": 1}}"#, "default_worker.node_id"),
        (r#"{"default_worker": {"node_id": "a", "url": "tcp://a", "capacity": 1}}"#, "default_worker.url"),
        (r#"{"default_worker": {"node_id": "a", "url": "ws://a", "capacity": 0}}"#, "default_worker.capacity"),
        (r#"{"workers": [{"node_id": "a", "url": "ws://a", "capacity": 1000001}]}"#, "workers[0].capacity"),
    ];
    for (json, field) in cases {
        expect_config_field(Config::from_json(json), field);
    }
    let many: Vec<String> = (0..65).map(|i| format!("f{i}")).collect();
    expect_config_field(Config::from_json(&serde_json::json!({ "features": many }).to_string()), "features");
    // The edges themselves are accepted.
    Config::from_json(
        r#"{"limits": {"requests_per_minute": 10000000, "requests_per_hour": 100000000, "concurrent_sessions": 1000000},
            "sessions": {"pending_ttl_seconds": 86400, "max_duration_seconds": 604800,
                         "token_ttl_seconds": 1, "token_leeway_seconds": 3600}}"#,
    )
    .unwrap();
}

#[test]
fn signing_keys_pepper_and_workers_are_checked() {
    let short = r#"{"signing_keys": [{"kid": "a", "secret": "only-31-bytes-long-secret-12345"}]}"#;
    assert_eq!("only-31-bytes-long-secret-12345".len(), 31);
    let error = expect_code(Config::from_json(short), "invalid_config");
    assert!(matches!(&error, Error::InvalidConfig { field, .. } if field == "signing_keys"));
    assert!(!error.to_string().contains("only-31-bytes"), "the secret never shows: {error}");
    let empty_kid = r#"{"signing_keys": [{"kid": "", "secret": "0123456789abcdef0123456789abcdef"}]}"#;
    expect_config_field(Config::from_json(empty_kid), "signing_keys");
    let twice = r#"{"signing_keys": [{"kid": "a", "secret": "0123456789abcdef0123456789abcdef"},
                                     {"kid": "a", "secret": "fedcba9876543210fedcba9876543210"}]}"#;
    expect_config_field(Config::from_json(twice), "signing_keys");
    expect_config_field(Config::from_json(r#"{"key_pepper": "short"}"#), "key_pepper");
    expect_config_field(Config::from_json(r#"{"key_pepper": 7}"#), "key_pepper");
    let dup = r#"{"workers": [{"node_id": "a", "url": "ws://a", "capacity": 1}, {"node_id": "a", "url": "ws://b", "capacity": 2}]}"#;
    expect_config_field(Config::from_json(dup), "workers[1].node_id");
    // A configuration built in code is validated by the engine too.
    let mut config = Config::default();
    config.limits.requests_per_hour = 0;
    expect_config_field(Engine::new(config), "limits.requests_per_hour");
    let mut config = Config::default();
    config.sessions.pending_ttl_seconds = 0;
    expect_config_field(Engine::with_manual_clock(config, T0), "sessions.pending_ttl_seconds");
    // A malformed bootstrap key is a configuration error too.
    let engine = Engine::with_manual_clock(Config::default(), T0).unwrap();
    expect_code(engine.bootstrap_admin_key(Some("ak_nope")), "invalid_config");
}

#[test]
fn a_given_bootstrap_key_is_kept_and_not_returned() {
    let engine = Engine::with_manual_clock(Config::default(), T0).unwrap();
    let key = astack::keys::generate().unwrap();
    assert_eq!(engine.bootstrap_admin_key(Some(&key)).unwrap(), None);
    assert_eq!(engine.bootstrap_admin_key(Some(&key)).unwrap(), None, "an existing key is kept");
    let p = engine.authorize(&key, astack::Operation::Admin).unwrap().principal;
    assert!(p.is_operator());
    assert_eq!(engine.list_keys(&p, 100).unwrap().len(), 1);
}

#[test]
fn every_error_has_its_code_and_status() {
    let cases: Vec<(Error, &str, u16)> = vec![
        (Error::MissingApiKey, "missing_api_key", 401),
        (Error::InvalidApiKey, "invalid_api_key", 401),
        (Error::ApiKeyRevoked, "api_key_revoked", 401),
        (Error::ApiKeyExpired, "api_key_expired", 401),
        (Error::InsufficientScope { required: "admin:all" }, "insufficient_scope", 403),
        (Error::RateLimited { window: "minute".into(), limit: 1, retry_after: 3 }, "rate_limited", 429),
        (Error::ConcurrentSessionLimit { limit: 2 }, "concurrent_session_limit", 429),
        (Error::invalid("end_user_id", "too long"), "invalid_request", 400),
        (Error::NotFound { resource: "session" }, "not_found", 404),
        (Error::Forbidden("no"), "forbidden", 403),
        (Error::AlreadyExists { resource: "worker" }, "already_exists", 409),
        (Error::InvalidTransition { from: Status::Completed, event: "connect" }, "invalid_transition", 409),
        (Error::InvalidToken { reason: Refusal::Expired }, "invalid_token", 401),
        (Error::NoWorkerAvailable, "no_worker_available", 503),
        (Error::PayloadTooLarge, "payload_too_large", 413),
        (Error::config("limits", "bad"), "invalid_config", 400),
        (Error::Unavailable("down".into()), "unavailable", 503),
        (Error::Internal("bug".into()), "internal_error", 500),
    ];
    let mut codes = std::collections::BTreeSet::new();
    for (error, code, status) in &cases {
        assert_eq!((error.code(), error.status()), (*code, *status), "{error:?}");
        let body = error.to_json();
        assert_eq!(body["error"]["code"], *code);
        assert_eq!(body["error"]["message"], error.to_string());
        assert!(!error.to_string().is_empty());
        assert!(codes.insert(*code), "{code} is used twice");
    }
    assert_eq!(codes.len(), 18);
    // Details where useful.
    assert_eq!(cases[4].0.to_json()["error"]["required_scopes"], serde_json::json!(["admin:all"]));
    assert_eq!(cases[5].0.to_json()["error"]["retry_after"], 3);
    assert_eq!(cases[7].0.to_json()["error"]["field"], "end_user_id");
    assert_eq!(cases[11].0.to_json()["error"]["status"], "COMPLETED");
    assert_eq!(cases[12].0.to_json()["error"]["reason"], "expired");
    assert_eq!(cases[15].0.to_json()["error"]["field"], "limits");
}

#[test]
fn token_refusal_reasons_are_the_spec_codes() {
    let reasons: Vec<String> = [
        Refusal::Malformed,
        Refusal::UnsupportedAlgorithm,
        Refusal::UnknownKid,
        Refusal::BadSignature,
        Refusal::Expired,
        Refusal::NotYetValid,
        Refusal::WrongIssuer,
        Refusal::WrongAudience,
        Refusal::WrongSession,
    ]
    .into_iter()
    .map(|r| Error::InvalidToken { reason: r }.details()["reason"].as_str().unwrap().to_owned())
    .collect();
    assert_eq!(
        reasons,
        strings(&[
            "malformed",
            "unsupported_algorithm",
            "unknown_kid",
            "bad_signature",
            "expired",
            "not_yet_valid",
            "wrong_issuer",
            "wrong_audience",
            "wrong_session"
        ])
    );
}

#[test]
fn the_engine_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Engine>();
    assert_send_sync::<astack::Principal>();
}
