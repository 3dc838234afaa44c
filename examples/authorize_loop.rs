//! A plain loop over `Engine::authorize`, for profilers (`perf record`, `valgrind --tool=callgrind`):
//! `cargo run --release --example authorize_loop -- [keys] [calls]` builds the keys, then
//! authorizes `calls` times round-robin and prints the time per call.

use std::time::Instant;

use astack::keys::CreateKey;
use astack::limits::KeyLimits;
use astack::{Config, Engine, Operation};

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().expect("a number"));
    let keys_n = args.next().unwrap_or(100_000);
    let calls = args.next().unwrap_or(1_000_000);
    let engine = Engine::new(Config::default()).expect("engine");
    let admin_key = engine.bootstrap_admin_key(None).expect("bootstrap").expect("generated");
    let admin = engine.authorize(&admin_key, Operation::Admin).map_err(|d| d.error).expect("admin").principal;
    let keys: Vec<String> = (0..keys_n)
        .map(|i| {
            let request = CreateKey {
                account_id: Some(format!("acct-{}", i % 1_000)),
                scopes: vec!["sessions:read".into()],
                limits: KeyLimits {
                    requests_per_minute: Some(10_000_000),
                    requests_per_hour: Some(100_000_000),
                    concurrent_sessions: None,
                },
                ..Default::default()
            };
            engine.create_key(&admin, request).expect("key").key
        })
        .collect();
    let start = Instant::now();
    let mut allowed = 0usize;
    for i in 0..calls {
        allowed += usize::from(engine.authorize(&keys[i % keys_n], Operation::SessionRead).is_ok());
    }
    let elapsed = start.elapsed();
    assert_eq!(allowed, calls);
    println!("{} ns per authorize ({keys_n} keys, {calls} calls)", elapsed.as_nanos() / calls as u128);
}
