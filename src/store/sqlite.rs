//! The durable embedded store: one SQLite file (feature `sqlite`).
//!
//! What a caller may rely on:
//!
//! - **Durability.** Keys, sessions, workers, users, usage metrics and their idempotency keys,
//!   alerts and the audit log are written to the file before the call that changes them
//!   returns: each [`Store`] method is one SQLite transaction, committed in WAL mode with
//!   `synchronous=FULL`. A change that was acknowledged survives `kill -9` of the process (and a
//!   power cut, as far as the disk honours `fsync`); a change that was not acknowledged is
//!   either wholly there or wholly absent.
//! - **Invariants after any crash.** A key's slots in use are *counted* from its PENDING and
//!   ACTIVE sessions, and a worker's load likewise, so "slots in use = live sessions" holds
//!   whatever moment the process died at.
//! - **Written behind, about a second late:** the `requests` counter of each account, each
//!   key's `last_used_at`, and the audit records of denied requests (which whoever holds a key
//!   can cause as fast as they can send: a disk write each would let one key's flood of 429s
//!   slow every other request) and of expiries (a sweep expires the sessions due in one
//!   transaction, then audits each). They are kept in memory and written by the first call a
//!   second (or [`SqliteStore::with_write_behind`]) or more after the last such write or
//!   flush (an engine that opened the store from its configuration flushes it every
//!   `store.flush_ms` on a thread of its own, so that its calls never write them), and when
//!   the store is dropped or [`SqliteStore::flush`]ed; a crash may lose what was held. A
//!   `requests` alert that fires is written at once, and a held audit record is written
//!   before any later one and before the log is read, so the log stays in order and complete
//!   to its readers. Keys' last uses go to a table of their own (`key_use`), a small row a
//!   key, so that writing them does not rewrite the keys' records.
//! - **Token buckets stay in memory:** a restart refills every key's buckets.
//! - **One process.** The store caches every key in memory (so that `authorize` never reads
//!   the disk) and assumes it is the file's only writer: open one file from one process. For
//!   many processes use the Redis store.
//! - **Failures.** An I/O or SQLite error is `unavailable` (HTTP 503); nothing is half-applied.
//! - The audit log is not truncated (unlike the in-memory store's newest 100,000).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::behind::{self, HeldAudit, Schedule};
use super::slab::Slab;
use super::{expire_one, AccountMeter, KeyEntry, KeyRef, SessionUpdate, Store};
use crate::audit::AuditRecord;
use crate::error::{Error, Result};
use crate::keys::{digests_equal, KeyDigest, KeyRecord};
use crate::session::{Session, Status};
use crate::usage::{self, Alert};
use crate::users::User;
use crate::workers::{self, Worker, WorkerStatus};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS keys (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, digest BLOB NOT NULL UNIQUE,
    account_id TEXT NOT NULL, json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS keys_account ON keys (account_id, seq);
-- Each key's `last_used_at`, written behind: a small row a key, so that the write-behind does
-- not rewrite every used key's record (a record's own `last_used_at`, from before this table,
-- is read as a floor).
CREATE TABLE IF NOT EXISTS key_use (id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sessions (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, account_id TEXT NOT NULL,
    key_id TEXT NOT NULL, node_id TEXT NOT NULL, status TEXT NOT NULL, live INTEGER NOT NULL,
    expires_at INTEGER NOT NULL, json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_account ON sessions (account_id, seq);
CREATE INDEX IF NOT EXISTS sessions_key_live ON sessions (key_id) WHERE live = 1;
CREATE INDEX IF NOT EXISTS sessions_node_live ON sessions (node_id) WHERE live = 1;
CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions (expires_at) WHERE live = 1;
CREATE TABLE IF NOT EXISTS workers (seq INTEGER PRIMARY KEY, node_id TEXT NOT NULL UNIQUE, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, account_id TEXT NOT NULL, json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS users_account ON users (account_id, seq);
CREATE TABLE IF NOT EXISTS usage (
    account_id TEXT NOT NULL, metric TEXT NOT NULL, total INTEGER NOT NULL,
    PRIMARY KEY (account_id, metric));
CREATE TABLE IF NOT EXISTS idempotency (
    account_id TEXT NOT NULL, metric TEXT NOT NULL, key TEXT NOT NULL,
    PRIMARY KEY (account_id, metric, key));
CREATE TABLE IF NOT EXISTS alerts (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, account_id TEXT NOT NULL,
    metric TEXT NOT NULL, threshold INTEGER NOT NULL, created_at INTEGER NOT NULL, fired_at INTEGER);
CREATE INDEX IF NOT EXISTS alerts_account ON alerts (account_id, seq);
CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, account_id TEXT NOT NULL, json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_account ON audit (account_id, seq);
INSERT OR IGNORE INTO meta (name, value) VALUES ('schema', '1');
";

fn db(error: rusqlite::Error) -> Error {
    Error::Unavailable(format!("sqlite: {error}"))
}

fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Internal(format!("cannot encode a record: {e}")))
}

fn from_json<T: DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::Internal(format!("a stored record is unreadable: {e}")))
}

fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::ConstraintViolation)
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The keys, in memory: their entries side by side in a slab (so that each has a position,
/// its `key_slot` at the C ABI), found by digest and by id.
#[derive(Default)]
struct KeyCache {
    entries: Slab,
    by_digest: HashMap<KeyDigest, KeyRef>,
    by_id: HashMap<String, KeyRef>,
}

impl KeyCache {
    /// Adds the entry of the key `id` (a new key, or a key loaded from the file).
    fn insert(&mut self, id: String, entry: KeyEntry) {
        let entry = self.entries.handle(self.entries.push(entry));
        self.by_digest.insert(entry.digest, entry.clone());
        self.by_id.insert(id, entry);
    }
}

/// Keeps state in one SQLite file; see the module documentation for its guarantees.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    keys: RwLock<KeyCache>,
    meters: RwLock<HashMap<String, Arc<AccountMeter>>>,
    /// Keys used since the last write-behind.
    dirty: Mutex<HashSet<KeyDigest>>,
    /// Audit records written behind.
    held_audit: HeldAudit,
    /// When held writes fall due: [`SqliteStore::with_write_behind`].
    write_behind: Schedule,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("keys", &self.keys.read().by_id.len()).finish()
    }
}

impl SqliteStore {
    /// Opens (creating if needed, with its directory) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Unavailable(format!("sqlite: cannot create {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(db)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(db)?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0)).map_err(db)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Unavailable(format!("sqlite: cannot use WAL mode (got {mode})")));
        }
        conn.execute_batch("PRAGMA synchronous=FULL;").map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        let store = SqliteStore {
            conn: Mutex::new(conn),
            keys: RwLock::default(),
            meters: RwLock::default(),
            dirty: Mutex::default(),
            held_audit: HeldAudit::default(),
            write_behind: Schedule::new(behind::EVERY),
        };
        store.load()?;
        Ok(store)
    }

    /// Loads every key and account meter into memory.
    fn load(&self) -> Result<()> {
        let conn = self.conn.lock();
        let mut meters = self.meters.write();
        let mut totals = conn
            .prepare("SELECT account_id, total FROM usage WHERE metric = ?1")
            .map_err(db)?;
        let rows = totals
            .query_map([usage::REQUESTS], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))
            .map_err(db)?;
        for row in rows {
            let (account, total) = row.map_err(db)?;
            let meter = meters.entry(account).or_default();
            meter.requests.store(total as u64, Ordering::Relaxed);
        }
        let mut next = conn
            .prepare("SELECT account_id, MIN(threshold) FROM alerts WHERE metric = ?1 AND fired_at IS NULL GROUP BY account_id")
            .map_err(db)?;
        let rows = next
            .query_map([usage::REQUESTS], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))
            .map_err(db)?;
        for row in rows {
            let (account, threshold) = row.map_err(db)?;
            meters.entry(account).or_default().next_alert.store(threshold as u64, Ordering::Relaxed);
        }
        let mut cache = self.keys.write();
        let mut stmt = conn
            .prepare("SELECT keys.digest, keys.json, key_use.at FROM keys LEFT JOIN key_use USING (id) ORDER BY keys.seq")
            .map_err(db)?;
        let rows = stmt
            .query_map([], |row| Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, String>(1)?, row.get::<_, Option<i64>>(2)?)))
            .map_err(db)?;
        for row in rows {
            let (digest, json, used_at) = row.map_err(db)?;
            let digest: KeyDigest =
                digest.try_into().map_err(|_| Error::Internal("a stored key digest is not 32 bytes".into()))?;
            let mut record: KeyRecord = from_json(&json)?;
            record.last_used_at = record.last_used_at.max(used_at.and_then(|at| u64::try_from(at).ok()));
            let meter = meters.entry(record.account_id.clone()).or_default().clone();
            cache.insert(record.id.clone(), KeyEntry::new(digest, record, meter));
        }
        Ok(())
    }

    fn meter(&self, account: &str) -> Arc<AccountMeter> {
        if let Some(meter) = self.meters.read().get(account) {
            return meter.clone();
        }
        self.meters.write().entry(account.to_owned()).or_default().clone()
    }

    /// Runs `f` in one immediate transaction, committed when it succeeds.
    fn tx<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.conn.lock();
        Self::tx_on(&mut conn, f)
    }

    fn tx_on<T>(conn: &mut Connection, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
        let value = f(&tx)?;
        tx.commit().map_err(db)?;
        Ok(value)
    }

    /// Sets how long a write held behind may wait for the next call to write it (one second
    /// by default; see the module documentation). Longer means fewer disk writes under a
    /// flood of denials, and more lost in a crash.
    pub fn with_write_behind(mut self, every: Duration) -> Self {
        self.write_behind = Schedule::new(every);
        self
    }

    /// [`Store::flush`]es when the last write-behind is [`SqliteStore::with_write_behind`] old
    /// (one caller does).
    fn write_behind_if_due(&self) -> Result<()> {
        if self.write_behind.claim() {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the held audit records, then `record` if any, in one transaction: the log keeps
    /// the order they were appended in. On failure the held records stay held.
    fn write_audit(&self, record: Option<(&str, &str)>) -> Result<()> {
        // The connection's lock keeps the writes in order.
        let mut conn = self.conn.lock();
        self.held_audit.write_out(record, |records| {
            Self::tx_on(&mut conn, |tx| {
                let mut insert = tx.prepare_cached("INSERT INTO audit (account_id, json) VALUES (?1, ?2)").map_err(db)?;
                for (account, json) in records {
                    insert.execute(params![account, json]).map_err(db)?;
                }
                Ok(())
            })
        })
    }

    fn fire(tx: &Transaction<'_>, account: &str, metric: &str, total: u64, now: u64) -> Result<()> {
        tx.execute(
            "UPDATE alerts SET fired_at = ?4 WHERE account_id = ?1 AND metric = ?2 AND fired_at IS NULL AND threshold <= ?3",
            params![account, metric, int(total), int(now)],
        )
        .map_err(db)?;
        Ok(())
    }

    fn next_requests_alert(tx: &Transaction<'_>, account: &str) -> Result<u64> {
        let next: Option<i64> = tx
            .query_row(
                "SELECT MIN(threshold) FROM alerts WHERE account_id = ?1 AND metric = ?2 AND fired_at IS NULL",
                params![account, usage::REQUESTS],
                |row| row.get(0),
            )
            .map_err(db)?;
        Ok(next.map_or(u64::MAX, |n| n as u64))
    }

    fn live_load(tx: &Connection) -> Result<HashMap<String, u32>> {
        let mut stmt = tx
            .prepare_cached("SELECT node_id, COUNT(*) FROM sessions WHERE live = 1 GROUP BY node_id")
            .map_err(db)?;
        let rows = stmt.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, u32>(1)?))).map_err(db)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db)
    }

    fn all_workers(tx: &Connection) -> Result<Vec<Worker>> {
        let mut stmt = tx.prepare_cached("SELECT json FROM workers ORDER BY seq").map_err(db)?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0)).map_err(db)?;
        rows.map(|json| from_json(&json.map_err(db)?)).collect()
    }

    fn json_rows<T: DeserializeOwned>(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Vec<T>> {
        let mut stmt = conn.prepare_cached(sql).map_err(db)?;
        let rows = stmt.query_map(params, |row| row.get::<_, String>(0)).map_err(db)?;
        rows.map(|json| from_json(&json.map_err(db)?)).collect()
    }

    /// [`Store::update_session`] in `tx`.
    fn update_session_in(tx: &Transaction<'_>, id: &str, change: SessionUpdate<'_>) -> Result<Option<Session>> {
        let json: Option<String> =
            tx.query_row("SELECT json FROM sessions WHERE id = ?1", [id], |row| row.get(0)).optional().map_err(db)?;
        let Some(json) = json else { return Ok(None) };
        let mut session: Session = from_json(&json)?;
        change(&mut session)?;
        Self::write_session(tx, &session)?;
        Ok(Some(session))
    }

    /// [`Store::due_sessions`] on `conn`.
    fn due_sessions_in(conn: &Connection, now: u64) -> Result<Vec<String>> {
        let mut stmt = conn
            .prepare_cached("SELECT id FROM sessions WHERE live = 1 AND expires_at <= ?1 ORDER BY expires_at, id")
            .map_err(db)?;
        let rows = stmt.query_map([int(now)], |row| row.get(0)).map_err(db)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db)
    }

    fn write_session(tx: &Transaction<'_>, session: &Session) -> Result<()> {
        tx.execute(
            "UPDATE sessions SET status = ?2, live = ?3, expires_at = ?4, node_id = ?5, json = ?6 WHERE id = ?1",
            params![
                session.id,
                session.status.as_str(),
                session.is_live(),
                int(session.expires_at),
                session.node_id,
                to_json(session)?
            ],
        )
        .map_err(db)?;
        Ok(())
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl Store for SqliteStore {
    /// Writes the held audit records, and the `requests` counters and `last_used_at` of keys
    /// used since the last write (done about a second after they change, and on drop).
    fn flush(&self) -> Result<()> {
        self.write_behind.wrote();
        self.write_audit(None)?;
        let dirty: Vec<KeyDigest> = self.dirty.lock().drain().collect();
        if dirty.is_empty() {
            // No request counted since the last write (each marks its key).
            return Ok(());
        }
        let entries: Vec<KeyRef> = {
            let cache = self.keys.read();
            dirty.iter().filter_map(|d| cache.by_digest.get(d).cloned()).collect()
        };
        let meters: Vec<(String, u64)> = self
            .meters
            .read()
            .iter()
            .map(|(account, meter)| (account.clone(), meter.requests.load(Ordering::Relaxed)))
            .filter(|(_, total)| *total > 0)
            .collect();
        let result = self.tx(|tx| {
            // Prepared once for all the rows: preparing each cost more than its write.
            let mut touch = tx
                .prepare_cached(
                    "INSERT INTO key_use (id, at) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET at = MAX(at, excluded.at)",
                )
                .map_err(db)?;
            for entry in &entries {
                if let Some(at) = entry.last_used_at() {
                    touch.execute(params![entry.record.id(), int(at)]).map_err(db)?;
                }
            }
            let mut count = tx
                .prepare_cached(
                    "INSERT INTO usage (account_id, metric, total) VALUES (?1, ?2, ?3)
                     ON CONFLICT (account_id, metric) DO UPDATE SET total = MAX(total, excluded.total)",
                )
                .map_err(db)?;
            for (account, total) in &meters {
                count.execute(params![account, usage::REQUESTS, int(*total)]).map_err(db)?;
            }
            Ok(())
        });
        if result.is_err() {
            // Try again next time.
            self.dirty.lock().extend(dirty);
        }
        result
    }

    fn insert_key(&self, digest: KeyDigest, record: KeyRecord) -> Result<()> {
        let mut conn = self.conn.lock();
        Self::tx_on(&mut conn, |tx| {
            match tx.execute(
                "INSERT INTO keys (id, digest, account_id, json) VALUES (?1, ?2, ?3, ?4)",
                params![record.id, &digest[..], record.account_id, to_json(&record)?],
            ) {
                Err(e) if is_unique_violation(&e) => Err(Error::AlreadyExists { resource: "key" }),
                other => other.map(drop).map_err(db),
            }
        })?;
        let entry = KeyEntry::new(digest, record.clone(), self.meter(&record.account_id));
        self.keys.write().insert(record.id, entry);
        Ok(())
    }

    fn key_by_digest(&self, digest: &KeyDigest) -> Result<Option<KeyRef>> {
        let cache = self.keys.read();
        Ok(cache.by_digest.get(digest).filter(|entry| digests_equal(&entry.digest, digest)).cloned())
    }

    fn key(&self, id: &str) -> Result<Option<KeyRef>> {
        Ok(self.keys.read().by_id.get(id).cloned())
    }

    fn update_key(&self, id: &str, change: &mut dyn FnMut(&mut KeyRecord)) -> Result<Option<KeyRecord>> {
        let Some(entry) = self.key(id)? else { return Ok(None) };
        // The connection's lock serializes updates of a key: none is lost.
        let mut conn = self.conn.lock();
        let mut record = entry.snapshot();
        change(&mut record);
        Self::tx_on(&mut conn, |tx| {
            tx.execute("UPDATE keys SET json = ?2 WHERE id = ?1", params![id, to_json(&record)?]).map_err(db)?;
            Ok(())
        })?;
        let mut stored = record.clone();
        stored.last_used_at = entry.record.read().last_used_at;
        *entry.record.write() = stored;
        Ok(Some(entry.snapshot()))
    }

    fn list_keys(&self, account: Option<&str>, limit: usize) -> Result<Vec<KeyRecord>> {
        let ids: Vec<String> = {
            let conn = self.conn.lock();
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id FROM keys WHERE ?1 IS NULL OR account_id = ?1 ORDER BY seq DESC LIMIT ?2",
                )
                .map_err(db)?;
            let rows = stmt.query_map(params![account, sql_limit(limit)], |row| row.get(0)).map_err(db)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db)?
        };
        let cache = self.keys.read();
        Ok(ids.iter().filter_map(|id| cache.by_id.get(id).map(|e| e.snapshot())).collect())
    }

    fn create_session(&self, mut session: Session, slot_limit: u32, default_worker: &Worker) -> Result<Session> {
        self.tx(|tx| {
            let slots: u32 = tx
                .query_row("SELECT COUNT(*) FROM sessions WHERE key_id = ?1 AND live = 1", [&session.key_id], |r| r.get(0))
                .map_err(db)?;
            if slots >= slot_limit {
                return Err(Error::ConcurrentSessionLimit { limit: slot_limit });
            }
            let workers = Self::all_workers(tx)?;
            let load = Self::live_load(tx)?;
            let worker = workers::place(&workers, default_worker, |node| load.get(node).copied().unwrap_or(0))?;
            session.node_id.clone_from(&worker.node_id);
            session.worker_url.clone_from(&worker.url);
            tx.execute(
                "INSERT INTO sessions (id, account_id, key_id, node_id, status, live, expires_at, json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    session.id,
                    session.account_id,
                    session.key_id,
                    session.node_id,
                    session.status.as_str(),
                    session.is_live(),
                    int(session.expires_at),
                    to_json(&session)?
                ],
            )
            .map_err(|e| if is_unique_violation(&e) { Error::AlreadyExists { resource: "session" } } else { db(e) })?;
            Ok(session)
        })
    }

    fn session(&self, id: &str) -> Result<Option<Session>> {
        let conn = self.conn.lock();
        let json: Option<String> = conn
            .query_row("SELECT json FROM sessions WHERE id = ?1", [id], |row| row.get(0))
            .optional()
            .map_err(db)?;
        json.map(|j| from_json(&j)).transpose()
    }

    fn update_session(&self, id: &str, change: SessionUpdate<'_>) -> Result<Option<Session>> {
        self.tx(|tx| Self::update_session_in(tx, id, change))
    }

    fn list_sessions(&self, account: Option<&str>, limit: usize) -> Result<Vec<Session>> {
        let conn = self.conn.lock();
        Self::json_rows(
            &conn,
            "SELECT json FROM sessions WHERE ?1 IS NULL OR account_id = ?1 ORDER BY seq DESC LIMIT ?2",
            params![account, sql_limit(limit)],
        )
    }

    fn due_sessions(&self, now: u64) -> Result<Vec<String>> {
        Self::due_sessions_in(&self.conn.lock(), now)
    }

    /// Every session due, whatever `batch`, in one transaction, so one wait for the disk
    /// (`synchronous=FULL`) per sweep: batches of 256 waited once each (2,000 sessions due:
    /// 21–29 µs a session, against 12–19 µs in one transaction).
    fn expire_due(&self, now: u64, _batch: usize) -> Result<Vec<(Status, Session)>> {
        self.tx(|tx| {
            let mut expired = Vec::new();
            for id in Self::due_sessions_in(tx, now)? {
                expired.extend(expire_one(now, |change| Self::update_session_in(tx, &id, change))?);
            }
            Ok(expired)
        })
    }

    fn slots_in_use(&self, key_id: &str) -> Result<u32> {
        let conn = self.conn.lock();
        conn.query_row("SELECT COUNT(*) FROM sessions WHERE key_id = ?1 AND live = 1", [key_id], |r| r.get(0))
            .map_err(db)
    }

    fn insert_worker(&self, worker: Worker) -> Result<()> {
        self.tx(|tx| {
            match tx.execute(
                "INSERT INTO workers (node_id, json) VALUES (?1, ?2)",
                params![worker.node_id, to_json(&worker)?],
            ) {
                Err(e) if is_unique_violation(&e) => Err(Error::AlreadyExists { resource: "worker" }),
                other => other.map(drop).map_err(db),
            }
        })
    }

    fn update_worker(&self, node_id: &str, change: &mut dyn FnMut(&Worker) -> Result<Worker>) -> Result<Option<Worker>> {
        self.tx(|tx| {
            let json: Option<String> = tx
                .query_row("SELECT json FROM workers WHERE node_id = ?1", [node_id], |row| row.get(0))
                .optional()
                .map_err(db)?;
            let Some(json) = json else { return Ok(None) };
            let worker = change(&from_json(&json)?)?;
            tx.execute("UPDATE workers SET json = ?2 WHERE node_id = ?1", params![node_id, to_json(&worker)?])
                .map_err(db)?;
            Ok(Some(worker))
        })
    }

    fn workers(&self) -> Result<Vec<WorkerStatus>> {
        let conn = self.conn.lock();
        let load = Self::live_load(&conn)?;
        Ok(Self::all_workers(&conn)?
            .into_iter()
            .map(|worker| {
                let active_sessions = load.get(&worker.node_id).copied().unwrap_or(0);
                WorkerStatus { worker, active_sessions }
            })
            .collect())
    }

    fn insert_user(&self, user: User) -> Result<()> {
        self.tx(|tx| {
            match tx.execute(
                "INSERT INTO users (id, account_id, json) VALUES (?1, ?2, ?3)",
                params![user.id, user.account_id, to_json(&user)?],
            ) {
                Err(e) if is_unique_violation(&e) => Err(Error::AlreadyExists { resource: "user" }),
                other => other.map(drop).map_err(db),
            }
        })
    }

    fn user(&self, id: &str) -> Result<Option<User>> {
        let conn = self.conn.lock();
        let json: Option<String> = conn
            .query_row("SELECT json FROM users WHERE id = ?1", [id], |row| row.get(0))
            .optional()
            .map_err(db)?;
        json.map(|j| from_json(&j)).transpose()
    }

    fn update_user(&self, id: &str, change: &mut dyn FnMut(&mut User) -> Result<()>) -> Result<Option<User>> {
        self.tx(|tx| {
            let json: Option<String> = tx
                .query_row("SELECT json FROM users WHERE id = ?1", [id], |row| row.get(0))
                .optional()
                .map_err(db)?;
            let Some(json) = json else { return Ok(None) };
            let mut user: User = from_json(&json)?;
            change(&mut user)?;
            tx.execute("UPDATE users SET json = ?2 WHERE id = ?1", params![id, to_json(&user)?]).map_err(db)?;
            Ok(Some(user))
        })
    }

    fn delete_user(&self, id: &str) -> Result<Option<User>> {
        self.tx(|tx| {
            let json: Option<String> = tx
                .query_row("SELECT json FROM users WHERE id = ?1", [id], |row| row.get(0))
                .optional()
                .map_err(db)?;
            let Some(json) = json else { return Ok(None) };
            tx.execute("DELETE FROM users WHERE id = ?1", [id]).map_err(db)?;
            from_json(&json).map(Some)
        })
    }

    fn list_users(&self, account: &str, limit: usize) -> Result<Vec<User>> {
        let conn = self.conn.lock();
        Self::json_rows(
            &conn,
            "SELECT json FROM users WHERE account_id = ?1 ORDER BY seq DESC LIMIT ?2",
            params![account, sql_limit(limit)],
        )
    }

    fn count_request(&self, key: &KeyEntry, now: u64) -> Result<()> {
        let total = key.meter.requests.fetch_add(1, Ordering::Relaxed) + 1;
        self.dirty.lock().insert(key.digest);
        if total >= key.meter.next_alert.load(Ordering::Relaxed) {
            let account = String::clone(&key.record.account());
            self.tx(|tx| {
                tx.execute(
                    "INSERT INTO usage (account_id, metric, total) VALUES (?1, ?2, ?3)
                     ON CONFLICT (account_id, metric) DO UPDATE SET total = MAX(total, excluded.total)",
                    params![account, usage::REQUESTS, int(total)],
                )
                .map_err(db)?;
                Self::fire(tx, &account, usage::REQUESTS, total, now)?;
                key.meter.next_alert.store(Self::next_requests_alert(tx, &account)?, Ordering::Relaxed);
                Ok(())
            })?;
        }
        self.write_behind_if_due()
    }

    fn add_usage(&self, account: &str, metric: &str, quantity: u64, idempotency_key: Option<&str>, now: u64) -> Result<(u64, bool)> {
        let meter = self.meter(account);
        self.tx(|tx| {
            let current = |tx: &Transaction<'_>| -> Result<u64> {
                if metric == usage::REQUESTS {
                    return Ok(meter.requests.load(Ordering::Relaxed));
                }
                let total: Option<i64> = tx
                    .query_row(
                        "SELECT total FROM usage WHERE account_id = ?1 AND metric = ?2",
                        params![account, metric],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(db)?;
                Ok(total.unwrap_or(0) as u64)
            };
            if let Some(key) = idempotency_key {
                let inserted = tx
                    .execute(
                        "INSERT OR IGNORE INTO idempotency (account_id, metric, key) VALUES (?1, ?2, ?3)",
                        params![account, metric, key],
                    )
                    .map_err(db)?;
                if inserted == 0 {
                    return Ok((current(tx)?, false));
                }
            }
            let total = if metric == usage::REQUESTS {
                meter.requests.fetch_add(quantity, Ordering::Relaxed).saturating_add(quantity)
            } else {
                current(tx)?.saturating_add(quantity)
            };
            tx.execute(
                "INSERT INTO usage (account_id, metric, total) VALUES (?1, ?2, ?3)
                 ON CONFLICT (account_id, metric) DO UPDATE SET total = excluded.total",
                params![account, metric, int(total)],
            )
            .map_err(db)?;
            Self::fire(tx, account, metric, total, now)?;
            meter.next_alert.store(Self::next_requests_alert(tx, account)?, Ordering::Relaxed);
            Ok((total, true))
        })
    }

    fn usage(&self, account: &str) -> Result<BTreeMap<String, u64>> {
        let meter = self.meter(account);
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached("SELECT metric, total FROM usage WHERE account_id = ?1").map_err(db)?;
        let rows = stmt
            .query_map([account], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64)))
            .map_err(db)?;
        let mut metrics: BTreeMap<String, u64> = rows.collect::<rusqlite::Result<_>>().map_err(db)?;
        metrics.insert(usage::REQUESTS.into(), meter.requests.load(Ordering::Relaxed));
        metrics.entry(usage::SESSION_SECONDS.into()).or_insert(0);
        Ok(metrics)
    }

    fn insert_alert(&self, mut alert: Alert, now: u64) -> Result<Alert> {
        let meter = self.meter(&alert.account_id);
        self.tx(|tx| {
            let total = if alert.metric == usage::REQUESTS {
                meter.requests.load(Ordering::Relaxed)
            } else {
                let total: Option<i64> = tx
                    .query_row(
                        "SELECT total FROM usage WHERE account_id = ?1 AND metric = ?2",
                        params![alert.account_id, alert.metric],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(db)?;
                total.unwrap_or(0) as u64
            };
            if total >= alert.threshold {
                alert.fired_at = Some(now);
            }
            tx.execute(
                "INSERT INTO alerts (id, account_id, metric, threshold, created_at, fired_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    alert.id,
                    alert.account_id,
                    alert.metric,
                    int(alert.threshold),
                    int(alert.created_at),
                    alert.fired_at.map(int)
                ],
            )
            .map_err(db)?;
            meter.next_alert.store(Self::next_requests_alert(tx, &alert.account_id)?, Ordering::Relaxed);
            Ok(alert)
        })
    }

    fn alerts(&self, account: &str) -> Result<Vec<Alert>> {
        let conn = self.conn.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, account_id, metric, threshold, created_at, fired_at FROM alerts WHERE account_id = ?1 ORDER BY seq DESC",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map([account], |row| {
                Ok(Alert {
                    id: row.get(0)?,
                    account_id: row.get(1)?,
                    metric: row.get(2)?,
                    threshold: row.get::<_, i64>(3)? as u64,
                    created_at: row.get::<_, i64>(4)? as u64,
                    fired_at: row.get::<_, Option<i64>>(5)?.map(|t| t as u64),
                })
            })
            .map_err(db)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db)
    }

    fn append_audit(&self, account_id: &str, record: String) -> Result<()> {
        self.write_audit(Some((account_id, &record)))
    }

    /// Held back, up to 10,000 records, and written with the next write-behind, the next record
    /// appended, or the next read of the log, whichever comes first.
    fn append_audit_behind(&self, account_id: &str, record: String) -> Result<()> {
        if self.held_audit.hold(account_id, record) {
            self.write_audit(None)
        } else {
            self.write_behind_if_due()
        }
    }

    fn audit(&self, account: Option<&str>, limit: usize) -> Result<Vec<AuditRecord>> {
        self.write_audit(None)?;
        let conn = self.conn.lock();
        Self::json_rows(
            &conn,
            "SELECT json FROM audit WHERE ?1 IS NULL OR account_id = ?1 ORDER BY seq DESC LIMIT ?2",
            params![account, sql_limit(limit)],
        )
    }
}
