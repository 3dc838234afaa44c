//! The shared store on a real `redis-server` (started here on a free port, killed at the end;
//! `make test` installs the Debian package when it is missing): limits and slots hold in total
//! across engines and processes, sessions move through any of them, Redis going away fails
//! closed (or open when configured) and the engine recovers when it returns, and leasing stays
//! within its stated overshoot.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use astack::config::{LeaseConfig, StoreConfig};
use astack::keys::CreatedKey;
use astack::limits::KeyLimits;
use astack::session::{CreateSession, EndSession, Outcome, Status};
use astack::store::{RedisStore, Store};
use astack::{Config, Engine, ManualClock, Operation};
use common::*;

/// A `redis-server` child on a free port, killed when dropped.
struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    persistent: bool,
}

impl RedisServer {
    fn start() -> Self {
        Self::start_with(false)
    }

    /// With `persistent`, data is kept in an append-only file so that it survives a restart.
    fn start_with(persistent: bool) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = RedisServer { child: None, port, dir: tempfile::tempdir().unwrap(), persistent };
        server.restart();
        server
    }

    fn restart(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""]);
        cmd.arg("--dir").arg(self.dir.path());
        if self.persistent {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap_or_else(|e| {
            panic!("cannot start redis-server ({e}): install it (`make test` does: apt-get install redis-server)")
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        let client = redis::Client::open(self.url()).unwrap();
        loop {
            if let Ok(mut con) = client.get_connection() {
                if redis::cmd("PING").query::<String>(&mut con).is_ok() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not answer on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn store_config(server: &RedisServer, prefix: &str) -> StoreConfig {
    StoreConfig { prefix: Some(prefix.into()), ..StoreConfig::redis(server.url()) }
}

/// An engine over Redis on a shared manual clock, and its store.
fn engine(store: StoreConfig, clock: &Arc<ManualClock>) -> (Engine, Arc<RedisStore>) {
    let redis = Arc::new(RedisStore::open(&store).unwrap());
    let config = Config { store, ..config() };
    let engine = Engine::with_parts(config, clock.clone(), redis.clone()).unwrap();
    (engine, redis)
}

/// Two engines on one Redis and one clock, with the operator's admin key (created through the
/// first).
struct Pair {
    a: Engine,
    b: Engine,
    store_a: Arc<RedisStore>,
    store_b: Arc<RedisStore>,
    clock: Arc<ManualClock>,
    admin_key: String,
}

impl Pair {
    fn new(a: StoreConfig, b: StoreConfig) -> Self {
        let clock = Arc::new(ManualClock::new(T0));
        let (a, store_a) = engine(a, &clock);
        let (b, store_b) = engine(b, &clock);
        let admin_key = a.bootstrap_admin_key(None).unwrap().unwrap();
        Pair { a, b, store_a, store_b, clock, admin_key }
    }

    fn admin(&self, engine: &Engine) -> astack::Principal {
        engine.authorize(&self.admin_key, Operation::Admin).map_err(|d| d.error).unwrap().principal
    }

    fn key(&self, scopes: &[&str], limits: KeyLimits) -> CreatedKey {
        let request = astack::keys::CreateKey { scopes: strings(scopes), limits, ..Default::default() };
        self.a.create_key(&self.admin(&self.a), request).unwrap()
    }
}

/// The actions of the audit log of all that `server` holds under `prefix`, oldest first, read
/// straight from Redis (not through a store, which would write what it holds first).
fn written_actions(server: &RedisServer, prefix: &str) -> Vec<String> {
    let mut con = redis::Client::open(server.url()).unwrap().get_connection().unwrap();
    let records: Vec<String> = redis::cmd("LRANGE").arg(format!("{prefix}audit")).arg(0).arg(-1).query(&mut con).unwrap();
    records.iter().rev().map(|json| serde_json::from_str::<serde_json::Value>(json).unwrap()["action"].as_str().unwrap().to_owned()).collect()
}

fn allowed(engine: &Engine, key: &str) -> bool {
    match engine.authorize(key, Operation::SessionRead) {
        Ok(_) => true,
        Err(denial) => {
            assert_eq!(denial.error.code(), "rate_limited", "{}", denial.error);
            false
        }
    }
}

#[test]
fn two_engines_never_let_a_key_exceed_its_limits_in_total() {
    let server = RedisServer::start();
    let p = Pair::new(store_config(&server, "t1:"), store_config(&server, "t1:"));
    let limits = KeyLimits { requests_per_minute: Some(10), requests_per_hour: Some(20), ..Default::default() };
    let key = p.key(&["sessions:read"], limits);
    let engines = [&p.a, &p.b];
    let count = |n: usize| (0..n).filter(|i| allowed(engines[i % 2], &key.key)).count();
    assert_eq!(count(30), 10, "the minute window holds across both engines");
    let denied = p.b.authorize(&key.key, Operation::SessionRead).unwrap_err();
    assert_eq!(denied.headers().unwrap().retry_after.as_deref(), Some("6"));
    p.clock.advance(6_000);
    assert_eq!(count(5), 1, "one token back every 6 s, taken once in total");
    p.clock.advance(60_000);
    assert_eq!(count(30), 9, "then the hour window runs out: 20 in all");
    // All or nothing: the minute window kept what the hour refused.
    let decision = p.a.authorize(&key.key, Operation::SessionRead).unwrap_err().rate.unwrap().0;
    assert_eq!((decision.limit, decision.remaining), (20, 0));
    // Usage counts every authorization of both engines (written behind, flushed on read).
    let billing = p.key(&["billing:read"], KeyLimits::default());
    let reader = p.b.authorize(&billing.key, Operation::BillingRead).unwrap().principal;
    p.a.usage(&reader).unwrap();
    let usage = p.b.usage(&reader).unwrap();
    assert!(usage.requests >= 22, "{} requests metered", usage.requests);
}

#[test]
fn a_session_created_through_one_engine_is_read_connected_and_ended_through_the_other() {
    let server = RedisServer::start();
    let p = Pair::new(store_config(&server, "t2:"), store_config(&server, "t2:"));
    let client = p.key(&["sessions:read", "sessions:write"], KeyLimits { concurrent_sessions: Some(2), ..Default::default() });
    let worker = p.key(&["workers:write", "workers:read"], KeyLimits::default());
    let in_a = p.a.authorize(&client.key, Operation::SessionCreate).unwrap().principal;
    let created = p.a.create_session(&in_a, CreateSession::new("u1")).unwrap();

    let in_b = p.b.authorize(&client.key, Operation::SessionRead).unwrap().principal;
    assert_eq!(p.b.get_session(&in_b, &created.session.id).unwrap(), created.session);
    let worker_b = p.b.authorize(&worker.key, Operation::WorkerWrite).unwrap().principal;
    let connected = p.b.connect_session(&worker_b, &created.session.id, &created.session_token).unwrap();
    assert_eq!(connected.status, Status::Active);
    assert_eq!(p.a.get_session(&in_a, &created.session.id).unwrap().status, Status::Active);

    // Slots are shared: one in each engine fills the limit of 2.
    let second = p.b.create_session(&in_b, CreateSession::new("u2")).unwrap();
    assert_eq!(p.a.create_session(&in_a, CreateSession::new("u3")).unwrap_err().code(), "concurrent_session_limit");
    assert_eq!(p.b.authorize(&client.key, Operation::SessionCreate).unwrap_err().error.code(), "concurrent_session_limit");
    assert_eq!(p.a.list_workers(&p.admin(&p.a)).unwrap().len(), 0);

    p.clock.advance(90_000);
    let ended = p.a.end_session(&p.admin(&p.a), &created.session.id, EndSession { outcome: Outcome::Completed, reason: None }).unwrap();
    assert_eq!(ended.status, Status::Completed);
    assert_eq!(p.b.get_session(&in_b, &created.session.id).unwrap(), ended);
    assert_eq!(p.b.slots_in_use(&client.record.id).unwrap(), 1);
    assert!(p.b.create_session(&in_b, CreateSession::new("u3")).is_ok(), "the slot was released for both");

    // Expiry is shared too: the second session expires in whichever engine sweeps.
    p.clock.advance(400_000);
    assert_eq!(p.b.sweep().unwrap(), 2);
    assert_eq!(p.a.get_session(&in_a, &second.session.id).unwrap().status, Status::Expired);
    assert_eq!(p.a.slots_in_use(&client.record.id).unwrap(), 0);
    let listed = p.a.list_sessions(&in_a, 10).unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed[0].created_at >= listed[2].created_at, "newest first");
    let usage = p.a.usage(&p.admin(&p.a)).unwrap();
    assert_eq!(usage.account_id, "default");
    assert!(p.b.audit(&p.admin(&p.b), 100).unwrap().iter().any(|r| r.action == "session.connected"));
}

#[test]
fn two_engines_sweeping_at_once_expire_each_due_session_once() {
    // More than a sweep's batch (256), so that both engines go through several batches.
    const DUE: usize = 600;
    let server = RedisServer::start();
    let p = Pair::new(store_config(&server, "t9:"), store_config(&server, "t9:"));
    let admin = p.admin(&p.a);
    p.a.register_worker(&admin, worker("w1", DUE as u32)).unwrap();
    let client = p.key(&["sessions:read", "sessions:write"], KeyLimits { concurrent_sessions: Some(DUE as u32), ..Default::default() });
    let principal = p.a.authorize(&client.key, Operation::SessionCreate).map_err(|d| d.error).unwrap().principal;
    let ids: Vec<String> = (0..DUE).map(|_| p.a.create_session(&principal, CreateSession::new("u")).unwrap().session.id).collect();
    p.clock.advance(150_000);
    let full = p.a.create_session(&principal, CreateSession::new("u")).unwrap_err();
    assert_eq!(full.code(), "concurrent_session_limit", "none is due yet");
    p.clock.advance(150_000);

    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| p.a.sweep().unwrap());
        let b = s.spawn(|| p.b.sweep().unwrap());
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a + b, DUE, "each due session expired by one sweep ({a} + {b})");
    assert_eq!(p.a.sweep().unwrap() + p.b.sweep().unwrap(), 0, "none left");
    for id in &ids {
        let session = p.b.get_session(&principal, id).unwrap();
        assert_eq!((session.status, session.end_reason.as_deref()), (Status::Expired, Some("expired")));
    }
    assert_eq!(p.a.slots_in_use(&client.record.id).unwrap(), 0);
    assert_eq!(p.b.list_workers(&admin).unwrap()[0].active_sessions, 0);
    p.a.flush().unwrap();
    p.b.flush().unwrap();
    let expired = written_actions(&server, "t9:").iter().filter(|a| *a == "session.expired").count();
    assert_eq!(expired, DUE, "audited once each");
}

#[test]
fn a_sweep_corrects_expiry_index_entries_of_no_live_session() {
    let server = RedisServer::start();
    let p = Pair::new(store_config(&server, "t10:"), store_config(&server, "t10:"));
    let admin = p.admin(&p.a);
    let due = p.a.create_session(&admin, CreateSession::new("u")).unwrap().session.id;
    // More stale entries than a sweep's batch (256), all due: ids of no session at all.
    let mut con = redis::Client::open(server.url()).unwrap().get_connection().unwrap();
    for i in 0..300 {
        let _: () = redis::cmd("ZADD").arg("t10:expiry").arg(0).arg(format!("sess_gone{i}")).query(&mut con).unwrap();
    }
    p.clock.advance(300_000);
    assert_eq!(p.a.sweep().unwrap(), 1, "the one live session due, and the sweep ends");
    assert_eq!(p.a.get_session(&admin, &due).unwrap().status, Status::Expired);
    let left: usize = redis::cmd("ZCARD").arg("t10:expiry").query(&mut con).unwrap();
    assert_eq!(left, 0, "the stale entries left the index");
}

#[test]
fn revocation_reaches_another_engine_within_key_cache_ms() {
    let server = RedisServer::start();
    let b = StoreConfig { key_cache_ms: Some(300), ..store_config(&server, "t3:") };
    let p = Pair::new(store_config(&server, "t3:"), b);
    let key = p.key(&["sessions:read"], KeyLimits::default());
    assert!(allowed(&p.b, &key.key));
    p.a.revoke_key(&p.admin(&p.a), &key.record.id).unwrap();
    assert_eq!(p.a.authorize(&key.key, Operation::SessionRead).unwrap_err().error.code(), "api_key_revoked");
    let revoked_at = Instant::now();
    loop {
        // Taken before asking: an answer from the cache means the cache was checked later than
        // this, and it was filled before the revocation (a thread descheduled after the answer
        // must not count against the store).
        let asked = revoked_at.elapsed();
        match p.b.authorize(&key.key, Operation::SessionRead) {
            Ok(_) => assert!(asked < Duration::from_millis(300), "stale for longer than key_cache_ms"),
            Err(denial) => {
                assert_eq!(denial.error.code(), "api_key_revoked");
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn redis_stopped_fails_closed_or_open_as_configured_and_the_engine_recovers() {
    let mut server = RedisServer::start_with(true);
    let open = StoreConfig { fail_open: Some(true), ..store_config(&server, "t4:") };
    let p = Pair::new(store_config(&server, "t4:"), open);
    let key = p.key(&["sessions:read", "sessions:write"], KeyLimits::default());
    let in_b = p.b.authorize(&key.key, Operation::SessionRead).unwrap().principal;
    let created = p.a.create_session(&p.a.authorize(&key.key, Operation::SessionCreate).unwrap().principal, CreateSession::new("u")).unwrap();

    server.stop();
    let error = p.a.authorize(&key.key, Operation::SessionRead).unwrap_err().error;
    assert_eq!((error.code(), error.status()), ("unavailable", 503), "{error}");
    assert!(error.to_string().contains("redis"), "{error}");
    let principal = p.a.principal(&key.record.id);
    if let Ok(principal) = principal {
        assert_eq!(p.a.get_session(&principal, &created.session.id).unwrap_err().code(), "unavailable");
    }
    // Failing open: authorize allows a key this process knows, and counts it; the rest fails.
    for _ in 0..3 {
        assert!(p.b.authorize(&key.key, Operation::SessionRead).is_ok(), "fail_open allows");
    }
    assert_eq!(p.store_b.fail_open_decisions(), 3);
    assert_eq!(p.b.get_session(&in_b, &created.session.id).unwrap_err().code(), "unavailable");
    assert_eq!(p.b.create_session(&in_b, CreateSession::new("u")).unwrap_err().code(), "unavailable");
    let unknown = astack::keys::generate().unwrap();
    assert_eq!(p.b.authorize(&unknown, Operation::SessionRead).unwrap_err().error.code(), "unavailable");

    server.restart();
    let deadline = Instant::now() + Duration::from_secs(5);
    while p.a.authorize(&key.key, Operation::SessionRead).is_err() {
        assert!(Instant::now() < deadline, "the engine did not recover");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(p.store_a.ping().is_ok());
    let principal = p.a.principal(&key.record.id).unwrap();
    assert_eq!(p.a.get_session(&principal, &created.session.id).unwrap().status, Status::Pending);
    assert!(p.b.authorize(&key.key, Operation::SessionRead).is_ok());
    assert_eq!(p.store_b.fail_open_decisions(), 3, "no more fail-open decisions once Redis is back");
}

/// A denial's audit record is held back (a flood of 429s costs no round trip each) and written
/// before the next record appended; one that Redis refused stays held, and is written when it
/// answers again.
#[test]
fn denials_are_audited_behind_in_order_and_kept_while_redis_is_away() {
    let mut server = RedisServer::start();
    let store_config = store_config(&server, "t9:");
    // Held for an hour: no write-behind falls due during the test, however slow the machine.
    let store = Arc::new(RedisStore::open(&store_config).unwrap().with_write_behind(Duration::from_secs(3600)));
    let config = Config { store: store_config, ..config() };
    let engine = Engine::with_parts(config, Arc::new(ManualClock::new(T0)), store.clone()).unwrap();
    let admin_key = engine.bootstrap_admin_key(None).unwrap().unwrap();
    let admin = engine.authorize(&admin_key, Operation::Admin).map_err(|d| d.error).unwrap().principal;
    let request = astack::keys::CreateKey { scopes: strings(&["sessions:read"]), ..Default::default() };
    let reader = engine.create_key(&admin, request.clone()).unwrap().key;

    assert!(engine.authorize(&reader, Operation::Admin).is_err());
    assert_eq!(written_actions(&server, "t9:"), ["key.created", "key.created"], "the denial is held");
    engine.create_key(&admin, request).unwrap();
    assert_eq!(written_actions(&server, "t9:"), ["key.created", "key.created", "request.denied", "key.created"]);

    assert!(engine.authorize(&reader, Operation::Admin).is_err());
    server.stop();
    assert_eq!(store.flush().unwrap_err().code(), "unavailable");
    server.restart(); // not persistent: Redis comes back empty
    assert_eq!(written_actions(&server, "t9:"), Vec::<String>::new());
    store.flush().unwrap();
    assert_eq!(written_actions(&server, "t9:"), ["request.denied"]);
    let read = engine.audit(&admin, 10).unwrap();
    assert_eq!(read.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(), ["request.denied"]);
}

#[test]
fn leasing_overshoots_by_at_most_processes_times_batch_minus_one() {
    const BATCH: u32 = 5;
    const ENGINES: usize = 2;
    const LIMIT: u32 = 20;
    let server = RedisServer::start();
    let leased = StoreConfig { lease: Some(LeaseConfig { batch: BATCH }), ..store_config(&server, "t5:") };
    let p = Pair::new(leased.clone(), leased);
    let key = p.key(&["sessions:read"], KeyLimits { requests_per_minute: Some(LIMIT), requests_per_hour: Some(10_000), ..Default::default() });
    let engines = [&p.a, &p.b];
    // At one instant, leases only hand out what Redis had: never more than the limit.
    let at_once = (0..100).filter(|i| allowed(engines[i % 2], &key.key)).count();
    assert_eq!(at_once, LIMIT as usize);

    // Over time, with an uneven mix of the two engines, count what each sliding minute allowed.
    let mut seed = 7u64;
    let mut times = Vec::new();
    for _ in 0..3000 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let now = p.clock.advance((seed >> 33) % 400);
        let engine = engines[((seed >> 20) % 7 < 2) as usize];
        if allowed(engine, &key.key) {
            times.push(now);
        }
    }
    let bound = u64::from(LIMIT) + (ENGINES as u64) * u64::from(BATCH - 1);
    let mut worst = 0u64;
    for i in 0..times.len() {
        for j in i..times.len() {
            let refill = (times[j] - times[i]) * u64::from(LIMIT) / 60_000;
            let count = (j - i + 1) as u64;
            worst = worst.max(count.saturating_sub(u64::from(LIMIT) + refill));
            assert!(count <= bound + refill, "{count} allowed in [{}, {}] ms > {bound} + {refill}", times[i], times[j]);
        }
    }
    eprintln!("leasing: batch {BATCH}, {ENGINES} engines: worst overshoot {worst} (bound {})", bound - u64::from(LIMIT));
    assert!(times.len() > 100);
}

// ------------------------------------------------------------------ two OS processes

const CHILD_URL: &str = "ASTACK_REDIS_CHILD_URL";
const CHILD_KEY: &str = "ASTACK_REDIS_CHILD_KEY";
const CHILD_REQUESTS: usize = 150;

/// The child process: authorizes one key `CHILD_REQUESTS` times against the shared Redis at a
/// fixed instant and prints how many were allowed. Does nothing unless the parent started it.
#[test]
fn redis_child() {
    let (Ok(url), Ok(key)) = (std::env::var(CHILD_URL), std::env::var(CHILD_KEY)) else { return };
    let store = StoreConfig { prefix: Some("t6:".into()), ..StoreConfig::redis(url) };
    let engine = Engine::with_clock(Config { store, ..config() }, Arc::new(ManualClock::new(T0))).unwrap();
    let allowed = (0..CHILD_REQUESTS).filter(|_| allowed(&engine, &key)).count();
    // Written to the process's stdout itself, past the test harness's capture.
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "\nALLOWED {allowed}").unwrap();
}

#[test]
fn two_processes_sharing_one_redis_allow_the_limit_in_total() {
    let server = RedisServer::start();
    let clock = Arc::new(ManualClock::new(T0));
    let (engine, _) = engine(store_config(&server, "t6:"), &clock);
    let admin_key = engine.bootstrap_admin_key(None).unwrap().unwrap();
    let admin = engine.authorize(&admin_key, Operation::Admin).map_err(|d| d.error).unwrap().principal;
    let limits = KeyLimits { requests_per_minute: Some(100), requests_per_hour: Some(1000), ..Default::default() };
    let request = astack::keys::CreateKey { scopes: strings(&["sessions:read"]), limits, ..Default::default() };
    let key = engine.create_key(&admin, request).unwrap();
    let exe: PathBuf = std::env::current_exe().unwrap();
    let children: Vec<Child> = (0..2)
        .map(|_| {
            Command::new(&exe)
                .args(["redis_child", "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD_URL, server.url())
                .env(CHILD_KEY, &key.key)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut total = 0;
    let mut each = Vec::new();
    for mut child in children {
        let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok).collect();
        assert!(child.wait().unwrap().success());
        let allowed: usize = lines
            .iter()
            .find_map(|l| l.split("ALLOWED ").nth(1))
            .unwrap_or_else(|| panic!("the child reports: {lines:?}"))
            .parse()
            .unwrap();
        each.push(allowed);
        total += allowed;
    }
    assert_eq!(total, 100, "two processes allowed {each:?}: exactly the minute's limit in total");
    assert!(!allowed(&engine, &key.key), "and the parent finds the bucket empty");
}

// ------------------------------------------------------------------ configuration

#[test]
fn store_configuration_names_the_offending_field() {
    let cases = [
        (r#"{"store": {"kind": "redis"}}"#, "store.url"),
        (r#"{"store": {"kind": "sqlite"}}"#, "store.path"),
        (r#"{"store": {"kind": "postgres"}}"#, "store.kind"),
        (r#"{"store": {"kind": "memory", "url": "redis://x"}}"#, "store.url"),
        (r#"{"store": {"kind": "sqlite", "path": "/tmp/x.db", "lease": {"batch": 2}}}"#, "store.lease"),
        (r#"{"store": {"kind": "redis", "url": "redis://x", "path": "/tmp/x.db"}}"#, "store.path"),
        (r#"{"store": {"kind": "redis", "url": "http://x"}}"#, "store.url"),
        (r#"{"store": {"kind": "redis", "url": "redis://x", "key_cache_ms": 60001}}"#, "store.key_cache_ms"),
        (r#"{"store": {"kind": "redis", "url": "redis://x", "lease": {"batch": 0}}}"#, "store.lease.batch"),
        (r#"{"store": {"kind": "redis", "url": "redis://x", "lease": {"size": 3}}}"#, "store.lease.size"),
        (r#"{"store": {"kind": "redis", "url": "redis://x", "fail_open": "yes"}}"#, "store.fail_open"),
        (r#"{"store": {"kind": "redis", "url": "redis://x", "colour": 1}}"#, "store.colour"),
        (r#"{"store": {"kind": "redis", "url": "redis://x", "prefix": "a b"}}"#, "store.prefix"),
        (r#"{"store": {"kind": "memory", "flush_ms": 500}}"#, "store.flush_ms"),
        (r#"{"store": {"kind": "redis", "url": "redis://x", "flush_ms": 9}}"#, "store.flush_ms"),
        (r#"{"store": {"kind": "sqlite", "path": "/tmp/x.db", "flush_ms": 60001}}"#, "store.flush_ms"),
    ];
    for (json, field) in cases {
        expect_config_field(Config::from_json(json), field);
    }
    let ok = r#"{"store": {"kind": "redis", "url": "redis://127.0.0.1:1/0", "prefix": "x:", "key_cache_ms": 0, "fail_open": true, "lease": {"batch": 10}, "flush_ms": 10}}"#;
    let config = Config::from_json(ok).unwrap();
    assert_eq!(config.store.lease, Some(LeaseConfig { batch: 10 }));
    assert_eq!(config.store.flush_every(), Some(Duration::from_millis(10)));
    let every = |json: &str| Config::from_json(json).unwrap().store.flush_every();
    assert_eq!(every(r#"{"store": {"kind": "sqlite", "path": "/tmp/x.db"}}"#), Some(Duration::from_millis(500)), "by default");
    assert_eq!(every(r#"{"store": {"kind": "sqlite", "path": "/tmp/x.db", "flush_ms": 0}}"#), None);
    assert_eq!(every("{}"), None, "memory holds nothing back");
    // Opening does not connect: an engine starts while Redis is down, its calls are unavailable.
    let engine = Engine::new(config).unwrap();
    assert_eq!(engine.bootstrap_admin_key(None).unwrap_err().code(), "unavailable");
    assert_eq!(Config::from_json(r#"{"store": {"kind": "memory"}}"#).unwrap().store, StoreConfig::default());
    let _: &dyn Store = &RedisStore::open(&StoreConfig::redis("redis://127.0.0.1:1")).unwrap();
}

#[test]
fn redis_decisions_equal_the_in_memory_ones_step_for_step() {
    let server = RedisServer::start();
    let clock = Arc::new(ManualClock::new(T0));
    let (redis_engine, _) = engine(store_config(&server, "t7:"), &clock);
    let memory = Engine::with_parts(config(), clock.clone(), Arc::new(astack::store::MemoryStore::new())).unwrap();
    let limits = KeyLimits { requests_per_minute: Some(7), requests_per_hour: Some(11), concurrent_sessions: Some(1) };
    let keys: Vec<String> = [&redis_engine, &memory]
        .iter()
        .map(|engine| {
            let admin_key = engine.bootstrap_admin_key(None).unwrap().unwrap();
            let admin = engine.authorize(&admin_key, Operation::Admin).map_err(|d| d.error).unwrap().principal;
            let request = astack::keys::CreateKey { scopes: strings(&["sessions:read", "sessions:write"]), limits, ..Default::default() };
            engine.create_key(&admin, request).unwrap().key
        })
        .collect();
    let decide = |engine: &Engine, key: &str, operation| match engine.authorize(key, operation) {
        Ok(a) => (a.decision, None),
        Err(d) => (d.rate.map(|r| r.0).unwrap(), Some(d.error.code())),
    };
    let mut seed = 11u64;
    for step in 0..400 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        clock.advance((seed >> 33) % 9_000);
        // Session creation is refused by the slot check after taking tokens: the refund must
        // match as well.
        let operation = if (seed >> 20) % 5 == 0 { Operation::SessionCreate } else { Operation::SessionRead };
        let ours = decide(&redis_engine, &keys[0], operation);
        let theirs = decide(&memory, &keys[1], operation);
        assert_eq!(ours, theirs, "step {step}");
        if operation == Operation::SessionCreate && ours.1.is_none() {
            let r = redis_engine.authorize(&keys[0], Operation::SessionRead).map(|a| a.principal);
            let m = memory.authorize(&keys[1], Operation::SessionRead).map(|a| a.principal);
            if let (Ok(r), Ok(m)) = (r, m) {
                redis_engine.create_session(&r, CreateSession::new("u")).unwrap();
                memory.create_session(&m, CreateSession::new("u")).unwrap();
            }
        }
    }
}
