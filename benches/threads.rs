//! Two threads on distinct keys against one thread: the rate ratio, ours beside `governor`'s
//! two keyed limiters. 100,000 keys in a random order; thread t takes those at an index that
//! is t modulo 2, so the threads' keys are disjoint and neither thread steps through them in
//! their order of creation (nor in step with the other, on neighbouring keys). Run
//! twice: keys spread over 1,000 accounts, and every key in one account (all counting into the
//! same account meter). On a shared 2-core machine the ceiling is 2.0x only while nothing else
//! runs, and other work only ever slows a turn down: so the two rates are each the best of many
//! short alternating turns, which catch the quiet moments a few long ones miss. Ours, governor's
//! and the machine's own ceiling (hashing each key on two threads, sharing nothing) take turns
//! within each round, so that each figure comes from the same spells as the others.
//!
//! `cargo bench --bench threads` (`BENCH_QUICK=1` for a shorter run).

mod common;

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Instant;

use astack::Operation;
use common::*;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::seq::SliceRandom;
use sha2::Digest;

const BENCH_KEYS: usize = 100_000;

/// Calls per second with `threads` threads each making `calls` calls of `f(thread, i)`.
fn rate(threads: usize, calls: usize, f: &(dyn Fn(usize, usize) + Sync)) -> f64 {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                for i in 0..calls {
                    f(t, i);
                }
            });
        }
    });
    (threads * calls) as f64 / start.elapsed().as_secs_f64()
}

/// Each workload's two-thread / one-thread ratio, of its best rates over `rounds` rounds. The
/// workloads take turns within each round, so that a busy spell of the machine weighs on all.
fn ratios(rounds: usize, calls: usize, workloads: &[&(dyn Fn(usize, usize) + Sync)]) -> Vec<(f64, f64, f64)> {
    let mut best = vec![(0f64, 0f64); workloads.len()];
    for _ in 0..rounds {
        for (f, (one, two)) in workloads.iter().zip(&mut best) {
            *one = one.max(rate(1, calls, f));
            *two = two.max(rate(2, calls, f));
        }
    }
    best.into_iter().map(|(one, two)| (two / one, one, two)).collect()
}

fn main() {
    let keys_n = if smoke() { 1_000 } else { BENCH_KEYS };
    let calls = if smoke() { 10_000 } else { 150_000 };
    let rounds = if smoke() { 2 } else if quick() { 6 } else { 12 };
    let keys = plaintexts(keys_n);
    // Each thread's keys in random order, as requests come.
    let mut order: Vec<usize> = (0..keys_n).collect();
    order.shuffle(&mut rand::rng());
    let index = |t: usize, i: usize| order[(2 * i + t) % keys_n];

    let minute: DefaultKeyedRateLimiter<String> = RateLimiter::keyed(Quota::per_minute(NonZeroU32::new(PER_MINUTE).unwrap()));
    let hour: DefaultKeyedRateLimiter<String> = RateLimiter::keyed(Quota::per_hour(NonZeroU32::new(PER_HOUR).unwrap()));
    for key in &keys {
        assert!(minute.check_key(key).is_ok() && hour.check_key(key).is_ok());
    }
    let governor = |t: usize, i: usize| {
        let key = black_box(&keys[index(t, i)]);
        assert!(minute.check_key(key).is_ok() && hour.check_key(key).is_ok());
    };

    // The machine's own ceiling: hashing each key (SHA-256, as authorize does first), which
    // shares nothing between threads.
    let hashing = |t: usize, i: usize| {
        black_box(sha2::Sha256::digest(black_box(keys[index(t, i)].as_bytes())));
    };

    for (accounts, name) in [(1_000, "threads/two_over_one"), (1, "threads/two_over_one_same_account")] {
        let (engine, store) = engine();
        import(&engine, &store, &keys, accounts);
        for key in &keys {
            assert!(engine.authorize(key, Operation::SessionRead).is_ok());
        }
        let ours = |t: usize, i: usize| {
            assert!(engine.authorize(black_box(&keys[index(t, i)]), Operation::SessionRead).is_ok());
        };
        let measured = ratios(rounds, calls, &[&ours, &governor, &hashing]);
        let [(r, one, two), (pr, pone, ptwo), (mr, _, _)] = measured[..] else { unreachable!("three workloads") };
        println!(
            "{name} ({accounts} accounts): astack {one:.0} -> {two:.0} calls/s ({r:.2}x); governor {pone:.0} -> {ptwo:.0} ({pr:.2}x); \
             the machine (SHA-256 of each key, nothing shared) {mr:.2}x"
        );
        report(name, r, Some(pr), "x", ">=1.8");
    }
}
