//! Cost as the key count grows: 1,000 / 100,000 / 1,000,000 keys, each size in a fresh process
//! (so that memory freed by one size is not reused by the next and hidden from RSS).
//!
//! Per size: the plaintext keys are made first; then the resident set is read, the keys are
//! imported into the store (record, buckets and indexes: the bulk-import path, no audit record
//! per key), and read again: the difference over the key count is the memory per key. Then
//! `authorize` (one thread, round-robin over the keys) beside `governor`'s two keyed limiters on
//! the same key strings, best of a few rounds.
//!
//! `cargo bench --bench scaling` (`BENCH_QUICK=1` for a shorter run).

mod common;

use std::hint::black_box;
use std::num::NonZeroU32;
use std::process::Command;

use astack::Operation;
use common::*;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];

fn label(n: usize) -> String {
    match n {
        n if n >= 1_000_000 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

fn run(n: usize) {
    let (engine, store) = engine();
    let keys = plaintexts(n);
    let before = rss_bytes();
    import(&engine, &store, &keys, 1_000.min(n));
    let bytes_per_key = (rss_bytes() - before) as f64 / n as f64;

    let minute: DefaultKeyedRateLimiter<String> = RateLimiter::keyed(Quota::per_minute(NonZeroU32::new(PER_MINUTE).unwrap()));
    let hour: DefaultKeyedRateLimiter<String> = RateLimiter::keyed(Quota::per_hour(NonZeroU32::new(PER_HOUR).unwrap()));
    for key in &keys {
        assert!(engine.authorize(key, Operation::SessionRead).is_ok());
        assert!(minute.check_key(key).is_ok() && hour.check_key(key).is_ok());
    }
    let calls = if n <= 1_000 && std::env::args().any(|a| a == "--smoke") {
        10_000
    } else if quick() {
        300_000
    } else {
        2_000_000
    };
    let rounds = if quick() { 2 } else { 3 };
    let (mut ours, mut peer) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..rounds {
        ours = ours.min(best_ns(1, calls, || {
            for i in 0..calls {
                assert!(engine.authorize(black_box(&keys[i % n]), Operation::SessionRead).is_ok());
            }
        }));
        peer = peer.min(best_ns(1, calls, || {
            for i in 0..calls {
                let key = black_box(&keys[i % n]);
                assert!(minute.check_key(key).is_ok() && hour.check_key(key).is_ok());
            }
        }));
    }
    println!("CHILD {n} {ours:.1} {peer:.1} {bytes_per_key:.1}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--keys") {
        return run(args[i + 1].parse().expect("a key count"));
    }
    let mut results = Vec::new();
    let sizes = if smoke() { &[100, 1_000][..] } else { &SIZES[..] };
    for &n in sizes {
        let out = Command::new(std::env::current_exe().expect("exe")).args(["--keys", &n.to_string()])
            .args(smoke().then_some("--smoke")).output().expect("child");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().find(|l| l.starts_with("CHILD")).unwrap_or_else(|| panic!("no result for {n}: {text}"));
        let f: Vec<f64> = line.split_whitespace().skip(2).map(|x| x.parse().unwrap()).collect();
        println!("{:>9} keys: authorize {:7.1} ns, governor {:7.1} ns, {:6.1} bytes/key (RSS)", n, f[0], f[1], f[2]);
        results.push((n, f[0], f[1], f[2]));
    }
    for &(n, ours, peer, bytes) in &results {
        report(&format!("scaling/authorize_{}_keys", label(n)), ours, Some(peer), "ns", "-");
        report(&format!("scaling/bytes_per_key_{}", label(n)), bytes, None, "B", "<=256");
    }
    let (first, last) = (results[0], results[results.len() - 1]);
    report("scaling/authorize_1M_over_1k", last.1, Some(first.1), "ns", "ours/peer<=2");
}
