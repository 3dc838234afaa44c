//! Sessions per second, two figures with no peer library doing the same (they stand alone):
//! - the life of a session: `create_session` (validate, slot, place, audit, sign the token) +
//!   `connect_session` (verify the token, PENDING → ACTIVE) + `end_session` (→ COMPLETED,
//!   session seconds metered);
//! - what the reference server's `POST /api/v1/sessions` asks of the engine: `authorize` for
//!   `session.create` + `create_session`, the sessions left PENDING as the server's benchmark
//!   leaves them.
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
    let best = best_rate(n, life);
    println!("sessions: create + connect + end: {best:.0} per second ({:.1} µs each)", 1e6 / best);
    report("sessions/create_connect_end", best, None, "ops/s", "-");

    // Room for every session the POST loop leaves PENDING.
    let engine = Engine::from_json(r#"{"default_worker": {"node_id": "local", "url": "ws://127.0.0.1:8081", "capacity": 1000000}}"#)
        .expect("engine");
    let admin_key = engine.bootstrap_admin_key(None).expect("bootstrap").expect("generated");
    let admin = engine.authorize(&admin_key, Operation::Admin).map_err(|d| d.error).expect("admin").principal;
    let limits = KeyLimits { requests_per_minute: Some(PER_MINUTE), requests_per_hour: Some(PER_HOUR), concurrent_sessions: Some(1_000_000) };
    let key = engine
        .create_key(&admin, CreateKey { scopes: vec!["sessions:write".into()], limits, ..Default::default() })
        .expect("key")
        .key;
    let post = || {
        let principal = engine.authorize(&key, Operation::SessionCreate).map_err(|d| d.error).expect("auth").principal;
        engine.create_session(&principal, request.clone()).expect("create");
    };
    let best = best_rate(n, post);
    println!("sessions: authorize + create (a POST's engine work): {best:.0} per second ({:.2} µs each)", 1e6 / best);
    report("sessions/authorize_create", best, None, "ops/s", "-");
}

/// The best rate of `f` over a few rounds of `n` calls, after a warm-up.
fn best_rate(n: usize, f: impl Fn()) -> f64 {
    for _ in 0..if smoke() { 10 } else { 1_000 } {
        f();
    }
    let mut best = 0f64;
    for _ in 0..if quick() { 2 } else { 3 } {
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        best = best.max(n as f64 / start.elapsed().as_secs_f64());
    }
    best
}
