//! What the shared and durable stores write behind: when a held write falls due, and the audit
//! records held back ([`super::Store::append_audit_behind`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::Result;

/// How long held writes may wait by default: a second.
pub(super) const EVERY: Duration = Duration::from_secs(1);

/// When the writes a store holds back fall due: `every` after the last write-behind, or after
/// the last flush (so that a host flushing more often than `every`, off its requests' threads,
/// spares them the write).
#[derive(Debug)]
pub(super) struct Schedule {
    started: Instant,
    /// Milliseconds from `started` to the last write-behind.
    written_at: AtomicU64,
    every_ms: u64,
}

impl Schedule {
    pub(super) fn new(every: Duration) -> Self {
        Schedule { started: Instant::now(), written_at: AtomicU64::new(0), every_ms: u64::try_from(every.as_millis()).unwrap_or(u64::MAX) }
    }

    /// Whether the caller is to write what is held now: the last write-behind is `every` old.
    /// Of callers at once, one is told so, and the next write-behind falls due `every` later.
    pub(super) fn claim(&self) -> bool {
        let elapsed = self.elapsed_ms();
        let last = self.written_at.load(Ordering::Relaxed);
        elapsed >= last.saturating_add(self.every_ms)
            && self.written_at.compare_exchange(last, elapsed, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }

    /// Notes that what was held is written now (a flush): the next write-behind falls due
    /// `every` later.
    pub(super) fn wrote(&self) {
        self.written_at.fetch_max(self.elapsed_ms(), Ordering::Relaxed);
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// Past this many audit records held, a store writes them at once.
pub(super) const HELD_AUDIT_MAX: usize = 10_000;

/// Audit records (account, JSON) held back, oldest first.
#[derive(Debug, Default)]
pub(super) struct HeldAudit(Mutex<Vec<(String, String)>>);

impl HeldAudit {
    /// Holds a record; whether [`HELD_AUDIT_MAX`] are now held (the store then writes them).
    pub(super) fn hold(&self, account_id: &str, record: String) -> bool {
        let mut held = self.0.lock();
        held.push((account_id.to_owned(), record));
        held.len() >= HELD_AUDIT_MAX
    }

    #[cfg(any(feature = "redis", test))]
    pub(super) fn is_empty(&self) -> bool {
        self.0.lock().is_empty()
    }

    /// Hands the records held, oldest first, then `record` if any, to `write`, which writes all
    /// of them in that order or none. When it fails, the held ones are held again, before any
    /// held since. Nothing to write, `write` is not called. The caller keeps writes in order:
    /// no other may be written from this call's start to its end.
    pub(super) fn write_out(
        &self,
        record: Option<(&str, &str)>,
        write: impl FnOnce(&mut dyn Iterator<Item = (&str, &str)>) -> Result<()>,
    ) -> Result<()> {
        let held = std::mem::take(&mut *self.0.lock());
        if held.is_empty() && record.is_none() {
            return Ok(());
        }
        let result = write(&mut held.iter().map(|(account, json)| (account.as_str(), json.as_str())).chain(record));
        if result.is_err() {
            let mut now_held = self.0.lock();
            let later = std::mem::replace(&mut *now_held, held);
            now_held.extend(later);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn written(held: &HeldAudit, record: Option<(&str, &str)>) -> Vec<String> {
        let mut out = Vec::new();
        held.write_out(record, |records| {
            out.extend(records.map(|(account, json)| format!("{account}:{json}")));
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn held_records_go_out_first_and_stay_held_when_the_write_fails() {
        let held = HeldAudit::default();
        held.hold("a", "1".into());
        held.hold("b", "2".into());
        let failed = held.write_out(None, |records| {
            assert_eq!(records.count(), 2);
            Err(Error::Unavailable("down".into()))
        });
        assert!(failed.is_err());
        held.hold("a", "3".into());
        assert_eq!(written(&held, Some(("c", "4"))), ["a:1", "b:2", "a:3", "c:4"]);
        assert!(held.is_empty());
        assert_eq!(written(&held, None), Vec::<String>::new());
    }

    #[test]
    fn a_full_hold_says_so() {
        let held = HeldAudit::default();
        assert!((1..HELD_AUDIT_MAX).all(|n| !held.hold("a", n.to_string())));
        assert!(held.hold("a", "last".into()));
    }

    #[test]
    fn a_write_behind_falls_due_after_its_interval_and_not_before() {
        assert!(!Schedule::new(Duration::from_secs(3600)).claim());
        let now = Schedule::new(Duration::ZERO);
        assert!(now.claim());
    }

    #[test]
    fn a_flush_puts_the_next_write_behind_off_by_the_interval() {
        // Started a minute ago, due every ten seconds: due now, once.
        let schedule = || Schedule {
            started: Instant::now().checked_sub(Duration::from_secs(60)).expect("a minute of uptime"),
            written_at: AtomicU64::new(0),
            every_ms: 10_000,
        };
        let claimed = schedule();
        assert!(claimed.claim());
        assert!(!claimed.claim(), "one caller is told");
        let flushed = schedule();
        flushed.wrote();
        assert!(!flushed.claim(), "just written: not due for ten seconds");
    }
}
