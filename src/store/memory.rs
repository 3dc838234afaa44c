//! The in-memory store: everything in process, lost when it ends.
//!
//! Keys are found by digest in 64 shards, each behind its own read-write lock, so that threads
//! authorizing different keys rarely touch the same lock. Sessions are kept in shards too, with
//! slots, worker load and workers in one small ledger beside them ([`sessions`]).
//! The audit log keeps the newest [`MemoryStore::AUDIT_CAPACITY`] records.

mod sessions;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::{AccountMeter, KeyEntry, SessionUpdate, Store};
use crate::audit::AuditRecord;
use crate::error::{Error, Result};
use crate::keys::{digests_equal, KeyDigest, KeyRecord};
use crate::limits::{Decision, Window};
use crate::session::Session;
use crate::usage::{self, Alert};
use crate::users::User;
use crate::workers::{Worker, WorkerStatus};

const KEY_SHARDS: usize = 64;

/// Hashes a 32-bit tag that is uniform already (digest bytes, or an id's hash) over the 64 bits
/// the table reads: one multiplication.
#[derive(Default)]
struct TagHasher(u64);

impl Hasher for TagHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u32(u32::from(byte) ^ (self.0 as u32).rotate_left(8));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// An index from a 32-bit tag of a key (digest or id) to a position in a `Vec` of entries:
/// 8 bytes a slot instead of the whole key and an `Arc`. Two keys with the same tag are
/// possible (rarely); the second and later go to `overflow`, keyed in full.
struct Tagged<K> {
    tags: HashMap<u32, u32, BuildHasherDefault<TagHasher>>,
    overflow: HashMap<K, u32>,
}

impl<K> Default for Tagged<K> {
    fn default() -> Self {
        Tagged { tags: HashMap::default(), overflow: HashMap::new() }
    }
}

impl<K: Hash + Eq> Tagged<K> {
    /// The position of `key`: the tag's slot if `is_key` confirms it, else the overflow's.
    fn get<Q>(&self, tag: u32, key: &Q, is_key: impl FnOnce(u32) -> bool) -> Option<u32>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let position = *self.tags.get(&tag)?;
        if is_key(position) {
            Some(position)
        } else if self.overflow.is_empty() {
            None
        } else {
            self.overflow.get(key).copied()
        }
    }

    fn insert(&mut self, tag: u32, key: K, position: u32) {
        match self.tags.entry(tag) {
            Entry::Vacant(slot) => {
                slot.insert(position);
            }
            Entry::Occupied(_) => {
                self.overflow.insert(key, position);
            }
        }
    }
}

/// One shard of the digest index: entries, and where each digest is among them.
#[derive(Default)]
struct DigestShard {
    index: Tagged<KeyDigest>,
    entries: Vec<Arc<KeyEntry>>,
}

impl DigestShard {
    fn get(&self, digest: &KeyDigest) -> Option<&Arc<KeyEntry>> {
        let tag = u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]);
        let position = self.index.get(tag, digest, |i| digests_equal(&self.entries[i as usize].digest, digest))?;
        let entry = &self.entries[position as usize];
        // The overflow's answer is compared like the tag's.
        digests_equal(&entry.digest, digest).then_some(entry)
    }

    fn insert(&mut self, entry: Arc<KeyEntry>) {
        let digest = entry.digest;
        let tag = u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]);
        self.index.insert(tag, digest, self.entries.len() as u32);
        self.entries.push(entry);
    }
}

fn id_tag(id: &str) -> u32 {
    let mut hasher = std::hash::DefaultHasher::new();
    id.hash(&mut hasher);
    hasher.finish() as u32
}

/// Keys by id, and in creation order.
#[derive(Default)]
struct KeyIndex {
    index: Tagged<String>,
    order: Vec<Arc<KeyEntry>>,
}

impl KeyIndex {
    fn get(&self, id: &str) -> Option<&Arc<KeyEntry>> {
        let is_id = |i: u32| self.order[i as usize].record.with_ids(|other, _| other == id);
        let position = self.index.get(id_tag(id), id, is_id)?;
        let entry = &self.order[position as usize];
        entry.record.with_ids(|other, _| other == id).then_some(entry)
    }
}

#[derive(Default)]
struct Book {
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
    digests: Box<[RwLock<DigestShard>]>,
    keys: RwLock<KeyIndex>,
    sessions: sessions::SessionTable,
    users: RwLock<Users>,
    accounts: RwLock<HashMap<String, Arc<Account>>>,
    audit: Mutex<VecDeque<AuditRecord>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            digests: (0..KEY_SHARDS).map(|_| RwLock::default()).collect(),
            keys: RwLock::default(),
            sessions: sessions::SessionTable::default(),
            users: RwLock::default(),
            accounts: RwLock::default(),
            audit: Mutex::default(),
        }
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").field("keys", &self.keys.read().order.len()).finish()
    }
}

fn newest_first<T: Clone>(ids: &[String], limit: usize, get: impl Fn(&str) -> Option<T>) -> Vec<T> {
    ids.iter().rev().filter_map(|id| get(id)).take(limit).collect()
}

impl MemoryStore {
    /// Audit records kept; older ones are dropped first.
    pub const AUDIT_CAPACITY: usize = 100_000;

    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn shard(&self, digest: &KeyDigest) -> &RwLock<DigestShard> {
        &self.digests[usize::from(digest[31]) % KEY_SHARDS]
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
        let id = record.id.clone();
        let entry = Arc::new(KeyEntry::with_account(digest, record, account.meter.clone(), account.name.clone()));
        let mut keys = self.keys.write();
        let mut shard = self.shard(&digest).write();
        if shard.get(&digest).is_some() || keys.get(&id).is_some() {
            return Err(Error::AlreadyExists { resource: "key" });
        }
        shard.insert(entry.clone());
        let position = keys.order.len() as u32;
        keys.index.insert(id_tag, id, position);
        keys.order.push(entry);
        Ok(())
    }

    fn key_by_digest(&self, digest: &KeyDigest) -> Result<Option<Arc<KeyEntry>>> {
        Ok(self.shard(digest).read().get(digest).cloned())
    }

    fn key(&self, id: &str) -> Result<Option<Arc<KeyEntry>>> {
        Ok(self.keys.read().get(id).cloned())
    }

    fn update_key(&self, id: &str, change: &mut dyn FnMut(&mut KeyRecord)) -> Result<Option<KeyRecord>> {
        let Some(entry) = self.key(id)? else { return Ok(None) };
        change(&mut entry.record.write());
        Ok(Some(entry.snapshot()))
    }

    fn list_keys(&self, account: Option<&str>, limit: usize) -> Result<Vec<KeyRecord>> {
        let keys = self.keys.read();
        Ok(keys
            .order
            .iter()
            .rev()
            .filter(|entry| account.map_or(true, |a| entry.record.account_is(a)))
            .take(limit)
            .map(|entry| entry.snapshot())
            .collect())
    }

    fn take(&self, key: &KeyEntry, windows: &[Window; 2], now: u64) -> Result<Decision> {
        Ok(key.buckets.try_take(windows, now))
    }

    fn peek(&self, key: &KeyEntry, windows: &[Window; 2], now: u64) -> Result<Decision> {
        Ok(key.buckets.peek(windows, now))
    }

    fn refund(&self, key: &KeyEntry, windows: &[Window; 2], now: u64) -> Result<()> {
        key.buckets.refund(windows, now);
        Ok(())
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

    fn count_request(&self, key: &KeyEntry, now: u64) -> Result<()> {
        let total = key.meter.requests.fetch_add(1, Ordering::Relaxed) + 1;
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
        let mut metrics = account.book.lock().metrics.clone();
        metrics.insert(usage::REQUESTS.into(), account.meter.requests.load(Ordering::Relaxed));
        metrics.entry(usage::SESSION_SECONDS.into()).or_insert(0);
        Ok(metrics)
    }

    fn insert_alert(&self, mut alert: Alert, now: u64) -> Result<Alert> {
        let account = self.account(&alert.account_id);
        let mut book = account.book.lock();
        let total = if alert.metric == usage::REQUESTS {
            account.meter.requests.load(Ordering::Relaxed)
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

    fn append_audit(&self, record: AuditRecord) -> Result<()> {
        let dropped = {
            let mut audit = self.audit.lock();
            let dropped = if audit.len() == Self::AUDIT_CAPACITY { audit.pop_front() } else { None };
            audit.push_back(record);
            dropped
        };
        // The oldest record is freed after the lock is let go.
        drop(dropped);
        Ok(())
    }

    fn audit(&self, account: Option<&str>, limit: usize) -> Result<Vec<AuditRecord>> {
        let audit = self.audit.lock();
        Ok(audit
            .iter()
            .rev()
            .filter(|r| account.map_or(true, |a| r.account_id == a))
            .take(limit)
            .cloned()
            .collect())
    }
}
