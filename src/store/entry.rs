//! A key as the hot path sees it, kept small.
//!
//! `authorize` reads a key's access bits, limits and expiry and updates its buckets, its
//! `last_used_at` and its account's counter: those live in atomics (and one small lock for the
//! buckets) next to each other. The rest of the record (id, account, name, prefix, times) is read
//! only by cold paths and kept compact: the id as 16 bytes, the account shared by all its keys,
//! the name and anything unusual in an optional box. [`RecordCell::read`] and
//! [`RecordCell::write`] still hand out a whole [`KeyRecord`] for code that wants one.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{RwLock, RwLockWriteGuard};

use crate::keys::{KeyDigest, KeyRecord};
use crate::limits::{Buckets, KeyLimits};
use crate::scopes::{Permissions, Scopes};

/// `None` of an optional time, in an atomic.
const NONE: u64 = u64::MAX;
/// The access word: scope bits (0..16), legacy flag bits (16..24), revoked (bit 24).
const REVOKED: u32 = 1 << 24;
/// Key ids the engine makes: `key_` + 32 lowercase hex digits, kept as their 16 bytes.
const ID_PREFIX: &str = "key_";
const ID_LEN: usize = ID_PREFIX.len() + 32;
/// Display prefixes the engine makes: `ak_` + 4 characters, kept as those 4 bytes.
const KEY_PREFIX: &str = crate::keys::PREFIX;
const HEX: &[u8; 16] = b"0123456789abcdef";

/// An account's request counter, shared by its keys so that counting is one atomic add.
#[derive(Debug)]
pub struct AccountMeter {
    /// Authorized requests so far.
    pub requests: AtomicU64,
    /// The lowest threshold of an unfired `requests` alert (`u64::MAX` when none).
    pub next_alert: AtomicU64,
}

impl Default for AccountMeter {
    fn default() -> Self {
        AccountMeter { requests: AtomicU64::new(0), next_alert: AtomicU64::new(u64::MAX) }
    }
}

/// A key as the hot path sees it: its record, its buckets and its counters.
///
/// `repr(C)`: the fields `authorize` touches come first and together (104 bytes), so that they
/// share as few cache lines as possible; the record's lock-protected cold part is last.
#[derive(Debug)]
#[repr(C)]
pub struct KeyEntry {
    /// The stored digest.
    pub digest: KeyDigest,
    /// Token buckets of the minute and hour windows.
    pub buckets: Buckets,
    /// The owning account's request counter.
    pub meter: Arc<AccountMeter>,
    last_used_at: AtomicU64,
    /// Authorized requests not yet added to the account's counter (a store may count on the key
    /// and add to the account in batches; see `MemoryStore::count_request`).
    pub pending: AtomicU32,
    /// The record (without `last_used_at`, kept in the entry and added by
    /// [`KeyEntry::snapshot`]); its cold part comes last.
    pub record: RecordCell,
}

impl KeyEntry {
    /// An entry for a new record.
    pub fn new(digest: KeyDigest, record: KeyRecord, meter: Arc<AccountMeter>) -> Self {
        let account = Arc::new(record.account_id.clone());
        Self::with_account(digest, record, meter, account)
    }

    /// An entry whose account id is `account` (shared by the store among the account's keys;
    /// it must equal `record.account_id`).
    pub(crate) fn with_account(digest: KeyDigest, record: KeyRecord, meter: Arc<AccountMeter>, account: Arc<String>) -> Self {
        debug_assert_eq!(*account, record.account_id);
        KeyEntry {
            digest,
            last_used_at: AtomicU64::new(record.last_used_at.unwrap_or(0)),
            pending: AtomicU32::new(0),
            record: RecordCell::new(record, account),
            buckets: Buckets::default(),
            meter,
        }
    }

    /// Notes an authorized use at `now`.
    pub fn touch(&self, now: u64) {
        // A plain load first: most calls land in the same millisecond as the previous one and
        // then write nothing, so two threads on one key do not fight over the line.
        if self.last_used_at.load(Ordering::Relaxed) < now {
            self.last_used_at.fetch_max(now, Ordering::Relaxed);
        }
    }

    /// When the key last authorized a request, if it has.
    pub fn last_used_at(&self) -> Option<u64> {
        let last = self.last_used_at.load(Ordering::Relaxed);
        (last > 0).then_some(last)
    }

    /// A copy of the record, `last_used_at` included.
    pub fn snapshot(&self) -> KeyRecord {
        let mut record = self.record.read().0;
        record.last_used_at = self.last_used_at();
        record
    }
}

/// What only cold paths read, behind the record's lock.
#[derive(Debug)]
struct Cold {
    /// The id's 16 bytes, when it has the engine's form (otherwise in `extra.id`).
    id: [u8; 16],
    /// Shared by the account's keys.
    account: Arc<String>,
    /// The 4 characters after `ak_`, when the prefix has that form (otherwise in `extra`).
    prefix: [u8; 4],
    /// Whether the id is in `extra` (so that reading a compact id never loads `extra`, which
    /// every key with a name has).
    custom_id: bool,
    created_at: u64,
    revoked_at: u64,
    /// The name when not empty, and whatever does not fit the compact form.
    extra: Option<Box<Extra>>,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Extra {
    name: String,
    id: Option<String>,
    prefix: Option<String>,
}

/// A key's record, stored compactly; the fields `authorize` needs are read without a lock.
#[derive(Debug)]
#[repr(C)]
pub struct RecordCell {
    access: AtomicU32,
    /// Per-minute, per-hour and concurrent-session overrides; 0 when not overridden.
    limits: [AtomicU32; 3],
    expires_at: AtomicU64,
    cold: RwLock<Cold>,
}

fn compact_id(id: &str) -> Option<[u8; 16]> {
    let hex = id.strip_prefix(ID_PREFIX).filter(|h| h.len() == 32)?.as_bytes();
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut bytes = [0u8; 16];
    for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(bytes)
}

fn compact_prefix(prefix: &str) -> Option<[u8; 4]> {
    let rest = prefix.strip_prefix(KEY_PREFIX)?.as_bytes();
    let bytes: [u8; 4] = rest.try_into().ok()?;
    bytes.iter().all(u8::is_ascii_alphanumeric).then_some(bytes)
}

fn to_atomic(time: Option<u64>) -> u64 {
    time.unwrap_or(NONE)
}

fn from_atomic(time: u64) -> Option<u64> {
    (time != NONE).then_some(time)
}

impl Cold {
    fn new(record: KeyRecord, account: Arc<String>) -> Self {
        let mut extra = Extra { name: record.name, ..Extra::default() };
        let compact = compact_id(&record.id);
        let custom_id = compact.is_none();
        let id = compact.unwrap_or_else(|| {
            extra.id = Some(record.id);
            [0; 16]
        });
        let prefix = compact_prefix(&record.prefix).unwrap_or_else(|| {
            extra.prefix = Some(record.prefix);
            [0; 4]
        });
        Cold {
            id,
            account,
            prefix,
            custom_id,
            created_at: record.created_at,
            revoked_at: to_atomic(record.revoked_at),
            extra: (extra != Extra::default()).then(|| Box::new(extra)),
        }
    }

    /// Calls `f` with the id, formatted on the stack when compact (no allocation).
    fn with_id<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        if let Some(id) = self.extra.as_ref().filter(|_| self.custom_id).and_then(|e| e.id.as_deref()) {
            return f(id);
        }
        let mut text = [0u8; ID_LEN];
        text[..ID_PREFIX.len()].copy_from_slice(ID_PREFIX.as_bytes());
        for (i, byte) in self.id.iter().enumerate() {
            text[ID_PREFIX.len() + 2 * i] = HEX[usize::from(byte >> 4)];
            text[ID_PREFIX.len() + 2 * i + 1] = HEX[usize::from(byte & 15)];
        }
        f(std::str::from_utf8(&text).expect("ASCII"))
    }

    /// Calls `f` with the display prefix, formatted on the stack when compact.
    fn with_prefix<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        if let Some(prefix) = self.extra.as_ref().and_then(|e| e.prefix.as_deref()) {
            return f(prefix);
        }
        let mut text = [0u8; KEY_PREFIX.len() + 4];
        text[..KEY_PREFIX.len()].copy_from_slice(KEY_PREFIX.as_bytes());
        text[KEY_PREFIX.len()..].copy_from_slice(&self.prefix);
        f(std::str::from_utf8(&text).expect("ASCII"))
    }
}

impl RecordCell {
    fn new(record: KeyRecord, account: Arc<String>) -> Self {
        let cell = RecordCell {
            access: AtomicU32::new(0),
            limits: Default::default(),
            expires_at: AtomicU64::new(NONE),
            cold: RwLock::new(Cold::new(record.clone(), account)),
        };
        cell.publish(&record);
        cell
    }

    /// Stores the hot fields of `record` in the atomics.
    fn publish(&self, record: &KeyRecord) {
        let revoked = if record.revoked_at.is_some() { REVOKED } else { 0 };
        let access = u32::from(record.scopes.bits()) | u32::from(record.permissions.bits()) << 16 | revoked;
        let limits = [record.limits.requests_per_minute, record.limits.requests_per_hour, record.limits.concurrent_sessions];
        for (slot, value) in self.limits.iter().zip(limits) {
            slot.store(value.unwrap_or(0), Ordering::Relaxed);
        }
        self.expires_at.store(to_atomic(record.expires_at), Ordering::Relaxed);
        self.access.store(access, Ordering::Release);
    }

    fn build(&self, cold: &Cold) -> KeyRecord {
        let access = self.access.load(Ordering::Acquire);
        let limit = |i: usize| Some(self.limits[i].load(Ordering::Relaxed)).filter(|&v| v != 0);
        let extra = cold.extra.as_deref();
        KeyRecord {
            id: cold.with_id(str::to_owned),
            account_id: String::clone(&cold.account),
            name: extra.map(|e| e.name.clone()).unwrap_or_default(),
            prefix: cold.with_prefix(str::to_owned),
            scopes: Scopes::from_bits(access as u16),
            permissions: Permissions::from_bits((access >> 16) as u8),
            limits: KeyLimits { requests_per_minute: limit(0), requests_per_hour: limit(1), concurrent_sessions: limit(2) },
            created_at: cold.created_at,
            expires_at: from_atomic(self.expires_at.load(Ordering::Relaxed)),
            revoked_at: from_atomic(cold.revoked_at),
            last_used_at: None,
        }
    }

    /// A copy of the whole record (allocates; for cold paths).
    pub fn read(&self) -> RecordRef {
        let cold = self.cold.read();
        RecordRef(self.build(&cold))
    }

    /// The record for changing; the changes are stored when the guard is dropped. The id cannot
    /// change (stores index it): a changed id is ignored.
    pub fn write(&self) -> RecordMut<'_> {
        let cold = self.cold.write();
        let record = self.build(&cold);
        RecordMut { cell: self, cold, record }
    }

    /// The key's scopes.
    #[inline]
    pub fn scopes(&self) -> Scopes {
        Scopes::from_bits(self.access.load(Ordering::Acquire) as u16)
    }

    /// The key's legacy permission flags.
    #[inline]
    pub fn permissions(&self) -> Permissions {
        Permissions::from_bits((self.access.load(Ordering::Acquire) >> 16) as u8)
    }

    /// Whether the key has been revoked.
    #[inline]
    pub fn is_revoked(&self) -> bool {
        self.access.load(Ordering::Acquire) & REVOKED != 0
    }

    /// Whether the key has expired at `now`.
    #[inline]
    pub fn is_expired(&self, now: u64) -> bool {
        let at = self.expires_at.load(Ordering::Acquire);
        at != NONE && now >= at
    }

    /// The key's limit overrides.
    #[inline]
    pub fn limits(&self) -> KeyLimits {
        let limit = |i: usize| Some(self.limits[i].load(Ordering::Relaxed)).filter(|&v| v != 0);
        KeyLimits { requests_per_minute: limit(0), requests_per_hour: limit(1), concurrent_sessions: limit(2) }
    }

    /// Calls `f` with the key's id and account id, without allocating.
    pub fn with_ids<R>(&self, f: impl FnOnce(&str, &str) -> R) -> R {
        let cold = self.cold.read();
        cold.with_id(|id| f(id, &cold.account))
    }

    /// The key's id.
    pub fn id(&self) -> String {
        self.cold.read().with_id(str::to_owned)
    }

    /// The key's account id (shared, not copied).
    pub fn account(&self) -> Arc<String> {
        self.cold.read().account.clone()
    }

    /// Whether the key belongs to `account`.
    pub fn account_is(&self, account: &str) -> bool {
        *self.cold.read().account == account
    }

    /// Calls `f` with the key's account id, its id and its display prefix (for audit records),
    /// without copying them.
    pub fn with_actor<R>(&self, f: impl FnOnce(&Arc<String>, &str, &str) -> R) -> R {
        let cold = self.cold.read();
        cold.with_id(|id| cold.with_prefix(|prefix| f(&cold.account, id, prefix)))
    }
}

/// A copy of a key's record, from [`RecordCell::read`].
#[derive(Debug)]
pub struct RecordRef(KeyRecord);

impl Deref for RecordRef {
    type Target = KeyRecord;

    fn deref(&self) -> &KeyRecord {
        &self.0
    }
}

/// A key's record being changed, from [`RecordCell::write`]; stored back when dropped.
#[derive(Debug)]
pub struct RecordMut<'a> {
    cell: &'a RecordCell,
    cold: RwLockWriteGuard<'a, Cold>,
    record: KeyRecord,
}

impl Deref for RecordMut<'_> {
    type Target = KeyRecord;

    fn deref(&self) -> &KeyRecord {
        &self.record
    }
}

impl DerefMut for RecordMut<'_> {
    fn deref_mut(&mut self) -> &mut KeyRecord {
        &mut self.record
    }
}

impl Drop for RecordMut<'_> {
    fn drop(&mut self) {
        let mut record = std::mem::replace(&mut self.record, empty_record());
        self.cold.with_id(|id| record.id = id.to_owned());
        let account = if *self.cold.account == record.account_id {
            self.cold.account.clone()
        } else {
            Arc::new(record.account_id.clone())
        };
        self.cell.publish(&record);
        *self.cold = Cold::new(record, account);
    }
}

/// A record with every field empty, zero or `None`: a placeholder, and a base for tests.
pub(crate) fn empty_record() -> KeyRecord {
    KeyRecord {
        id: String::new(),
        account_id: String::new(),
        name: String::new(),
        prefix: String::new(),
        scopes: Scopes::EMPTY,
        permissions: Permissions::EMPTY,
        limits: KeyLimits::default(),
        created_at: 0,
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scopes::{Permission, Scope};

    fn record(id: &str, prefix: &str, name: &str) -> KeyRecord {
        KeyRecord {
            id: id.into(),
            account_id: "acme".into(),
            name: name.into(),
            prefix: prefix.into(),
            scopes: Scopes::EMPTY.with(Scope::SessionsRead).with(Scope::AdminAll),
            permissions: Permissions::EMPTY.with(Permission::UsageRead),
            limits: KeyLimits { requests_per_minute: Some(5), requests_per_hour: None, concurrent_sessions: Some(2) },
            created_at: 1_000,
            expires_at: Some(9_000),
            revoked_at: None,
            last_used_at: None,
        }
    }

    #[test]
    fn records_round_trip_compact_or_not() {
        for (id, prefix, name) in [
            ("key_0123456789abcdef0123456789abcdef", "ak_Ab9z", ""),
            ("key_0123456789ABCDEF0123456789abcdef", "ak_toolong", "a name"),
            ("anything", "x", "n"),
        ] {
            let original = record(id, prefix, name);
            let entry = KeyEntry::new([7; 32], original.clone(), Arc::default());
            assert_eq!(*entry.record.read(), original);
            assert_eq!(entry.snapshot(), original);
            entry.record.with_ids(|i, a| assert_eq!((i, a), (id, "acme")));
            entry.record.with_actor(|a, i, p| assert_eq!((a.as_str(), i, p), ("acme", id, prefix)));
            assert_eq!(entry.record.id(), id);
        }
    }

    #[test]
    fn entries_stay_small() {
        // 168 bytes, 176 with the slab's reference count, 192 in the slab's slot of three cache
        // lines: the memory per key at 1M keys (BENCHMARKS.md) depends on it.
        assert!(std::mem::size_of::<KeyEntry>() <= 168, "{}", std::mem::size_of::<KeyEntry>());
    }

    #[test]
    fn writes_are_stored_and_published() {
        let entry = KeyEntry::new([7; 32], record("key_0123456789abcdef0123456789abcdef", "ak_Ab9z", ""), Arc::default());
        assert!(!entry.record.is_revoked() && !entry.record.is_expired(8_999) && entry.record.is_expired(9_000));
        {
            let mut record = entry.record.write();
            record.revoked_at = Some(5_000);
            record.expires_at = None;
            record.name = "renamed".into();
            record.id = "ignored".into();
        }
        assert!(entry.record.is_revoked() && !entry.record.is_expired(u64::MAX));
        let record = entry.record.read();
        assert_eq!((record.revoked_at, record.name.as_str()), (Some(5_000), "renamed"));
        assert_eq!(record.id, "key_0123456789abcdef0123456789abcdef");
        assert_eq!(entry.record.limits(), record.limits);
        assert!(entry.record.scopes().contains(Scope::AdminAll));
        entry.touch(7);
        entry.touch(3);
        assert_eq!(entry.snapshot().last_used_at, Some(7));
    }
}
