//! The state layer: where keys, buckets, sessions, workers, users, usage and audit live.
//!
//! The engine holds its rules; a [`Store`] only keeps state and makes each method atomic. Three
//! stores implement the same trait, so the rules never change with the storage; the `store`
//! object of the configuration chooses one ([`crate::config::StoreConfig`], [`open`]):
//!
//! | | [`MemoryStore`] | [`SqliteStore`] (feature `sqlite`) | [`RedisStore`] (feature `redis`) |
//! |---|---|---|---|
//! | for | one process, tests | one process that must survive a crash | many processes and machines |
//! | keys, sessions, users, alerts, audit | lost at exit | durable once acknowledged | shared, as durable as the Redis server is configured |
//! | ended sessions, audit records kept | the newest ~100,000 of each | all | all sessions, the newest 100,000 records |
//! | token buckets | in process | in process (a restart refills them) | shared in Redis, or leased in batches |
//! | `requests` counter, `last_used_at` | in process | written behind | written behind |
//! | audit records of denials and expiries | in process | written behind, in order | written behind, in order |
//! | revocation seen by other processes | — | — | within `key_cache_ms` (default 1 s) |
//! | when the backend fails | — | `unavailable` | `unavailable` (or, with `fail_open`, authorize allows) |
//!
//! What is written behind, a store writes on [`Store::flush`], on drop, and from the first call
//! a second after its last write; an engine that opened its store from its configuration also
//! flushes it on a thread of its own every `store.flush_ms` (half a second by default), so that
//! no call deciding a request waits for that write. Each store's module doc states its
//! guarantees in full.

#[cfg(any(feature = "sqlite", feature = "redis"))]
mod behind;
mod entry;
mod flusher;
mod memory;
mod positions;
#[cfg(feature = "redis")]
mod redis;
mod slab;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use entry::{AccountMeter, KeyEntry, RecordCell, RecordMut, RecordRef};
pub(crate) use flusher::Flusher;
pub use memory::MemoryStore;
pub use slab::KeyRef;
#[cfg(feature = "redis")]
pub use self::redis::RedisStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

use crate::config::{StoreConfig, StoreKind};

use crate::audit::AuditRecord;
use crate::error::Result;
use crate::keys::{KeyDigest, KeyRecord};
use crate::limits::{Decision, Window};
use crate::session::{Session, Status};
use crate::usage::Alert;
use crate::users::User;
use crate::workers::{Worker, WorkerStatus};

/// Opens the store a configuration names (it must have passed [`StoreConfig::validate`]).
pub fn open(config: &StoreConfig) -> Result<Arc<dyn Store>> {
    config.validate()?;
    match config.kind {
        StoreKind::Memory => Ok(Arc::new(MemoryStore::new())),
        #[cfg(feature = "sqlite")]
        StoreKind::Sqlite => Ok(Arc::new(SqliteStore::open(config.path.as_deref().unwrap_or_default())?)),
        #[cfg(feature = "redis")]
        StoreKind::Redis => Ok(Arc::new(RedisStore::open(config)?)),
        #[allow(unreachable_patterns)]
        _ => Err(crate::error::Error::config("store.kind", "this store is not in this build")),
    }
}

/// A change applied atomically to one session.
pub type SessionUpdate<'a> = &'a mut dyn FnMut(&mut Session) -> Result<()>;

/// Expires a session through `update` (an update of that one session) if it is due at `now`:
/// the status it had and the session as it is now, when this expired it.
fn expire_one(now: u64, update: impl FnOnce(SessionUpdate<'_>) -> Result<Option<Session>>) -> Result<Option<(Status, Session)>> {
    let mut from = None;
    let updated = update(&mut |session| {
        let status = session.status;
        from = session.expire_if_due(now).then_some(status);
        Ok(())
    })?;
    Ok(from.zip(updated))
}

/// The state behind an engine. Every method is atomic with respect to the others.
pub trait Store: Send + Sync + 'static {
    /// Writes what the store holds back (the SQLite and Redis stores write request counts and
    /// keys' `last_used_at` behind, and on drop); nothing by default. The next write-behind
    /// falls due a full interval after a flush: whoever flushes more often, on a thread of its
    /// own (the engine's flush thread does), spares the calls that decide requests the wait.
    fn flush(&self) -> Result<()> {
        Ok(())
    }

    // ---- keys ----
    /// Adds a key.
    fn insert_key(&self, digest: KeyDigest, record: KeyRecord) -> Result<()>;
    /// The key with this digest (compared in constant time once found).
    fn key_by_digest(&self, digest: &KeyDigest) -> Result<Option<KeyRef>>;
    /// The key with this id.
    fn key(&self, id: &str) -> Result<Option<KeyRef>>;
    /// Changes a key's record in place; `None` if there is no such key.
    fn update_key(&self, id: &str, change: &mut dyn FnMut(&mut KeyRecord)) -> Result<Option<KeyRecord>>;
    /// Keys, newest first, of one account or of all.
    fn list_keys(&self, account: Option<&str>, limit: usize) -> Result<Vec<KeyRecord>>;

    // ---- rate limits ----
    // By default the key's buckets live in its entry, in process; a store that shares them
    // between processes overrides all three.
    /// Takes one token from each of the key's windows, or none.
    fn take(&self, key: &KeyEntry, windows: &[Window; 2], now: u64) -> Result<Decision> {
        Ok(key.buckets.try_take(windows, now))
    }
    /// The decision `take` would give, taking nothing.
    fn peek(&self, key: &KeyEntry, windows: &[Window; 2], now: u64) -> Result<Decision> {
        Ok(key.buckets.peek(windows, now))
    }
    /// Gives back the tokens of the last `take`.
    fn refund(&self, key: &KeyEntry, windows: &[Window; 2], now: u64) -> Result<()> {
        key.buckets.refund(windows, now);
        Ok(())
    }

    // ---- sessions and workers ----
    /// Places and inserts a new PENDING session, atomically with its key's slot check:
    /// fails with `concurrent_session_limit` when the key already has `slot_limit` live
    /// sessions, `no_worker_available` when no worker has room. The store fills in `node_id` and
    /// `worker_url` from [`crate::workers::place`]. The session's id is one the engine made
    /// (`sess_` and 32 lowercase hex digits, random); a store may answer the session under
    /// another id of that form. The memory store does: its ids name the slot where it keeps
    /// each session, and it refuses an id of any other form as an internal error.
    fn create_session(
        &self,
        session: Session,
        slot_limit: u32,
        default_worker: &Worker,
    ) -> Result<Session>;
    /// The session with this id, as stored (expiry not applied). A store may forget ended
    /// sessions: [`MemoryStore`] keeps about the newest
    /// [`MemoryStore::ENDED_SESSION_CAPACITY`]; the others keep every session.
    fn session(&self, id: &str) -> Result<Option<Session>>;
    /// Applies `change` to the session atomically and returns it; when `change` fails nothing
    /// is written. Slots and worker load follow the session's liveness.
    fn update_session(&self, id: &str, change: SessionUpdate<'_>) -> Result<Option<Session>>;
    /// Sessions, newest first, of one account or of all.
    fn list_sessions(&self, account: Option<&str>, limit: usize) -> Result<Vec<Session>>;
    /// Ids of live sessions whose expiry is at or before `now`.
    fn due_sessions(&self, now: u64) -> Result<Vec<String>>;
    /// Expires the live sessions due at `now` ([`Session::expire_if_due`]), all of them or a
    /// batch of at least `batch`, and returns those this call expired, as they are now, each with
    /// the status it had. A session is expired by one call only, however many run at once; a
    /// call that returns fewer than `batch` left no session due at `now` live. This one
    /// expires every one of [`Store::due_sessions`], one by one through
    /// [`Store::update_session`]; a store may do it in fewer steps, and may stop at `batch` (the
    /// memory store does, so that a sweep holds one batch of sessions at a time; the Redis
    /// store writes a batch in one transaction).
    fn expire_due(&self, now: u64, _batch: usize) -> Result<Vec<(Status, Session)>> {
        let mut expired = Vec::new();
        for id in self.due_sessions(now)? {
            expired.extend(expire_one(now, |change| self.update_session(&id, change))?);
        }
        Ok(expired)
    }
    /// Live sessions held by a key.
    fn slots_in_use(&self, key_id: &str) -> Result<u32>;
    /// Registers a worker; fails with `already_exists` if its node id is taken.
    fn insert_worker(&self, worker: Worker) -> Result<()>;
    /// Changes a worker; `None` if there is no such worker.
    fn update_worker(&self, node_id: &str, change: &mut dyn FnMut(&Worker) -> Result<Worker>) -> Result<Option<Worker>>;
    /// Workers in registration order, with their live sessions.
    fn workers(&self) -> Result<Vec<WorkerStatus>>;

    // ---- users ----
    /// Adds a user.
    fn insert_user(&self, user: User) -> Result<()>;
    /// The user with this id.
    fn user(&self, id: &str) -> Result<Option<User>>;
    /// Changes a user atomically; `None` if there is no such user.
    fn update_user(&self, id: &str, change: &mut dyn FnMut(&mut User) -> Result<()>) -> Result<Option<User>>;
    /// Removes a user; whether it existed.
    fn delete_user(&self, id: &str) -> Result<Option<User>>;
    /// An account's users, newest first.
    fn list_users(&self, account: &str, limit: usize) -> Result<Vec<User>>;

    // ---- usage and alerts ----
    /// Counts one authorized request for the key's account (the hot path: no allocation).
    fn count_request(&self, key: &KeyEntry, now: u64) -> Result<()>;
    /// Adds `quantity` to an account's metric, once per idempotency key; returns the new total
    /// and whether it was counted. Alerts that the new total reaches fire at `now`.
    fn add_usage(&self, account: &str, metric: &str, quantity: u64, idempotency_key: Option<&str>, now: u64) -> Result<(u64, bool)>;
    /// Every metric's total for an account.
    fn usage(&self, account: &str) -> Result<BTreeMap<String, u64>>;
    /// Adds an alert; it fires at once if the total already reaches it.
    fn insert_alert(&self, alert: Alert, now: u64) -> Result<Alert>;
    /// An account's alerts, newest first.
    fn alerts(&self, account: &str) -> Result<Vec<Alert>>;

    // ---- audit ----
    /// Appends a record to `account_id`'s log: `record` is the JSON of an
    /// [`crate::audit::AuditEvent`] of that account, which [`Store::audit`] reads back as an
    /// [`AuditRecord`]. Given owned, so that a store may keep it without a copy.
    fn append_audit(&self, account_id: &str, record: String) -> Result<()>;
    /// [`Store::append_audit`] for a record that may be written behind: a denied request, which
    /// whoever holds a key can cause as fast as they can send, or a session's expiry, which a
    /// sweep writes for each session it expires. A store may hold it back (the SQLite and Redis
    /// stores: at most about a second, and never past a later record of the process or a read
    /// of the log), so that a flood of denials or expiries does not cost a disk write or a
    /// round trip each; held back, it is lost if the process dies first. By default,
    /// [`Store::append_audit`].
    fn append_audit_behind(&self, account_id: &str, record: String) -> Result<()> {
        self.append_audit(account_id, record)
    }
    /// Records, newest first, of one account or of all.
    fn audit(&self, account: Option<&str>, limit: usize) -> Result<Vec<AuditRecord>>;
}
