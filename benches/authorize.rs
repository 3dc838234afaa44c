//! `authorize` (digest, lookup, scope, two windows) beside the `governor` crate doing only the
//! two windows (a per-minute and a per-hour keyed limiter, checked one after the other), over
//! the same 100,000 keys, in the same run, twice: cycled in their order of creation, and in a
//! random order, as requests come (each key's state is then a cache miss away, for both: our
//! entries side by side in creation order no longer help). Nothing is denied during the run.
//!
//! Run with `make bench` or `cargo bench --bench authorize`.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Duration;

use astack::{Config, Engine, Operation};
use common::{PER_HOUR, PER_MINUTE};
use criterion::{criterion_group, criterion_main, Criterion};
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

fn bench(c: &mut Criterion) {
    let (engine, keys) = setup();
    let minute: DefaultKeyedRateLimiter<String> =
        RateLimiter::keyed(Quota::per_minute(NonZeroU32::new(PER_MINUTE).unwrap()));
    let hour: DefaultKeyedRateLimiter<String> =
        RateLimiter::keyed(Quota::per_hour(NonZeroU32::new(PER_HOUR).unwrap()));
    let minute_u64: DefaultKeyedRateLimiter<u64> =
        RateLimiter::keyed(Quota::per_minute(NonZeroU32::new(PER_MINUTE).unwrap()));
    let hour_u64: DefaultKeyedRateLimiter<u64> =
        RateLimiter::keyed(Quota::per_hour(NonZeroU32::new(PER_HOUR).unwrap()));
    // Warm up: every key known to every limiter, so the run measures checks, not inserts.
    for (i, key) in keys.iter().enumerate() {
        assert!(engine.authorize(key, Operation::SessionRead).is_ok());
        assert!(minute.check_key(key).is_ok() && hour.check_key(key).is_ok());
        assert!(minute_u64.check_key(&(i as u64)).is_ok() && hour_u64.check_key(&(i as u64)).is_ok());
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
            let key = black_box(&keys[i]);
            let allowed = minute.check_key(key).is_ok() && hour.check_key(key).is_ok();
            assert!(allowed);
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
    let mut order: Vec<usize> = (0..KEYS).collect();
    order.shuffle(&mut rand::rng());
    let mut j = 0usize;
    group.bench_function("astack_random", |b| {
        b.iter(|| {
            j = (j + 1) % KEYS;
            let allowed = engine.authorize(black_box(&keys[order[j]]), Operation::SessionRead).is_ok();
            assert!(allowed);
        })
    });
    let mut j = 0usize;
    group.bench_function("governor_random", |b| {
        b.iter(|| {
            j = (j + 1) % KEYS;
            let key = black_box(&keys[order[j]]);
            let allowed = minute.check_key(key).is_ok() && hour.check_key(key).is_ok();
            assert!(allowed);
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
