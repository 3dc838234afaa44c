//! The in-memory store's sessions and workers.
//!
//! Sessions live in [`SHARDS`] shards, picked by the engine's random ids, each behind its own
//! lock with its sessions' expiry index and its part of each account's list, so that creating,
//! reading and updating sessions on different shards do not wait for each other. What must be
//! exact across shards is in one small [`Ledger`] behind its own lock: the slots in use per key,
//! the live sessions per worker, the workers, and the order of creation.
//!
//! Sessions are stored packed ([`Compact`]), with their key, account and worker interned per
//! shard, in numbered slots ([`Slots`]) that their ids name ([`Key`]): the table gives each
//! session it creates its id.
//!
//! Live sessions are kept until they end; ended ones only while they are among the newest
//! [`ENDED_CAPACITY`] to end (each shard keeps its share), so that a long-lived process does not
//! grow with every session it has ever served. A forgotten session is as one never made.
//!
//! Locks are taken shards first (in index order), the ledger last. A change to a session holds
//! its shard's lock throughout and takes the ledger's inside it when the session's counts
//! change, so every method is atomic and, at every instant a lock holder can see, the slots in
//! use by a key are its live sessions and a worker's load is the live sessions placed on it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use foldhash::fast::RandomState;
use parking_lot::{Mutex, MutexGuard};
use uuid::Uuid;

use super::compact::{Compact, Owner, Placement};
use super::slots::{Chunked, MinHeap, Scramble, Slots};
use crate::error::{Error, Result};
use crate::session::{Session, Status};
use crate::store::{expire_one, SessionUpdate};
use crate::workers::{self, Worker, WorkerStatus};

/// Shards of the session table: a few times the cores that usually serve one process.
const SHARDS: usize = 16;

/// Ended sessions kept, about (each shard keeps the newest `ENDED_CAPACITY / SHARDS` of its own).
pub(super) const ENDED_CAPACITY: usize = 100_000;

/// Maps by id or name: foldhash, seeded per process (SipHash took a tenth of the work here).
type Map<K, V> = HashMap<K, V, RandomState>;

/// A session id as the table reads it: the 128 bits of `sess_` + 32 lowercase hex digits, the
/// only form stored. The table makes the ids of the sessions it keeps: the first 32 bits are
/// the session's place (its shard and slot), through the table's [`Scramble`]; the other 96
/// are random (the engine's), and finding a session compares all 128.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key([u64; 2]);

/// What every session id starts with.
const PREFIX: &str = "sess_";

impl Key {
    /// The key of `id`, if it has the engine's form (no other id can be stored).
    fn of(id: &str) -> Option<Key> {
        let hex = id.strip_prefix(PREFIX)?;
        // Of its length, `uuid` parses only 32 hex digits, of either case: the engine's are lower.
        if hex.len() != uuid::fmt::Simple::LENGTH || hex.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let bits = Uuid::try_parse_ascii(hex.as_bytes()).ok()?.as_u128();
        Some(Key([(bits >> 64) as u64, bits as u64]))
    }

    /// The key of the session at `place`, with the last 96 bits of `random`.
    fn new(scramble: Scramble, place: u32, random: Key) -> Key {
        Key([u64::from(scramble.forward(place)) << 32 | random.0[0] & 0xFFFF_FFFF, random.0[1]])
    }

    /// The place this key names: a shard ([`SHARDS`] apart) and a slot there.
    fn place(self, scramble: Scramble) -> (usize, usize) {
        let place = scramble.backward((self.0[0] >> 32) as u32) as usize;
        (place % SHARDS, place / SHARDS)
    }

    /// The id this is the key of.
    fn id(self) -> String {
        let mut id = String::with_capacity(PREFIX.len() + uuid::fmt::Simple::LENGTH);
        self.write_id(&mut id);
        id
    }

    /// Makes `id` the id this is the key of, in the room `id` has: an id of the engine's form
    /// (any [`Key::of`] read) has just the length needed.
    fn write_id(self, id: &mut String) {
        let bits = u128::from(self.0[0]) << 64 | u128::from(self.0[1]);
        id.clear();
        id.push_str(PREFIX);
        id.push_str(Uuid::from_u128(bits).simple().encode_lower(&mut Uuid::encode_buffer()));
    }
}

/// A stored session, its key and its place in the order of creation.
struct Stored {
    key: Key,
    seq: u64,
    session: Box<Compact>,
}

/// One shard: its sessions in slots, its part of each account's list (oldest first, with each
/// session's creation sequence), the expiry index of its live sessions and its ended sessions
/// in the order they ended.
struct Shard {
    slots: Slots<Stored>,
    /// The table's, to find the slot a key names.
    scramble: Scramble,
    /// May hold forgotten sessions (`forgotten` of them), dropped when they outnumber the rest.
    by_account: Map<String, Chunked<(u64, Key)>>,
    forgotten: usize,
    expiry: MinHeap<Due>,
    ended: VecDeque<Key>,
    shared: Interned,
}

/// An entry of a shard's expiry index: a session's expiry, creation sequence and key, ordered
/// by expiry and then creation (sessions created in the same millisecond expire together).
///
/// The index is a min-heap that keeps stale entries (of sessions since ended, or given a later
/// expiry) until they reach its top: an entry counts only while its session is live with that
/// expiry ([`Shard::is_current`]). Indexing a new session, usually the latest to expire, is then
/// a push and a comparison, and ending one touches no index.
type Due = (u64, u64, Key);

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

/// The session under `key` in `slots`, if any.
fn stored(slots: &Slots<Stored>, scramble: Scramble, key: Key) -> Option<&Stored> {
    slots.get(key.place(scramble).1).filter(|stored| stored.key == key)
}

impl Shard {
    fn new(scramble: Scramble) -> Self {
        Shard {
            slots: Slots::default(),
            scramble,
            by_account: Map::default(),
            forgotten: 0,
            expiry: MinHeap::default(),
            ended: VecDeque::new(),
            shared: Interned::default(),
        }
    }

    /// The session under `key`, if this shard holds it.
    fn get(&self, key: Key) -> Option<&Stored> {
        stored(&self.slots, self.scramble, key)
    }

    fn get_mut(&mut self, key: Key) -> Option<&mut Stored> {
        self.slots.get_mut(key.place(self.scramble).1).filter(|stored| stored.key == key)
    }

    /// Forgets the session under `key`, if this shard holds it; its slot is free again.
    fn remove(&mut self, key: Key) -> Option<Stored> {
        let slot = key.place(self.scramble).1;
        if self.slots.get(slot)?.key != key {
            return None;
        }
        self.slots.remove(slot)
    }

    /// Indexes the expiry of a live session (`next_due` lowered to match).
    fn index_expiry(&mut self, session: &Session, seq: u64, key: Key, next_due: &AtomicU64) {
        if session.is_live() {
            self.expiry.push((session.expires_at, seq, key));
            // A plain load first: new sessions usually expire after the earliest one, and then
            // nothing is written to a line every shard shares.
            if session.expires_at < next_due.load(Ordering::SeqCst) {
                next_due.fetch_min(session.expires_at, Ordering::SeqCst);
            }
        }
    }

    /// Whether `due` is its session's expiry, the session live.
    fn is_current(&self, (at, seq, key): Due) -> bool {
        self.get(key).is_some_and(|s| s.seq == seq && s.session.is_live() && s.session.expires_at() == at)
    }

    /// Takes the current entries due at `now` out of the index, by expiry, then creation, at
    /// most `max` of them. Stale entries met on the way are dropped.
    fn take_due(&mut self, now: u64, max: usize) -> Vec<Due> {
        let mut due = Vec::new();
        while due.len() < max {
            let Some(entry) = self.expiry.peek() else { break };
            if entry.0 > now && self.is_current(entry) {
                break;
            }
            self.expiry.pop();
            if entry.0 <= now && self.is_current(entry) {
                due.push(entry);
            }
        }
        // An entry is pushed once per expiry, but a session given back an earlier expiry would
        // have two current ones.
        due.dedup();
        due
    }

    /// The current entries due at `now`, left in the index, and the earliest expiry indexed
    /// (`u64::MAX` when none). Stale entries met on the way are dropped.
    fn due(&mut self, now: u64) -> (Vec<Due>, u64) {
        let due = self.take_due(now, usize::MAX);
        for &entry in &due {
            self.expiry.push(entry);
        }
        (due, self.earliest())
    }

    /// Whether an entry indexed is due at `now` (perhaps a stale one).
    fn has_due(&self, now: u64) -> bool {
        self.expiry.peek().is_some_and(|entry| entry.0 <= now)
    }

    /// The earliest expiry indexed, `u64::MAX` when none (perhaps a stale entry's: never later
    /// than the earliest live session's).
    fn earliest(&self) -> u64 {
        self.expiry.peek().map_or(u64::MAX, |entry| entry.0)
    }

    /// Notes that the session under `key` has ended, and forgets the oldest ended sessions
    /// beyond `capacity`.
    fn ended(&mut self, key: Key, capacity: usize) {
        self.ended.push_back(key);
        while self.ended.len() > capacity {
            let Some(oldest) = self.ended.pop_front() else { break };
            // Its expiry entry, if any, is stale already; its place in its account's list goes
            // once the forgotten outnumber the kept (each list sweep is paid for by as many
            // sessions forgotten).
            if self.remove(oldest).is_some() {
                self.forgotten += 1;
            }
        }
        if self.forgotten > self.slots.len() {
            let (slots, scramble) = (&self.slots, self.scramble);
            self.by_account.retain(|_, keys| {
                keys.retain(|&(_, key)| stored(slots, scramble, key).is_some());
                !keys.is_empty()
            });
            self.forgotten = 0;
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
    /// Ended sessions each shard keeps.
    ended_per_shard: usize,
    /// Hides each session's place in its id.
    scramble: Scramble,
    ledger: Mutex<Ledger>,
    /// At most the earliest expiry in any shard's index (`u64::MAX` when none is known), so
    /// that [`SessionTable::due`] answers "nothing due" without a lock. Lowered with each
    /// expiry indexed, under its shard's lock; set to the exact minimum only under every
    /// shard's lock.
    next_due: AtomicU64,
}

impl Default for SessionTable {
    fn default() -> Self {
        let scramble = Scramble::random();
        SessionTable {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::new(scramble))).collect(),
            ended_per_shard: ENDED_CAPACITY / SHARDS,
            scramble,
            ledger: Mutex::default(),
            next_due: AtomicU64::new(u64::MAX),
        }
    }
}

impl SessionTable {
    /// The shard `key` names.
    fn shard(&self, key: Key) -> MutexGuard<'_, Shard> {
        self.shards[key.place(self.scramble).0].lock()
    }

    fn all_shards(&self) -> Vec<MutexGuard<'_, Shard>> {
        self.shards.iter().map(|shard| shard.lock()).collect()
    }

    /// [`crate::store::Store::create_session`]: the session is kept under an id of the table's
    /// making, which names its place; the engine's random id picks the shard and gives the new
    /// id its random bits (an internal error if it is not of the engine's form).
    pub(super) fn create(&self, mut session: Session, slot_limit: u32, default_worker: &Worker) -> Result<Session> {
        let random = Key::of(&session.id).ok_or_else(|| Error::Internal(format!("{:?} is not a session id the engine makes", session.id)))?;
        let index = (random.0[1] % SHARDS as u64) as usize;
        let mut shard = self.shards[index].lock();
        let slot = shard.slots.next();
        let place = u32::try_from(slot * SHARDS + index).map_err(|_| Error::Internal("the session table is full".into()))?;
        let key = Key::new(self.scramble, place, random);
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
        key.write_id(&mut session.id);
        session.node_id.clone_from(&placement.node_id);
        session.worker_url.clone_from(&placement.worker_url);
        let owner = shard.shared.owner(&session.key_id, &session.account_id);
        shard.index_expiry(&session, seq, key, &self.next_due);
        match shard.by_account.get_mut(session.account_id.as_str()) {
            Some(keys) => keys.push((seq, key)),
            None => {
                let mut keys = Chunked::default();
                keys.push((seq, key));
                shard.by_account.insert(session.account_id.clone(), keys);
            }
        }
        let filled = shard.slots.insert(Stored { key, seq, session: Box::new(Compact::new(&session, owner, placement)) });
        debug_assert_eq!(filled, slot);
        Ok(session)
    }

    /// [`crate::store::Store::session`].
    pub(super) fn get(&self, id: &str) -> Option<Session> {
        let key = Key::of(id)?;
        self.shard(key).get(key).map(|stored| stored.session.session(id.to_owned()))
    }

    /// [`crate::store::Store::update_session`].
    pub(super) fn update(&self, id: &str, change: SessionUpdate<'_>) -> Result<Option<Session>> {
        let Some(key) = Key::of(id) else { return Ok(None) };
        self.apply(&mut self.shard(key), key, id.to_owned(), change)
    }

    /// [`SessionTable::update`] of the session under `key` (its id `id`), in its shard, locked.
    fn apply(&self, shard: &mut Shard, key: Key, id: String, change: SessionUpdate<'_>) -> Result<Option<Session>> {
        let Some(stored) = shard.get(key) else { return Ok(None) };
        let seq = stored.seq;
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
        if !(was_live && was_due == updated.expires_at) {
            // The old entry, if any, is stale from now on.
            shard.index_expiry(&updated, seq, key, &self.next_due);
        }
        if let Some(stored) = shard.get_mut(key) {
            *stored.session = Compact::new(&updated, owner, placement);
        }
        if was_live && !updated.is_live() {
            shard.ended(key, self.ended_per_shard);
        }
        Ok(Some(updated))
    }

    /// [`crate::store::Store::list_sessions`]: newest first by creation.
    pub(super) fn list(&self, account: Option<&str>, limit: usize) -> Vec<Session> {
        let shards = self.all_shards();
        let mut found: Vec<(u64, Key, &Compact)> = Vec::new();
        for shard in &shards {
            match account {
                Some(account) => {
                    // Newest first, past any forgotten.
                    let keys = shard.by_account.get(account).into_iter().flat_map(|keys| keys.iter().rev());
                    let kept = keys.filter_map(|&(seq, key)| Some((seq, key, &*shard.get(key)?.session)));
                    found.extend(kept.take(limit));
                }
                None => found.extend(shard.slots.values().map(|stored| (stored.seq, stored.key, &*stored.session))),
            }
        }
        found.sort_unstable_by_key(|(seq, _, _)| std::cmp::Reverse(*seq));
        found.into_iter().take(limit).map(|(_, key, session)| session.session(key.id())).collect()
    }

    /// [`crate::store::Store::due_sessions`]: by expiry, then creation.
    pub(super) fn due(&self, now: u64) -> Vec<String> {
        if now < self.next_due.load(Ordering::SeqCst) {
            return Vec::new();
        }
        let mut due: Vec<Due> = Vec::new();
        let mut earliest = u64::MAX;
        let mut shards = self.all_shards();
        for shard in &mut shards {
            let (shard_due, shard_earliest) = shard.due(now);
            due.extend(shard_due);
            earliest = earliest.min(shard_earliest);
        }
        // Every shard is locked: no expiry is being indexed, so this is the exact minimum.
        self.next_due.store(earliest, Ordering::SeqCst);
        drop(shards);
        due.sort_unstable();
        due.into_iter().map(|(_, _, key)| key.id()).collect()
    }

    /// [`crate::store::Store::expire_due`]: shard by shard, each session due taken out of its
    /// shard's index and expired under that shard's lock, so that two sweeps at once expire
    /// each session once, and one returning short of `batch` has passed every shard after (or
    /// while) the other expired there. At most `batch`; every shard is locked only to set
    /// [`SessionTable::next_due`] when none due is left. In shard order, and by expiry, then
    /// creation, within a shard.
    pub(super) fn expire_due(&self, now: u64, batch: usize) -> Result<Vec<(Status, Session)>> {
        if now < self.next_due.load(Ordering::SeqCst) {
            return Ok(Vec::new());
        }
        let mut expired = Vec::new();
        for shard in &self.shards {
            let mut shard = shard.lock();
            loop {
                for (_, _, key) in shard.take_due(now, batch - expired.len()) {
                    expired.extend(expire_one(now, |change| self.apply(&mut shard, key, key.id(), change))?);
                }
                if !shard.has_due(now) {
                    break;
                }
                if expired.len() == batch {
                    // More are due: `next_due` stays where it is, for the next call.
                    return Ok(expired);
                }
            }
        }
        // Every shard locked: no expiry is being indexed, so this is the exact minimum.
        let shards = self.all_shards();
        self.next_due.store(shards.iter().map(|shard| shard.earliest()).min().unwrap_or(u64::MAX), Ordering::SeqCst);
        Ok(expired)
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

    /// The engine's id of the `n`th test session (of its form; the table gives each its own).
    fn id(n: u32) -> String {
        format!("sess_{n:032x}")
    }

    fn session(n: u32, account: &str, expires_at: u64) -> Session {
        Session {
            id: id(n),
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

    /// Creates the `n`th test session under a slot limit of `limit`; the id the table gave it.
    fn make(table: &SessionTable, n: u32, account: &str, expires_at: u64, limit: u32) -> String {
        let roomy = Worker { capacity: 1_000, ..worker() };
        table.create(session(n, account, expires_at), limit, &roomy).unwrap().id
    }

    fn ids(sessions: Vec<Session>) -> Vec<String> {
        sessions.into_iter().map(|s| s.id).collect()
    }

    /// The ids in `made` at `ns`.
    fn pick(made: &[String], ns: &[usize]) -> Vec<String> {
        ns.iter().map(|&n| made[n].clone()).collect()
    }

    fn end(table: &SessionTable, id: &str) {
        table
            .update(id, &mut |s| {
                s.terminate(10);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn lists_newest_first_across_shards() {
        let table = SessionTable::default();
        let made: Vec<String> = (0..40).map(|n| make(&table, n, if n % 2 == 0 { "a" } else { "b" }, 1_000, 100)).collect();
        assert_eq!(ids(table.list(Some("a"), 3)), pick(&made, &[38, 36, 34]));
        assert_eq!(ids(table.list(None, 2)), pick(&made, &[39, 38]));
        assert_eq!(table.list(Some("b"), 100).len(), 20);
    }

    #[test]
    fn slots_and_load_follow_liveness_and_the_limit_is_exact() {
        let table = SessionTable::default();
        table.insert_worker(worker()).unwrap();
        let made: Vec<String> = (0..3).map(|n| table.create(session(n, "a", 1_000), 3, &worker()).unwrap().id).collect();
        let refused = table.create(session(3, "a", 1_000), 3, &worker());
        assert!(matches!(refused, Err(Error::ConcurrentSessionLimit { limit: 3 })));
        end(&table, &made[1]);
        assert_eq!(table.slots_in_use("key"), 2);
        assert_eq!(table.workers()[0].active_sessions, 2);
        table.create(session(3, "a", 1_000), 3, &worker()).unwrap();
        assert_eq!(table.slots_in_use("key"), 3);
    }

    #[test]
    fn due_follows_every_expiry_change() {
        let table = SessionTable::default();
        assert!(table.due(u64::MAX - 1).is_empty());
        let one = make(&table, 1, "a", 500, 10);
        let two = make(&table, 2, "a", 300, 10);
        assert!(table.due(299).is_empty());
        assert_eq!(table.due(500), [two.clone(), one.clone()]);
        table.update(&two, &mut |s| {
            s.expire_if_due(300);
            Ok(())
        })
        .unwrap();
        assert_eq!(table.due(500), std::slice::from_ref(&one));
        // Connecting moves the expiry later; the index follows.
        table.update(&one, &mut |s| s.connect(400, 1_000)).unwrap();
        assert!(table.due(1_399).is_empty());
        assert_eq!(table.due(1_400), [one]);
    }

    #[test]
    fn stale_expiry_entries_are_never_due_and_none_is_due_twice() {
        let table = SessionTable::default();
        let one = make(&table, 1, "a", 100, 10);
        let two = make(&table, 2, "a", 100, 10);
        // Ended: its entry is stale.
        end(&table, &one);
        // Changed, its expiry kept: nothing new indexed.
        table.update(&two, &mut |s| {
            s.metadata = serde_json::json!({"k": 1});
            Ok(())
        })
        .unwrap();
        assert_eq!(table.due(100), std::slice::from_ref(&two));
        assert_eq!(table.due(100), std::slice::from_ref(&two), "due until expired");
        table.update(&two, &mut |s| {
            s.expire_if_due(100);
            Ok(())
        })
        .unwrap();
        assert!(table.due(u64::MAX - 1).is_empty());
        assert_eq!(table.next_due.load(Ordering::SeqCst), u64::MAX);
    }

    #[test]
    fn expiring_stops_at_the_batch_and_goes_on_where_it_stopped() {
        let table = SessionTable::default();
        let made: Vec<String> = (0..44).map(|n| make(&table, n, "a", 100, 100)).collect();
        let later = make(&table, 44, "a", 200, 100);
        // Four ended: their entries, still indexed, are stale.
        for id in &made[..4] {
            end(&table, id);
        }
        let batches: Vec<Vec<String>> = (0..4).map(|_| table.expire_due(100, 16).unwrap().into_iter().map(|(_, s)| s.id).collect()).collect();
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [16, 16, 8, 0]);
        let mut expired = batches.concat();
        expired.sort();
        let mut due = made[4..].to_vec();
        due.sort();
        assert_eq!(expired, due);
        // A short batch left nothing due: the next expiry is the one left.
        assert_eq!(table.next_due.load(Ordering::SeqCst), 200);
        assert_eq!(ids(table.expire_due(200, 16).unwrap().into_iter().map(|(_, s)| s).collect()), [later]);
    }

    #[test]
    fn only_the_newest_ended_sessions_of_each_shard_are_kept() {
        let table = SessionTable { ended_per_shard: 2, ..SessionTable::default() };
        let made: Vec<String> = (0..200).map(|n| make(&table, n, if n % 2 == 0 { "a" } else { "b" }, 1_000, 1_000)).collect();
        // All but the last 10 end, in the order they were made.
        let mut ended_by_shard = vec![Vec::new(); SHARDS];
        for (n, id) in made.iter().enumerate().take(190) {
            end(&table, id);
            ended_by_shard[Key::of(id).unwrap().place(table.scramble).0].push(n);
        }
        let kept: Vec<usize> = (0..200).filter(|&n| table.get(&made[n]).is_some()).collect();
        let mut expected: Vec<usize> = ended_by_shard.iter().flat_map(|ns| ns.iter().rev().take(2).copied()).chain(190..200).collect();
        expected.sort_unstable();
        assert_eq!(kept, expected);
        // The forgotten are gone from every view; the live keep their slots.
        let forgotten = (0..190).find(|n| !kept.contains(n)).unwrap();
        assert!(table.update(&made[forgotten], &mut |_| Ok(())).unwrap().is_none());
        let newest_a: Vec<String> = kept.iter().rev().filter(|&&n| n % 2 == 0).map(|&n| made[n].clone()).collect();
        assert_eq!(ids(table.list(Some("a"), 1_000)), newest_a);
        assert_eq!(ids(table.list(Some("a"), 3)), newest_a[..3]);
        assert_eq!(table.list(None, 1_000).len(), kept.len());
        assert_eq!(table.slots_in_use("key"), 10);
        // The account lists were swept as the forgotten came to outnumber the kept.
        let listed: usize = table.shards.iter().map(|s| s.lock().by_account.values().map(Chunked::len).sum::<usize>()).sum();
        assert!(listed <= 2 * kept.len(), "{listed} listed for {} kept", kept.len());
    }

    #[test]
    fn an_account_list_reaches_past_its_forgotten_newest() {
        let table = SessionTable { ended_per_shard: 0, ..SessionTable::default() };
        let one = make(&table, 1, "a", 1_000, 10);
        let two = make(&table, 2, "a", 1_000, 10);
        end(&table, &two);
        assert!(table.get(&two).is_none());
        assert_eq!(ids(table.list(Some("a"), 1)), [one]);
    }

    #[test]
    fn a_forgotten_sessions_slot_goes_to_a_new_session_and_its_id_finds_nothing() {
        let table = SessionTable { ended_per_shard: 0, ..SessionTable::default() };
        // The engine's ids 16 apart pick the same shard.
        let old = make(&table, 16, "a", 1_000, 10);
        end(&table, &old);
        let new = make(&table, 32, "b", 1_000, 10);
        let place = |id: &str| Key::of(id).unwrap().place(table.scramble);
        assert_eq!(place(&new), place(&old), "the freed slot is taken again");
        assert_ne!(new, old);
        assert!(table.get(&old).is_none());
        assert!(table.update(&old, &mut |_| Ok(())).unwrap().is_none());
        assert_eq!(table.get(&new).map(|s| s.account_id), Some("b".into()));
        assert_eq!(ids(table.list(Some("a"), 10)), Vec::<String>::new());
    }

    #[test]
    fn ids_name_their_place_and_all_their_bits_count() {
        let table = SessionTable::default();
        let made: Vec<String> = (0..100).map(|n| make(&table, n, "a", 1_000, 1_000)).collect();
        let mut unique = made.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), made.len());
        for id in &made {
            let key = Key::of(id).unwrap();
            let (shard, slot) = key.place(table.scramble);
            assert!(shard < SHARDS && slot < 100, "{id}: {shard}, {slot}");
            // The same place with any other bits is no session.
            for bit in [0, 31, 64, 127] {
                let bits = (u128::from(key.0[0]) << 64 | u128::from(key.0[1])) ^ 1 << bit;
                let forged = Key([(bits >> 64) as u64, bits as u64]);
                assert!(table.get(&forged.id()).is_none(), "{id} with bit {bit} flipped");
            }
        }
    }

    #[test]
    fn keys_round_trip_and_only_the_engines_ids_are_stored() {
        let made = crate::engine::new_id(PREFIX);
        assert_eq!(Key::of(&made).map(Key::id), Some(made));
        for other in ["sess_1", "sess_", "key_00000000000000000000000000000000", "sess_0000000000000000000000000000000A", "sess_+0000000000000000000000000000000", "sess_000000000000000000000000000000000", "sess_0000000000000000000000000000000g", "sess_00000000-0000-0000-0000-00000000", "sess_\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}"] {
            assert!(Key::of(other).is_none(), "{other}");
        }
        let table = SessionTable::default();
        let mut odd = session(1, "a", 1_000);
        odd.id = "sess_1".into();
        assert!(matches!(table.create(odd, 10, &worker()), Err(Error::Internal(_))));
        assert!(table.get("sess_1").is_none());
        assert!(table.update("sess_1", &mut |_| Ok(())).unwrap().is_none());
    }
}
