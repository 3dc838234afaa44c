//! The in-memory store: everything in process, lost when it ends.
//!
//! Key entries sit side by side in one [`Slab`], in order of creation; they are found by digest
//! through 64 shards of positions, each behind a read-write lock that is itself sharded by
//! thread, so that threads looking keys up never write the same line, and by id through one
//! index. Sessions are kept in shards too, each session in a numbered slot that its id names
//! (the store gives each session its id), with slots, worker load and workers in one small
//! ledger beside them ([`sessions`]); of ended sessions, about the newest
//! [`MemoryStore::ENDED_SESSION_CAPACITY`] are kept. The audit log keeps the newest
//! [`MemoryStore::AUDIT_CAPACITY`] records, packed ([`audit`]).

mod audit;
mod compact;
mod sessions;
mod slots;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use crossbeam_utils::sync::ShardedLock;
use parking_lot::{Mutex, RwLock};

use super::positions::Positions;
use super::slab::Slab;
use super::{AccountMeter, KeyEntry, KeyRef, SessionUpdate, Store};
use crate::audit::AuditRecord;
use crate::error::{Error, Result};
use crate::keys::{digests_equal, KeyDigest, KeyRecord};
use crate::session::{Session, Status};
use crate::usage::{self, Alert};
use crate::users::User;
use crate::workers::{Worker, WorkerStatus};

const KEY_SHARDS: usize = 64;

fn digest_tag(digest: &KeyDigest) -> u32 {
    u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]])
}

fn id_tag(id: &str) -> u32 {
    let mut hasher = std::hash::DefaultHasher::new();
    id.hash(&mut hasher);
    hasher.finish() as u32
}

#[derive(Default)]
struct Book {
    /// The account's keys, as positions in the slab (to gather their pending requests).
    keys: Vec<u32>,
    metrics: BTreeMap<String, u64>,
    seen: HashSet<String>,
    alerts: Vec<Alert>,
}

impl Book {
    fn fire(&mut self, metric: &str, total: u64, now: u64) {
        for alert in &mut self.alerts {
            if alert.fired_at.is_none() && alert.metric == metric && total >= alert.threshold {
                alert.fired_at = Some(now);
            }
        }
    }

    fn next_requests_alert(&self) -> u64 {
        self.alerts
            .iter()
            .filter(|a| a.fired_at.is_none() && a.metric == usage::REQUESTS)
            .map(|a| a.threshold)
            .min()
            .unwrap_or(u64::MAX)
    }
}

struct Account {
    /// The account's id, shared by its keys.
    name: Arc<String>,
    meter: Arc<AccountMeter>,
    book: Mutex<Book>,
}

#[derive(Default)]
struct Users {
    by_id: HashMap<String, User>,
    by_account: HashMap<String, Vec<String>>,
}

/// Keeps all state in process memory.
pub struct MemoryStore {
    /// Every key's entry, in order of creation.
    entries: Slab,
    /// Positions in `entries` by digest, in shards. Each shard's lock is itself sharded by
    /// thread ([`ShardedLock`]): `authorize` only reads it, and a read takes its own thread's
    /// part, so that two threads never write one line to look keys up (with one `RwLock` a
    /// shard, the lock's line went back and forth between cores on most reads).
    digests: Box<[ShardedLock<Positions>]>,
    /// Positions in `entries` by id.
    ids: RwLock<Positions>,
    sessions: sessions::SessionTable,
    users: RwLock<Users>,
    accounts: RwLock<HashMap<String, Arc<Account>>>,
    audit: audit::AuditLog,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            entries: Slab::default(),
            digests: (0..KEY_SHARDS).map(|_| ShardedLock::default()).collect(),
            ids: RwLock::default(),
            sessions: sessions::SessionTable::default(),
            users: RwLock::default(),
            accounts: RwLock::default(),
            audit: audit::AuditLog::default(),
        }
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").field("keys", &self.entries.newest_first().len()).finish()
    }
}

fn newest_first<T: Clone>(ids: &[String], limit: usize, get: impl Fn(&str) -> Option<T>) -> Vec<T> {
    ids.iter().rev().filter_map(|id| get(id)).take(limit).collect()
}

impl MemoryStore {
    /// Requests a key counts before adding them to its account's counter.
    const REQUEST_BATCH: u32 = 64;

    /// Audit records kept; older ones are dropped first.
    pub const AUDIT_CAPACITY: usize = audit::AuditLog::CAPACITY;

    /// Ended sessions kept, about: the newest to end (each of the session table's shards keeps
    /// its share), so that a long-lived process does not grow with every session it served.
    /// Older ones are forgotten, as if never made (`not_found`). Live sessions are all kept.
    pub const ENDED_SESSION_CAPACITY: usize = sessions::ENDED_CAPACITY;

    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn shard(&self, digest: &KeyDigest) -> &ShardedLock<Positions> {
        &self.digests[usize::from(digest[31]) % KEY_SHARDS]
    }

    /// The position of the key with this digest (`shard` is its locked digest shard).
    fn find_digest(&self, shard: &Positions, digest: &KeyDigest) -> Option<u32> {
        shard.get(digest_tag(digest), |i| digests_equal(&self.entries.get(i).digest, digest))
    }

    /// The position of the key with this id (`ids` is the locked id index).
    fn find_id(&self, ids: &Positions, id: &str) -> Option<u32> {
        ids.get(id_tag(id), |i| self.entries.get(i).record.with_ids(|other, _| other == id))
    }

    /// The account's `requests` total, exact: its keys' pending requests are added to its
    /// counter first (`book` is the account's locked book).
    fn requests(&self, account: &Account, book: &Book) -> u64 {
        let pending: u64 = book.keys.iter().map(|&p| u64::from(self.entries.get(p).pending.swap(0, Ordering::Relaxed))).sum();
        account.meter.requests.fetch_add(pending, Ordering::Relaxed) + pending
    }

    fn account(&self, id: &str) -> Arc<Account> {
        if let Some(account) = self.accounts.read().get(id) {
            return account.clone();
        }
        let mut accounts = self.accounts.write();
        let account = accounts.entry(id.to_owned()).or_insert_with(|| {
            Arc::new(Account { name: Arc::new(id.to_owned()), meter: Arc::default(), book: Mutex::default() })
        });
        account.clone()
    }
}

impl Store for MemoryStore {
    fn insert_key(&self, digest: KeyDigest, record: KeyRecord) -> Result<()> {
        let account = self.account(&record.account_id);
        let id_tag = id_tag(&record.id);
        let mut ids = self.ids.write();
        let mut shard = self.shard(&digest).write().unwrap_or_else(PoisonError::into_inner);
        if self.find_digest(&shard, &digest).is_some() || self.find_id(&ids, &record.id).is_some() {
            return Err(Error::AlreadyExists { resource: "key" });
        }
        let entry = KeyEntry::with_account(digest, record, account.meter.clone(), account.name.clone());
        let position = self.entries.push(entry);
        shard.insert(digest_tag(&digest), position);
        ids.insert(id_tag, position);
        account.book.lock().keys.push(position);
        Ok(())
    }

    fn key_by_digest(&self, digest: &KeyDigest) -> Result<Option<KeyRef>> {
        let shard = self.shard(digest).read().unwrap_or_else(PoisonError::into_inner);
        Ok(self.find_digest(&shard, digest).map(|position| self.entries.handle(position)))
    }

    fn key(&self, id: &str) -> Result<Option<KeyRef>> {
        let position = self.find_id(&self.ids.read(), id);
        Ok(position.map(|position| self.entries.handle(position)))
    }

    fn update_key(&self, id: &str, change: &mut dyn FnMut(&mut KeyRecord)) -> Result<Option<KeyRecord>> {
        let Some(entry) = self.key(id)? else { return Ok(None) };
        change(&mut entry.record.write());
        Ok(Some(entry.snapshot()))
    }

    fn list_keys(&self, account: Option<&str>, limit: usize) -> Result<Vec<KeyRecord>> {
        Ok(self
            .entries
            .newest_first()
            .map(|position| self.entries.get(position))
            .filter(|entry| account.map_or(true, |a| entry.record.account_is(a)))
            .take(limit)
            .map(|entry| entry.snapshot())
            .collect())
    }

    fn create_session(&self, session: Session, slot_limit: u32, default_worker: &Worker) -> Result<Session> {
        self.sessions.create(session, slot_limit, default_worker)
    }

    fn session(&self, id: &str) -> Result<Option<Session>> {
        Ok(self.sessions.get(id))
    }

    fn update_session(&self, id: &str, change: SessionUpdate<'_>) -> Result<Option<Session>> {
        self.sessions.update(id, change)
    }

    fn list_sessions(&self, account: Option<&str>, limit: usize) -> Result<Vec<Session>> {
        Ok(self.sessions.list(account, limit))
    }

    fn due_sessions(&self, now: u64) -> Result<Vec<String>> {
        Ok(self.sessions.due(now))
    }

    fn expire_due(&self, now: u64, batch: usize) -> Result<Vec<(Status, Session)>> {
        self.sessions.expire_due(now, batch)
    }

    fn slots_in_use(&self, key_id: &str) -> Result<u32> {
        Ok(self.sessions.slots_in_use(key_id))
    }

    fn insert_worker(&self, worker: Worker) -> Result<()> {
        self.sessions.insert_worker(worker)
    }

    fn update_worker(&self, node_id: &str, change: &mut dyn FnMut(&Worker) -> Result<Worker>) -> Result<Option<Worker>> {
        self.sessions.update_worker(node_id, change)
    }

    fn workers(&self) -> Result<Vec<WorkerStatus>> {
        Ok(self.sessions.workers())
    }

    fn insert_user(&self, user: User) -> Result<()> {
        let mut users = self.users.write();
        if users.by_id.contains_key(&user.id) {
            return Err(Error::AlreadyExists { resource: "user" });
        }
        users.by_account.entry(user.account_id.clone()).or_default().push(user.id.clone());
        users.by_id.insert(user.id.clone(), user);
        Ok(())
    }

    fn user(&self, id: &str) -> Result<Option<User>> {
        Ok(self.users.read().by_id.get(id).cloned())
    }

    fn update_user(&self, id: &str, change: &mut dyn FnMut(&mut User) -> Result<()>) -> Result<Option<User>> {
        let mut users = self.users.write();
        let Some(user) = users.by_id.get_mut(id) else { return Ok(None) };
        let mut updated = user.clone();
        change(&mut updated)?;
        *user = updated.clone();
        Ok(Some(updated))
    }

    fn delete_user(&self, id: &str) -> Result<Option<User>> {
        let mut users = self.users.write();
        let Some(user) = users.by_id.remove(id) else { return Ok(None) };
        if let Some(ids) = users.by_account.get_mut(&user.account_id) {
            ids.retain(|other| other != id);
        }
        Ok(Some(user))
    }

    fn list_users(&self, account: &str, limit: usize) -> Result<Vec<User>> {
        let users = self.users.read();
        let ids = users.by_account.get(account).map_or(&[][..], Vec::as_slice);
        Ok(newest_first(ids, limit, |id| users.by_id.get(id).cloned()))
    }

    /// Without an unfired `requests` alert on the account, a request is counted on its key and
    /// the key's count added to the account's counter once every `REQUEST_BATCH` (64): keys
    /// of one account used from several threads then rarely write one cache line. Readers of
    /// the total (`usage`, alerts, `add_usage`) gather the keys' pending counts first, so it is
    /// exact. With an alert waiting, every request goes to the account's counter and is checked;
    /// a request racing the alert's creation may be checked at the next request instead.
    fn count_request(&self, key: &KeyEntry, now: u64) -> Result<()> {
        if key.meter.next_alert.load(Ordering::Relaxed) == u64::MAX {
            if key.pending.fetch_add(1, Ordering::Relaxed) + 1 >= Self::REQUEST_BATCH {
                key.meter.requests.fetch_add(u64::from(key.pending.swap(0, Ordering::Relaxed)), Ordering::Relaxed);
            }
            return Ok(());
        }
        let counted = 1 + u64::from(key.pending.swap(0, Ordering::Relaxed));
        let total = key.meter.requests.fetch_add(counted, Ordering::Relaxed) + counted;
        if total >= key.meter.next_alert.load(Ordering::Relaxed) {
            let account = self.account(&key.record.account());
            let mut book = account.book.lock();
            book.fire(usage::REQUESTS, total, now);
            account.meter.next_alert.store(book.next_requests_alert(), Ordering::Relaxed);
        }
        Ok(())
    }

    fn add_usage(&self, account: &str, metric: &str, quantity: u64, idempotency_key: Option<&str>, now: u64) -> Result<(u64, bool)> {
        let account = self.account(account);
        let mut book = account.book.lock();
        if let Some(key) = idempotency_key {
            if !book.seen.insert(format!("{metric}\u{0}{key}")) {
                return Ok((book.metrics.get(metric).copied().unwrap_or(0), false));
            }
        }
        let total = if metric == usage::REQUESTS {
            self.requests(&account, &book);
            account.meter.requests.fetch_add(quantity, Ordering::Relaxed).saturating_add(quantity)
        } else {
            let total = book.metrics.entry(metric.to_owned()).or_default();
            *total = total.saturating_add(quantity);
            *total
        };
        book.fire(metric, total, now);
        account.meter.next_alert.store(book.next_requests_alert(), Ordering::Relaxed);
        Ok((total, true))
    }

    fn usage(&self, account: &str) -> Result<BTreeMap<String, u64>> {
        let account = self.account(account);
        let book = account.book.lock();
        let mut metrics = book.metrics.clone();
        metrics.insert(usage::REQUESTS.into(), self.requests(&account, &book));
        metrics.entry(usage::SESSION_SECONDS.into()).or_insert(0);
        Ok(metrics)
    }

    fn insert_alert(&self, mut alert: Alert, now: u64) -> Result<Alert> {
        let account = self.account(&alert.account_id);
        let mut book = account.book.lock();
        let total = if alert.metric == usage::REQUESTS {
            self.requests(&account, &book)
        } else {
            book.metrics.get(&alert.metric).copied().unwrap_or(0)
        };
        if total >= alert.threshold {
            alert.fired_at = Some(now);
        }
        book.alerts.push(alert.clone());
        account.meter.next_alert.store(book.next_requests_alert(), Ordering::Relaxed);
        Ok(alert)
    }

    fn alerts(&self, account: &str) -> Result<Vec<Alert>> {
        let account = self.account(account);
        let book = account.book.lock();
        Ok(book.alerts.iter().rev().cloned().collect())
    }

    fn append_audit(&self, account_id: &str, record: String) -> Result<()> {
        self.audit.append(account_id, record)
    }

    fn audit(&self, account: Option<&str>, limit: usize) -> Result<Vec<AuditRecord>> {
        self.audit.newest_first(account, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::super::entry::empty_record;
    use super::*;

    fn record(n: u32) -> KeyRecord {
        KeyRecord {
            id: format!("key_{n:032x}"),
            account_id: format!("acct-{}", n % 7),
            prefix: "ak_Ab9z".into(),
            created_at: u64::from(n),
            ..empty_record()
        }
    }

    fn digest(n: u32) -> KeyDigest {
        let mut digest = [0u8; 32];
        // Few distinct tags (the first 4 bytes), so that lookups must tell keys apart.
        digest[..4].copy_from_slice(&(n % 5).to_le_bytes());
        digest[4..8].copy_from_slice(&n.to_le_bytes());
        digest[31] = n as u8;
        digest
    }

    #[test]
    fn many_keys_are_found_by_digest_and_id_and_listed_newest_first() {
        let store = MemoryStore::new();
        let count = 2_000;
        for n in 0..count {
            store.insert_key(digest(n), record(n)).unwrap();
        }
        for n in 0..count {
            let by_digest = store.key_by_digest(&digest(n)).unwrap().expect("found by digest");
            assert_eq!(by_digest.record.id(), record(n).id);
            let by_id = store.key(&record(n).id).unwrap().expect("found by id");
            assert_eq!(by_id.digest, digest(n));
        }
        assert!(store.key_by_digest(&digest(count)).unwrap().is_none());
        assert!(store.key(&record(count).id).unwrap().is_none());
        let listed = store.list_keys(Some("acct-3"), 3).unwrap();
        let created: Vec<u64> = listed.iter().map(|r| r.created_at).collect();
        assert_eq!(created, [1_998, 1_991, 1_984]);
        assert_eq!(store.list_keys(None, usize::MAX).unwrap().len(), count as usize);
    }

    #[test]
    fn a_repeated_digest_or_id_is_refused() {
        let store = MemoryStore::new();
        store.insert_key(digest(1), record(1)).unwrap();
        let refused = |result: Result<()>| matches!(result, Err(Error::AlreadyExists { resource: "key" }));
        assert!(refused(store.insert_key(digest(1), record(2))));
        assert!(refused(store.insert_key(digest(2), record(1))));
        assert!(store.key_by_digest(&digest(2)).unwrap().is_none(), "nothing of a refused key is kept");
    }

    #[test]
    fn a_key_outlives_its_store() {
        let store = MemoryStore::new();
        store.insert_key(digest(1), record(1)).unwrap();
        let entry = store.key_by_digest(&digest(1)).unwrap().unwrap();
        drop(store);
        assert_eq!(entry.snapshot(), record(1));
    }
}
