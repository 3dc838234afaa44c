//! The shared store: state in one Redis server, for many processes and machines (feature
//! `redis`).
//!
//! What a caller may rely on:
//!
//! - **Rate limits hold in total.** Every window of a key is taken at once by one Lua script
//!   (the same GCRA arithmetic as [`crate::limits`], in nanoseconds, at the engine's clock), so
//!   N processes sharing a Redis never let a key exceed its limits in total, and a denied
//!   request takes nothing from any window.
//! - **Concurrent-session slots hold in total.** A session is created, and changes state, in
//!   one optimistic transaction (`WATCH`/`MULTI`) together with its key's slot counter, its
//!   worker's load and the expiry index: slots in use = the key's PENDING and ACTIVE sessions.
//!   A session created through one process is read, connected and ended through any other.
//! - **Revocation reaches every process within `key_cache_ms`** (default 1,000 ms): a process
//!   serves a key's record from memory for at most that long before reading it again.
//! - **Failing closed.** When Redis cannot be reached, every call returns `unavailable`
//!   (HTTP 503). With `fail_open: true`, the rate-limit step of `authorize` allows the
//!   requests of keys the process already knows (each such decision counted by
//!   [`RedisStore::fail_open_decisions`] and logged to stderr at most every 10 s); everything
//!   else still fails. Connections are re-established as soon as Redis answers again.
//! - **Leasing** (`lease: {"batch": N}`): a process takes up to N tokens of a key from Redis at
//!   once (one script call, all windows together) and serves them from memory. Tokens a process
//!   holds were already taken in Redis, so in any interval a key is allowed at most its
//!   limit + refill + **P × (N − 1)** requests, P being the number of processes: each process
//!   may start the interval holding at most N − 1 leased tokens. A lease not used within the
//!   shortest window's period is dropped (those tokens are lost), and while processes hold
//!   tokens others may be refused: leasing trades that exactness for an in-memory hot path.
//!   The `remaining` a leased decision reports is this process's estimate.
//! - **Written behind, about a second late:** each process's count of authorized `requests`,
//!   keys' `last_used_at`, and the audit records of denied requests and of expiries, which a
//!   flood of refusals or a sweep writes by the thousand (a round trip each would let one key's
//!   flood of 429s slow every other request). They are kept in memory and written by the first
//!   call a second (or [`RedisStore::with_write_behind`]) or more after the last such write
//!   or flush (an engine that opened the store from its configuration flushes it every
//!   `store.flush_ms` on a thread of its own), before usage or alerts are read, and when the
//!   store is dropped or [`Store::flush`]ed; a process that dies loses what it held. A held
//!   audit record is written before any later record of the same process and before that
//!   process reads the log; one that Redis refused stays held, in order, for the next write.
//! - Durability is the Redis server's own (`appendonly`, snapshots). The audit log keeps the
//!   newest 100,000 records in all and per account.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use redis::{Connection, RedisResult, Script, Value as RedisValue};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::behind::{self, HeldAudit, Schedule};
use super::{AccountMeter, KeyEntry, KeyRef, SessionUpdate, Store};
use crate::audit::AuditRecord;
use crate::config::StoreConfig;
use crate::error::{Error, Result};
use crate::keys::{digests_equal, KeyDigest, KeyRecord};
use crate::limits::{peek_all, take_all, Decision, Window};
use crate::session::{Session, Status};
use crate::usage::{self, Alert};
use crate::users::User;
use crate::workers::{self, Worker, WorkerStatus};

const NANOS_PER_MS: u64 = 1_000_000;
const NANOS_PER_SEC: u64 = 1_000_000_000;
const AUDIT_CAPACITY: isize = 100_000;
const MAX_IDLE: usize = 32;
const TX_ATTEMPTS: usize = 200;

/// Takes `want` tokens (or as many as every window has, at least one) from all windows at once.
/// Arrival times are kept as (seconds, nanoseconds) pairs so that Lua's doubles stay exact.
/// KEYS[1]: the bucket hash. ARGV: now_s, now_ns, n, (interval_ns, tolerance_ns) × n, want, ttl_ms.
/// Returns {granted, ahead_1 … ahead_n}: the arrival times before the take, as ns ahead of now.
const TAKE: &str = r"
local now_s = tonumber(ARGV[1])
local now_ns = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local grant = tonumber(ARGV[4 + 2 * n])
local ttl = ARGV[5 + 2 * n]
local aheads = {}
local intervals = {}
for i = 1, n do
  local interval = tonumber(ARGV[2 + 2 * i])
  local tolerance = tonumber(ARGV[3 + 2 * i])
  local h = tonumber(redis.call('HGET', KEYS[1], 'h' .. i) or '0')
  local l = tonumber(redis.call('HGET', KEYS[1], 'l' .. i) or '0')
  local ahead = (h - now_s) * 1e9 + (l - now_ns)
  if ahead < 0 then ahead = 0 end
  aheads[i] = ahead
  intervals[i] = interval
  local room = tolerance - ahead
  local free = math.floor(room / interval)
  if free * interval > room then free = free - 1 end
  if free < grant then grant = free end
end
if grant < 1 then
  grant = 0
else
  for i = 1, n do
    local t = now_ns + aheads[i] + grant * intervals[i]
    local hi = math.floor(t / 1e9)
    local lo = t - hi * 1e9
    if lo < 0 then hi = hi - 1; lo = lo + 1e9 end
    if lo >= 1e9 then hi = hi + 1; lo = lo - 1e9 end
    redis.call('HSET', KEYS[1], 'h' .. i, string.format('%.0f', now_s + hi), 'l' .. i, string.format('%.0f', lo))
  end
  redis.call('PEXPIRE', KEYS[1], ttl)
end
local out = {grant}
for i = 1, n do out[i + 1] = aheads[i] end
return out
";

/// Gives one token back to every window. Same KEYS and ARGV as TAKE, without want and ttl.
const REFUND: &str = r"
local now_s = tonumber(ARGV[1])
local now_ns = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
for i = 1, n do
  local interval = tonumber(ARGV[2 + 2 * i])
  local h = tonumber(redis.call('HGET', KEYS[1], 'h' .. i) or '0')
  local l = tonumber(redis.call('HGET', KEYS[1], 'l' .. i) or '0')
  local ahead = (h - now_s) * 1e9 + (l - now_ns)
  if ahead > 0 then
    ahead = ahead - interval
    if ahead < 0 then ahead = 0 end
    local t = now_ns + ahead
    local hi = math.floor(t / 1e9)
    local lo = t - hi * 1e9
    if lo < 0 then hi = hi - 1; lo = lo + 1e9 end
    if lo >= 1e9 then hi = hi + 1; lo = lo - 1e9 end
    redis.call('HSET', KEYS[1], 'h' .. i, string.format('%.0f', now_s + hi), 'l' .. i, string.format('%.0f', lo))
  end
end
return 1
";

/// Inserts a record under KEYS[1] unless it or KEYS[2] exists, and appends ARGV[3] to the
/// lists KEYS[3..]. ARGV: json, secondary value ('' for none), list member.
const INSERT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if KEYS[2] ~= KEYS[1] and redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
if KEYS[2] ~= KEYS[1] then redis.call('SET', KEYS[2], ARGV[2]) end
for i = 3, #KEYS do redis.call('RPUSH', KEYS[i], ARGV[3]) end
return 1
";

/// Adds to a metric once per idempotency member and fires the alerts it reaches.
/// KEYS: usage hash, idempotency set, pending alerts zset, fired hash.
/// ARGV: metric, quantity, idempotency member ('' for none), now. Returns {total, counted}.
const ADD_USAGE: &str = r"
if ARGV[3] ~= '' and redis.call('SADD', KEYS[2], ARGV[3]) == 0 then
  return {tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0'), 0}
end
local total = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', string.format('%.0f', total))
for _, id in ipairs(due) do
  redis.call('HSET', KEYS[4], id, ARGV[4])
  redis.call('ZREM', KEYS[3], id)
end
return {total, 1}
";

/// Adds an alert, fired at once when the total already reaches it.
/// KEYS: usage hash, pending zset, fired hash, alerts list, alerts hash.
/// ARGV: metric, threshold, id, json, now. Returns 1 when fired.
const INSERT_ALERT: &str = r"
local total = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local fired = 0
if total >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[3], ARGV[3], ARGV[5])
  fired = 1
else
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
end
redis.call('RPUSH', KEYS[4], ARGV[3])
redis.call('HSET', KEYS[5], ARGV[3], ARGV[4])
return fired
";

fn unavailable(error: redis::RedisError) -> Error {
    Error::Unavailable(format!("redis: {error}"))
}

fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Internal(format!("cannot encode a record: {e}")))
}

fn from_json<T: DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::Internal(format!("a stored record is unreadable: {e}")))
}

fn hex(digest: &KeyDigest) -> String {
    let mut out = String::with_capacity(64);
    for byte in digest {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

fn unhex(text: &str) -> Option<KeyDigest> {
    let mut digest = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(digest)
}

/// The LRANGE bounds of the newest `limit` members of a list.
fn newest(limit: usize) -> isize {
    if limit >= isize::MAX as usize / 2 {
        0
    } else {
        -(limit as isize)
    }
}

/// A small pool of connections: a connection that fails is dropped, with every idle one, so
/// the next call connects afresh (that is how the store recovers when Redis comes back).
struct Pool {
    client: redis::Client,
    idle: Mutex<Vec<Connection>>,
    timeout: Duration,
}

impl Pool {
    fn connect(&self) -> RedisResult<Connection> {
        let con = self.client.get_connection_with_timeout(self.timeout)?;
        con.set_read_timeout(Some(self.timeout))?;
        con.set_write_timeout(Some(self.timeout))?;
        Ok(con)
    }

    fn run<T>(&self, mut f: impl FnMut(&mut Connection) -> Result<T>) -> Result<T> {
        let pooled = self.idle.lock().pop();
        let from_pool = pooled.is_some();
        let mut con = match pooled {
            Some(con) => con,
            None => self.connect().map_err(unavailable)?,
        };
        match f(&mut con) {
            Ok(value) => {
                let mut idle = self.idle.lock();
                if idle.len() < MAX_IDLE {
                    idle.push(con);
                }
                Ok(value)
            }
            Err(Error::Unavailable(message)) => {
                drop(con);
                self.idle.lock().clear();
                // A pooled connection may have died with a server that has since come back
                // (its commands never reached the new server): try once on a fresh one.
                if from_pool {
                    let mut con = self.connect().map_err(unavailable)?;
                    let value = f(&mut con)?;
                    self.idle.lock().push(con);
                    return Ok(value);
                }
                Err(Error::Unavailable(message))
            }
            Err(other) => {
                self.idle.lock().push(con);
                Err(other)
            }
        }
    }
}

#[derive(Debug, Default)]
struct Lease {
    /// Tokens leased and not yet served.
    left: u32,
    /// Engine time at which the lease is dropped.
    until: u64,
    /// Arrival times as this process last saw them, leased tokens taken.
    tats: [u64; 2],
}

struct Cached {
    entry: KeyRef,
    fetched: Mutex<Instant>,
    lease: Mutex<Lease>,
}

/// Keeps state in Redis, shared by every process that names the same server and prefix; see
/// the module documentation for its guarantees.
pub struct RedisStore {
    pool: Pool,
    prefix: String,
    key_cache: Duration,
    fail_open: bool,
    lease_batch: Option<u32>,
    cache: RwLock<HashMap<KeyDigest, Arc<Cached>>>,
    ids: RwLock<HashMap<String, KeyDigest>>,
    meters: RwLock<HashMap<String, Arc<AccountMeter>>>,
    dirty: Mutex<HashSet<KeyDigest>>,
    started: Instant,
    /// When held writes fall due: [`RedisStore::with_write_behind`].
    write_behind: Schedule,
    /// Audit records written behind.
    held_audit: HeldAudit,
    /// Keeps audit records in order: held ones are written under its write lock, others
    /// under its read lock, so that none passes a held one on its way.
    audit_order: RwLock<()>,
    fail_open_decisions: AtomicU64,
    warned_at: AtomicU64,
    take: Script,
    refund: Script,
    insert: Script,
    add_usage: Script,
    insert_alert: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Opens a store on the configuration's Redis server. Nothing is sent until the first call,
    /// so an engine can start while Redis is down (its calls are then `unavailable`).
    pub fn open(config: &StoreConfig) -> Result<Self> {
        let url = config.url.as_deref().ok_or_else(|| Error::config("store.url", "a redis store needs a url"))?;
        let client = redis::Client::open(url).map_err(|e| Error::config("store.url", e.to_string()))?;
        Ok(RedisStore {
            pool: Pool { client, idle: Mutex::default(), timeout: Duration::from_secs(2) },
            prefix: config.prefix().to_owned(),
            key_cache: Duration::from_millis(config.key_cache_ms()),
            fail_open: config.fail_open.unwrap_or(false),
            lease_batch: config.lease.map(|l| l.batch),
            cache: RwLock::default(),
            ids: RwLock::default(),
            meters: RwLock::default(),
            dirty: Mutex::default(),
            started: Instant::now(),
            write_behind: Schedule::new(behind::EVERY),
            held_audit: HeldAudit::default(),
            audit_order: RwLock::new(()),
            fail_open_decisions: AtomicU64::new(0),
            warned_at: AtomicU64::new(0),
            take: Script::new(TAKE),
            refund: Script::new(REFUND),
            insert: Script::new(INSERT),
            add_usage: Script::new(ADD_USAGE),
            insert_alert: Script::new(INSERT_ALERT),
        })
    }

    /// Sets how long a write held behind may wait for the next call to write it (one second
    /// by default; see the module documentation). Longer means fewer round trips under a
    /// flood of denials, and more lost if the process dies.
    pub fn with_write_behind(mut self, every: Duration) -> Self {
        self.write_behind = Schedule::new(every);
        self
    }

    /// Authorizations let through by `fail_open` while Redis was unreachable.
    pub fn fail_open_decisions(&self) -> u64 {
        self.fail_open_decisions.load(Ordering::Relaxed)
    }

    /// Whether Redis answers a `PING` now.
    pub fn ping(&self) -> Result<()> {
        self.run(|con| redis::cmd("PING").query::<String>(con).map(drop))
    }

    fn name(&self, parts: std::fmt::Arguments<'_>) -> String {
        let mut name = self.prefix.clone();
        let _ = name.write_fmt(parts);
        name
    }

    fn run<T>(&self, mut f: impl FnMut(&mut Connection) -> RedisResult<T>) -> Result<T> {
        self.pool.run(|con| f(con).map_err(unavailable))
    }

    fn meter(&self, account: &str) -> Arc<AccountMeter> {
        if let Some(meter) = self.meters.read().get(account) {
            return meter.clone();
        }
        self.meters.write().entry(account.to_owned()).or_default().clone()
    }

    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn add(&self, account: &str, metric: &str, quantity: u64, idempotency_key: Option<&str>, now: u64) -> Result<(u64, bool)> {
        let keys = [
            self.name(format_args!("usage:{account}")),
            self.name(format_args!("idem:{account}")),
            self.name(format_args!("pending:{account}:{metric}")),
            self.name(format_args!("fired:{account}")),
        ];
        let member = idempotency_key.map_or_else(String::new, |key| format!("{metric}\u{0}{key}"));
        let (total, counted): (i64, i64) = self.run(|con| {
            let mut invocation = self.add_usage.prepare_invoke();
            for key in &keys {
                invocation.key(key);
            }
            invocation.arg(metric).arg(quantity).arg(&member).arg(now).invoke(con)
        })?;
        Ok((total.max(0) as u64, counted == 1))
    }

    // ---- keys ----

    fn fetch_key(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>> {
        let Some(mut record) = self.get_json::<KeyRecord>(&self.name(format_args!("key:{}", hex(digest))))? else {
            return Ok(None);
        };
        let used_name = self.name(format_args!("lastused"));
        let used: Option<u64> = self.run(|con| redis::cmd("HGET").arg(&used_name).arg(&record.id).query(con))?;
        record.last_used_at = record.last_used_at.max(used);
        Ok(Some(record))
    }

    fn cached(&self, digest: &KeyDigest) -> Option<Arc<Cached>> {
        self.cache.read().get(digest).cloned()
    }

    fn remember(&self, digest: KeyDigest, record: KeyRecord) -> KeyRef {
        if let Some(cached) = self.cached(&digest) {
            let last_used = record.last_used_at;
            let mut stored = record;
            stored.last_used_at = None;
            *cached.entry.record.write() = stored;
            if let Some(at) = last_used {
                cached.entry.touch(at);
            }
            *cached.fetched.lock() = Instant::now();
            return cached.entry.clone();
        }
        let id = record.id.clone();
        let meter = self.meter(&record.account_id);
        let entry = KeyRef::new(KeyEntry::new(digest, record, meter));
        let cached = Arc::new(Cached { entry: entry.clone(), fetched: Mutex::new(Instant::now()), lease: Mutex::default() });
        let mut cache = self.cache.write();
        let winner = cache.entry(digest).or_insert(cached).entry.clone();
        drop(cache);
        self.ids.write().insert(id, digest);
        winner
    }

    fn key_names(&self, digest: &KeyDigest, record: &KeyRecord) -> [String; 4] {
        [
            self.name(format_args!("key:{}", hex(digest))),
            self.name(format_args!("keyid:{}", record.id)),
            self.name(format_args!("keys")),
            self.name(format_args!("keys:{}", record.account_id)),
        ]
    }

    // ---- rate limits ----

    fn bucket_name(&self, key: &KeyEntry) -> String {
        key.record.with_ids(|id, _| self.name(format_args!("rl:{id}")))
    }

    fn script_args(invocation: &mut redis::ScriptInvocation<'_>, windows: &[Window; 2], now: u64) {
        let now_ns = now.saturating_mul(NANOS_PER_MS);
        invocation.arg(now_ns / NANOS_PER_SEC).arg(now_ns % NANOS_PER_SEC).arg(windows.len());
        for window in windows {
            let interval = interval_ns(window);
            invocation.arg(interval).arg(interval * u64::from(window.limit()));
        }
    }

    /// Takes up to `want` tokens from every window at once; returns how many and the arrival
    /// times before the take.
    fn take_remote(&self, key: &KeyEntry, windows: &[Window; 2], now: u64, want: u32) -> Result<(u32, [u64; 2])> {
        let bucket = self.bucket_name(key);
        let ttl = windows.iter().map(Window::period_ms).max().unwrap_or(0) + 1000;
        let out: Vec<i64> = self.run(|con| {
            let mut invocation = self.take.key(&bucket);
            Self::script_args(&mut invocation, windows, now);
            invocation.arg(want).arg(ttl).invoke(con)
        })?;
        let now_ns = now.saturating_mul(NANOS_PER_MS);
        let ahead = |i: usize| out.get(i).copied().unwrap_or(0).max(0) as u64;
        Ok((ahead(0) as u32, [now_ns + ahead(1), now_ns + ahead(2)]))
    }

    fn fail_open_decision(&self, windows: &[Window; 2], error: &Error) -> Decision {
        self.fail_open_decisions.fetch_add(1, Ordering::Relaxed);
        let elapsed = self.elapsed_ms();
        let warned = self.warned_at.load(Ordering::Relaxed);
        if (warned == 0 || elapsed >= warned + 10_000)
            && self.warned_at.compare_exchange(warned, elapsed.max(1), Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            eprintln!("astack: {error}; fail_open is set, so rate limits are not enforced");
        }
        Decision { allowed: true, window: 0, limit: windows[0].limit(), remaining: 0, reset: 0, retry_after: 0 }
    }

    fn leased_decision(windows: &[Window; 2], lease: &Lease, now: u64) -> Decision {
        let mut decision = peek_all(windows, &lease.tats, now);
        decision.allowed = true;
        decision.retry_after = 0;
        decision.remaining = decision.remaining.saturating_add(lease.left).min(decision.limit);
        decision
    }

    fn take_leased(&self, key: &KeyEntry, windows: &[Window; 2], now: u64, batch: u32) -> Result<Decision> {
        let Some(cached) = self.cached(&key.digest) else {
            return self.take_exact(key, windows, now);
        };
        let mut lease = cached.lease.lock();
        if lease.left > 0 && now < lease.until {
            lease.left -= 1;
            return Ok(Self::leased_decision(windows, &lease, now));
        }
        let (granted, mut tats) = self.take_remote(key, windows, now, batch)?;
        if granted == 0 {
            *lease = Lease::default();
            return Ok(peek_all(windows, &tats, now));
        }
        for _ in 0..granted {
            take_all(windows, &mut tats, now);
        }
        let shortest = windows.iter().map(Window::period_ms).min().unwrap_or(0);
        *lease = Lease { left: granted - 1, until: now + shortest, tats };
        Ok(Self::leased_decision(windows, &lease, now))
    }

    fn take_exact(&self, key: &KeyEntry, windows: &[Window; 2], now: u64) -> Result<Decision> {
        let (granted, mut tats) = self.take_remote(key, windows, now, 1)?;
        Ok(if granted == 0 { peek_all(windows, &tats, now) } else { take_all(windows, &mut tats, now) })
    }

    // ---- sessions ----

    fn session_name(&self, id: &str) -> String {
        self.name(format_args!("sess:{id}"))
    }

    fn get_json<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        let json: Option<String> = self.run(|con| redis::cmd("GET").arg(name).query(con))?;
        json.map(|j| from_json(&j)).transpose()
    }

    /// The newest `limit` records whose ids are in `list`, read from `record_name(id)`.
    fn newest_records<T: DeserializeOwned>(&self, list: &str, limit: usize, record_name: impl Fn(&str) -> String) -> Result<Vec<T>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = self.run(|con| redis::cmd("LRANGE").arg(list).arg(newest(limit)).arg(-1).query(con))?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<String> = ids.iter().rev().map(|id| record_name(id)).collect();
        let values: Vec<Option<String>> = self.run(|con| redis::cmd("MGET").arg(&names).query(con))?;
        values.into_iter().flatten().take(limit).map(|j| from_json(&j)).collect()
    }

    /// Adds to `pipe` the reads of the workers and their loads, answered as
    /// `(order, workers, load)`: ids in registration order, each worker's JSON by id, and each
    /// worker's live sessions. Read with [`RedisStore::ordered_workers`].
    fn read_workers<'p>(&self, pipe: &'p mut redis::Pipeline) -> &'p mut redis::Pipeline {
        pipe.cmd("LRANGE").arg(self.name(format_args!("workers:order"))).arg(0).arg(-1);
        pipe.cmd("HGETALL").arg(self.name(format_args!("workers")));
        pipe.cmd("HGETALL").arg(self.name(format_args!("load")))
    }

    /// The workers of [`RedisStore::read_workers`]'s answer, in registration order.
    fn ordered_workers(order: &[String], by_id: &HashMap<String, String>) -> Vec<Worker> {
        order.iter().filter_map(|id| by_id.get(id)).filter_map(|json| serde_json::from_str(json).ok()).collect()
    }

    /// Adds the bookkeeping of a session's liveness to `pipe`: +1 (hold) or −1 (release).
    fn liveness(&self, pipe: &mut redis::Pipeline, session: &Session, hold: bool) {
        let delta: i64 = if hold { 1 } else { -1 };
        pipe.cmd("INCRBY").arg(self.name(format_args!("slots:{}", session.key_id))).arg(delta).ignore();
        pipe.cmd("HINCRBY").arg(self.name(format_args!("load"))).arg(&session.node_id).arg(delta).ignore();
        let expiry = self.name(format_args!("expiry"));
        if hold {
            pipe.cmd("ZADD").arg(&expiry).arg(session.expires_at).arg(&session.id).ignore();
        } else {
            pipe.cmd("ZREM").arg(&expiry).arg(&session.id).ignore();
        }
    }

    /// Expires those of the sessions `ids` (taken from the expiry index) that are due at `now`
    /// and live, in one optimistic transaction; returns them as they are now, each with the
    /// status it had. An id the index holds wrongly (its session gone, ended, or expiring
    /// later) is corrected in the same transaction, so that no entry comes back batch after
    /// batch.
    fn expire_sessions(&self, ids: &[String], now: u64) -> Result<Vec<(Status, Session)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let expiry = self.name(format_args!("expiry"));
        let names: Vec<String> = ids.iter().map(|id| self.session_name(id)).collect();
        self.optimistic(&names, |con| {
            let stored: Vec<Option<String>> = redis::cmd("MGET").arg(&names).query(con).map_err(unavailable)?;
            // Each id is written: expired, or its index entry corrected.
            let mut pipe = redis::pipe();
            let mut expired = Vec::new();
            for ((id, name), json) in ids.iter().zip(&names).zip(stored) {
                match json.map(|json| from_json::<Session>(&json)).transpose()? {
                    Some(mut session) if session.is_live() => {
                        let before = session.status;
                        if session.expire_if_due(now) {
                            pipe.cmd("SET").arg(name).arg(to_json(&session)?).ignore();
                            self.liveness(&mut pipe, &session, false);
                            expired.push((before, session));
                        } else {
                            pipe.cmd("ZADD").arg(&expiry).arg(session.expires_at).arg(id).ignore();
                        }
                    }
                    _ => {
                        pipe.cmd("ZREM").arg(&expiry).arg(id).ignore();
                    }
                }
            }
            Ok(Ok((expired, pipe)))
        })
    }

    /// Runs an optimistic transaction: `attempt` is called after `WATCH keys` and returns
    /// either a final value (nothing to write) or a value with the pipeline to execute
    /// atomically; a conflicting write elsewhere runs it again.
    fn optimistic<T>(
        &self,
        keys: &[String],
        mut attempt: impl FnMut(&mut Connection) -> Result<std::result::Result<(T, redis::Pipeline), T>>,
    ) -> Result<T> {
        for _ in 0..TX_ATTEMPTS {
            let outcome = self.pool.run(|con| {
                redis::cmd("WATCH").arg(keys).query::<()>(con).map_err(unavailable)?;
                match attempt(con) {
                    Ok(Ok((value, mut pipe))) => {
                        let done: Option<RedisValue> = pipe.atomic().query(con).map_err(unavailable)?;
                        Ok(done.map(|_| value))
                    }
                    Ok(Err(value)) => {
                        redis::cmd("UNWATCH").query::<()>(con).map_err(unavailable)?;
                        Ok(Some(value))
                    }
                    Err(error) => {
                        let _ = redis::cmd("UNWATCH").query::<()>(con);
                        Err(error)
                    }
                }
            })?;
            if let Some(value) = outcome {
                return Ok(value);
            }
        }
        Err(Error::Unavailable("redis: too many conflicting writes, try again".into()))
    }

    /// [`Store::flush`]es when the last write-behind is [`RedisStore::with_write_behind`] old
    /// (one caller does).
    fn write_behind_if_due(&self) -> Result<()> {
        if self.write_behind.claim() {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the held audit records, then `record` if any, in order.
    fn write_audit(&self, record: Option<(&str, &str)>) -> Result<()> {
        let _order = self.audit_order.write();
        self.held_audit.write_out(record, |records| self.push_audit(records))
    }

    /// Pushes audit records (account, JSON), oldest first, onto the log of all and their
    /// accounts' logs, in one atomic pipeline, each log trimmed to its newest 100,000.
    fn push_audit(&self, records: &mut dyn Iterator<Item = (&str, &str)>) -> Result<()> {
        let all = self.name(format_args!("audit"));
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut push = |list: &str, json: &str| {
            pipe.cmd("LPUSH").arg(list).arg(json).ignore();
            pipe.cmd("LTRIM").arg(list).arg(0).arg(AUDIT_CAPACITY - 1).ignore();
        };
        for (account_id, json) in records {
            push(&all, json);
            push(&self.name(format_args!("audit:{account_id}")), json);
        }
        self.run(|con| pipe.query::<()>(con))
    }

    fn insert_record(&self, keys: &[String], json: &str, secondary: &str, member: &str, resource: &'static str) -> Result<()> {
        let inserted: i64 = self.run(|con| {
            let mut invocation = self.insert.prepare_invoke();
            for key in keys {
                invocation.key(key);
            }
            invocation.arg(json).arg(secondary).arg(member).invoke(con)
        })?;
        if inserted == 1 {
            Ok(())
        } else {
            Err(Error::AlreadyExists { resource })
        }
    }
}

fn interval_ns(window: &Window) -> u64 {
    (window.period_ms() * NANOS_PER_MS).div_ceil(u64::from(window.limit()))
}

fn int_or_zero(value: Option<String>) -> u64 {
    value.and_then(|v| v.parse::<i64>().ok()).map_or(0, |v| v.max(0) as u64)
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl Store for RedisStore {
    /// Writes the held audit records, this process's counts of authorized requests and the
    /// keys' `last_used_at`.
    fn flush(&self) -> Result<()> {
        self.write_behind.wrote();
        self.write_audit(None)?;
        let meters: Vec<(String, Arc<AccountMeter>)> =
            self.meters.read().iter().map(|(a, m)| (a.clone(), m.clone())).collect();
        for (account, meter) in meters {
            let delta = meter.requests.swap(0, Ordering::Relaxed);
            if delta == 0 {
                continue;
            }
            if let Err(error) = self.add(&account, usage::REQUESTS, delta, None, 0) {
                meter.requests.fetch_add(delta, Ordering::Relaxed);
                return Err(error);
            }
        }
        let dirty: Vec<KeyDigest> = self.dirty.lock().drain().collect();
        let used: Vec<(String, u64)> = {
            let cache = self.cache.read();
            dirty
                .iter()
                .filter_map(|d| cache.get(d))
                .filter_map(|c| {
                    let record = c.entry.snapshot();
                    Some((record.id, record.last_used_at?))
                })
                .collect()
        };
        if !used.is_empty() {
            let name = self.name(format_args!("lastused"));
            let result = self.run(|con| {
                let mut cmd = redis::cmd("HSET");
                cmd.arg(&name);
                for (id, at) in &used {
                    cmd.arg(id).arg(at);
                }
                cmd.query::<()>(con)
            });
            if result.is_err() {
                self.dirty.lock().extend(dirty);
            }
            result?;
        }
        Ok(())
    }

    fn insert_key(&self, digest: KeyDigest, record: KeyRecord) -> Result<()> {
        let names = self.key_names(&digest, &record);
        self.insert_record(&names, &to_json(&record)?, &hex(&digest), &record.id, "key")?;
        self.remember(digest, record);
        Ok(())
    }

    fn key_by_digest(&self, digest: &KeyDigest) -> Result<Option<KeyRef>> {
        let cached = self.cached(digest);
        if let Some(cached) = &cached {
            if cached.fetched.lock().elapsed() < self.key_cache {
                return Ok(Some(cached.entry.clone()).filter(|e| digests_equal(&e.digest, digest)));
            }
        }
        match self.fetch_key(digest) {
            Ok(Some(record)) => Ok(Some(self.remember(*digest, record))),
            Ok(None) => {
                if cached.is_some() {
                    self.cache.write().remove(digest);
                }
                Ok(None)
            }
            Err(error) => match cached {
                Some(cached) if self.fail_open => Ok(Some(cached.entry.clone())),
                _ => Err(error),
            },
        }
    }

    fn key(&self, id: &str) -> Result<Option<KeyRef>> {
        let known = self.ids.read().get(id).copied();
        let digest = match known {
            Some(digest) => digest,
            None => {
                let name = self.name(format_args!("keyid:{id}"));
                let text: Option<String> = self.run(|con| redis::cmd("GET").arg(&name).query(con))?;
                match text.as_deref().and_then(unhex) {
                    Some(digest) => digest,
                    None => return Ok(None),
                }
            }
        };
        self.key_by_digest(&digest)
    }

    fn update_key(&self, id: &str, change: &mut dyn FnMut(&mut KeyRecord)) -> Result<Option<KeyRecord>> {
        let Some(entry) = self.key(id)? else { return Ok(None) };
        let name = self.name(format_args!("key:{}", hex(&entry.digest)));
        let record = self.optimistic(std::slice::from_ref(&name), |con| {
            let json: Option<String> = redis::cmd("GET").arg(&name).query(con).map_err(unavailable)?;
            let Some(json) = json else { return Ok(Err(None)) };
            let mut record: KeyRecord = from_json(&json)?;
            change(&mut record);
            let mut pipe = redis::pipe();
            pipe.cmd("SET").arg(&name).arg(to_json(&record)?).ignore();
            Ok(Ok((Some(record), pipe)))
        })?;
        let Some(record) = record else { return Ok(None) };
        self.remember(entry.digest, record);
        Ok(Some(entry.snapshot()))
    }

    fn list_keys(&self, account: Option<&str>, limit: usize) -> Result<Vec<KeyRecord>> {
        let list = match account {
            Some(account) => self.name(format_args!("keys:{account}")),
            None => self.name(format_args!("keys")),
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = self.run(|con| redis::cmd("LRANGE").arg(&list).arg(newest(limit)).arg(-1).query(con))?;
        let mut records = Vec::with_capacity(ids.len());
        for id in ids.iter().rev() {
            if let Some(entry) = self.key(id)? {
                records.push(entry.snapshot());
            }
        }
        Ok(records)
    }

    fn take(&self, key: &KeyEntry, windows: &[Window; 2], now: u64) -> Result<Decision> {
        let result = match self.lease_batch {
            Some(batch) if batch > 1 => self.take_leased(key, windows, now, batch),
            _ => self.take_exact(key, windows, now),
        };
        match result {
            Err(error @ Error::Unavailable(_)) if self.fail_open => Ok(self.fail_open_decision(windows, &error)),
            other => other,
        }
    }

    fn peek(&self, key: &KeyEntry, windows: &[Window; 2], now: u64) -> Result<Decision> {
        let bucket = self.bucket_name(key);
        let fields: Vec<Option<String>> =
            self.run(|con| redis::cmd("HMGET").arg(&bucket).arg(&["h1", "l1", "h2", "l2"]).query(con))?;
        let mut fields = fields.into_iter().map(int_or_zero);
        let mut tats = [0u64; 2];
        for tat in &mut tats {
            let (seconds, nanos) = (fields.next().unwrap_or(0), fields.next().unwrap_or(0));
            *tat = seconds.saturating_mul(NANOS_PER_SEC).saturating_add(nanos);
        }
        Ok(peek_all(windows, &tats, now))
    }

    fn refund(&self, key: &KeyEntry, windows: &[Window; 2], now: u64) -> Result<()> {
        if self.lease_batch.is_some_and(|b| b > 1) {
            if let Some(cached) = self.cached(&key.digest) {
                let mut lease = cached.lease.lock();
                if now < lease.until {
                    lease.left += 1;
                    return Ok(());
                }
            }
        }
        let bucket = self.bucket_name(key);
        self.run(|con| {
            let mut invocation = self.refund.key(&bucket);
            Self::script_args(&mut invocation, windows, now);
            invocation.invoke::<i64>(con)
        })?;
        Ok(())
    }

    fn create_session(&self, mut session: Session, slot_limit: u32, default_worker: &Worker) -> Result<Session> {
        let slots = self.name(format_args!("slots:{}", session.key_id));
        let watched = [slots.clone(), self.name(format_args!("workers")), self.name(format_args!("load"))];
        let name = self.session_name(&session.id);
        let all = self.name(format_args!("sessions"));
        let by_account = self.name(format_args!("sessions:{}", session.account_id));
        self.optimistic(&watched, |con| {
            // The key's slots, the workers and their loads: one round trip.
            type Read = (Option<i64>, Vec<String>, HashMap<String, String>, HashMap<String, i64>);
            let (used, order, by_id, load): Read =
                self.read_workers(redis::pipe().cmd("GET").arg(&slots)).query(con).map_err(unavailable)?;
            if used.unwrap_or(0) >= i64::from(slot_limit) {
                return Err(Error::ConcurrentSessionLimit { limit: slot_limit });
            }
            let workers = Self::ordered_workers(&order, &by_id);
            let worker = workers::place(&workers, default_worker, |node| {
                load.get(node).copied().unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32
            })?;
            session.node_id.clone_from(&worker.node_id);
            session.worker_url.clone_from(&worker.url);
            let mut pipe = redis::pipe();
            pipe.cmd("SET").arg(&name).arg(to_json(&session)?).ignore();
            pipe.cmd("RPUSH").arg(&all).arg(&session.id).ignore();
            pipe.cmd("RPUSH").arg(&by_account).arg(&session.id).ignore();
            self.liveness(&mut pipe, &session, true);
            Ok(Ok((session.clone(), pipe)))
        })
    }

    fn session(&self, id: &str) -> Result<Option<Session>> {
        self.get_json(&self.session_name(id))
    }

    fn update_session(&self, id: &str, change: SessionUpdate<'_>) -> Result<Option<Session>> {
        let name = self.session_name(id);
        self.optimistic(std::slice::from_ref(&name), |con| {
            let json: Option<String> = redis::cmd("GET").arg(&name).query(con).map_err(unavailable)?;
            let Some(json) = json else { return Ok(Err(None)) };
            let before: Session = from_json(&json)?;
            let mut updated = before.clone();
            change(&mut updated)?;
            let mut pipe = redis::pipe();
            pipe.cmd("SET").arg(&name).arg(to_json(&updated)?).ignore();
            if before.is_live() {
                self.liveness(&mut pipe, &before, false);
            }
            if updated.is_live() {
                self.liveness(&mut pipe, &updated, true);
            }
            Ok(Ok((Some(updated), pipe)))
        })
    }

    fn list_sessions(&self, account: Option<&str>, limit: usize) -> Result<Vec<Session>> {
        let list = match account {
            Some(account) => self.name(format_args!("sessions:{account}")),
            None => self.name(format_args!("sessions")),
        };
        self.newest_records(&list, limit, |id| self.session_name(id))
    }

    fn due_sessions(&self, now: u64) -> Result<Vec<String>> {
        let expiry = self.name(format_args!("expiry"));
        self.run(|con| redis::cmd("ZRANGEBYSCORE").arg(&expiry).arg("-inf").arg(now).query(con))
    }

    /// Expires the due sessions `batch` at a time, each batch in one optimistic transaction
    /// (its sessions read at once, then written at once): a few round trips a batch, not a
    /// few a session.
    fn expire_due(&self, now: u64, batch: usize) -> Result<Vec<(Status, Session)>> {
        let expiry = self.name(format_args!("expiry"));
        let batch = batch.max(1);
        let mut expired = Vec::new();
        loop {
            let due: Vec<String> = self.run(|con| {
                redis::cmd("ZRANGEBYSCORE").arg(&expiry).arg("-inf").arg(now).arg("LIMIT").arg(0).arg(batch).query(con)
            })?;
            expired.extend(self.expire_sessions(&due, now)?);
            // Fewer due than a batch: none is left. A full batch, of which other processes
            // expired some: look again, so that a short answer still means none is left.
            if due.len() < batch || expired.len() >= batch {
                return Ok(expired);
            }
        }
    }

    fn slots_in_use(&self, key_id: &str) -> Result<u32> {
        let name = self.name(format_args!("slots:{key_id}"));
        let used: Option<i64> = self.run(|con| redis::cmd("GET").arg(&name).query(con))?;
        Ok(used.unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32)
    }

    fn insert_worker(&self, worker: Worker) -> Result<()> {
        let workers = self.name(format_args!("workers"));
        let order = self.name(format_args!("workers:order"));
        let json = to_json(&worker)?;
        let added: i64 = self.run(|con| {
            redis::Script::new(
                "if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
                 redis.call('RPUSH', KEYS[2], ARGV[1]) return 1",
            )
            .key(&workers)
            .key(&order)
            .arg(&worker.node_id)
            .arg(&json)
            .invoke(con)
        })?;
        if added == 1 {
            Ok(())
        } else {
            Err(Error::AlreadyExists { resource: "worker" })
        }
    }

    fn update_worker(&self, node_id: &str, change: &mut dyn FnMut(&Worker) -> Result<Worker>) -> Result<Option<Worker>> {
        let workers = self.name(format_args!("workers"));
        self.optimistic(std::slice::from_ref(&workers), |con| {
            let json: Option<String> = redis::cmd("HGET").arg(&workers).arg(node_id).query(con).map_err(unavailable)?;
            let Some(json) = json else { return Ok(Err(None)) };
            let worker = change(&from_json(&json)?)?;
            let mut pipe = redis::pipe();
            pipe.cmd("HSET").arg(&workers).arg(node_id).arg(to_json(&worker)?).ignore();
            Ok(Ok((Some(worker), pipe)))
        })
    }

    fn workers(&self) -> Result<Vec<WorkerStatus>> {
        let (order, by_id, load): (Vec<String>, HashMap<String, String>, HashMap<String, i64>) =
            self.run(|con| self.read_workers(&mut redis::pipe()).query(con))?;
        Ok(Self::ordered_workers(&order, &by_id)
            .into_iter()
            .map(|worker| {
                let active = load.get(&worker.node_id).copied().unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32;
                WorkerStatus { worker, active_sessions: active }
            })
            .collect())
    }

    fn insert_user(&self, user: User) -> Result<()> {
        let name = self.name(format_args!("user:{}", user.id));
        let list = self.name(format_args!("users:{}", user.account_id));
        self.insert_record(&[name.clone(), name, list], &to_json(&user)?, "", &user.id, "user")
    }

    fn user(&self, id: &str) -> Result<Option<User>> {
        self.get_json(&self.name(format_args!("user:{id}")))
    }

    fn update_user(&self, id: &str, change: &mut dyn FnMut(&mut User) -> Result<()>) -> Result<Option<User>> {
        let name = self.name(format_args!("user:{id}"));
        self.optimistic(std::slice::from_ref(&name), |con| {
            let json: Option<String> = redis::cmd("GET").arg(&name).query(con).map_err(unavailable)?;
            let Some(json) = json else { return Ok(Err(None)) };
            let mut user: User = from_json(&json)?;
            change(&mut user)?;
            let mut pipe = redis::pipe();
            pipe.cmd("SET").arg(&name).arg(to_json(&user)?).ignore();
            Ok(Ok((Some(user), pipe)))
        })
    }

    fn delete_user(&self, id: &str) -> Result<Option<User>> {
        let name = self.name(format_args!("user:{id}"));
        self.optimistic(std::slice::from_ref(&name), |con| {
            let json: Option<String> = redis::cmd("GET").arg(&name).query(con).map_err(unavailable)?;
            let Some(json) = json else { return Ok(Err(None)) };
            let user: User = from_json(&json)?;
            let mut pipe = redis::pipe();
            pipe.cmd("DEL").arg(&name).ignore();
            pipe.cmd("LREM").arg(self.name(format_args!("users:{}", user.account_id))).arg(0).arg(id).ignore();
            Ok(Ok((Some(user), pipe)))
        })
    }

    fn list_users(&self, account: &str, limit: usize) -> Result<Vec<User>> {
        let list = self.name(format_args!("users:{account}"));
        self.newest_records(&list, limit, |id| self.name(format_args!("user:{id}")))
    }

    fn count_request(&self, key: &KeyEntry, _now: u64) -> Result<()> {
        key.meter.requests.fetch_add(1, Ordering::Relaxed);
        self.dirty.lock().insert(key.digest);
        match self.write_behind_if_due() {
            Err(Error::Unavailable(_)) if self.fail_open => Ok(()),
            other => other,
        }
    }

    fn add_usage(&self, account: &str, metric: &str, quantity: u64, idempotency_key: Option<&str>, now: u64) -> Result<(u64, bool)> {
        if metric == usage::REQUESTS {
            self.flush()?;
        }
        self.add(account, metric, quantity, idempotency_key, now)
    }

    fn usage(&self, account: &str) -> Result<BTreeMap<String, u64>> {
        self.flush()?;
        let name = self.name(format_args!("usage:{account}"));
        let totals: HashMap<String, i64> = self.run(|con| redis::cmd("HGETALL").arg(&name).query(con))?;
        let mut metrics: BTreeMap<String, u64> = totals.into_iter().map(|(m, t)| (m, t.max(0) as u64)).collect();
        metrics.entry(usage::REQUESTS.into()).or_insert(0);
        metrics.entry(usage::SESSION_SECONDS.into()).or_insert(0);
        Ok(metrics)
    }

    fn insert_alert(&self, mut alert: Alert, now: u64) -> Result<Alert> {
        self.flush()?;
        let account = alert.account_id.clone();
        let keys = [
            self.name(format_args!("usage:{account}")),
            self.name(format_args!("pending:{account}:{}", alert.metric)),
            self.name(format_args!("fired:{account}")),
            self.name(format_args!("alerts:{account}")),
            self.name(format_args!("alert:{account}")),
        ];
        let json = to_json(&alert)?;
        let fired: i64 = self.run(|con| {
            let mut invocation = self.insert_alert.prepare_invoke();
            for key in &keys {
                invocation.key(key);
            }
            invocation.arg(&alert.metric).arg(alert.threshold).arg(&alert.id).arg(&json).arg(now).invoke(con)
        })?;
        if fired == 1 {
            alert.fired_at = Some(now);
        }
        Ok(alert)
    }

    fn alerts(&self, account: &str) -> Result<Vec<Alert>> {
        self.flush()?;
        let list = self.name(format_args!("alerts:{account}"));
        let ids: Vec<String> = self.run(|con| redis::cmd("LRANGE").arg(&list).arg(0).arg(-1).query(con))?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let (records, fired): (Vec<Option<String>>, Vec<Option<u64>>) = self.run(|con| {
            redis::pipe()
                .cmd("HMGET")
                .arg(self.name(format_args!("alert:{account}")))
                .arg(&ids)
                .cmd("HMGET")
                .arg(self.name(format_args!("fired:{account}")))
                .arg(&ids)
                .query(con)
        })?;
        let mut alerts = Vec::with_capacity(ids.len());
        for (json, fired_at) in records.into_iter().zip(fired).rev() {
            let Some(json) = json else { continue };
            let mut alert: Alert = from_json(&json)?;
            alert.fired_at = alert.fired_at.or(fired_at);
            alerts.push(alert);
        }
        Ok(alerts)
    }

    fn append_audit(&self, account_id: &str, record: String) -> Result<()> {
        {
            let _order = self.audit_order.read();
            if self.held_audit.is_empty() {
                return self.push_audit(&mut std::iter::once((account_id, record.as_str())));
            }
        }
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
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.write_audit(None)?;
        let list = match account {
            Some(account) => self.name(format_args!("audit:{account}")),
            None => self.name(format_args!("audit")),
        };
        let stop = isize::try_from(limit).map_or(-1, |l| l - 1);
        let values: Vec<String> = self.run(|con| redis::cmd("LRANGE").arg(&list).arg(0).arg(stop).query(con))?;
        values.iter().map(|j| from_json(j)).collect()
    }
}
