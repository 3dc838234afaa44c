//! The rate limiter on its own (SPEC §5): any string key, any windows, token buckets refilled
//! continuously, all or nothing, and the HTTP headers exactly as the SPEC writes them.

use astack::limits::{peek_all, refund_all, take_all, Buckets, Decision, Headers, Limiter, Window};

fn window(name: &'static str, limit: u32, period_ms: u64) -> Window {
    Window::new(name, limit, period_ms).expect("valid window")
}

#[test]
fn any_string_key_with_any_windows() {
    let limiter = Limiter::new(vec![window("10s", 3, 10_000), window("day", 5, 86_400_000)]).unwrap();
    for key in ["203.0.113.7", "user:ünïcødé", "", &"x".repeat(10_000)] {
        for i in 0..3 {
            let d = limiter.check(key, 0);
            assert!(d.allowed, "{key:.20} request {i}");
        }
        let denied = limiter.check(key, 0);
        assert!(!denied.allowed);
        assert_eq!((denied.window, denied.limit, denied.remaining), (0, 3, 0));
    }
    // 10 s / 3 = 3.334 s per token (rounded up to the nanosecond).
    assert!(!limiter.check("203.0.113.7", 3_333).allowed);
    let d = limiter.check("203.0.113.7", 3_334);
    assert!(d.allowed);
    // The 10 s window is empty again (0 left) and tighter than the day's 1 of 5.
    assert_eq!((d.window, d.limit, d.remaining), (0, 3, 0));
    assert!(limiter.check("203.0.113.7", 20_000).allowed);
    let denied = limiter.check("203.0.113.7", 40_000);
    assert_eq!((denied.allowed, denied.window, denied.limit), (false, 1, 5));
    // One day-window token is back 86 400 / 5 = 17 280 s after the first take.
    assert_eq!(denied.retry_after, 17_280 - 40);
}

#[test]
fn a_single_window_and_many_windows() {
    let one = Limiter::new(vec![window("second", 1, 1_000)]).unwrap();
    assert!(one.check("k", 5_000).allowed);
    assert!(!one.check("k", 5_999).allowed);
    assert!(one.check("k", 6_000).allowed);
    let windows: Vec<Window> = (1..=8).map(|i| Window::new(format!("w{i}"), i * 2, 1_000).unwrap()).collect();
    let many = Limiter::new(windows).unwrap();
    assert!(many.check("k", 0).allowed);
    assert!(many.check("k", 0).allowed);
    let d = many.check("k", 0);
    assert!(!d.allowed);
    assert_eq!(many.headers(&d).ratelimit, "\"w1\";r=0;t=1");
    assert_eq!(d.retry_after, 1);
}

#[test]
fn invalid_windows_are_refused() {
    assert_eq!(Window::new("zero", 0, 1000).unwrap_err().code(), "invalid_request");
    assert_eq!(Window::new("instant", 1, 0).unwrap_err().code(), "invalid_request");
    assert!(Window::new("huge", 1, u64::MAX).is_err());
    assert!(Limiter::new(Vec::new()).is_err());
    assert_eq!(Window::per_minute(0).limit(), 1, "the key windows clamp to one");
}

#[test]
fn sweep_forgets_full_buckets_only() {
    let limiter = Limiter::new(vec![window("minute", 2, 60_000)]).unwrap();
    limiter.check("a", 0);
    limiter.check("b", 30_000);
    assert_eq!(limiter.sweep(29_999), 2);
    assert_eq!(limiter.sweep(30_000), 1, "a's bucket is full again after 30 s");
    assert_eq!(limiter.sweep(60_000), 0);
    // A forgotten key starts with a full bucket.
    assert!(limiter.check("a", 60_000).allowed);
    assert!(limiter.check("a", 60_000).allowed);
    assert!(!limiter.check("a", 60_000).allowed);
}

#[test]
fn buckets_refill_continuously_at_limit_per_period() {
    let w = [Window::per_minute(60), Window::per_hour(100_000)];
    let buckets = Buckets::default();
    for _ in 0..60 {
        assert!(buckets.try_take(&w, 0).allowed);
    }
    assert!(!buckets.try_take(&w, 0).allowed);
    // One token per second, never two.
    for second in 1..=30u64 {
        assert!(!buckets.try_take(&w, second * 1000 - 1).allowed);
        assert!(buckets.try_take(&w, second * 1000).allowed);
        assert!(!buckets.try_take(&w, second * 1000).allowed);
    }
    // Idle for a long time: the bucket holds its capacity, not more.
    let mut allowed = 0;
    while buckets.try_take(&w, 10_000_000).allowed {
        allowed += 1;
    }
    assert_eq!(allowed, 60);
}

#[test]
fn take_all_is_all_or_nothing_and_peek_takes_nothing() {
    let windows = [window("a", 5, 1_000), window("b", 2, 60_000)];
    let mut tats = [0u64; 2];
    assert!(take_all(&windows, &mut tats, 0).allowed);
    assert!(take_all(&windows, &mut tats, 0).allowed);
    let before = tats;
    let peeked = peek_all(&windows, &tats, 0);
    let denied = take_all(&windows, &mut tats, 0);
    assert_eq!(peeked, denied);
    assert!(!denied.allowed);
    assert_eq!(tats, before, "a denial changes no window");
    assert_eq!((denied.window, denied.retry_after), (1, 30));
    // peek_all of an allowed decision reports the tokens there now, without taking.
    let mut fresh = [0u64; 2];
    let peeked = peek_all(&windows, &fresh, 0);
    assert_eq!(fresh, [0, 0]);
    assert_eq!((peeked.allowed, peeked.window, peeked.remaining), (true, 1, 2));
    let taken = take_all(&windows, &mut fresh, 0);
    assert_eq!((taken.window, taken.remaining), (1, 1));
    assert_eq!(peek_all(&windows, &fresh, 0), taken, "a peek after a take reports what it left");
    // refund_all gives back exactly what take_all took.
    let mut tats = [0u64; 2];
    take_all(&windows, &mut tats, 500);
    let after_one = tats;
    take_all(&windows, &mut tats, 500);
    refund_all(&windows, &mut tats, 500);
    assert_eq!(tats, after_one);
}

#[test]
fn peek_and_take_work_for_many_windows() {
    let windows: Vec<Window> = (0..12).map(|i| Window::new(format!("w{i}"), 10 + i, 1_000).unwrap()).collect();
    let mut tats = vec![0u64; 12];
    let peeked = peek_all(&windows, &tats, 0);
    assert_eq!(tats, vec![0u64; 12]);
    assert_eq!((peeked.window, peeked.remaining), (0, 10));
    let taken = take_all(&windows, &mut tats, 0);
    assert_eq!((taken.window, taken.remaining), (0, 9));
}

#[test]
fn decision_reports_limit_remaining_reset_for_the_tightest_window() {
    let windows = [Window::per_minute(100), Window::per_hour(1000)];
    let mut tats = [0u64; 2];
    let d = take_all(&windows, &mut tats, 0);
    assert_eq!(
        d,
        Decision { allowed: true, window: 0, limit: 100, remaining: 99, reset: 1, retry_after: 0 }
    );
    for _ in 0..49 {
        take_all(&windows, &mut tats, 0);
    }
    // 50 taken: 50 left in the minute, 950 in the hour; full again in 30 s and 180 s.
    let d = peek_all(&windows, &tats, 0);
    assert_eq!((d.window, d.remaining, d.reset), (0, 50, 30));
    let d = take_all(&windows, &mut tats, 0);
    assert_eq!((d.window, d.remaining, d.reset), (0, 49, 31));
}

#[test]
fn headers_are_formatted_exactly_as_the_spec() {
    let windows = [Window::per_minute(100), Window::per_hour(1000)];
    let mut tats = [0u64; 2];
    let mut decision = take_all(&windows, &mut tats, 0);
    for _ in 0..57 {
        decision = take_all(&windows, &mut tats, 0);
    }
    // 58 taken: 42 left, and 58 × 0.6 s = 34.8 s until full.
    let headers = Headers::new(&windows, &decision);
    assert_eq!(
        headers,
        Headers {
            policy: "\"minute\";q=100;w=60, \"hour\";q=1000;w=3600".into(),
            ratelimit: "\"minute\";r=42;t=35".into(),
            retry_after: None,
        }
    );
    for _ in 0..42 {
        take_all(&windows, &mut tats, 0);
    }
    let denied = take_all(&windows, &mut tats, 0);
    let headers = Headers::new(&windows, &denied);
    assert_eq!(headers.ratelimit, "\"minute\";r=0;t=60");
    assert_eq!(headers.retry_after.as_deref(), Some("1"));
    // A custom limiter's policy lists its own windows, periods in whole seconds.
    let limiter = Limiter::new(vec![window("burst", 5, 1_500), window("day", 10_000, 86_400_000)]).unwrap();
    let d = limiter.check("ip", 0);
    let headers = limiter.headers(&d);
    assert_eq!(headers.policy, "\"burst\";q=5;w=2, \"day\";q=10000;w=86400");
    assert_eq!(headers.ratelimit, "\"burst\";r=4;t=1");
}

#[test]
fn limiter_is_exact_under_threads() {
    let limiter = std::sync::Arc::new(Limiter::new(vec![window("minute", 1_000, 60_000)]).unwrap());
    let allowed: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let limiter = limiter.clone();
                s.spawn(move || (0..600).filter(|_| limiter.check("shared", 0).allowed).count())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(allowed, 1_000);
}
