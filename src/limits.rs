//! Rate limits (SPEC §5): token buckets taken all-or-nothing across windows.
//!
//! Each window is a token bucket of capacity `limit`, refilled continuously at `limit / period`.
//! It is kept as a single number, the *theoretical arrival time* (GCRA, as `governor` does): the
//! instant at which the bucket would be full again. Taking a token pushes it one emission
//! interval (`period / limit`, rounded up to the nanosecond so that the refill is never faster
//! than the limit) into the future; a token is available while it stays within `period` of now.
//!
//! A request takes one token from every window of its key or none at all
//! ([`Buckets::try_take`]). The same machinery serves any string key with any set of windows
//! ([`Limiter`]). [`Decision`]s report the tightest window as the SPEC's `limit`, `remaining`,
//! `reset` and `retry_after`, and [`Headers`] formats them for HTTP.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasher;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const NANOS_PER_MS: u64 = 1_000_000;
const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Upper bound of any per-minute limit (keeps every interval at least a microsecond).
pub const MAX_PER_MINUTE: u32 = 10_000_000;
/// Upper bound of any per-hour limit.
pub const MAX_PER_HOUR: u32 = 100_000_000;
/// Upper bound of any concurrent-session limit.
pub const MAX_CONCURRENT: u32 = 1_000_000;

/// One rate-limit window: at most `limit` requests per `period`, refilled continuously.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    name: Cow<'static, str>,
    limit: u32,
    period_ms: u64,
    interval_ns: u64,
}

impl Window {
    /// A window named `name` allowing `limit` (≥ 1) requests per `period_ms` (≥ 1).
    pub fn new(name: impl Into<Cow<'static, str>>, limit: u32, period_ms: u64) -> Result<Self> {
        let name = name.into();
        if limit == 0 || period_ms == 0 || period_ms > u64::MAX / NANOS_PER_MS / 2 {
            return Err(Error::invalid(name.into_owned(), "limit and period must be positive"));
        }
        Ok(Self::with_name(name, limit, period_ms))
    }

    /// The per-minute window of a key.
    pub fn per_minute(limit: u32) -> Self {
        Self::with_name(Cow::Borrowed("minute"), limit.max(1), 60_000)
    }

    /// The per-hour window of a key.
    pub fn per_hour(limit: u32) -> Self {
        Self::with_name(Cow::Borrowed("hour"), limit.max(1), 3_600_000)
    }

    fn with_name(name: Cow<'static, str>, limit: u32, period_ms: u64) -> Self {
        let interval_ns = (period_ms * NANOS_PER_MS).div_ceil(u64::from(limit));
        Window { name, limit, period_ms, interval_ns }
    }

    /// The window's name (`minute`, `hour`, or a caller's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Capacity: requests allowed per period.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The period in milliseconds.
    pub fn period_ms(&self) -> u64 {
        self.period_ms
    }

    /// How far ahead of now the arrival time may run: the whole bucket.
    fn tolerance_ns(&self) -> u64 {
        self.interval_ns * u64::from(self.limit)
    }

    /// Tokens left and seconds until full, for a bucket at arrival time `tat`.
    fn state(&self, tat: u64, now: u64) -> (u32, u64) {
        let ahead = tat.saturating_sub(now);
        let free = self.tolerance_ns().saturating_sub(ahead) / self.interval_ns;
        (free.min(u64::from(self.limit)) as u32, ahead.div_ceil(NANOS_PER_SEC))
    }

    /// The arrival time after taking one token, or `None` when the bucket is empty.
    /// At the end of time (a clock past year 2554 saturates `now`) the bucket stays empty.
    fn take(&self, tat: u64, now: u64) -> Option<u64> {
        let next = tat.max(now).checked_add(self.interval_ns)?;
        (next - now <= self.tolerance_ns()).then_some(next)
    }

    /// Seconds until one token is back (never 0).
    fn retry_after(&self, tat: u64, now: u64) -> u64 {
        let available_at = tat.max(now).saturating_add(self.interval_ns).saturating_sub(self.tolerance_ns());
        available_at.saturating_sub(now).div_ceil(NANOS_PER_SEC).max(1)
    }
}

/// The outcome of a rate-limit check, reported for the tightest window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Whether the request may proceed (a token was taken from every window).
    pub allowed: bool,
    /// Index of the reported window in the set checked.
    #[serde(skip)]
    pub window: usize,
    /// That window's capacity.
    pub limit: u32,
    /// Tokens left in it.
    pub remaining: u32,
    /// Seconds until it is full again.
    pub reset: u64,
    /// When denied, seconds until one token is back (≥ 1); 0 when allowed.
    pub retry_after: u64,
}

impl Decision {
    /// The error a denied decision stands for.
    pub fn to_error(&self, windows: &[Window]) -> Error {
        Error::RateLimited {
            window: windows.get(self.window).map_or_else(String::new, |w| w.name().to_owned()),
            limit: self.limit,
            retry_after: self.retry_after,
        }
    }
}

/// Checks `windows` against their arrival times `tats` at `now_ms`, taking one token from each
/// or none, and returns the decision for the tightest window.
///
/// When allowed, the tightest window is the one with the fewest tokens left (the first on a
/// tie); when denied, the empty window with the longest wait.
pub fn take_all(windows: &[Window], tats: &mut [u64], now_ms: u64) -> Decision {
    let now = now_ms.saturating_mul(NANOS_PER_MS);
    if let Some(denied) = denial(windows, tats, now) {
        return denied;
    }
    for (window, tat) in windows.iter().zip(tats.iter_mut()) {
        *tat = window.take(*tat, now).unwrap_or(*tat);
    }
    tightest(windows, tats, now)
}

/// The state of the tightest window as it stands, taking nothing: `allowed` says whether a
/// take would succeed, `remaining` counts the tokens there now.
pub fn peek_all(windows: &[Window], tats: &[u64], now_ms: u64) -> Decision {
    let now = now_ms.saturating_mul(NANOS_PER_MS);
    denial(windows, tats, now).unwrap_or_else(|| tightest(windows, tats, now))
}

/// The decision refusing a take, if any window is empty: the empty window with the longest wait.
fn denial(windows: &[Window], tats: &[u64], now: u64) -> Option<Decision> {
    debug_assert_eq!(windows.len(), tats.len());
    let mut denied: Option<Decision> = None;
    for (index, (window, &tat)) in windows.iter().zip(tats).enumerate() {
        if window.take(tat, now).is_some() {
            continue;
        }
        let retry_after = window.retry_after(tat, now);
        if denied.map_or(true, |d| retry_after > d.retry_after) {
            let (remaining, reset) = window.state(tat, now);
            denied = Some(Decision { allowed: false, window: index, limit: window.limit, remaining, reset, retry_after });
        }
    }
    denied
}

/// The allowed decision for the window with the fewest tokens left (the first on a tie).
fn tightest(windows: &[Window], tats: &[u64], now: u64) -> Decision {
    let mut tightest =
        Decision { allowed: true, window: 0, limit: 0, remaining: u32::MAX, reset: 0, retry_after: 0 };
    for (index, (window, &tat)) in windows.iter().zip(tats).enumerate() {
        let (remaining, reset) = window.state(tat, now);
        if remaining < tightest.remaining {
            tightest = Decision { window: index, limit: window.limit, remaining, reset, ..tightest };
        }
    }
    tightest
}

/// Gives back the token [`take_all`] just took from each window (a request that was allowed by
/// the limits and then refused by a later check consumes nothing).
pub fn refund_all(windows: &[Window], tats: &mut [u64], now_ms: u64) {
    let now = now_ms.saturating_mul(NANOS_PER_MS);
    for (window, tat) in windows.iter().zip(tats.iter_mut()) {
        *tat = tat.saturating_sub(window.interval_ns).max(now.min(*tat));
    }
}

/// The arrival times of one key's two windows (minute, hour), updated under a short lock so
/// that both are taken or neither.
#[derive(Debug, Default)]
pub struct Buckets {
    tats: Mutex<[u64; 2]>,
}

impl Buckets {
    /// Takes one token from both windows or none.
    pub fn try_take(&self, windows: &[Window; 2], now_ms: u64) -> Decision {
        take_all(windows, &mut *self.tats.lock(), now_ms)
    }

    /// The decision `try_take` would report, taking nothing.
    pub fn peek(&self, windows: &[Window; 2], now_ms: u64) -> Decision {
        peek_all(windows, &*self.tats.lock(), now_ms)
    }

    /// Gives back one token to each window.
    pub fn refund(&self, windows: &[Window; 2], now_ms: u64) {
        refund_all(windows, &mut *self.tats.lock(), now_ms);
    }
}

/// The engine-wide default limits (the `limits` object of the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Requests per minute (default 100).
    pub requests_per_minute: u32,
    /// Requests per hour (default 1,000).
    pub requests_per_hour: u32,
    /// Sessions in PENDING or ACTIVE at once (default 10).
    pub concurrent_sessions: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { requests_per_minute: 100, requests_per_hour: 1000, concurrent_sessions: 10 }
    }
}

impl Limits {
    /// The key's two windows.
    pub fn windows(&self) -> [Window; 2] {
        [Window::per_minute(self.requests_per_minute), Window::per_hour(self.requests_per_hour)]
    }
}

/// A key's overrides of the engine defaults; a field left out takes the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyLimits {
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// Requests per hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_hour: Option<u32>,
    /// Concurrent sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_sessions: Option<u32>,
}

impl KeyLimits {
    /// The limits in force for a key with these overrides.
    pub fn resolve(&self, defaults: &Limits) -> Limits {
        Limits {
            requests_per_minute: self.requests_per_minute.unwrap_or(defaults.requests_per_minute),
            requests_per_hour: self.requests_per_hour.unwrap_or(defaults.requests_per_hour),
            concurrent_sessions: self.concurrent_sessions.unwrap_or(defaults.concurrent_sessions),
        }
    }

    /// Checks each given value's range; `prefix` is the path of this object (`limits`).
    pub fn validate(&self, prefix: &str, error: fn(String, String) -> Error) -> Result<()> {
        let fields = [
            ("requests_per_minute", self.requests_per_minute, MAX_PER_MINUTE),
            ("requests_per_hour", self.requests_per_hour, MAX_PER_HOUR),
            ("concurrent_sessions", self.concurrent_sessions, MAX_CONCURRENT),
        ];
        for (name, value, max) in fields {
            if let Some(value) = value {
                if value == 0 || value > max {
                    return Err(error(format!("{prefix}.{name}"), format!("must be 1 to {max}")));
                }
            }
        }
        Ok(())
    }
}

/// The values of the three rate-limit headers of SPEC §5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    /// `RateLimit-Policy`: every window, e.g. `"minute";q=100;w=60, "hour";q=1000;w=3600`.
    pub policy: String,
    /// `RateLimit`: the tightest window, e.g. `"minute";r=42;t=12`.
    pub ratelimit: String,
    /// `Retry-After` in seconds, present when denied.
    pub retry_after: Option<String>,
}

impl Headers {
    /// Formats the headers for a decision taken over `windows`.
    pub fn new(windows: &[Window], decision: &Decision) -> Self {
        // Written piece by piece (`itoa` for the numbers): `format!` cost more than the
        // decision itself.
        let mut numbers = itoa::Buffer::new();
        let mut policy = String::with_capacity(48 * windows.len());
        for (i, window) in windows.iter().enumerate() {
            if i > 0 {
                policy.push_str(", ");
            }
            policy.push('"');
            policy.push_str(window.name());
            policy.push_str("\";q=");
            policy.push_str(numbers.format(window.limit()));
            policy.push_str(";w=");
            policy.push_str(numbers.format(window.period_ms().div_ceil(1000)));
        }
        let name = windows.get(decision.window).map_or("", Window::name);
        let mut ratelimit = String::with_capacity(40);
        ratelimit.push('"');
        ratelimit.push_str(name);
        ratelimit.push_str("\";r=");
        ratelimit.push_str(numbers.format(decision.remaining));
        ratelimit.push_str(";t=");
        ratelimit.push_str(numbers.format(decision.reset));
        Headers {
            policy,
            ratelimit,
            retry_after: (!decision.allowed).then(|| numbers.format(decision.retry_after).to_owned()),
        }
    }
}

const SHARDS: usize = 16;

/// A rate limiter over any string key (a client IP, an end user…) with any set of windows.
///
/// Keys are spread over shards, each behind its own lock; [`Limiter::sweep`] forgets keys whose
/// buckets are full again, so memory follows the active keys.
#[derive(Debug)]
pub struct Limiter {
    windows: Vec<Window>,
    hasher: std::collections::hash_map::RandomState,
    shards: Vec<Mutex<HashMap<String, Vec<u64>>>>,
}

impl Limiter {
    /// A limiter applying every window of `windows` (at least one) to each key.
    pub fn new(windows: Vec<Window>) -> Result<Self> {
        if windows.is_empty() {
            return Err(Error::invalid("windows", "at least one window is required"));
        }
        Ok(Limiter {
            windows,
            hasher: Default::default(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        })
    }

    /// The windows applied to each key.
    pub fn windows(&self) -> &[Window] {
        &self.windows
    }

    fn shard(&self, key: &str) -> &Mutex<HashMap<String, Vec<u64>>> {
        &self.shards[self.hasher.hash_one(key) as usize % SHARDS]
    }

    /// Takes one token from every window of `key`, or none.
    pub fn check(&self, key: &str, now_ms: u64) -> Decision {
        let mut shard = self.shard(key).lock();
        match shard.get_mut(key) {
            Some(tats) => take_all(&self.windows, tats, now_ms),
            None => {
                let mut tats = vec![0; self.windows.len()];
                let decision = take_all(&self.windows, &mut tats, now_ms);
                shard.insert(key.to_owned(), tats);
                decision
            }
        }
    }

    /// The headers for a decision of this limiter.
    pub fn headers(&self, decision: &Decision) -> Headers {
        Headers::new(&self.windows, decision)
    }

    /// Forgets keys whose every bucket is full at `now_ms`; returns how many remain.
    pub fn sweep(&self, now_ms: u64) -> usize {
        let now = now_ms.saturating_mul(NANOS_PER_MS);
        self.shards
            .iter()
            .map(|shard| {
                let mut shard = shard.lock();
                shard.retain(|_, tats| tats.iter().any(|&tat| tat > now));
                shard.len()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_is_exactly_the_limit_then_refills_continuously() {
        let windows = [Window::per_minute(100), Window::per_hour(1000)];
        let buckets = Buckets::default();
        for i in 0..100 {
            let d = buckets.try_take(&windows, 1_000);
            assert!(d.allowed, "request {i}");
            assert_eq!(d.remaining, 99 - i);
        }
        let denied = buckets.try_take(&windows, 1_000);
        assert!(!denied.allowed);
        assert_eq!((denied.limit, denied.remaining, denied.retry_after), (100, 0, 1));
        // One token comes back every 600 ms.
        assert!(!buckets.try_take(&windows, 1_599).allowed);
        assert!(buckets.try_take(&windows, 1_600).allowed);
    }

    #[test]
    fn all_or_nothing_across_windows() {
        let windows = [Window::per_minute(10), Window::per_hour(12)];
        let buckets = Buckets::default();
        for _ in 0..10 {
            assert!(buckets.try_take(&windows, 0).allowed);
        }
        // The minute window is empty: the hour window must keep its two tokens.
        assert!(!buckets.try_take(&windows, 0).allowed);
        let d = buckets.try_take(&windows, 60_000);
        assert!(d.allowed);
        assert_eq!((d.window, d.remaining), (1, 1), "the hour window is now the tightest");
    }

    #[test]
    fn denied_reports_the_longest_wait() {
        let windows = [Window::per_minute(2), Window::per_hour(2)];
        let buckets = Buckets::default();
        buckets.try_take(&windows, 0);
        buckets.try_take(&windows, 0);
        let d = buckets.try_take(&windows, 0);
        assert_eq!((d.allowed, d.window, d.retry_after), (false, 1, 1800));
        assert_eq!(d.reset, 3600);
    }

    #[test]
    fn refund_gives_the_token_back() {
        let windows = [Window::per_minute(1), Window::per_hour(5)];
        let buckets = Buckets::default();
        assert!(buckets.try_take(&windows, 0).allowed);
        buckets.refund(&windows, 0);
        assert!(buckets.try_take(&windows, 0).allowed);
        assert!(!buckets.try_take(&windows, 0).allowed);
    }

    #[test]
    fn headers_follow_the_spec() {
        let windows = [Window::per_minute(100), Window::per_hour(1000)];
        let buckets = Buckets::default();
        let d = buckets.try_take(&windows, 0);
        let h = Headers::new(&windows, &d);
        assert_eq!(h.policy, "\"minute\";q=100;w=60, \"hour\";q=1000;w=3600");
        assert_eq!(h.ratelimit, "\"minute\";r=99;t=1");
        assert_eq!(h.retry_after, None);
        // Denied by the hour: it is named, and Retry-After is set.
        let windows = [Window::per_minute(100), Window::per_hour(1)];
        let d = Buckets::default();
        assert!(d.try_take(&windows, 0).allowed);
        let h = Headers::new(&windows, &d.try_take(&windows, 0));
        assert_eq!(h.policy, "\"minute\";q=100;w=60, \"hour\";q=1;w=3600");
        assert_eq!(h.ratelimit, "\"hour\";r=0;t=3600");
        assert_eq!(h.retry_after.as_deref(), Some("3600"));
    }

    #[test]
    fn string_limiter_with_any_windows() {
        let limiter =
            Limiter::new(vec![Window::new("second", 2, 1000).unwrap(), Window::new("day", 3, 86_400_000).unwrap()])
                .unwrap();
        assert!(limiter.check("10.0.0.1", 0).allowed);
        assert!(limiter.check("10.0.0.1", 0).allowed);
        let d = limiter.check("10.0.0.1", 0);
        assert!(!d.allowed);
        assert_eq!(limiter.headers(&d).ratelimit, "\"second\";r=0;t=1");
        assert!(limiter.check("10.0.0.2", 0).allowed, "keys are independent");
        assert!(limiter.check("10.0.0.1", 1000).allowed);
        assert!(!limiter.check("10.0.0.1", 2000).allowed, "the day window has run out");
        assert_eq!(limiter.sweep(86_400_000 * 2), 0);
        assert!(Limiter::new(vec![]).is_err());
        assert!(Window::new("x", 0, 1000).is_err());
    }
}
