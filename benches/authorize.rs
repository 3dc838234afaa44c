//! `authorize` (digest, lookup, scope, two windows) beside the `governor` crate doing only the
//! two windows (a per-minute and a per-hour keyed limiter, checked one after the other), over
//! the same 100,000 keys, in the same run, twice: cycled in their order of creation, and in a
//! random order, as requests come (each key's state is then a cache miss away, for both: our
//! entries side by side in creation order no longer help). Nothing is denied during the run.
//!
//! The table's two rows come from short rounds in which the two sides take turns (who goes first
//! alternating too), each row the median of each side's rounds: on a shared machine a noisy spell
//! then falls on both sides alike, where criterion, measuring one side for seconds and then the
//! other, moved the ratio by ±0.15 from one run to the next. Criterion's groups follow, for the
//! details of each function.
//!
//! Run with `make bench` or `cargo bench --bench authorize`.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use astack::{Config, Engine, Operation};
use common::{PER_HOUR, PER_MINUTE};
use criterion::Criterion;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::seq::SliceRandom;

mod common;

const KEYS: usize = 100_000;

fn setup() -> (Engine, Vec<String>) {
    let engine = Engine::new(Config::default()).expect("engine");
    // A gateway reads each key from the request it has just received, so the key's bytes are in
    // the cache. `create_key` left each plaintext among that key's audit record and JSON; copied
    // out side by side, the bench reads them without a cache miss of their own (for both sides).
    let keys = common::created_keys(&engine, KEYS, 1_000).iter().map(|key| key.as_str().to_owned()).collect();
    (engine, keys)
}

/// Governor's two windows, keyed like ours by the key string.
struct Governor {
    minute: DefaultKeyedRateLimiter<String>,
    hour: DefaultKeyedRateLimiter<String>,
}

impl Governor {
    fn new() -> Self {
        Governor {
            minute: RateLimiter::keyed(Quota::per_minute(NonZeroU32::new(PER_MINUTE).unwrap())),
            hour: RateLimiter::keyed(Quota::per_hour(NonZeroU32::new(PER_HOUR).unwrap())),
        }
    }

    fn check(&self, key: &String) -> bool {
        self.minute.check_key(key).is_ok() && self.hour.check_key(key).is_ok()
    }
}

/// Time per call of `check` over `requests`, `calls` times from `start`.
fn run(requests: &[String], start: usize, calls: usize, check: impl Fn(&String) -> bool) -> f64 {
    let begin = Instant::now();
    for j in start..start + calls {
        assert!(check(black_box(&requests[j % requests.len()])));
    }
    begin.elapsed().as_nanos() as f64 / calls as f64
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Ours and governor's in alternating rounds over `requests` (the keys in the order they come, and
/// copied side by side in that order, so that each request's key is in the cache as it would be
/// in a gateway that has just read it; the limiters' own state is not); prints the table's row.
fn side_by_side(workload: &str, engine: &Engine, governor: &Governor, requests: &[String]) {
    let (rounds, calls) = if common::smoke() { (2, 1_000) } else if common::quick() { (7, 100_000) } else { (21, 200_000) };
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let start = round * calls;
        let mut astack = || ours.push(run(requests, start, calls, |k| engine.authorize(k, Operation::SessionRead).is_ok()));
        let mut peer = || theirs.push(run(requests, start, calls, |k| governor.check(k)));
        if round % 2 == 0 {
            astack();
            peer();
        } else {
            peer();
            astack();
        }
    }
    common::report(workload, median(ours), Some(median(theirs)), "ns", "<=0.7x");
}

/// Criterion's groups over the same keys (creation order), with governor keyed by `u64` too.
fn criterion_groups(c: &mut Criterion, engine: &Engine, governor: &Governor, keys: &[String]) {
    let minute_u64: DefaultKeyedRateLimiter<u64> =
        RateLimiter::keyed(Quota::per_minute(NonZeroU32::new(PER_MINUTE).unwrap()));
    let hour_u64: DefaultKeyedRateLimiter<u64> =
        RateLimiter::keyed(Quota::per_hour(NonZeroU32::new(PER_HOUR).unwrap()));
    for i in 0..KEYS as u64 {
        assert!(minute_u64.check_key(&i).is_ok() && hour_u64.check_key(&i).is_ok());
    }

    let mut group = c.benchmark_group("authorize");
    group.measurement_time(Duration::from_secs(5)).sample_size(20).warm_up_time(Duration::from_secs(1));
    let mut i = 0usize;
    group.bench_function("astack", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            let allowed = engine.authorize(black_box(&keys[i]), Operation::SessionRead).is_ok();
            assert!(allowed);
        })
    });
    let mut i = 0usize;
    group.bench_function("governor", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            assert!(governor.check(black_box(&keys[i])));
        })
    });
    let mut i = 0u64;
    group.bench_function("governor_u64_keys", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS as u64;
            let key = black_box(i);
            let allowed = minute_u64.check_key(&key).is_ok() && hour_u64.check_key(&key).is_ok();
            assert!(allowed);
        })
    });
    group.finish();
}

fn main() {
    let (engine, keys) = setup();
    let governor = Governor::new();
    // Warm up: every key known to both, so the runs measure checks, not inserts.
    for key in &keys {
        assert!(engine.authorize(key, Operation::SessionRead).is_ok() && governor.check(key));
    }
    side_by_side("rust/authorize_100k_keys", &engine, &governor, &keys);
    let mut order: Vec<&String> = keys.iter().collect();
    order.shuffle(&mut rand::rng());
    let random: Vec<String> = order.into_iter().cloned().collect();
    side_by_side("rust/authorize_100k_keys_random_order", &engine, &governor, &random);
    drop(random);

    let mut criterion = Criterion::default().configure_from_args();
    criterion_groups(&mut criterion, &engine, &governor, &keys);
    criterion.final_summary();
}
