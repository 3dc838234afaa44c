//! A plain loop over what `POST /api/v1/sessions` asks of the engine, for profilers
//! (`valgrind --tool=callgrind`, `perf record`): authorize, the rate-limit headers, the
//! request's JSON, the session and its token, and the answer's JSON.
//! `cargo run --release --example session_loop -- [sessions]` prints the time per session.

use std::time::Instant;

use astack::session::CreateSession;
use astack::{Config, Engine, Operation};

/// The seed's request body.
const BODY: &str =
    r#"{"end_user_id": "user_123", "connection_type": "websocket", "quality": "high", "features": ["vision", "transcription"]}"#;

fn main() {
    let sessions: usize = std::env::args().nth(1).map_or(100_000, |a| a.parse().expect("a number"));
    let mut config = Config::default();
    config.limits.requests_per_minute = 10_000_000;
    config.limits.requests_per_hour = 100_000_000;
    config.limits.concurrent_sessions = 1_000_000;
    config.default_worker.capacity = 1_000_000;
    let engine = Engine::new(config).expect("engine");
    let key = engine.bootstrap_admin_key(None).expect("bootstrap").expect("generated");
    let start = Instant::now();
    let mut bytes = 0;
    for _ in 0..sessions {
        let authorization = engine.authorize(&key, Operation::SessionCreate).map_err(|d| d.error).expect("allowed");
        let headers = authorization.headers();
        let request: CreateSession = serde_json::from_str(BODY).expect("the seed's body");
        let created = engine.create_session(&authorization.principal, request).expect("created");
        bytes += serde_json::to_vec(&created).expect("JSON").len() + headers.policy.len();
    }
    let elapsed = start.elapsed();
    assert!(bytes > 0);
    println!("{} ns per session ({sessions} sessions)", elapsed.as_nanos() / sessions as u128);
}
