//! The life of a session per second: `create_session` (validate, slot, place, audit, sign the
//! token) + `connect_session` (verify the token, PENDING → ACTIVE) + `end_session` (→ COMPLETED,
//! session seconds metered). There is no peer library doing the same; the figure stands alone.
//!
//! `cargo bench --bench sessions` (`BENCH_QUICK=1` for a shorter run).

mod common;

use std::time::Instant;

use astack::keys::CreateKey;
use astack::limits::KeyLimits;
use astack::session::{CreateSession, EndSession, Outcome};
use astack::{Config, Engine, Operation};
use common::*;

fn main() {
    let engine = Engine::new(Config::default()).expect("engine");
    let admin_key = engine.bootstrap_admin_key(None).expect("bootstrap").expect("generated");
    let admin = engine.authorize(&admin_key, Operation::Admin).map_err(|d| d.error).expect("admin").principal;
    let key = engine
        .create_key(
            &admin,
            CreateKey {
                scopes: vec!["sessions:write".into(), "workers:write".into()],
                limits: KeyLimits { requests_per_minute: Some(PER_MINUTE), requests_per_hour: Some(PER_HOUR), concurrent_sessions: Some(1_000) },
                ..Default::default()
            },
        )
        .expect("key")
        .key;
    let principal = engine.authorize(&key, Operation::SessionCreate).map_err(|d| d.error).expect("auth").principal;
    let request: CreateSession =
        serde_json::from_str(r#"{"end_user_id": "user-1", "features": ["vision"]}"#).expect("request");
    let life = || {
        let created = engine.create_session(&principal, request.clone()).expect("create");
        let id = created.session.id;
        engine.connect_session(&principal, &id, &created.session_token).expect("connect");
        engine.end_session(&principal, &id, EndSession { outcome: Outcome::Completed, reason: None }).expect("end");
    };
    let n = if smoke() { 200 } else if quick() { 5_000 } else { 30_000 };
    for _ in 0..if smoke() { 10 } else { 1_000 } {
        life();
    }
    let mut best = 0f64;
    for _ in 0..if quick() { 2 } else { 3 } {
        let start = Instant::now();
        for _ in 0..n {
            life();
        }
        best = best.max(n as f64 / start.elapsed().as_secs_f64());
    }
    println!("sessions: create + connect + end: {best:.0} per second ({:.1} µs each)", 1e6 / best);
    report("sessions/create_connect_end", best, None, "ops/s", "-");
}
