//! `authorize` over each store, in one run, against one `redis-server` started here:
//!
//! - the Redis store (every authorization one Lua script taking both windows at once),
//! - the Redis store leasing tokens in batches of 100 (the hot path in memory),
//! - the in-memory store,
//!
//! then the peer, the `limits` package on the same Redis (`benches/stores/limits_redis.py`,
//! run with `ASTACK_PEER_PYTHON`, default `python3`), doing the same two windows on the same
//! number of keys. Everything is single-threaded. Prints a table of ops/s.
//!
//! Then what `POST /api/v1/sessions` asks of the engine, `authorize` for `session.create` and
//! `create_session`, over Redis beside memory; and a sweep: how long `Engine::sweep` takes to
//! expire `DUE` sessions all due at once, over Redis beside the in-memory store (each expiry a
//! state change, its indexes and an audit record).
//!
//! Run with `make bench-stores` (which makes the Python venv for the peer).

use std::hint::black_box;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use astack::config::{LeaseConfig, StoreConfig};
use astack::limits::Limits;
use astack::session::CreateSession;
use astack::workers::Worker;
use astack::{Clock, Config, Engine, ManualClock, Operation, SystemClock};
use criterion::Criterion;

mod common;

const KEYS: usize = 1_000;
const SECONDS: f64 = 3.0;

struct Server(Child, u16);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis() -> Server {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (apt-get install redis-server)");
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/0")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.get_connection().is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Server(child, port)
}

fn setup(store: StoreConfig) -> (Engine, Vec<String>) {
    let engine = Engine::with_clock(Config { store, ..Config::default() }, Arc::new(SystemClock)).expect("engine");
    let keys = common::created_keys(&engine, KEYS, 100);
    for key in &keys {
        assert!(engine.authorize(key, Operation::SessionRead).is_ok());
    }
    (engine, keys)
}

fn ops_per_second(engine: &Engine, keys: &[String]) -> f64 {
    let start = Instant::now();
    let mut done = 0usize;
    while start.elapsed().as_secs_f64() < SECONDS {
        for key in keys.iter().cycle().skip(done % keys.len()).take(100) {
            assert!(engine.authorize(black_box(key), Operation::SessionRead).is_ok());
        }
        done += 100;
    }
    done as f64 / start.elapsed().as_secs_f64()
}

/// Sessions due at once in the sweep measured.
const DUE: usize = 2_000;

/// An engine over `store` on `clock` whose admin may hold `sessions` sessions at once, and
/// that admin's key.
fn session_engine(store: StoreConfig, clock: Arc<dyn Clock>, sessions: u32) -> (Engine, String) {
    let limits = Limits { requests_per_minute: common::PER_MINUTE, requests_per_hour: common::PER_HOUR, concurrent_sessions: sessions };
    let defaults = Config::default();
    let default_worker = Worker { capacity: sessions, ..defaults.default_worker.clone() };
    let engine = Engine::with_clock(Config { store, limits, default_worker, ..defaults }, clock).expect("engine");
    let key = engine.bootstrap_admin_key(None).unwrap().unwrap();
    (engine, key)
}

/// `authorize` for `session.create` then `create_session`, for `SECONDS` or `POSTS` sessions,
/// whichever comes first: sessions a second.
fn posts_per_second(store: StoreConfig) -> f64 {
    const POSTS: u32 = 200_000;
    let (engine, key) = session_engine(store, Arc::new(SystemClock), POSTS);
    let start = Instant::now();
    let mut done = 0u32;
    while done < POSTS && start.elapsed().as_secs_f64() < SECONDS {
        let principal = engine.authorize(&key, Operation::SessionCreate).map_err(|d| d.error).expect("authorize").principal;
        engine.create_session(&principal, CreateSession::new("user")).expect("session");
        done += 1;
    }
    f64::from(done) / start.elapsed().as_secs_f64()
}

/// Milliseconds `Engine::sweep` takes to expire `due` sessions, all due at once, over `store`
/// (the median of `rounds`, each on sessions of its own).
fn sweep_ms(store: StoreConfig, due: usize, rounds: usize) -> f64 {
    let clock = Arc::new(ManualClock::new(SystemClock.now_ms()));
    let (engine, key) = session_engine(store, clock.clone(), due as u32);
    let admin = engine.authorize(&key, Operation::Admin).unwrap().principal;
    let mut times: Vec<f64> = (0..rounds)
        .map(|_| {
            for _ in 0..due {
                engine.create_session(&admin, CreateSession::new("user")).expect("session");
            }
            clock.advance(engine.config().sessions.pending_ttl_seconds * 1000);
            let start = Instant::now();
            assert_eq!(engine.sweep().unwrap(), due);
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[rounds / 2]
}

fn peer(url: &str) -> Option<f64> {
    let python = std::env::var("ASTACK_PEER_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/stores/limits_redis.py");
    let output = Command::new(&python)
        .args([script, url, &KEYS.to_string(), &SECONDS.to_string()])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        eprintln!("peer failed: {}", String::from_utf8_lossy(&output.stderr).lines().last().unwrap_or(""));
        return None;
    }
    text.split_whitespace().skip_while(|w| *w != "ops/s").nth(1)?.parse().ok()
}

fn main() {
    // `cargo test --all-targets` runs benchmarks without `--bench`: a quick smoke test then.
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let server = start_redis();
    let url = format!("redis://127.0.0.1:{}/0", server.1);
    let exact = StoreConfig { prefix: Some("bench:".into()), ..StoreConfig::redis(&url) };
    let leased = StoreConfig { prefix: Some("bench-lease:".into()), lease: Some(LeaseConfig { batch: 100 }), ..StoreConfig::redis(&url) };
    let runs = [
        ("redis", setup(exact)),
        ("redis, leasing 100", setup(leased)),
        ("memory", setup(StoreConfig::default())),
    ];

    if !measuring {
        for (name, (engine, keys)) in &runs {
            for key in keys.iter().take(10) {
                assert!(engine.authorize(key, Operation::SessionRead).is_ok(), "{name}");
            }
        }
        sweep_ms(StoreConfig { prefix: Some("bench-sweep:".into()), ..StoreConfig::redis(&url) }, 10, 1);
        println!("stores bench: smoke test of 3 stores and a sweep, 1 passed, 0 failed");
        return;
    }
    let mut criterion = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20);
    {
        let mut group = criterion.benchmark_group("stores/authorize");
        for (name, (engine, keys)) in &runs {
            let mut i = 0usize;
            group.bench_function(*name, |b| {
                b.iter(|| {
                    i = (i + 1) % keys.len();
                    engine.authorize(black_box(&keys[i]), Operation::SessionRead).is_ok()
                })
            });
        }
        group.finish();
    }

    let ours: Vec<(&str, f64)> = runs.iter().map(|(name, (engine, keys))| (*name, ops_per_second(engine, keys))).collect();
    let peer = peer(&url);
    println!();
    println!("authorize, single thread, {KEYS} keys, two windows, {SECONDS} s each, one redis-server on loopback:");
    println!("  {:<44} {:>12}", "", "ops/s");
    for (name, ops) in &ours {
        println!("  {:<44} {:>12.0}", format!("astack {name}"), ops);
    }
    match peer {
        Some(peer_ops) => {
            println!("  {:<44} {:>12.0}", "limits (Python) RedisStorage, sliding window", peer_ops);
            println!("  astack redis / limits redis: {:.1}x", ours[0].1 / peer_ops);
        }
        None => println!("  limits (Python): not run (make bench-stores installs it in a venv)"),
    }
    println!("  astack leasing / astack memory: {:.2}", ours[1].1 / ours[2].1);
    println!();
    common::report("stores/redis_authorize_vs_limits", ours[0].1, peer, "ops/s", "-");
    common::report("stores/redis_leasing_100_vs_memory", ours[1].1, Some(ours[2].1), "ops/s", "-");

    let redis = posts_per_second(StoreConfig { prefix: Some("bench-post:".into()), ..StoreConfig::redis(&url) });
    let memory = posts_per_second(StoreConfig::default());
    println!("authorize for session.create + create_session: redis {redis:.0}/s, memory {memory:.0}/s");
    common::report("stores/redis_post_session_vs_memory", redis, Some(memory), "ops/s", "-");

    let rounds = if common::quick() { 1 } else { 5 };
    let redis = sweep_ms(StoreConfig { prefix: Some("bench-sweep:".into()), ..StoreConfig::redis(&url) }, DUE, rounds);
    let memory = sweep_ms(StoreConfig::default(), DUE, rounds);
    println!("sweep of {DUE} sessions due at once, median of {rounds}: redis {redis:.1} ms, memory {memory:.1} ms");
    common::report(&format!("stores/redis_sweep_{DUE}_vs_memory"), redis, Some(memory), "ms", "-");
}
