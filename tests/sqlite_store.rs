//! The durable embedded store: every kind of record survives reopening, the engine's
//! invariants hold, and acknowledged changes survive `kill -9` at any moment.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use astack::config::StoreConfig;
use astack::keys::CreateKey;
use astack::limits::KeyLimits;
use astack::session::{CreateSession, EndSession, Outcome, Status};
use astack::store::{SqliteStore, Store};
use astack::usage::{CreateAlert, RecordUsage};
use astack::users::{CreateUser, UpdateUser};
use astack::workers::UpdateWorker;
use astack::{Config, Engine, ManualClock, Operation};
use common::*;

fn open_engine(path: &std::path::Path, now: u64) -> (Engine, Arc<SqliteStore>) {
    engine_over(SqliteStore::open(path).expect("open sqlite"), now)
}

fn engine_over(store: SqliteStore, now: u64) -> (Engine, Arc<SqliteStore>) {
    let store = Arc::new(store);
    let engine = Engine::with_parts(config(), Arc::new(ManualClock::new(now)), store.clone()).expect("engine");
    (engine, store)
}

#[test]
fn every_kind_of_record_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/astack.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let f = Fixture::with_store(config(), store, None);
    let admin_key = f.admin_key.clone();

    // Keys: one plain, one revoked, one rotated (old one now expires).
    let client = f.key_with_limits(Some("acme"), &["sessions:read", "sessions:write", "users:read", "users:write", "billing:read", "billing:write"], KeyLimits { concurrent_sessions: Some(3), ..Default::default() });
    let revoked = f.key_in(Some("acme"), &["sessions:read"]);
    f.engine.revoke_key(&f.admin, &revoked.record.id).unwrap();
    let rotated = f.key_in(Some("acme"), &["sessions:read"]);
    let successor = f.engine.rotate_key(&f.admin, &rotated.record.id, 60).unwrap();

    // Workers.
    let worker_key = f.operator_worker();
    f.engine.register_worker(&worker_key, worker("w1", 10)).unwrap();
    f.engine.register_worker(&worker_key, worker("w2", 10)).unwrap();
    f.engine.update_worker(&worker_key, "w2", UpdateWorker { capacity: Some(20), ..Default::default() }).unwrap();

    // Sessions in every state.
    let principal = f.auth(&client.key, Operation::SessionCreate);
    let pending = f.session(&principal);
    let active = f.session(&principal);
    f.connect(&worker_key, &active);
    let completed = f.session(&principal);
    f.engine.terminate_session(&principal, &completed.session.id).unwrap();
    let failed = f.session(&principal);
    f.end(&worker_key, &failed.session.id, Outcome::Failed, Some("gpu fell over")).unwrap();
    let expiring = f.session(&principal);
    f.advance(301_000);
    f.engine.sweep().unwrap();
    assert_eq!(f.store.session(&expiring.session.id).unwrap().unwrap().status, Status::Expired);
    let pending2 = f.session(&principal);

    // Users, usage, alerts.
    let alice = f.engine.create_user(&principal, CreateUser { name: "Alice".into(), email: Some("a@example.com".into()), metadata: None }).unwrap();
    let bob = f.engine.create_user(&principal, CreateUser { name: "Bob".into(), email: None, metadata: None }).unwrap();
    f.engine.update_user(&principal, &alice.id, UpdateUser { name: Some("Alice B".into()), ..Default::default() }).unwrap();
    f.engine.delete_user(&principal, &bob.id).unwrap();
    let record = |n, key: &str| RecordUsage { metric: "tokens".into(), quantity: n, idempotency_key: Some(key.into()) };
    f.engine.record_usage(&principal, record(5, "a")).unwrap();
    f.engine.record_usage(&principal, record(7, "b")).unwrap();
    f.engine.create_alert(&principal, CreateAlert { metric: "tokens".into(), threshold: 10 }).unwrap();
    f.engine.create_alert(&principal, CreateAlert { metric: "tokens".into(), threshold: 100 }).unwrap();
    for _ in 0..3 {
        f.auth(&client.key, Operation::SessionRead);
    }

    let before_keys = f.engine.list_keys(&f.admin, 1000).unwrap();
    let before_sessions = f.engine.list_sessions(&principal, 1000).unwrap();
    let before_workers = f.engine.list_workers(&worker_key).unwrap();
    let before_users = f.engine.list_users(&principal, 1000).unwrap();
    let before_usage = f.engine.usage(&principal).unwrap();
    let before_alerts = f.engine.list_alerts(&principal).unwrap();
    let before_audit = f.engine.audit(&f.admin, 10_000).unwrap();
    let now = f.now();
    assert_eq!(before_usage.metrics["tokens"], 12);
    assert_eq!(before_alerts.iter().filter(|a| a.fired_at.is_some()).count(), 1);
    drop(f);

    let (engine, store) = open_engine(&path, now);
    let admin = engine.authorize(&admin_key, Operation::Admin).expect("the admin key survives").principal;
    let principal = engine.principal(&client.record.id).unwrap();
    let worker_key = engine.principal(&worker_key.key_id()).unwrap();
    let without_last_used = |keys: Vec<astack::keys::KeyRecord>| {
        keys.into_iter().map(|mut k| { k.last_used_at = None; k }).collect::<Vec<_>>()
    };
    assert_eq!(without_last_used(engine.list_keys(&admin, 1000).unwrap()), without_last_used(before_keys));
    assert_eq!(engine.list_sessions(&principal, 1000).unwrap(), before_sessions);
    let workers = engine.list_workers(&worker_key).unwrap();
    assert_eq!(serde_json::to_value(&workers).unwrap(), serde_json::to_value(&before_workers).unwrap());
    assert_eq!(engine.list_users(&principal, 1000).unwrap(), before_users);
    assert_eq!(engine.usage(&principal).unwrap(), before_usage);
    assert_eq!(engine.list_alerts(&principal).unwrap(), before_alerts);
    let audit = engine.audit(&admin, 10_000).unwrap();
    assert_eq!(&audit[audit.len() - before_audit.len()..], &before_audit[..], "the audit log is kept in order");

    // The records still act: revoked stays revoked, the successor works, slots are counted.
    assert_eq!(engine.authorize(&revoked.key, Operation::SessionRead).unwrap_err().error.code(), "api_key_revoked");
    assert!(engine.authorize(&successor.key, Operation::SessionRead).is_ok());
    assert_eq!(store.slots_in_use(&client.record.id).unwrap(), 2, "pending and pending2 hold slots");
    let active = engine.get_session(&principal, &active.session.id).unwrap();
    assert_eq!(active.status, Status::Active);
    engine.end_session(&worker_key, &active.id, EndSession { outcome: Outcome::Completed, reason: None }).unwrap();
    assert_eq!(store.slots_in_use(&client.record.id).unwrap(), 1);
    assert_eq!(engine.get_session(&principal, &pending.session.id).unwrap().status, Status::Expired);
    assert_eq!(engine.get_session(&principal, &pending2.session.id).unwrap().status, Status::Pending);
    assert!(engine.get_key(&admin, &client.record.id).unwrap().last_used_at.is_some(), "last_used_at was written behind on drop");
}

#[test]
fn flush_writes_what_was_held_back_while_the_engine_lives() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("astack.db");
    let (engine, _store) = open_engine(&path, T0);
    let key = engine.bootstrap_admin_key(None).unwrap().unwrap();
    let admin = engine.authorize(&key, Operation::Admin).unwrap().principal;
    let id = engine.list_keys(&admin, 1).unwrap()[0].id.clone();
    // Another process's view of the file: what the engine has written so far.
    let written = || SqliteStore::open(&path).unwrap().key(&id).unwrap().unwrap().snapshot().last_used_at;
    assert_eq!(written(), None, "held back");
    engine.flush().unwrap();
    assert_eq!(written(), Some(T0));
}

#[test]
fn an_engine_from_config_flushes_on_a_thread_of_its_own_unless_told_not_to() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("astack.db");
    let engine_with = |flush_ms: &str| {
        Engine::from_json(&format!(r#"{{"store": {{"kind": "sqlite", "path": "{}"{flush_ms}}}}}"#, path.display())).unwrap()
    };
    // Another process's view of the file: the key's last use as written so far.
    let written = |id: &str| SqliteStore::open(&path).unwrap().key(id).unwrap().unwrap().snapshot().last_used_at;
    let used = |engine: &Engine| {
        let key = engine.bootstrap_admin_key(None).unwrap().unwrap();
        engine.authorize(&key, Operation::Admin).unwrap().principal.key_id()
    };

    // No thread: nothing but a call (none is made) or a flush writes it.
    let engine = engine_with(r#", "flush_ms": 0"#);
    let id = used(&engine);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(written(&id), None, "held back without the thread");
    drop(engine);
    assert!(written(&id).is_some(), "written on drop");

    // By default the engine's thread writes it within about half a second, with no call made.
    let engine = engine_with("");
    let id = used(&engine);
    let deadline = Instant::now() + Duration::from_secs(20);
    while written(&id).is_none() {
        assert!(Instant::now() < deadline, "written behind by the engine's thread");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_keys_last_use_written_in_its_record_before_the_key_use_table_is_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("astack.db");
    let opened = open_engine(&path, T0);
    let key = opened.0.bootstrap_admin_key(None).unwrap().unwrap();
    let id = opened.0.authorize(&key, Operation::Admin).unwrap().principal.key_id();
    drop(opened);
    // A file of the schema before `key_use`: the last use lived in the key's JSON record.
    let earlier = T0 - 60_000;
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&format!("DROP TABLE key_use; UPDATE keys SET json = json_set(json, '$.last_used_at', {earlier});")).unwrap();
    drop(conn);
    let used = || SqliteStore::open(&path).unwrap().key(&id).unwrap().unwrap().snapshot().last_used_at;
    assert_eq!(used(), Some(earlier), "read from the record");
    // Used again: the later use, written to `key_use`, wins over the record's.
    let opened = open_engine(&path, T0 + 1);
    opened.0.authorize(&key, Operation::Admin).unwrap();
    drop(opened);
    assert_eq!(used(), Some(T0 + 1));
}

#[test]
fn denials_are_audited_behind_in_order_and_complete_to_readers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("astack.db");
    let (engine, admin) = engine_holding_back(&path);
    let reader = engine.create_key(&admin, CreateKey { scopes: strings(&["sessions:read"]), ..Default::default() }).unwrap().key;
    let written = || written_actions(&path);
    let before = written();
    assert_eq!(before.last().map(String::as_str), Some("key.created"), "an acknowledged change is on disk at once");
    for _ in 0..3 {
        assert!(engine.authorize(&reader, Operation::Admin).is_err());
    }
    assert_eq!(written(), before, "denials are held back");
    // A later record is written after them, in one transaction: the log keeps its order.
    engine.create_key(&admin, CreateKey { scopes: strings(&["sessions:read"]), ..Default::default() }).unwrap();
    let after: Vec<String> = written()[before.len()..].to_vec();
    assert_eq!(after, ["request.denied", "request.denied", "request.denied", "key.created"]);
    // Held back or not, the engine's own reads of the log see them, as does a flush.
    assert!(engine.authorize(&reader, Operation::Admin).is_err());
    assert_eq!(engine.audit(&admin, 1).unwrap()[0].action, "request.denied");
    assert!(engine.authorize(&reader, Operation::Admin).is_err());
    engine.flush().unwrap();
    assert_eq!(written().iter().filter(|a| *a == "request.denied").count(), 5);
}

#[test]
fn a_sweep_writes_its_expiries_at_once_and_their_audit_records_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("astack.db");
    let (engine, admin) = engine_holding_back(&path);
    let ids: Vec<String> = (0..3).map(|_| engine.create_session(&admin, CreateSession::new("u")).unwrap().session.id).collect();
    let before = written_actions(&path);
    engine.clock().as_manual().unwrap().advance(300_000);
    assert_eq!(engine.sweep().unwrap(), 3);
    // Another process's view of the file: the sessions are expired there, their records held.
    let other = SqliteStore::open(&path).unwrap();
    for id in &ids {
        assert_eq!(other.session(id).unwrap().unwrap().status, Status::Expired);
    }
    assert_eq!(written_actions(&path), before, "expiries are audited behind");
    engine.flush().unwrap();
    assert_eq!(written_actions(&path)[before.len()..], ["session.expired"; 3]);
}

/// An engine over the file at `path` whose store holds writes back for an hour (no write-behind
/// falls due during a test, however slow the machine), and its operator's admin.
fn engine_holding_back(path: &std::path::Path) -> (Engine, astack::engine::Principal) {
    let (engine, _store) = engine_over(SqliteStore::open(path).unwrap().with_write_behind(Duration::from_secs(3600)), T0);
    let key = engine.bootstrap_admin_key(None).unwrap().unwrap();
    let admin = engine.authorize(&key, Operation::Admin).unwrap().principal;
    (engine, admin)
}

/// What another process reading the file at `path` sees of the audit log, oldest first.
fn written_actions(path: &std::path::Path) -> Vec<String> {
    let store = SqliteStore::open(path).unwrap();
    store.audit(None, 100).unwrap().into_iter().rev().map(|r| r.action).collect()
}

#[test]
fn with_no_write_behind_interval_a_denial_is_written_by_its_own_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("astack.db");
    let (engine, _store) = engine_over(SqliteStore::open(&path).unwrap().with_write_behind(Duration::ZERO), T0);
    let key = engine.bootstrap_admin_key(None).unwrap().unwrap();
    let admin = engine.authorize(&key, Operation::Admin).unwrap().principal;
    let reader = engine.create_key(&admin, CreateKey { scopes: strings(&["sessions:read"]), ..Default::default() }).unwrap().key;
    assert!(engine.authorize(&reader, Operation::Admin).is_err());
    assert_eq!(written_actions(&path).last().map(String::as_str), Some("request.denied"), "no wait: written at once");
}

#[test]
fn a_new_engine_from_config_uses_the_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("astack.db");
    let json = format!(r#"{{"store": {{"kind": "sqlite", "path": "{}"}}}}"#, path.display());
    let engine = Engine::from_json(&json).unwrap();
    let key = engine.bootstrap_admin_key(None).unwrap().unwrap();
    drop(engine);
    let engine = Engine::from_json(&json).unwrap();
    assert!(engine.authorize(&key, Operation::Admin).is_ok());
    assert_eq!(engine.bootstrap_admin_key(None).unwrap().map(|k| k.len()), Some(39), "a second bootstrap makes a new key");
    let config = Config { store: StoreConfig::sqlite(path.display().to_string()), ..config() };
    assert!(Engine::new(config).is_ok());
}

#[test]
fn every_key_has_a_slot_of_its_own_before_and_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("astack.db");
    let slots = |engine: &Engine, keys: &[String]| -> Vec<u32> {
        let slot = |key: &String| engine.authorize(key, Operation::Admin).map_err(|d| d.error).unwrap().principal.key_slot().expect("a slot");
        let slots: Vec<u32> = keys.iter().map(slot).collect();
        let again: Vec<u32> = keys.iter().map(slot).collect();
        assert_eq!(slots, again, "a key keeps its slot");
        assert_eq!(slots.iter().collect::<std::collections::HashSet<_>>().len(), keys.len(), "no two keys share one");
        slots
    };
    let (engine, _) = open_engine(&path, 1_700_000_000_000);
    let keys: Vec<String> = (0..3).map(|_| engine.bootstrap_admin_key(None).unwrap().unwrap()).collect();
    slots(&engine, &keys);
    drop(engine);
    let (engine, _) = open_engine(&path, 1_700_000_000_000);
    slots(&engine, &keys);
}

#[test]
fn a_session_slot_is_released_by_every_final_state_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("astack.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let f = Fixture::with_store(config(), store, None);
    let key = f.key_with_limits(None, &["sessions:read", "sessions:write"], KeyLimits { concurrent_sessions: Some(2), ..Default::default() });
    let principal = f.principal(&key);
    let a = f.session(&principal);
    f.session(&principal);
    assert_eq!(f.engine.create_session(&principal, CreateSession::new("u")).unwrap_err().code(), "concurrent_session_limit");
    let now = f.now();
    drop(f);
    let (engine, _) = open_engine(&path, now);
    let principal = engine.principal(&key.record.id).unwrap();
    assert_eq!(engine.create_session(&principal, CreateSession::new("u")).unwrap_err().code(), "concurrent_session_limit");
    engine.terminate_session(&principal, &a.session.id).unwrap();
    assert!(engine.create_session(&principal, CreateSession::new("u")).is_ok());
}

// ---------------------------------------------------------------------------- crash test

const CHILD_ENV: &str = "ASTACK_CRASH_CHILD_DB";
const CHILD_KEY_ENV: &str = "ASTACK_CRASH_CHILD_KEY";
const ROUNDS: usize = 20;
const SLOT_LIMIT: u32 = 3;

/// The child: opens the store, then creates keys and sessions and moves them on, printing
/// `ACK <kind> <id> <status>` once each call has returned Ok. Does nothing unless the parent
/// started it.
#[test]
fn crash_child() {
    let (Ok(path), Ok(admin_key)) = (std::env::var(CHILD_ENV), std::env::var(CHILD_KEY_ENV)) else { return };
    let config = Config { store: StoreConfig::sqlite(path), ..config() };
    let engine = Engine::new(config).expect("child engine");
    engine.bootstrap_admin_key(Some(&admin_key)).expect("bootstrap");
    let admin = engine.authorize(&admin_key, Operation::Admin).expect("admin").principal;
    let mut out = std::io::stdout().lock();
    let mut ack = |line: String| {
        writeln!(out, "ACK {line}").unwrap();
        out.flush().unwrap();
    };
    let mut seed = u64::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap()) | 1;
    let mut random = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    loop {
        let created = engine
            .create_key(&admin, CreateKey {
                account_id: Some("crash".into()),
                scopes: strings(&["sessions:read", "sessions:write", "billing:write"]),
                limits: KeyLimits { concurrent_sessions: Some(SLOT_LIMIT), ..Default::default() },
                ..Default::default()
            })
            .expect("create key");
        ack(format!("key {} -", created.record.id));
        let principal = engine.principal(&created.record.id).unwrap();
        let mut live = Vec::new();
        for _ in 0..8 {
            match random(4) {
                0 | 1 => match engine.create_session(&principal, CreateSession::new("crash-user")) {
                    Ok(s) => {
                        ack(format!("session {} PENDING {}", s.session.id, created.record.id));
                        live.push(s);
                    }
                    Err(e) => assert_eq!(e.code(), "concurrent_session_limit"),
                },
                2 if !live.is_empty() => {
                    let s = &live[random(live.len() as u64) as usize];
                    if let Ok(session) = engine.connect_session(&admin, &s.session.id, &s.session_token) {
                        ack(format!("session {} {} {}", session.id, session.status, created.record.id));
                    }
                }
                _ if !live.is_empty() => {
                    let s = live.swap_remove(random(live.len() as u64) as usize);
                    let session = if random(2) == 0 {
                        engine.terminate_session(&principal, &s.session.id).unwrap()
                    } else {
                        engine.end_session(&admin, &s.session.id, EndSession { outcome: Outcome::Failed, reason: Some("x".into()) }).unwrap()
                    };
                    ack(format!("session {} {} {}", session.id, session.status, created.record.id));
                }
                _ => {
                    let idem = uuid::Uuid::new_v4().simple().to_string();
                    let request = RecordUsage { metric: "crash_units".into(), quantity: 1, idempotency_key: Some(idem.clone()) };
                    engine.record_usage(&principal, request).unwrap();
                    ack(format!("usage {idem} -"));
                }
            }
        }
    }
}

fn rank(status: Status) -> u8 {
    match status {
        Status::Pending => 0,
        Status::Active => 1,
        _ => 2,
    }
}

#[test]
fn acknowledged_changes_survive_kill_9_at_any_moment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("astack.db");
    let admin_key = astack::keys::generate().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut keys: HashMap<String, ()> = HashMap::new();
    let mut sessions: HashMap<String, (Status, String)> = HashMap::new();
    let mut usage_acks = 0usize;
    let started = Instant::now();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..ROUNDS {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let wait = 20 + (seed >> 33) % 181;
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .env(CHILD_KEY_ENV, &admin_key)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || BufReader::new(stdout).lines().map_while(Result::ok).collect::<Vec<_>>());
        std::thread::sleep(Duration::from_millis(wait));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success(), "round {round}: the child must die by the signal");
        let lines = reader.join().unwrap();
        for line in lines.iter().filter_map(|l| l.strip_prefix("ACK ")) {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts[..] {
                ["key", id, _] => {
                    keys.insert(id.to_owned(), ());
                }
                ["session", id, status, key_id] => {
                    let status: Status = serde_json::from_value(serde_json::json!(status)).unwrap();
                    let entry = sessions.entry(id.to_owned()).or_insert((status, key_id.to_owned()));
                    if rank(status) >= rank(entry.0) {
                        entry.0 = status;
                    }
                }
                ["usage", _, _] => usage_acks += 1,
                _ => panic!("unexpected line {line:?}"),
            }
        }
    }
    assert!(keys.len() >= ROUNDS / 2, "the children got work done: {} keys", keys.len());
    assert!(!sessions.is_empty());

    let store = SqliteStore::open(&path).unwrap();
    for id in keys.keys() {
        assert!(store.key(id).unwrap().is_some(), "acknowledged key {id} is lost");
    }
    for (id, (acked, _)) in &sessions {
        let stored = store.session(id).unwrap().unwrap_or_else(|| panic!("acknowledged session {id} is lost"));
        assert!(rank(stored.status) >= rank(*acked), "{id}: stored {} behind acknowledged {acked}", stored.status);
        if acked.is_final() {
            assert_eq!(stored.status, *acked, "{id}: a final state never changes");
        }
    }
    let all = store.list_sessions(None, usize::MAX).unwrap();
    let mut live: HashMap<&str, u32> = HashMap::new();
    for session in all.iter().filter(|s| s.is_live()) {
        *live.entry(&session.key_id).or_default() += 1;
    }
    for key in store.list_keys(None, usize::MAX).unwrap() {
        let expected = live.get(key.id.as_str()).copied().unwrap_or(0);
        assert_eq!(store.slots_in_use(&key.id).unwrap(), expected, "slots of {}", key.id);
        assert!(expected <= SLOT_LIMIT, "{} holds {expected} live sessions", key.id);
    }
    let units = store.usage("crash").unwrap().get("crash_units").copied().unwrap_or(0);
    assert!(units as usize >= usage_acks, "{units} units stored, {usage_acks} acknowledged");
    eprintln!(
        "crash test: {ROUNDS} kills, {} keys, {} sessions, {usage_acks} usage records acknowledged, all present ({:.1} s)",
        keys.len(),
        sessions.len(),
        started.elapsed().as_secs_f64()
    );
}
