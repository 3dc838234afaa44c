//! Cost as the key count grows: 1,000 / 100,000 / 1,000,000 keys, each size in a fresh process
//! (so that memory freed by one size is not reused by the next and hidden from RSS).
//!
//! Per size: the plaintext keys are made first; then the resident set is read, the keys are
//! imported into the store (record, buckets and indexes: the bulk-import path, no audit record
//! per key), and read again: the difference over the key count is the memory per key. Then
//! `authorize` (one thread, round-robin over the keys) beside `governor`'s two keyed limiters on
//! the same key strings, best of a few rounds.
//!
//! The 1M ÷ 1k ratio is taken inside the largest size's process: a 1,000-key engine takes turns
//! with the large one there, round by round, so that a slow spell of the machine (which hits
//! the memory-bound large sizes hardest) weighs on both sides of the ratio.
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

/// Best time per call of `authorize` over `calls` calls cycling through `keys`.
fn authorize_ns(engine: &astack::Engine, keys: &[String], calls: usize) -> f64 {
    best_ns(1, calls, || {
        for i in 0..calls {
            assert!(engine.authorize(black_box(&keys[i % keys.len()]), Operation::SessionRead).is_ok());
        }
    })
}

/// Measures one size; with `paired`, also a 1,000-key engine in the same rounds (after the
/// memory figure, which it would disturb).
fn run(n: usize, paired: bool) {
    let (engine, store) = engine();
    let keys = plaintexts(n);
    let before = rss_bytes();
    import(&engine, &store, &keys, 1_000.min(n));
    let bytes_per_key = (rss_bytes() - before) as f64 / n as f64;
    let small = paired.then(|| {
        let (small, small_store) = common::engine();
        import(&small, &small_store, &keys[..1_000], 1_000);
        (small, small_store)
    });

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
    let (mut ours, mut peer, mut ours_1k) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    for _ in 0..rounds {
        if let Some((small, _)) = &small {
            ours_1k = ours_1k.min(authorize_ns(small, &keys[..1_000], calls));
        }
        ours = ours.min(authorize_ns(&engine, &keys, calls));
        peer = peer.min(best_ns(1, calls, || {
            for i in 0..calls {
                let key = black_box(&keys[i % n]);
                assert!(minute.check_key(key).is_ok() && hour.check_key(key).is_ok());
            }
        }));
    }
    // NaN when not paired.
    let ours_1k = if small.is_some() { ours_1k } else { f64::NAN };
    println!("CHILD {n} {ours:.1} {peer:.1} {bytes_per_key:.1} {ours_1k:.1}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--keys") {
        return run(args[i + 1].parse().expect("a key count"), args.iter().any(|a| a == "--pair-1k"));
    }
    let mut results = Vec::new();
    let sizes = if smoke() { &[100, 1_000][..] } else { &SIZES[..] };
    let largest = sizes[sizes.len() - 1];
    for &n in sizes {
        let out = Command::new(std::env::current_exe().expect("exe")).args(["--keys", &n.to_string()])
            .args(smoke().then_some("--smoke"))
            .args((n == largest && n > 1_000).then_some("--pair-1k"))
            .output()
            .expect("child");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().find(|l| l.starts_with("CHILD")).unwrap_or_else(|| panic!("no result for {n}: {text}"));
        let f: Vec<f64> = line.split_whitespace().skip(2).map(|x| x.parse().unwrap()).collect();
        println!("{:>9} keys: authorize {:7.1} ns, governor {:7.1} ns, {:6.1} bytes/key (RSS)", n, f[0], f[1], f[2]);
        results.push((n, f[0], f[1], f[2], f[3]));
    }
    for &(n, ours, peer, bytes, _) in &results {
        report(&format!("scaling/authorize_{}_keys", label(n)), ours, Some(peer), "ns", "-");
        report(&format!("scaling/bytes_per_key_{}", label(n)), bytes, None, "B", "<=256");
    }
    // The 1k figure from the largest size's own rounds when it has one (the table divides ours
    // by the peer).
    let (first, last) = (results[0], results[results.len() - 1]);
    let (small, taken) = if last.4.is_nan() { (first.1, "in its own run") } else { (last.4, "in the same rounds") };
    println!("1M ÷ 1k: {:.1} ns ÷ {small:.1} ns (the 1k figure taken {taken}) = {:.2}x", last.1, last.1 / small);
    report("scaling/authorize_1M_over_1k", last.1, Some(small), "ns", "ours/peer<=2");
}
