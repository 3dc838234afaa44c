//! Time, injected: the engine reads the time only from a [`Clock`].
//!
//! All times are Unix epoch milliseconds. [`SystemClock`] is the default; [`ManualClock`] is set
//! and advanced by tests (in every language, through the C ABI) so that no rule needs sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time in Unix epoch milliseconds.
pub trait Clock: Send + Sync + 'static {
    /// The current time. Successive calls may go backwards only if the clock itself is set back.
    fn now_ms(&self) -> u64;

    /// The manual clock behind this clock, when it is one (lets hosts set and advance it).
    fn as_manual(&self) -> Option<&ManualClock> {
        None
    }
}

/// The operating system's wall clock.
///
/// On Linux it is read at the kernel's tick (`CLOCK_REALTIME_COARSE`: 1–10 ms, 4 ms on most
/// distributions' kernels), the way nginx and Redis cache the time once per loop: a read is a
/// few plain loads from the vDSO page. The precise clock reads the CPU's time-stamp counter
/// behind a fence, which waits for every memory access still in flight; in `authorize` over
/// keys that are not in the cache, that fence alone cost about 150 ns a call (BENCHMARKS.md).
/// Every rule here is in milliseconds over windows of a minute or more, so a time up to one
/// tick behind changes nothing a caller can see. Elsewhere, and if the coarse clock fails,
/// [`SystemTime`].
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        coarse_ms().unwrap_or_else(|| {
            SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
        })
    }
}

#[cfg(target_os = "linux")]
fn coarse_ms() -> Option<u64> {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid, writable timespec for the call's duration.
    let failed = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut now) } != 0;
    let seconds = u64::try_from(now.tv_sec).ok().filter(|_| !failed)?;
    Some(seconds * 1_000 + now.tv_nsec as u64 / 1_000_000)
}

#[cfg(not(target_os = "linux"))]
fn coarse_ms() -> Option<u64> {
    None
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    /// A clock reading `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        ManualClock { now: AtomicU64::new(now_ms) }
    }

    /// Sets the time.
    pub fn set(&self, now_ms: u64) {
        self.now.store(now_ms, Ordering::SeqCst);
    }

    /// Moves the time forward by `ms` (saturating) and returns the new time.
    pub fn advance(&self, ms: u64) -> u64 {
        let previous = self
            .now
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| Some(t.saturating_add(ms)))
            .unwrap_or_default();
        previous.saturating_add(ms)
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    fn as_manual(&self) -> Option<&ManualClock> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn precise_ms() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis() as u64
    }

    #[test]
    fn the_system_clock_is_the_wall_clock_within_a_tick() {
        for _ in 0..1_000 {
            let before = precise_ms();
            let now = SystemClock.now_ms();
            let after = precise_ms();
            // A tick is at most 10 ms (HZ=100); leave room for a descheduled thread.
            assert!(now + 50 >= before && now <= after, "{before} <= {now} <= {after}");
        }
    }

    #[test]
    fn the_system_clock_moves_forward() {
        let start = SystemClock.now_ms();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let later = SystemClock.now_ms();
        assert!((start + 20..start + 5_000).contains(&later), "{start} then {later}");
    }
}
