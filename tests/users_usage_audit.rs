//! Users, usage and audit (SPEC §8): users CRUD per account, metering, custom metrics with
//! idempotency keys, alerts, and an audit log that records everything and leaks nothing.

mod common;

use astack::session::{CreatedSession, Outcome};
use astack::usage::{CreateAlert, RecordUsage};
use astack::users::{CreateUser, UpdateUser};
use astack::{Error, Operation};
use common::*;
use serde_json::json;

fn user(name: &str) -> CreateUser {
    CreateUser { name: name.into(), email: Some(format!("{name}@example.com")), metadata: None }
}

fn metric(name: &str, quantity: u64, idempotency_key: Option<&str>) -> RecordUsage {
    RecordUsage { metric: name.into(), quantity, idempotency_key: idempotency_key.map(str::to_owned) }
}

// ---------------------------------------------------------------- users

#[test]
fn users_crud_within_an_account() {
    let f = Fixture::new();
    let p = f.principal(&f.key_in(Some("acme"), &["users:read", "users:write"]));
    let ada = f.engine.create_user(&p, user("ada")).unwrap();
    assert!(ada.id.starts_with("user_"));
    assert_eq!((ada.account_id.as_str(), ada.created_at, ada.updated_at), ("acme", T0, T0));
    assert_eq!(ada.metadata, json!({}));
    f.advance(10);
    let bob = f.engine.create_user(&p, user("bob")).unwrap();
    assert_eq!(f.engine.get_user(&p, &ada.id).unwrap(), ada);
    let listed: Vec<String> = f.engine.list_users(&p, 50).unwrap().into_iter().map(|u| u.name).collect();
    assert_eq!(listed, ["bob", "ada"], "newest first");
    assert_eq!(f.engine.list_users(&p, 1).unwrap().len(), 1);
    f.advance(10);
    let change = UpdateUser { name: Some("Ada L.".into()), email: Some(None), metadata: Some(json!({"tier": 2})) };
    let updated = f.engine.update_user(&p, &ada.id, change).unwrap();
    assert_eq!(updated.name, "Ada L.");
    assert_eq!(updated.email, None);
    assert_eq!(updated.metadata, json!({"tier": 2}));
    assert_eq!((updated.created_at, updated.updated_at), (T0, T0 + 20));
    // Absent fields stay.
    let same = f.engine.update_user(&p, &ada.id, UpdateUser::default()).unwrap();
    assert_eq!((same.name.as_str(), same.metadata.clone()), ("Ada L.", json!({"tier": 2})));
    let deleted = f.engine.delete_user(&p, &bob.id).unwrap();
    assert_eq!(deleted.id, bob.id);
    expect_code(f.engine.get_user(&p, &bob.id), "not_found");
    expect_code(f.engine.delete_user(&p, &bob.id), "not_found");
    assert_eq!(f.engine.list_users(&p, 50).unwrap().len(), 1);
}

#[test]
fn users_are_isolated_between_accounts() {
    let f = Fixture::new();
    let acme = f.principal(&f.key_in(Some("acme"), &["users:read", "users:write"]));
    let globex = f.principal(&f.key_in(Some("globex"), &["users:read", "users:write"]));
    let ada = f.engine.create_user(&acme, user("ada")).unwrap();
    expect_code(f.engine.get_user(&globex, &ada.id), "not_found");
    expect_code(f.engine.update_user(&globex, &ada.id, UpdateUser::default()), "not_found");
    expect_code(f.engine.delete_user(&globex, &ada.id), "not_found");
    assert!(f.engine.list_users(&globex, 50).unwrap().is_empty());
    // Not even the operator's keys reach another account's users.
    let operator = f.principal(&f.key(&["users:read", "users:write"]));
    expect_code(f.engine.get_user(&operator, &ada.id), "not_found");
    assert_eq!(f.engine.get_user(&acme, &ada.id).unwrap(), ada, "untouched");
}

#[test]
fn user_operations_need_their_scopes() {
    let f = Fixture::new();
    let writer = f.principal(&f.key(&["users:write"]));
    let reader = f.principal(&f.key(&["users:read"]));
    let ada = f.engine.create_user(&writer, user("ada")).unwrap();
    // users:write alone may update and delete (SPEC §3: PATCH/DELETE are user.write).
    f.engine.update_user(&writer, &ada.id, UpdateUser { name: Some("A".into()), ..Default::default() }).unwrap();
    expect_code(f.engine.get_user(&writer, &ada.id), "insufficient_scope");
    expect_code(f.engine.create_user(&reader, user("x")), "insufficient_scope");
    expect_code(f.engine.update_user(&reader, &ada.id, UpdateUser::default()), "insufficient_scope");
    expect_code(f.engine.delete_user(&reader, &ada.id), "insufficient_scope");
    f.engine.delete_user(&writer, &ada.id).unwrap();
}

#[test]
fn user_fields_are_validated() {
    let f = Fixture::new();
    let p = f.principal(&f.key(&["users:read", "users:write"]));
    let named = |name: &str, email: Option<&str>| CreateUser {
        name: name.into(),
        email: email.map(str::to_owned),
        metadata: None,
    };
    expect_field(f.engine.create_user(&p, named("", None)), "name");
    expect_field(f.engine.create_user(&p, named(&"n".repeat(257), None)), "name");
    expect_field(f.engine.create_user(&p, named("a\tb", None)), "name");
    expect_field(f.engine.create_user(&p, named("a", Some("no-at-sign"))), "email");
    expect_field(f.engine.create_user(&p, named("a", Some("two@@x"))), "email");
    let mut bad_meta = named("a", None);
    bad_meta.metadata = Some(json!([1]));
    expect_field(f.engine.create_user(&p, bad_meta), "metadata");
    let parsed = astack::validate::from_json::<CreateUser>(r#"{"name": "a", "phone": "1"}"#, |field, message| {
        Error::InvalidRequest { field, message }
    });
    expect_field(parsed, "phone");
    let ada = f.engine.create_user(&p, named("ada", None)).unwrap();
    expect_field(f.engine.update_user(&p, &ada.id, UpdateUser { name: Some(String::new()), ..Default::default() }), "name");
    let bad_email = UpdateUser { email: Some(Some("x".into())), ..Default::default() };
    expect_field(f.engine.update_user(&p, &ada.id, bad_email), "email");
    assert_eq!(f.engine.get_user(&p, &ada.id).unwrap(), ada, "a refused change changes nothing");
}

// ---------------------------------------------------------------- usage

#[test]
fn requests_and_session_seconds_are_metered() {
    let f = Fixture::new();
    let client_key = f.key_in(Some("acme"), &["sessions:read", "sessions:write", "billing:read"]);
    let client = f.principal(&client_key);
    let worker = f.operator_worker();
    for _ in 0..3 {
        f.auth(&client_key.key, Operation::SessionRead);
    }
    let a = f.session(&client);
    let b = f.session(&client);
    f.advance(5_000);
    f.connect(&worker, &a);
    f.connect(&worker, &b);
    f.advance(42_700);
    f.end(&worker, &a.session.id, Outcome::Completed, None).unwrap();
    assert_eq!(f.engine.usage(&client).unwrap().session_seconds, 42);
    f.advance(10_000);
    f.engine.terminate_session(&client, &b.session.id).unwrap();
    // A session that never connected adds nothing.
    let c = f.session(&client);
    f.engine.terminate_session(&client, &c.session.id).unwrap();
    let usage = f.engine.usage(&client).unwrap();
    assert_eq!(usage.account_id, "acme");
    assert_eq!(usage.requests, 3);
    assert_eq!(usage.session_seconds, 42 + 52);
    assert_eq!(usage.metrics["requests"], 3);
    assert_eq!(usage.metrics["session_seconds"], 94);
    // Another account saw none of it.
    let other = f.principal(&f.key_in(Some("globex"), &["billing:read"]));
    let theirs = f.engine.usage(&other).unwrap();
    assert_eq!((theirs.requests, theirs.session_seconds), (0, 0));
    expect_code(f.engine.usage(&worker), "insufficient_scope");
}

#[test]
fn custom_metrics_count_each_idempotency_key_once() {
    let f = Fixture::new();
    let p = f.principal(&f.key_in(Some("acme"), &["billing:read", "billing:write"]));
    let r = f.engine.record_usage(&p, metric("minutes.tts", 5, Some("evt-1"))).unwrap();
    assert_eq!((r.total, r.counted), (5, true));
    let r = f.engine.record_usage(&p, metric("minutes.tts", 5, Some("evt-1"))).unwrap();
    assert_eq!((r.total, r.counted), (5, false));
    let r = f.engine.record_usage(&p, metric("minutes.tts", 7, Some("evt-2"))).unwrap();
    assert_eq!((r.total, r.counted), (12, true));
    // Without a key, every record counts.
    f.engine.record_usage(&p, metric("minutes.tts", 1, None)).unwrap();
    let r = f.engine.record_usage(&p, metric("minutes.tts", 1, None)).unwrap();
    assert_eq!(r.total, 14);
    // The same idempotency key on another metric is another record.
    let r = f.engine.record_usage(&p, metric("gpu_seconds", 3, Some("evt-1"))).unwrap();
    assert_eq!((r.total, r.counted), (3, true));
    assert_eq!(f.engine.usage(&p).unwrap().metrics["minutes.tts"], 14);
    // Another account's same key counts for it.
    let other = f.principal(&f.key_in(Some("globex"), &["billing:read", "billing:write"]));
    assert!(f.engine.record_usage(&other, metric("minutes.tts", 5, Some("evt-1"))).unwrap().counted);
    assert_eq!(f.engine.usage(&other).unwrap().metrics["minutes.tts"], 5);
    assert_eq!(f.engine.usage(&p).unwrap().metrics["minutes.tts"], 14);
}

#[test]
fn reserved_and_invalid_metrics_are_refused() {
    let f = Fixture::new();
    let p = f.principal(&f.key_in(Some("acme"), &["billing:read", "billing:write"]));
    expect_field(f.engine.record_usage(&p, metric("requests", 1, None)), "metric");
    expect_field(f.engine.record_usage(&p, metric("session_seconds", 1, None)), "metric");
    expect_field(f.engine.record_usage(&p, metric("", 1, None)), "metric");
    expect_field(f.engine.record_usage(&p, metric("Upper", 1, None)), "metric");
    expect_field(f.engine.record_usage(&p, metric(&"m".repeat(65), 1, None)), "metric");
    expect_field(f.engine.record_usage(&p, metric("ok", 1 << 53, None)), "quantity");
    expect_field(f.engine.record_usage(&p, metric("ok", 1, Some(""))), "idempotency_key");
    let usage = f.engine.usage(&p).unwrap();
    assert_eq!((usage.requests, usage.session_seconds), (0, 0));
    assert!(!usage.metrics.contains_key("ok"));
    let reader = f.principal(&f.key(&["billing:read"]));
    expect_code(f.engine.record_usage(&reader, metric("ok", 1, None)), "insufficient_scope");
    expect_code(f.engine.create_alert(&reader, CreateAlert { metric: "ok".into(), threshold: 1 }), "insufficient_scope");
}

#[test]
fn alerts_fire_once_with_their_time() {
    let f = Fixture::new();
    let p = f.principal(&f.key(&["billing:read", "billing:write"]));
    let alert = f.engine.create_alert(&p, CreateAlert { metric: "tts".into(), threshold: 10 }).unwrap();
    assert_eq!(alert.fired_at, None);
    f.engine.record_usage(&p, metric("tts", 9, None)).unwrap();
    assert_eq!(f.engine.list_alerts(&p).unwrap()[0].fired_at, None);
    f.advance(1_234);
    f.engine.record_usage(&p, metric("tts", 1, None)).unwrap();
    assert_eq!(f.engine.list_alerts(&p).unwrap()[0].fired_at, Some(T0 + 1_234));
    f.advance(1_000);
    f.engine.record_usage(&p, metric("tts", 100, None)).unwrap();
    let alerts = f.engine.list_alerts(&p).unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].fired_at, Some(T0 + 1_234), "fires once");
    // An alert already reached fires at creation.
    let late = f.engine.create_alert(&p, CreateAlert { metric: "tts".into(), threshold: 5 }).unwrap();
    assert_eq!(late.fired_at, Some(T0 + 2_234));
    expect_field(f.engine.create_alert(&p, CreateAlert { metric: "tts".into(), threshold: 0 }), "threshold");
    expect_field(f.engine.create_alert(&p, CreateAlert { metric: "T T".into(), threshold: 1 }), "metric");
    let names: Vec<u64> = f.engine.list_alerts(&p).unwrap().iter().map(|a| a.threshold).collect();
    assert_eq!(names, [5, 10], "newest first");
}

#[test]
fn alerts_on_requests_and_session_seconds() {
    let f = Fixture::new();
    let billing = f.key_in(Some("acme"), &["billing:read", "billing:write", "sessions:write"]);
    let p = f.principal(&billing);
    f.engine.create_alert(&p, CreateAlert { metric: "requests".into(), threshold: 3 }).unwrap();
    f.engine.create_alert(&p, CreateAlert { metric: "session_seconds".into(), threshold: 60 }).unwrap();
    f.auth(&billing.key, Operation::BillingRead);
    f.auth(&billing.key, Operation::BillingRead);
    let fired = |metric: &str| {
        f.engine.list_alerts(&p).unwrap().into_iter().find(|a| a.metric == metric).unwrap().fired_at
    };
    assert_eq!(fired("requests"), None);
    f.advance(500);
    f.auth(&billing.key, Operation::BillingRead);
    assert_eq!(fired("requests"), Some(T0 + 500));
    let worker = f.operator_worker();
    let s = f.session(&p);
    f.connect(&worker, &s);
    f.advance(60_000);
    assert_eq!(fired("session_seconds"), None);
    f.end(&worker, &s.session.id, Outcome::Completed, None).unwrap();
    assert_eq!(fired("session_seconds"), Some(T0 + 60_500));
}

#[test]
fn request_alerts_count_every_request_made_before_them() {
    let f = Fixture::new();
    let billing = f.key_in(Some("acme"), &["billing:read", "billing:write"]);
    let other = f.key_in(Some("acme"), &["billing:read"]);
    let p = f.principal(&billing);
    // Without an alert, requests may be counted on each key first (batched); every reader of
    // the total must still see each of them.
    for _ in 0..30 {
        f.auth(&billing.key, Operation::BillingRead);
        f.auth(&other.key, Operation::BillingRead);
    }
    let base = f.engine.usage(&p).unwrap().requests;
    assert_eq!(base, 60);
    let fired = |threshold: u64| {
        f.engine.list_alerts(&p).unwrap().into_iter().find(|a| a.threshold == threshold).unwrap().fired_at
    };
    f.engine.create_alert(&p, CreateAlert { metric: "requests".into(), threshold: base }).unwrap();
    assert_eq!(fired(base), Some(T0), "already reached when created");
    f.engine.create_alert(&p, CreateAlert { metric: "requests".into(), threshold: base + 3 }).unwrap();
    f.auth(&other.key, Operation::BillingRead);
    f.auth(&billing.key, Operation::BillingRead);
    assert_eq!(fired(base + 3), None);
    f.auth(&other.key, Operation::BillingRead);
    assert_eq!(fired(base + 3), Some(T0), "fired by the request that reached it");
    assert_eq!(f.engine.usage(&p).unwrap().requests, base + 3);
}

// ---------------------------------------------------------------- audit

#[test]
fn audit_records_every_change_and_denial() {
    let f = Fixture::new();
    let client_key = f.key_in(Some("acme"), &["sessions:read", "sessions:write", "users:write"]);
    let client = f.principal(&client_key);
    let worker = f.operator_worker();
    let rotated = f.engine.rotate_key(&f.admin, &client_key.record.id, 3600).unwrap();
    let a = f.session(&client);
    f.connect(&worker, &a);
    f.end(&worker, &a.session.id, Outcome::Completed, None).unwrap();
    let b = f.session(&client);
    f.end(&worker, &b.session.id, Outcome::Failed, Some("boom")).unwrap();
    let c = f.session(&client);
    f.engine.terminate_session(&client, &c.session.id).unwrap();
    let d = f.session(&client);
    f.advance(300_000);
    f.engine.sweep().unwrap();
    let u = f.engine.create_user(&client, user("ada")).unwrap();
    f.engine.update_user(&client, &u.id, UpdateUser::default()).unwrap();
    f.engine.delete_user(&client, &u.id).unwrap();
    f.engine.register_worker(&f.admin, worker_def("w9")).unwrap();
    f.engine.update_worker(&f.admin, "w9", astack::workers::UpdateWorker { draining: Some(true), ..Default::default() }).unwrap();
    f.denied(&client_key.key, Operation::BillingRead);
    f.engine.revoke_key(&f.admin, &rotated.record.id).unwrap();
    f.denied(&rotated.key, Operation::SessionRead);

    let audit = f.engine.audit(&f.admin, 10_000).unwrap();
    let has = |action: &str, target: &str| audit.iter().any(|r| r.action == action && r.target.as_deref() == Some(target));
    assert!(has("key.created", &client_key.record.id));
    assert!(has("key.rotated", &rotated.record.id));
    assert!(has("key.revoked", &rotated.record.id));
    for (session, actions) in [
        (&a, &["session.created", "session.connected", "session.completed"][..]),
        (&b, &["session.created", "session.failed"]),
        (&c, &["session.created", "session.completed"]),
        (&d, &["session.created", "session.expired"]),
    ] {
        let seen: Vec<&str> = audit
            .iter()
            .rev()
            .filter(|r| r.target.as_deref() == Some(session.session.id.as_str()))
            .map(|r| r.action.as_str())
            .collect();
        assert_eq!(seen, actions, "{}", session.session.id);
    }
    // A session's creation names its actor and where the session was placed.
    let created = audit.iter().find(|r| r.action == "session.created" && r.target.as_deref() == Some(a.session.id.as_str())).unwrap();
    assert_eq!(created.account_id, "acme");
    assert_eq!(created.actor_key_id.as_deref(), Some(client_key.record.id.as_str()));
    assert_eq!(created.actor_prefix.as_deref(), Some(client_key.record.prefix.as_str()));
    assert_eq!(created.detail, serde_json::json!({"status": "PENDING", "node_id": a.session.node_id}));
    // A transition names the states it joined and the end's reason.
    let detail = |created: &CreatedSession, action: &str| {
        let target = Some(created.session.id.as_str());
        audit.iter().find(|r| r.action == action && r.target.as_deref() == target).unwrap().detail.clone()
    };
    assert_eq!(detail(&a, "session.connected"), json!({"from": "PENDING", "to": "ACTIVE", "end_reason": null}));
    assert_eq!(detail(&a, "session.completed"), json!({"from": "ACTIVE", "to": "COMPLETED", "end_reason": "completed"}));
    assert_eq!(detail(&b, "session.failed"), json!({"from": "PENDING", "to": "FAILED", "end_reason": "boom"}));
    assert_eq!(detail(&d, "session.expired"), json!({"from": "PENDING", "to": "EXPIRED", "end_reason": "expired"}));
    assert!(has("user.created", &u.id) && has("user.updated", &u.id) && has("user.deleted", &u.id));
    assert!(has("worker.registered", "w9") && has("worker.updated", "w9"));
    let denied: Vec<_> = audit.iter().filter(|r| r.action == "request.denied").collect();
    assert_eq!(denied.len(), 2);
    assert_eq!(denied[1].actor_prefix.as_deref(), Some(client_key.record.prefix.as_str()));
    assert_eq!(denied[1].detail, json!({"code": "insufficient_scope", "operation": "billing.read"}));
    assert_eq!(denied[0].detail, json!({"code": "api_key_revoked", "operation": "session.read"}));
    assert_eq!(denied[0].actor_prefix.as_deref(), Some(rotated.record.prefix.as_str()));
    assert!(denied.iter().all(|r| r.account_id == "acme"));
    // Newest first, times from the engine's clock.
    assert!(audit.windows(2).all(|w| w[0].at >= w[1].at));
    assert!(audit.iter().all(|r| r.id.starts_with("aud_")));

    // Never a key or a token, in any record.
    let json = serde_json::to_string(&audit).unwrap();
    for secret in [&client_key.key, &rotated.key, &f.admin_key] {
        assert!(!json.contains(secret.as_str()) && !json.contains(&secret[3..33]));
    }
    for session in [&a, &b, &c, &d] {
        assert!(!json.contains(&session.session_token));
        let signature = session.session_token.rsplit('.').next().unwrap();
        assert!(!json.contains(signature));
    }
}

fn worker_def(node: &str) -> astack::workers::Worker {
    worker(node, 10)
}

#[test]
fn audit_is_per_account_for_other_admins() {
    let f = Fixture::new();
    let acme_admin = f.principal(&f.key_in(Some("acme"), &["admin:all"]));
    let globex = f.key_in(Some("globex"), &["sessions:read"]);
    f.denied(&globex.key, Operation::Admin);
    let theirs = f.engine.audit(&acme_admin, 1000).unwrap();
    assert!(theirs.iter().all(|r| r.account_id == "acme"));
    assert!(f.engine.audit(&f.admin, 1000).unwrap().iter().any(|r| r.account_id == "globex"));
    expect_code(f.engine.audit(&f.principal(&globex), 10), "insufficient_scope");
    assert_eq!(f.engine.audit(&f.admin, 1).unwrap().len(), 1);
}
