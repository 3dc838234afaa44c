//! One sweep of many due sessions, for profilers and for the sweep's cost per session: creates
//! `sessions` PENDING sessions, moves a manual clock past their expiry, and times
//! `Engine::sweep` (the expiries and their audit records).
//! `cargo run --release --example sweep_loop -- [sessions] [memory|sqlite]` prints the time per
//! session expired.

use std::sync::Arc;
use std::time::Instant;

use astack::session::CreateSession;
use astack::store::{MemoryStore, SqliteStore, Store};
use astack::{Config, Engine, ManualClock, Operation};

fn main() {
    let mut args = std::env::args().skip(1);
    let sessions: usize = args.next().map_or(2_000, |a| a.parse().expect("a number"));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store: Arc<dyn Store> = match args.next().as_deref() {
        None | Some("memory") => Arc::new(MemoryStore::new()),
        Some("sqlite") => Arc::new(SqliteStore::open(dir.path().join("astack.db")).expect("sqlite store")),
        Some(other) => panic!("{other}: expected memory or sqlite"),
    };
    let mut config = Config::default();
    config.limits.concurrent_sessions = 1_000_000;
    config.default_worker.capacity = 1_000_000;
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let engine = Engine::with_parts(config, clock.clone(), store).expect("engine");
    let key = engine.bootstrap_admin_key(None).expect("bootstrap").expect("generated");
    let admin = engine.authorize(&key, Operation::Admin).map_err(|d| d.error).expect("allowed").principal;
    for _ in 0..sessions {
        engine.create_session(&admin, CreateSession::new("user_123")).expect("created");
    }
    clock.advance(engine.config().sessions.pending_ttl_seconds * 1000);
    let start = Instant::now();
    let expired = engine.sweep().expect("swept");
    let elapsed = start.elapsed();
    assert_eq!(expired, sessions);
    println!("{} ns per session expired ({expired} sessions)", elapsed.as_nanos() / expired as u128);
}
