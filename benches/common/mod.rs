//! What the benches share: building many keys fast, RSS, quick mode and the `BENCH` lines that
//! `benches/table.py` collects into one table.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Instant;

use astack::clock::SystemClock;
use astack::keys::{self, CreateKey, KeyRecord};
use astack::limits::KeyLimits;
use astack::scopes::{Permissions, Scope, Scopes};
use astack::store::{MemoryStore, Store};
use astack::{Config, Engine, Operation};

/// Limits high enough that no benchmark request is refused.
pub const PER_MINUTE: u32 = 10_000_000;
pub const PER_HOUR: u32 = 100_000_000;

/// `BENCH_QUICK=1` shortens every run (fewer calls, fewer rounds).
pub fn quick() -> bool {
    std::env::var_os("BENCH_QUICK").is_some_and(|v| v != "0" && !v.is_empty())
}

/// Whether this run is `cargo test --all-targets` (a smoke run: tiny sizes) rather than
/// `cargo bench` (which passes `--bench`).
pub fn smoke() -> bool {
    !std::env::args().any(|a| a == "--bench" || a == "--keys")
}

/// One line for `benches/table.py`: `BENCH <workload> ours=<x> peer=<y> unit=<u> aim=<text>`.
/// Ratios (unit `x`) to three places, so that the table can tell 1.79x from an aim of 1.8x.
pub fn report(workload: &str, ours: f64, peer: Option<f64>, unit: &str, aim: &str) {
    let places = if unit == "x" { 3 } else { 1 };
    let peer = peer.map_or_else(|| "-".to_owned(), |p| format!("{p:.places$}"));
    println!("BENCH {workload} ours={ours:.places$} peer={peer} unit={unit} aim={aim}");
}

/// Resident set size of this process, in bytes.
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// An engine over a store the bench can fill directly.
pub fn engine() -> (Engine, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::with_parts(Config::default(), Arc::new(SystemClock), store.clone()).expect("engine");
    (engine, store)
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).expect("random");
    let mut id = String::from("key_");
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// A record like the ones `Engine::create_key` makes (id `key_` + 32 hex, `sessions:read`,
/// high limits), for the account `acct-<n>`.
pub fn record(key: &str, account: usize, now: u64) -> KeyRecord {
    KeyRecord {
        id: random_id(),
        account_id: format!("acct-{account}"),
        name: String::new(),
        prefix: keys::display_prefix(key).to_owned(),
        scopes: Scopes::EMPTY.with(Scope::SessionsRead),
        permissions: Permissions::EMPTY,
        limits: KeyLimits { requests_per_minute: Some(PER_MINUTE), requests_per_hour: Some(PER_HOUR), concurrent_sessions: None },
        created_at: now,
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
    }
}

/// `n` keys made through `Engine::create_key` by a bootstrapped admin (each with its audit
/// record, as a running service makes them), `sessions:read`, spread over `accounts` accounts,
/// with limits that refuse nothing.
pub fn created_keys(engine: &Engine, n: usize, accounts: usize) -> Vec<String> {
    let admin_key = engine.bootstrap_admin_key(None).expect("bootstrap").expect("generated");
    let admin = engine.authorize(&admin_key, Operation::Admin).map_err(|d| d.error).expect("admin").principal;
    (0..n)
        .map(|i| {
            let request = CreateKey {
                account_id: Some(format!("acct-{}", i % accounts)),
                scopes: vec!["sessions:read".into()],
                limits: KeyLimits { requests_per_minute: Some(PER_MINUTE), requests_per_hour: Some(PER_HOUR), concurrent_sessions: None },
                ..Default::default()
            };
            engine.create_key(&admin, request).expect("key").key
        })
        .collect()
}

/// `n` plaintext keys (made before anything is measured).
pub fn plaintexts(n: usize) -> Vec<String> {
    (0..n).map(|_| keys::generate().expect("key")).collect()
}

/// Inserts one record per key, spread over `accounts` accounts, straight into the store: the
/// bulk-import path (no audit record per key, unlike `Engine::create_key`).
pub fn import(engine: &Engine, store: &MemoryStore, keys: &[String], accounts: usize) {
    let hasher = keys::Hasher::new(None);
    let now = engine.now();
    for (i, key) in keys.iter().enumerate() {
        store.insert_key(hasher.digest(key), record(key, i % accounts, now)).expect("insert");
    }
}

/// The best (shortest) of `rounds` runs of `f`, in nanoseconds per call of `calls`.
pub fn best_ns(rounds: usize, calls: usize, mut f: impl FnMut()) -> f64 {
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_nanos() as f64 / calls as f64
        })
        .fold(f64::INFINITY, f64::min)
}
