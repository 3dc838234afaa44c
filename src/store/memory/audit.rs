//! The in-memory store's audit log: the newest [`AuditLog::CAPACITY`] records, each kept packed
//! in one allocation — the record's JSON as the engine wrote it, then its account id and that
//! id's length — which is the engine's own buffer, grown in place.
//!
//! Kept as parsed records, each would be a dozen blocks (its strings and its `detail` map),
//! freed only when evicted, a hundred thousand records later and usually by another thread.
//! Packed, the log frees one block per eviction, and a record takes about half the memory.
//! Reading parses (the audit log is read rarely, and by admins).

use std::collections::VecDeque;

use parking_lot::Mutex;

use crate::audit::AuditRecord;
use crate::error::{Error, Result};

/// Bytes after the account id: its length.
const LEN: usize = std::mem::size_of::<u32>();

/// The newest records, oldest first.
#[derive(Default)]
pub(super) struct AuditLog {
    records: Mutex<VecDeque<Box<[u8]>>>,
}

impl AuditLog {
    /// Records kept; older ones are dropped first.
    pub(super) const CAPACITY: usize = 100_000;

    /// Appends `record` (an audit record's JSON) to `account`'s records, dropping the oldest
    /// when full.
    pub(super) fn append(&self, account: &str, record: String) -> Result<()> {
        let packed = pack(account, record)?;
        let evicted = {
            let mut records = self.records.lock();
            let evicted = if records.len() == Self::CAPACITY { records.pop_front() } else { None };
            records.push_back(packed);
            evicted
        };
        // Freed after the lock is let go.
        drop(evicted);
        Ok(())
    }

    /// Up to `limit` records, newest first, of `account` or of all.
    pub(super) fn newest_first(&self, account: Option<&str>, limit: usize) -> Result<Vec<AuditRecord>> {
        let records = self.records.lock();
        records
            .iter()
            .rev()
            .filter(|packed| account.map_or(true, |a| account_of(packed) == a.as_bytes()))
            .take(limit)
            .map(|packed| unpack(packed))
            .collect()
    }
}

fn pack(account: &str, record: String) -> Result<Box<[u8]>> {
    let length = u32::try_from(account.len()).map_err(|_| Error::Internal("audit record's account id is too long".into()))?;
    let mut packed = record.into_bytes();
    packed.extend_from_slice(account.as_bytes());
    packed.extend_from_slice(&length.to_le_bytes());
    Ok(packed.into_boxed_slice())
}

/// The JSON and the account id of a packed record.
fn split(packed: &[u8]) -> (&[u8], &[u8]) {
    let (rest, length) = packed.split_at(packed.len() - LEN);
    let length = u32::from_le_bytes(length.try_into().expect("a length suffix")) as usize;
    rest.split_at(rest.len() - length)
}

fn account_of(packed: &[u8]) -> &[u8] {
    split(packed).1
}

fn unpack(packed: &[u8]) -> Result<AuditRecord> {
    serde_json::from_slice(split(packed).0).map_err(|e| Error::Internal(format!("audit record: {e}")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Appends `record` as the engine would: its JSON.
    fn append(log: &AuditLog, record: &AuditRecord) {
        log.append(&record.account_id, serde_json::to_string(record).unwrap()).unwrap();
    }

    fn record(n: usize, account: &str) -> AuditRecord {
        AuditRecord {
            id: format!("aud_{n}"),
            account_id: account.into(),
            at: n as u64,
            action: "session.created".into(),
            actor_key_id: (n % 2 == 0).then(|| format!("key_{n}")),
            actor_prefix: (n % 2 == 0).then(|| "ak_Ab9z".into()),
            target: (n % 3 == 0).then(|| format!("sess_{n}")),
            detail: json!({"status": "PENDING", "n": n, "nested": {"quote\"": [1, null]}}),
        }
    }

    #[test]
    fn records_come_back_as_appended_newest_first() {
        let log = AuditLog::default();
        let all: Vec<_> = (0..10).map(|n| record(n, if n % 2 == 0 { "acct-a" } else { "acct-é" })).collect();
        for r in &all {
            append(&log, r);
        }
        let newest: Vec<_> = all.iter().rev().cloned().collect();
        assert_eq!(log.newest_first(None, 100).unwrap(), newest);
        assert_eq!(log.newest_first(None, 3).unwrap(), newest[..3]);
        let odd: Vec<_> = newest.iter().filter(|r| r.account_id == "acct-é").cloned().collect();
        assert_eq!(log.newest_first(Some("acct-é"), 100).unwrap(), odd);
        assert!(log.newest_first(Some("acct-"), 100).unwrap().is_empty());
    }

    #[test]
    fn the_oldest_go_first_when_full() {
        let log = AuditLog::default();
        for n in 0..AuditLog::CAPACITY + 5 {
            append(&log, &record(n, "a"));
        }
        let kept = log.newest_first(None, usize::MAX).unwrap();
        assert_eq!(kept.len(), AuditLog::CAPACITY);
        assert_eq!(kept.first().unwrap().id, format!("aud_{}", AuditLog::CAPACITY + 4));
        assert_eq!(kept.last().unwrap().id, "aud_5");
    }
}
