//! Two threads on distinct keys against one thread: the rate ratio, ours beside `governor`'s
//! two keyed limiters. 100,000 keys; thread t takes the keys whose index is t modulo 2. Run
//! twice: keys spread over 1,000 accounts, and every key in one account (all counting into the
//! same account meter). On a shared 2-core machine the ceiling is 2.0x only while nothing else
//! runs, and other work only ever slows a turn down: so the two rates are each the best of many
//! short alternating turns, which catch the quiet moments a few long ones miss.
//!
//! `cargo bench --bench threads` (`BENCH_QUICK=1` for a shorter run).

mod common;

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Instant;

use astack::Operation;
use common::*;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
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

/// The two-thread / one-thread ratio of the best rates over `rounds` alternating rounds.
fn ratio(rounds: usize, calls: usize, f: &(dyn Fn(usize, usize) + Sync)) -> (f64, f64, f64) {
    let (mut one, mut two) = (0f64, 0f64);
    for _ in 0..rounds {
        one = one.max(rate(1, calls, f));
        two = two.max(rate(2, calls, f));
    }
    (two / one, one, two)
}

fn main() {
    let keys_n = if smoke() { 1_000 } else { BENCH_KEYS };
    let calls = if smoke() { 10_000 } else { 150_000 };
    let rounds = if smoke() { 2 } else if quick() { 6 } else { 12 };
    let keys = plaintexts(keys_n);
    let index = |t: usize, i: usize| (2 * i + t) % keys_n;

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
    let (mr, mone, mtwo) = ratio(rounds, calls, &hashing);
    println!("threads/machine (SHA-256 of each key, nothing shared): {mone:.0} -> {mtwo:.0} calls/s ({mr:.2}x)");

    for (accounts, name) in [(1_000, "threads/two_over_one"), (1, "threads/two_over_one_same_account")] {
        let (engine, store) = engine();
        import(&engine, &store, &keys, accounts);
        for key in &keys {
            assert!(engine.authorize(key, Operation::SessionRead).is_ok());
        }
        let ours = |t: usize, i: usize| {
            assert!(engine.authorize(black_box(&keys[index(t, i)]), Operation::SessionRead).is_ok());
        };
        let (r, one, two) = ratio(rounds, calls, &ours);
        let (pr, pone, ptwo) = ratio(rounds, calls, &governor);
        println!(
            "{name} ({accounts} accounts): astack {one:.0} -> {two:.0} calls/s ({r:.2}x); governor {pone:.0} -> {ptwo:.0} ({pr:.2}x)"
        );
        report(name, r, Some(pr), "x", ">=1.8");
    }
}
