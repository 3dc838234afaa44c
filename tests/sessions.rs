//! Sessions (SPEC §6–§7): create validation, the state machine and its final states, expiry,
//! tenant isolation, placement on workers, and session tokens through the engine.

mod common;

use astack::session::{ConnectionType, CreateSession, Outcome, Quality, Status};
use astack::token::{Claims, Keyring, SigningKey, ISSUER};
use astack::workers::UpdateWorker;
use astack::{Error, Principal};
use common::*;
use serde_json::json;

fn parse(json: &str) -> astack::Result<CreateSession> {
    astack::validate::from_json::<CreateSession>(json, |field, message| Error::InvalidRequest { field, message })
}

/// Parses and validates against the default catalog, as a host would.
fn check(json: &str) -> astack::Result<CreateSession> {
    let request = parse(json)?;
    request.validate(&astack::Config::default().features)?;
    Ok(request)
}

// ---------------------------------------------------------------- create validation

#[test]
fn create_defaults() {
    let f = Fixture::new();
    let (key, client) = f.client(None);
    let created = f.engine.create_session(&client, parse(r#"{"end_user_id": "u-1"}"#).unwrap()).unwrap();
    let s = &created.session;
    assert!(s.id.starts_with("sess_"));
    assert_eq!(s.status, Status::Pending);
    assert_eq!(s.connection_type, ConnectionType::Websocket);
    assert_eq!(s.quality, Quality::Standard);
    assert!(s.features.is_empty());
    assert_eq!(s.metadata, json!({}));
    assert_eq!(s.key_id, key.record.id);
    assert_eq!(s.account_id, "default");
    assert_eq!((s.node_id.as_str(), s.worker_url.as_str()), ("local", "ws://127.0.0.1:8081"));
    assert_eq!((s.created_at, s.expires_at), (T0, T0 + 300_000));
    assert_eq!((s.connected_at, s.ended_at, s.end_reason.as_deref()), (None, None, None));
    let json = serde_json::to_value(&created).unwrap();
    for field in [
        "id", "status", "end_user_id", "connection_type", "quality", "features", "metadata", "key_id", "node_id",
        "worker_url", "created_at", "expires_at", "connected_at", "ended_at", "end_reason", "session_token",
    ] {
        assert!(json.get(field).is_some(), "{field} missing from {json}");
    }
    assert_eq!(json["status"], "PENDING");
}

#[test]
fn create_accepts_every_valid_value() {
    let full = check(
        r#"{"end_user_id": "u", "connection_type": "webrtc", "quality": "high",
            "features": ["vision", "transcription", "recording"], "metadata": {"a": [1, 2]}}"#,
    )
    .unwrap();
    assert_eq!((full.connection_type, full.quality), (ConnectionType::Webrtc, Quality::High));
    check(r#"{"end_user_id": "u", "quality": "low", "connection_type": "websocket"}"#).unwrap();
    check(&format!(r#"{{"end_user_id": "{}"}}"#, "x".repeat(128))).unwrap();
    check(&format!(r#"{{"end_user_id": "{}"}}"#, "é".repeat(128))).expect("128 characters, 256 bytes");
    let big = "v".repeat(4096 - r#"{"k":""}"#.len());
    check(&format!(r#"{{"end_user_id": "u", "metadata": {{"k": "{big}"}}}}"#)).expect("exactly 4 KiB");
}

#[test]
fn every_invalid_field_is_named() {
    let cases: &[(&str, &str)] = &[
        (r#"{"end_user_id": ""}"#, "end_user_id"),
        (&format!(r#"{{"end_user_id": "{}"}}"#, "x".repeat(129)), "end_user_id"),
        (r#"{"end_user_id": "a\nb"}"#, "end_user_id"),
        (r#"{"end_user_id": "a\u0000b"}"#, "end_user_id"),
        (r#"{"end_user_id": "a\u007fb"}"#, "end_user_id"),
        (r#"{"end_user_id": 42}"#, "end_user_id"),
        (r#"{"end_user_id": "u", "connection_type": "udp"}"#, "connection_type"),
        (r#"{"end_user_id": "u", "connection_type": "WebRTC"}"#, "connection_type"),
        (r#"{"end_user_id": "u", "quality": "ultra"}"#, "quality"),
        (r#"{"end_user_id": "u", "features": ["vision", "teleport"]}"#, "features[1]"),
        (r#"{"end_user_id": "u", "features": ["vision", "recording", "vision"]}"#, "features[2]"),
        (r#"{"end_user_id": "u", "features": "vision"}"#, "features"),
        (r#"{"end_user_id": "u", "metadata": [1]}"#, "metadata"),
        (r#"{"end_user_id": "u", "metadata": "text"}"#, "metadata"),
        (r#"{"end_user_id": "u", "priority": 1}"#, "priority"),
    ];
    for (json, field) in cases {
        let result = check(json);
        assert!(result.is_err(), "{json} accepted");
        let error = result.unwrap_err();
        assert_eq!((error.code(), error.status()), ("invalid_request", 400), "{json}");
        match error {
            Error::InvalidRequest { field: got, .. } => assert_eq!(&got, field, "{json}"),
            other => panic!("{other:?}"),
        }
    }
    let big = "v".repeat(4097 - r#"{"k":""}"#.len());
    expect_field(check(&format!(r#"{{"end_user_id": "u", "metadata": {{"k": "{big}"}}}}"#)), "metadata");
    expect_field(check(r#"{"quality": "low"}"#), "end_user_id");
    expect_field(check("not json"), "body");
    expect_field(check("[]"), "body");
}

#[test]
fn the_engine_validates_requests_built_in_code() {
    let f = Fixture::new();
    let (_, client) = f.client(None);
    let mut request = CreateSession::new("");
    expect_field(f.engine.create_session(&client, request.clone()), "end_user_id");
    request.end_user_id = "u".into();
    request.features = strings(&["vision", "nope"]);
    expect_field(f.engine.create_session(&client, request.clone()), "features[1]");
    request.features = strings(&["recording"]);
    request.metadata = Some(json!(null));
    expect_field(f.engine.create_session(&client, request.clone()), "metadata");
    request.metadata = Some(json!({"ok": true}));
    let s = f.engine.create_session(&client, request).unwrap().session;
    assert_eq!((s.features, s.metadata), (strings(&["recording"]), json!({"ok": true})));
    assert_eq!(f.engine.slots_in_use(&client.key_id()).unwrap(), 1, "refused requests took no slot");
}

#[test]
fn the_feature_catalog_is_configurable() {
    let mut config = config();
    config.features = strings(&["avatar"]);
    let f = Fixture::with_config(config);
    let (_, client) = f.client(None);
    let mut request = CreateSession::new("u");
    request.features = strings(&["vision"]);
    expect_field(f.engine.create_session(&client, request.clone()), "features[0]");
    request.features = strings(&["avatar"]);
    f.engine.create_session(&client, request).unwrap();
}

// ---------------------------------------------------------------- state machine

#[test]
fn pending_active_completed() {
    let f = Fixture::new();
    let (_, client) = f.client(None);
    let worker = f.operator_worker();
    let created = f.session(&client);
    f.advance(1_500);
    let active = f.connect(&worker, &created);
    assert_eq!(active.status, Status::Active);
    assert_eq!(active.connected_at, Some(T0 + 1_500));
    assert_eq!(active.expires_at, T0 + 1_500 + 3_600_000);
    f.advance(61_000);
    let ended = f.end(&worker, &created.session.id, Outcome::Completed, None).unwrap();
    assert_eq!(ended.status, Status::Completed);
    assert_eq!(ended.ended_at, Some(T0 + 62_500));
    assert_eq!(f.engine.get_session(&client, &created.session.id).unwrap(), ended);
}

#[test]
fn worker_error_fails_with_its_reason() {
    let f = Fixture::new();
    let (_, client) = f.client(None);
    let worker = f.operator_worker();
    let pending = f.session(&client);
    let failed = f.end(&worker, &pending.session.id, Outcome::Failed, Some("gpu lost")).unwrap();
    assert_eq!((failed.status, failed.end_reason.as_deref()), (Status::Failed, Some("gpu lost")));
    let active = f.session(&client);
    f.connect(&worker, &active);
    let failed = f.end(&worker, &active.session.id, Outcome::Failed, Some("oom")).unwrap();
    assert_eq!((failed.status, failed.end_reason.as_deref(), failed.ended_at), (Status::Failed, Some("oom"), Some(T0)));
    let long = "r".repeat(513);
    expect_field(f.end(&worker, &f.session(&client).session.id, Outcome::Failed, Some(&long)), "reason");
}

#[test]
fn terminate_pending_and_active() {
    let f = Fixture::new();
    let (_, client) = f.client(None);
    let worker = f.operator_worker();
    let pending = f.session(&client);
    f.advance(10);
    let done = f.engine.terminate_session(&client, &pending.session.id).unwrap();
    assert_eq!((done.status, done.ended_at), (Status::Completed, Some(T0 + 10)));
    let active = f.session(&client);
    f.connect(&worker, &active);
    let done = f.engine.terminate_session(&client, &active.session.id).unwrap();
    assert_eq!(done.status, Status::Completed);
    expect_code(f.engine.terminate_session(&client, "sess_missing"), "not_found");
}

#[test]
fn pending_expires_after_the_pending_ttl_with_ended_at_equal_expires_at() {
    let f = Fixture::new();
    let (_, client) = f.client(None);
    let created = f.session(&client);
    f.advance(299_999);
    assert_eq!(f.engine.get_session(&client, &created.session.id).unwrap().status, Status::Pending);
    f.advance(5_000);
    // Lazily, on read: no sweep has run.
    let expired = f.engine.get_session(&client, &created.session.id).unwrap();
    assert_eq!(expired.status, Status::Expired);
    assert_eq!(expired.ended_at, Some(created.session.expires_at));
    assert_eq!(expired.ended_at, Some(T0 + 300_000));
}

#[test]
fn active_expires_after_max_duration_with_ended_at_equal_expires_at() {
    let mut config = config();
    config.sessions.max_duration_seconds = 120;
    let f = Fixture::with_config(config);
    let (_, client) = f.client(None);
    let worker = f.operator_worker();
    let created = f.session(&client);
    f.advance(250_000);
    let active = f.connect(&worker, &created);
    assert_eq!(active.expires_at, T0 + 250_000 + 120_000, "max_duration replaces the pending ttl");
    f.advance(119_999);
    assert_eq!(f.engine.get_session(&client, &created.session.id).unwrap().status, Status::Active);
    f.advance(10_000);
    let expired = f.engine.get_session(&client, &created.session.id).unwrap();
    assert_eq!((expired.status, expired.ended_at), (Status::Expired, Some(active.expires_at)));
    // 120 s were spent ACTIVE.
    assert_eq!(f.engine.usage(&f.principal(&f.key(&["billing:read"]))).unwrap().session_seconds, 120);
}

#[test]
fn sweep_expires_every_due_session() {
    let f = Fixture::new();
    let (_, client) = f.client(None);
    let worker = f.operator_worker();
    let a = f.session(&client);
    let b = f.session(&client);
    f.connect(&worker, &b);
    f.advance(200_000);
    let c = f.session(&client);
    f.advance(100_000);
    assert_eq!(f.engine.sweep().unwrap(), 1, "only a is due");
    assert_eq!(f.engine.sweep().unwrap(), 0);
    f.advance(200_000);
    assert_eq!(f.engine.sweep().unwrap(), 1, "c is due, b (ACTIVE) is not");
    let by_id = |id: &str| f.store.session(id).unwrap().unwrap();
    assert_eq!(by_id(&a.session.id).status, Status::Expired);
    assert_eq!(by_id(&b.session.id).status, Status::Active);
    assert_eq!(by_id(&c.session.id).status, Status::Expired);
    assert_eq!(by_id(&c.session.id).ended_at, Some(T0 + 500_000));
    f.advance(3_600_000);
    assert_eq!(f.engine.sweep().unwrap(), 1);
    assert_eq!(by_id(&b.session.id).status, Status::Expired);
}

/// The store's side of a sweep: each due session once, batch after batch until one comes
/// short of the batch asked for, and then none due is left live.
#[test]
fn the_store_expires_due_sessions_until_a_batch_comes_short() {
    let mut config = config();
    config.limits.concurrent_sessions = 11;
    let f = Fixture::with_config(config);
    let (_, client) = f.client(None);
    let mut due: Vec<String> = Vec::new();
    for _ in 0..10 {
        due.push(f.session(&client).session.id);
        f.advance(1_000);
    }
    let later = f.session(&client).session.id;
    let now = f.advance(299_000); // the default pending TTL is 300 s: the first ten are due
    let mut expired = Vec::new();
    loop {
        let batch = f.store.expire_due(now, 4).unwrap();
        let short = batch.len() < 4;
        for (from, session) in &batch {
            assert_eq!((*from, session.status, session.end_reason.as_deref()), (Status::Pending, Status::Expired, Some("expired")));
        }
        expired.extend(batch.into_iter().map(|(_, session)| session.id));
        if short {
            break;
        }
    }
    // The memory store stops at the batch ([4, 4, 2]); SQLite expires all at once ([10, 0]).
    expired.sort();
    due.sort();
    assert_eq!(expired, due);
    assert_eq!(f.store.due_sessions(now).unwrap(), Vec::<String>::new());
    assert_eq!(f.store.session(&later).unwrap().unwrap().status, Status::Pending);
}


#[test]
fn final_states_refuse_every_transition_and_delete_returns_them_unchanged() {
    let f = Fixture::new();
    let (_, client) = f.client(None);
    let worker = f.operator_worker();
    let completed = f.session(&client);
    f.end(&worker, &completed.session.id, Outcome::Completed, None).unwrap();
    let failed = f.session(&client);
    f.end(&worker, &failed.session.id, Outcome::Failed, Some("x")).unwrap();
    let expired = f.session(&client);
    f.advance(300_000);
    f.engine.sweep().unwrap();
    f.advance(1_000);
    for (created, status) in [(&completed, Status::Completed), (&failed, Status::Failed), (&expired, Status::Expired)] {
        let id = &created.session.id;
        let before = f.engine.get_session(&client, id).unwrap();
        assert_eq!(before.status, status);
        let error = expect_code(f.engine.connect_session(&worker, id, &created.session_token), "invalid_transition");
        assert_eq!(error.status(), 409);
        for outcome in [Outcome::Completed, Outcome::Failed] {
            let error = expect_code(f.end(&worker, id, outcome, None), "invalid_transition");
            assert_eq!(error, Error::InvalidTransition { from: status, event: "end" });
        }
        expect_code(f.engine.issue_token(&client, id), "invalid_transition");
        assert_eq!(f.engine.terminate_session(&client, id).unwrap(), before, "DELETE is idempotent");
        assert_eq!(f.engine.terminate_session(&client, id).unwrap(), before);
        assert_eq!(f.engine.get_session(&client, id).unwrap(), before);
    }
}

#[test]
fn connect_twice_is_refused() {
    let f = Fixture::new();
    let (_, client) = f.client(None);
    let worker = f.operator_worker();
    let created = f.session(&client);
    let active = f.connect(&worker, &created);
    f.advance(1_000);
    let error = expect_code(
        f.engine.connect_session(&worker, &created.session.id, &created.session_token),
        "invalid_transition",
    );
    assert_eq!(error, Error::InvalidTransition { from: Status::Active, event: "connect" });
    assert_eq!(f.engine.get_session(&client, &created.session.id).unwrap(), active, "unchanged");
}

#[test]
fn connecting_a_due_session_expires_it_and_is_refused() {
    let mut config = config();
    config.sessions.token_leeway_seconds = 600;
    let f = Fixture::with_config(config);
    let (_, client) = f.client(None);
    let worker = f.operator_worker();
    let created = f.session(&client);
    f.advance(300_000);
    expect_code(f.engine.connect_session(&worker, &created.session.id, &created.session_token), "invalid_transition");
    assert_eq!(f.store.session(&created.session.id).unwrap().unwrap().status, Status::Expired);
}

// ---------------------------------------------------------------- tenant isolation

#[test]
fn another_accounts_sessions_are_not_found() {
    let f = Fixture::new();
    let (_, acme) = f.client(Some("acme"));
    let (_, globex) = f.client(Some("globex"));
    let created = f.session(&acme);
    let id = &created.session.id;
    expect_code(f.engine.get_session(&globex, id), "not_found");
    expect_code(f.engine.terminate_session(&globex, id), "not_found");
    expect_code(f.engine.issue_token(&f.principal(&f.key_in(Some("globex"), &["sessions:write"])), id), "not_found");
    assert!(f.engine.list_sessions(&globex, 100).unwrap().is_empty());
    assert_eq!(f.engine.list_sessions(&acme, 100).unwrap().len(), 1);
    // Even the operator's client keys stay in their account for session reads.
    let (_, operator_client) = f.client(None);
    expect_code(f.engine.get_session(&operator_client, id), "not_found");
    // A worker key of another (non-operator) account cannot reach it either.
    let globex_worker = f.principal(&f.key_in(Some("globex"), &["workers:write"]));
    expect_code(f.engine.connect_session(&globex_worker, id, &created.session_token), "not_found");
    expect_code(f.end(&globex_worker, id, Outcome::Completed, None), "not_found");
    assert_eq!(f.engine.get_session(&acme, id).unwrap().status, Status::Pending, "untouched");
}

#[test]
fn the_operators_worker_keys_act_on_any_account() {
    let f = Fixture::new();
    let (_, acme) = f.client(Some("acme"));
    let worker = f.operator_worker();
    let created = f.session(&acme);
    assert_eq!(f.connect(&worker, &created).status, Status::Active);
    let ended = f.end(&worker, &created.session.id, Outcome::Completed, None).unwrap();
    assert_eq!((ended.status, ended.account_id.as_str()), (Status::Completed, "acme"));
    // An account's own worker key may act on its own sessions.
    let acme_worker = f.principal(&f.key_in(Some("acme"), &["workers:write"]));
    let own = f.session(&acme);
    assert_eq!(f.connect(&acme_worker, &own).status, Status::Active);
    // Connect and end need worker.write.
    let other = f.session(&acme);
    expect_code(f.engine.connect_session(&acme, &other.session.id, &other.session_token), "insufficient_scope");
    expect_code(f.end(&acme, &other.session.id, Outcome::Completed, None), "insufficient_scope");
}

// ---------------------------------------------------------------- placement

fn register(f: &Fixture, admin: &Principal, node: &str, capacity: u32) {
    f.engine.register_worker(admin, worker(node, capacity)).unwrap();
}

#[test]
fn placement_picks_the_most_free_capacity_ties_in_registration_order() {
    let f = Fixture::new();
    let ops = f.operator_worker();
    register(&f, &ops, "b", 2);
    register(&f, &ops, "a", 3);
    register(&f, &ops, "c", 3);
    let client = f.principal(&f.key_with_limits(
        None,
        &["sessions:write", "sessions:read"],
        astack::limits::KeyLimits { concurrent_sessions: Some(100), ..Default::default() },
    ));
    let placed: Vec<(String, String)> =
        (0..8).map(|_| f.session(&client).session).map(|s| (s.node_id, s.worker_url)).collect();
    let nodes: Vec<&str> = placed.iter().map(|(node, _)| node.as_str()).collect();
    // free: b2 a3 c3 → a (tie a/c: a registered first); b2 a2 c3 → c; b2 a2 c2 → b; …
    assert_eq!(nodes, ["a", "c", "b", "a", "c", "b", "a", "c"]);
    assert!(placed.iter().all(|(node, url)| *url == format!("wss://{node}.example")));
    let error = expect_code(f.engine.create_session(&client, CreateSession::new("u")), "no_worker_available");
    assert_eq!(error.status(), 503);
    // Ending a session frees room on its worker.
    let on_a = f.engine.list_sessions(&client, 100).unwrap().into_iter().find(|s| s.node_id == "a").unwrap();
    f.engine.terminate_session(&client, &on_a.id).unwrap();
    assert_eq!(f.session(&client).session.node_id, "a");
    let listed = f.engine.list_workers(&ops).unwrap();
    let loads: Vec<(&str, u32)> = listed.iter().map(|w| (w.worker.node_id.as_str(), w.active_sessions)).collect();
    assert_eq!(loads, [("b", 2), ("a", 3), ("c", 3)]);
}

#[test]
fn draining_workers_are_skipped() {
    let f = Fixture::new();
    let ops = f.operator_worker();
    register(&f, &ops, "big", 100);
    register(&f, &ops, "small", 1);
    let (_, client) = f.client(None);
    assert_eq!(f.session(&client).session.node_id, "big");
    f.engine.update_worker(&ops, "big", UpdateWorker { draining: Some(true), ..Default::default() }).unwrap();
    assert_eq!(f.session(&client).session.node_id, "small");
    expect_code(f.engine.create_session(&client, CreateSession::new("u")), "no_worker_available");
    f.engine.update_worker(&ops, "small", UpdateWorker { capacity: Some(2), ..Default::default() }).unwrap();
    assert_eq!(f.session(&client).session.node_id, "small");
    // Draining every worker does not fall back to the default worker.
    f.engine.update_worker(&ops, "small", UpdateWorker { draining: Some(true), ..Default::default() }).unwrap();
    expect_code(f.engine.create_session(&client, CreateSession::new("u")), "no_worker_available");
    expect_code(f.engine.update_worker(&ops, "nope", UpdateWorker::default()), "not_found");
    expect_field(f.engine.update_worker(&ops, "big", UpdateWorker { capacity: Some(0), ..Default::default() }), "capacity");
}

#[test]
fn the_default_worker_serves_while_none_is_registered() {
    let mut config = config();
    config.default_worker = worker("fallback", 1);
    let f = Fixture::with_config(config);
    let (_, client) = f.client(None);
    let first = f.session(&client);
    assert_eq!((first.session.node_id.as_str(), first.session.worker_url.as_str()), ("fallback", "wss://fallback.example"));
    expect_code(f.engine.create_session(&client, CreateSession::new("u")), "no_worker_available");
    f.engine.terminate_session(&client, &first.session.id).unwrap();
    f.session(&client);
}

#[test]
fn configured_workers_are_registered_and_only_the_operator_registers_more() {
    let mut config = config();
    config.workers = vec![worker("w1", 5)];
    let f = Fixture::with_config(config);
    let (_, client) = f.client(None);
    assert_eq!(f.session(&client).session.node_id, "w1");
    let acme_admin = f.principal(&f.key_in(Some("acme"), &["admin:all"]));
    expect_code(f.engine.register_worker(&acme_admin, worker("w2", 1)), "forbidden");
    expect_code(f.engine.update_worker(&acme_admin, "w1", UpdateWorker::default()), "forbidden");
    expect_code(f.engine.register_worker(&f.admin, worker("w1", 1)), "already_exists");
    expect_field(f.engine.register_worker(&f.admin, worker("bad node", 1)), "node_id");
    let mut bad_url = worker("w3", 1);
    bad_url.url = "ftp://x".into();
    expect_field(f.engine.register_worker(&f.admin, bad_url), "url");
    expect_code(f.engine.list_workers(&client), "insufficient_scope");
}

// ---------------------------------------------------------------- tokens

fn claims_for(f: &Fixture, id: &str, aud: &str) -> Claims {
    let now = (f.now() / 1000) as i64;
    Claims {
        iss: ISSUER.into(),
        sub: id.into(),
        aud: aud.into(),
        acc: "default".into(),
        uid: "user-1".into(),
        features: vec![],
        quality: "standard".into(),
        iat: now,
        nbf: now,
        exp: now + 60,
        jti: Claims::new_jti(),
    }
}

fn sign(secret: &[u8], claims: &Claims) -> String {
    Keyring::new(vec![SigningKey::new("k1", secret.to_vec()).unwrap()]).unwrap().sign(claims)
}

#[test]
fn session_tokens_carry_the_session_and_verify_through_the_engine() {
    let f = Fixture::new();
    let (_, client) = f.client(Some("acme"));
    let mut request = CreateSession::new("end-user-9");
    request.features = strings(&["vision"]);
    request.quality = Quality::Low;
    let created = f.engine.create_session(&client, request).unwrap();
    let claims = f.engine.verify_token(&created.session_token, Some("local"), Some(&created.session.id)).unwrap();
    assert_eq!(claims.iss, "astack");
    assert_eq!(claims.sub, created.session.id);
    assert_eq!(claims.aud, "local");
    assert_eq!(claims.acc, "acme");
    assert_eq!(claims.uid, "end-user-9");
    assert_eq!(claims.features, strings(&["vision"]));
    assert_eq!(claims.quality, "low");
    assert_eq!((claims.iat, claims.nbf), ((T0 / 1000) as i64, (T0 / 1000) as i64));
    // The default lifetime is 600 s but the PENDING session expires in 300 s.
    assert_eq!(claims.exp, ((T0 + 300_000) / 1000) as i64);
    let again = f.engine.issue_token(&client, &created.session.id).unwrap();
    assert_ne!(again, created.session_token, "every token has its own jti");
    assert!(!serde_json::to_string(&created.session).unwrap().contains(&created.session_token));
}

#[test]
fn token_lifetime_is_configurable_and_never_past_the_session() {
    let mut config = config();
    config.sessions.token_ttl_seconds = 60;
    let f = Fixture::with_config(config);
    let (_, client) = f.client(None);
    let worker = f.operator_worker();
    let created = f.session(&client);
    let claims = f.engine.verify_token(&created.session_token, None, None).unwrap();
    assert_eq!(claims.exp - claims.iat, 60);
    f.advance(60_000);
    let error = expect_code(
        f.engine.connect_session(&worker, &created.session.id, &created.session_token),
        "invalid_token",
    );
    assert_eq!(error.details()["reason"], "expired");
    assert_eq!(error.status(), 401);
    // A fresh token connects; tokens of an ACTIVE session end no later than it does.
    let fresh = f.engine.issue_token(&client, &created.session.id).unwrap();
    f.engine.connect_session(&worker, &created.session.id, &fresh).unwrap();
    f.advance(3_599_000 - 60_000);
    let late = f.engine.issue_token(&client, &created.session.id).unwrap();
    let expires_at = f.engine.get_session(&client, &created.session.id).unwrap().expires_at;
    let claims = f.engine.verify_token(&late, None, None).unwrap();
    assert!(claims.exp * 1000 <= expires_at as i64, "{} > {expires_at}", claims.exp * 1000);
}

#[test]
fn connect_requires_the_sessions_own_token_for_its_worker() {
    let f = Fixture::new();
    let (_, client) = f.client(None);
    let worker = f.operator_worker();
    let a = f.session(&client);
    let b = f.session(&client);
    let reason = |result: astack::Result<astack::session::Session>| match expect_code(result, "invalid_token") {
        Error::InvalidToken { reason } => reason.as_str(),
        other => panic!("{other:?}"),
    };
    // b's token presented for a.
    assert_eq!(reason(f.engine.connect_session(&worker, &a.session.id, &b.session_token)), "wrong_session");
    // a's id but another worker's audience.
    let elsewhere = sign(SECRET.as_bytes(), &claims_for(&f, &a.session.id, "other-node"));
    assert_eq!(reason(f.engine.connect_session(&worker, &a.session.id, &elsewhere)), "wrong_audience");
    // Signed with another secret.
    let forged = sign(b"another-secret-that-is-32-bytes!", &claims_for(&f, &a.session.id, "local"));
    assert_eq!(reason(f.engine.connect_session(&worker, &a.session.id, &forged)), "bad_signature");
    // Right sub and aud, but for another account.
    let mut foreign = claims_for(&f, &a.session.id, "local");
    foreign.acc = "acme".into();
    let foreign = sign(SECRET.as_bytes(), &foreign);
    assert_eq!(reason(f.engine.connect_session(&worker, &a.session.id, &foreign)), "wrong_session");
    assert_eq!(reason(f.engine.connect_session(&worker, &a.session.id, "garbage")), "malformed");
    // Nothing changed; the right token still connects.
    assert_eq!(f.engine.get_session(&client, &a.session.id).unwrap().status, Status::Pending);
    f.connect(&worker, &a);
    expect_code(f.engine.connect_session(&worker, "sess_missing", &a.session_token), "not_found");
}

#[test]
fn a_hand_signed_token_with_the_engines_key_connects() {
    let f = Fixture::new();
    let (_, client) = f.client(None);
    let worker = f.operator_worker();
    let created = f.session(&client);
    let token = sign(SECRET.as_bytes(), &claims_for(&f, &created.session.id, "local"));
    assert_eq!(f.engine.connect_session(&worker, &created.session.id, &token).unwrap().status, Status::Active);
}
