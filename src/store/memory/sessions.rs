//! The in-memory store's sessions and workers.
//!
//! Sessions live in [`SHARDS`] shards by a hash of their id, each behind its own lock with its
//! sessions' expiry index and its part of each account's list, so that creating, reading and
//! updating sessions on different shards do not wait for each other. What must be exact across
//! shards is in one small [`Ledger`] behind its own lock: the slots in use per key, the live
//! sessions per worker, the workers, and the order of creation.
//!
//! Sessions are stored packed ([`Compact`]), with their key, account and worker interned per
//! shard.
//!
//! Locks are taken shards first (in index order), the ledger last. A change to a session holds
//! its shard's lock throughout and takes the ledger's inside it when the session's counts
//! change, so every method is atomic and, at every instant a lock holder can see, the slots in
//! use by a key are its live sessions and a worker's load is the live sessions placed on it.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use foldhash::fast::RandomState;
use parking_lot::{Mutex, MutexGuard};

use super::compact::{Compact, Owner, Placement};
use crate::error::{Error, Result};
use crate::session::Session;
use crate::store::SessionUpdate;
use crate::workers::{self, Worker, WorkerStatus};

/// Shards of the session table: a few times the cores that usually serve one process.
const SHARDS: usize = 16;

/// Maps by id or name: foldhash, seeded per process (SipHash took a tenth of the work here).
type Map<K, V> = HashMap<K, V, RandomState>;

/// A stored session and its place in the order of creation.
struct Stored {
    seq: u64,
    session: Box<Compact>,
}

/// One shard: its sessions by id, its part of each account's list (oldest first, with each
/// session's creation sequence) and the expiry index of its live sessions, by expiry and then
/// creation sequence (integers only: sessions created in the same millisecond expire together).
/// The three share each id's one allocation.
#[derive(Default)]
struct Shard {
    by_id: Map<Arc<str>, Stored>,
    by_account: Map<String, Vec<(u64, Arc<str>)>>,
    expiry: BTreeMap<(u64, u64), Arc<str>>,
    shared: Interned,
}

/// What a shard's sessions share: their owners by key id, their placements by node id.
#[derive(Default)]
struct Interned {
    owners: Map<String, Arc<Owner>>,
    placements: Map<String, Arc<Placement>>,
}

impl Interned {
    /// The owner of `key_id` (of `account_id`).
    fn owner(&mut self, key_id: &str, account_id: &str) -> Arc<Owner> {
        intern(&mut self.owners, key_id, |o| o.account_id == account_id, || Owner {
            key_id: key_id.to_owned(),
            account_id: account_id.to_owned(),
        })
    }

    /// The placement on `node_id` (at `worker_url`).
    fn placement(&mut self, node_id: &str, worker_url: &str) -> Arc<Placement> {
        intern(&mut self.placements, node_id, |p| p.worker_url == worker_url, || Placement {
            node_id: node_id.to_owned(),
            worker_url: worker_url.to_owned(),
        })
    }
}

/// The value under `name` if it `fits`, else a new one from `make`, kept under `name`.
fn intern<T>(values: &mut Map<String, Arc<T>>, name: &str, fits: impl Fn(&T) -> bool, make: impl FnOnce() -> T) -> Arc<T> {
    match values.get(name) {
        Some(value) if fits(value) => Arc::clone(value),
        _ => {
            let value = Arc::new(make());
            values.insert(name.to_owned(), Arc::clone(&value));
            value
        }
    }
}

impl Shard {
    /// Indexes the expiry of a live session (`next_due` lowered to match).
    fn index_expiry(&mut self, session: &Session, seq: u64, id: &Arc<str>, next_due: &AtomicU64) {
        if session.is_live() {
            self.expiry.insert((session.expires_at, seq), Arc::clone(id));
            // A plain load first: new sessions usually expire after the earliest one, and then
            // nothing is written to a line every shard shares.
            if session.expires_at < next_due.load(Ordering::SeqCst) {
                next_due.fetch_min(session.expires_at, Ordering::SeqCst);
            }
        }
    }
}

/// What is exact across shards: slots in use per key, live sessions per worker, the workers in
/// registration order, and the number of sessions ever created (the next creation sequence).
/// Every session created takes its lock: what it does under it is kept to a few lookups.
#[derive(Default)]
struct Ledger {
    slots: Map<String, u32>,
    load: Map<String, u32>,
    workers: Vec<Worker>,
    created: u64,
}

fn count_up(counts: &mut Map<String, u32>, name: &str) {
    match counts.get_mut(name) {
        Some(count) => *count += 1,
        None => {
            counts.insert(name.to_owned(), 1);
        }
    }
}

fn count_down(counts: &mut Map<String, u32>, name: &str) {
    if let Some(count) = counts.get_mut(name) {
        *count -= 1;
        if *count == 0 {
            counts.remove(name);
        }
    }
}

impl Ledger {
    fn load(&self, node_id: &str) -> u32 {
        self.load.get(node_id).copied().unwrap_or(0)
    }

    /// Counts a live session: a slot of its key, a place on its worker.
    fn hold(&mut self, key_id: &str, node_id: &str) {
        count_up(&mut self.slots, key_id);
        count_up(&mut self.load, node_id);
    }

    /// Gives back what [`Ledger::hold`] counted.
    fn release(&mut self, key_id: &str, node_id: &str) {
        count_down(&mut self.slots, key_id);
        count_down(&mut self.load, node_id);
    }
}

/// Sessions in shards, and the [`Ledger`].
pub(super) struct SessionTable {
    shards: Box<[Mutex<Shard>]>,
    /// Picks an id's shard.
    hasher: RandomState,
    ledger: Mutex<Ledger>,
    /// At most the earliest expiry in any shard's index (`u64::MAX` when none is known), so
    /// that [`SessionTable::due`] answers "nothing due" without a lock. Lowered with each
    /// expiry indexed, under its shard's lock; set to the exact minimum only under every
    /// shard's lock.
    next_due: AtomicU64,
}

impl Default for SessionTable {
    fn default() -> Self {
        SessionTable {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::default(),
            ledger: Mutex::default(),
            next_due: AtomicU64::new(u64::MAX),
        }
    }
}

impl SessionTable {
    fn shard(&self, id: &str) -> MutexGuard<'_, Shard> {
        self.shards[self.hasher.hash_one(id) as usize % SHARDS].lock()
    }

    fn all_shards(&self) -> Vec<MutexGuard<'_, Shard>> {
        self.shards.iter().map(|shard| shard.lock()).collect()
    }

    /// [`crate::store::Store::create_session`].
    pub(super) fn create(&self, mut session: Session, slot_limit: u32, default_worker: &Worker) -> Result<Session> {
        let mut shard = self.shard(&session.id);
        if shard.by_id.contains_key(session.id.as_str()) {
            return Err(Error::AlreadyExists { resource: "session" });
        }
        let (seq, placement) = {
            let mut ledger = self.ledger.lock();
            if ledger.slots.get(&session.key_id).copied().unwrap_or(0) >= slot_limit {
                return Err(Error::ConcurrentSessionLimit { limit: slot_limit });
            }
            let worker = workers::place(&ledger.workers, default_worker, |node| ledger.load(node))?;
            let placement = shard.shared.placement(&worker.node_id, &worker.url);
            ledger.hold(&session.key_id, &placement.node_id);
            ledger.created += 1;
            (ledger.created, placement)
        };
        session.node_id.clone_from(&placement.node_id);
        session.worker_url.clone_from(&placement.worker_url);
        let owner = shard.shared.owner(&session.key_id, &session.account_id);
        let id: Arc<str> = Arc::from(session.id.as_str());
        shard.index_expiry(&session, seq, &id, &self.next_due);
        match shard.by_account.get_mut(session.account_id.as_str()) {
            Some(ids) => ids.push((seq, Arc::clone(&id))),
            None => {
                shard.by_account.insert(session.account_id.clone(), vec![(seq, Arc::clone(&id))]);
            }
        }
        shard.by_id.insert(id, Stored { seq, session: Box::new(Compact::new(&session, owner, placement)) });
        Ok(session)
    }

    /// [`crate::store::Store::session`].
    pub(super) fn get(&self, id: &str) -> Option<Session> {
        self.shard(id).by_id.get(id).map(|stored| stored.session.session(id))
    }

    /// [`crate::store::Store::update_session`].
    pub(super) fn update(&self, id: &str, change: SessionUpdate<'_>) -> Result<Option<Session>> {
        let mut guard = self.shard(id);
        let shard = &mut *guard;
        let Some((key, stored)) = shard.by_id.get_key_value(id) else { return Ok(None) };
        let (key, seq) = (Arc::clone(key), stored.seq);
        let before = &stored.session;
        let mut updated = before.session(id);
        change(&mut updated)?;
        if before.describes(&updated) {
            // A read (nothing due, nothing changed): no index to touch.
            return Ok(Some(updated));
        }
        let (was_live, was_due) = (before.is_live(), before.expires_at());
        let (mut owner, mut placement) = (Arc::clone(before.owner()), Arc::clone(before.placement()));
        if was_live || updated.is_live() {
            let mut ledger = self.ledger.lock();
            if was_live {
                ledger.release(&owner.key_id, &placement.node_id);
            }
            if updated.is_live() {
                ledger.hold(&updated.key_id, &updated.node_id);
            }
        }
        if !owner.owns(&updated) {
            owner = shard.shared.owner(&updated.key_id, &updated.account_id);
        }
        if !placement.places(&updated) {
            placement = shard.shared.placement(&updated.node_id, &updated.worker_url);
        }
        if was_live {
            shard.expiry.remove(&(was_due, seq));
        }
        shard.index_expiry(&updated, seq, &key, &self.next_due);
        if let Some(stored) = shard.by_id.get_mut(id) {
            *stored.session = Compact::new(&updated, owner, placement);
        }
        Ok(Some(updated))
    }

    /// [`crate::store::Store::list_sessions`]: newest first by creation.
    pub(super) fn list(&self, account: Option<&str>, limit: usize) -> Vec<Session> {
        let shards = self.all_shards();
        let mut found: Vec<(u64, &str, &Compact)> = Vec::new();
        for shard in &shards {
            match account {
                Some(account) => {
                    let ids = shard.by_account.get(account).map_or(&[][..], Vec::as_slice);
                    let newest = ids.iter().rev().take(limit);
                    found.extend(newest.filter_map(|(seq, id)| Some((*seq, &**id, &*shard.by_id.get(id)?.session))));
                }
                None => found.extend(shard.by_id.iter().map(|(id, stored)| (stored.seq, &**id, &*stored.session))),
            }
        }
        found.sort_unstable_by_key(|(seq, _, _)| std::cmp::Reverse(*seq));
        found.into_iter().take(limit).map(|(_, id, session)| session.session(id)).collect()
    }

    /// [`crate::store::Store::due_sessions`]: by expiry, then creation.
    pub(super) fn due(&self, now: u64) -> Vec<String> {
        if now < self.next_due.load(Ordering::SeqCst) {
            return Vec::new();
        }
        let shards = self.all_shards();
        let mut due: Vec<(&(u64, u64), &Arc<str>)> = Vec::new();
        let mut earliest = u64::MAX;
        for shard in &shards {
            due.extend(shard.expiry.iter().take_while(|((at, _), _)| *at <= now));
            earliest = earliest.min(shard.expiry.first_key_value().map_or(u64::MAX, |((at, _), _)| *at));
        }
        // Every shard is locked: no expiry is being indexed, so this is the exact minimum.
        self.next_due.store(earliest, Ordering::SeqCst);
        due.sort_unstable_by_key(|(when, _)| **when);
        due.into_iter().map(|(_, id)| id.to_string()).collect()
    }

    /// [`crate::store::Store::slots_in_use`].
    pub(super) fn slots_in_use(&self, key_id: &str) -> u32 {
        self.ledger.lock().slots.get(key_id).copied().unwrap_or(0)
    }

    /// [`crate::store::Store::insert_worker`].
    pub(super) fn insert_worker(&self, worker: Worker) -> Result<()> {
        let mut ledger = self.ledger.lock();
        if ledger.workers.iter().any(|w| w.node_id == worker.node_id) {
            return Err(Error::AlreadyExists { resource: "worker" });
        }
        ledger.workers.push(worker);
        Ok(())
    }

    /// [`crate::store::Store::update_worker`].
    pub(super) fn update_worker(&self, node_id: &str, change: &mut dyn FnMut(&Worker) -> Result<Worker>) -> Result<Option<Worker>> {
        let mut ledger = self.ledger.lock();
        let Some(worker) = ledger.workers.iter_mut().find(|w| w.node_id == node_id) else {
            return Ok(None);
        };
        *worker = change(worker)?;
        Ok(Some(worker.clone()))
    }

    /// [`crate::store::Store::workers`].
    pub(super) fn workers(&self) -> Vec<WorkerStatus> {
        let ledger = self.ledger.lock();
        ledger
            .workers
            .iter()
            .map(|w| WorkerStatus { worker: w.clone(), active_sessions: ledger.load(&w.node_id) })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{ConnectionType, Quality, Status};

    fn worker() -> Worker {
        Worker { node_id: "w".into(), url: "ws://w".into(), capacity: 100, draining: false }
    }

    fn session(n: u32, account: &str, expires_at: u64) -> Session {
        Session {
            id: format!("sess_{n}"),
            account_id: account.into(),
            status: Status::Pending,
            end_user_id: "u".into(),
            connection_type: ConnectionType::Websocket,
            quality: Quality::Standard,
            features: Vec::new(),
            metadata: serde_json::json!({}),
            key_id: "key".into(),
            node_id: String::new(),
            worker_url: String::new(),
            created_at: 0,
            expires_at,
            connected_at: None,
            ended_at: None,
            end_reason: None,
        }
    }

    fn ids(sessions: Vec<Session>) -> Vec<String> {
        sessions.into_iter().map(|s| s.id).collect()
    }

    #[test]
    fn lists_newest_first_across_shards() {
        let table = SessionTable::default();
        for n in 0..40 {
            table.create(session(n, if n % 2 == 0 { "a" } else { "b" }, 1_000), 100, &worker()).unwrap();
        }
        assert_eq!(ids(table.list(Some("a"), 3)), ["sess_38", "sess_36", "sess_34"]);
        assert_eq!(ids(table.list(None, 2)), ["sess_39", "sess_38"]);
        assert_eq!(table.list(Some("b"), 100).len(), 20);
    }

    #[test]
    fn slots_and_load_follow_liveness_and_the_limit_is_exact() {
        let table = SessionTable::default();
        table.insert_worker(worker()).unwrap();
        for n in 0..3 {
            table.create(session(n, "a", 1_000), 3, &worker()).unwrap();
        }
        let refused = table.create(session(3, "a", 1_000), 3, &worker());
        assert!(matches!(refused, Err(Error::ConcurrentSessionLimit { limit: 3 })));
        table.update("sess_1", &mut |s| {
            s.terminate(10);
            Ok(())
        })
        .unwrap();
        assert_eq!(table.slots_in_use("key"), 2);
        assert_eq!(table.workers()[0].active_sessions, 2);
        table.create(session(3, "a", 1_000), 3, &worker()).unwrap();
        assert_eq!(table.slots_in_use("key"), 3);
    }

    #[test]
    fn due_follows_every_expiry_change() {
        let table = SessionTable::default();
        assert!(table.due(u64::MAX - 1).is_empty());
        table.create(session(1, "a", 500), 10, &worker()).unwrap();
        table.create(session(2, "a", 300), 10, &worker()).unwrap();
        assert!(table.due(299).is_empty());
        assert_eq!(table.due(500), ["sess_2", "sess_1"]);
        table.update("sess_2", &mut |s| {
            s.expire_if_due(300);
            Ok(())
        })
        .unwrap();
        assert_eq!(table.due(500), ["sess_1"]);
        // Connecting moves the expiry later; the index follows.
        table.update("sess_1", &mut |s| s.connect(400, 1_000)).unwrap();
        assert!(table.due(1_399).is_empty());
        assert_eq!(table.due(1_400), ["sess_1"]);
    }
}
