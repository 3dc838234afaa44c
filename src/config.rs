//! The engine configuration (SPEC §11): one JSON document, every field optional.
//!
//! Unknown fields and out-of-range values are refused with `invalid_config`, naming the field.
//!
//! Beside the SPEC's fields, `store` chooses where the engine keeps its state
//! ([`StoreConfig`]; see [`crate::store`] for each store's guarantees):
//!
//! ```json
//! {"store": {"kind": "memory"}}
//! {"store": {"kind": "sqlite", "path": "/var/lib/astack/astack.db"}}
//! {"store": {"kind": "redis", "url": "redis://127.0.0.1:6379/0", "prefix": "astack:",
//!            "key_cache_ms": 1000, "fail_open": false, "lease": {"batch": 10}}}
//! ```
//!
//! `memory` is the default. A field that belongs to another kind, a missing `path` or `url`, or
//! a kind whose cargo feature (`sqlite`, `redis`) was left out of the build is an
//! `invalid_config` naming the field (`store.kind` for the last).

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::limits::{KeyLimits, Limits};
use crate::token;
use crate::validate;
use crate::workers::Worker;

/// The engine's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Default limits of every key.
    pub limits: Limits,
    /// Session and token lifetimes.
    pub sessions: SessionSettings,
    /// The feature catalog sessions may ask for.
    pub features: Vec<String>,
    /// Token signing keys; the first signs, all verify. Empty: one random key, kid `default`.
    pub signing_keys: Vec<SigningKeyConfig>,
    /// When set, key digests are HMAC-SHA-256 under this pepper.
    pub key_pepper: Option<Secret>,
    /// Workers registered at start.
    pub workers: Vec<Worker>,
    /// The worker used while none is registered.
    pub default_worker: Worker,
    /// Where state is kept (default: in memory).
    pub store: StoreConfig,
}

/// Which store keeps the engine's state, and its settings (`"store": {...}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `memory` (default), `sqlite` or `redis`.
    pub kind: StoreKind,
    /// `sqlite`: the database file (created with its directory if missing).
    pub path: Option<String>,
    /// `redis`: the server, `redis://[:password@]host:port/db` (or `unix:///path`).
    pub url: Option<String>,
    /// `redis`: prefix of every Redis key (default `astack:`), so engines may share a server.
    pub prefix: Option<String>,
    /// `redis`: how long a key's record is served from the process before it is read again
    /// (default 1,000 ms, 0 to 60,000): the longest a revocation takes to reach this process.
    pub key_cache_ms: Option<u64>,
    /// `redis`: when Redis cannot be reached, let the rate-limit step allow requests of keys
    /// this process knows instead of refusing them with `unavailable` (default false).
    pub fail_open: Option<bool>,
    /// `redis`: lease tokens in batches so that the hot path stays in memory (default off).
    pub lease: Option<LeaseConfig>,
    /// `sqlite` and `redis`: how often, in ms, a thread of the engine writes what the store
    /// holds back (default 500; 10 to 60,000, or 0 for no thread). With the thread, no call
    /// that decides a request waits for that write; without it, the first call a second after
    /// the last write does it, unless the host calls `flush` on a thread of its own.
    pub flush_ms: Option<u64>,
}

/// The kinds of store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// In process memory; lost when the process ends.
    #[default]
    Memory,
    /// Durable, embedded: one SQLite file.
    Sqlite,
    /// Shared by many processes: one Redis server.
    Redis,
}

/// Token leasing of the Redis store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseConfig {
    /// Tokens taken from Redis at once, per key (1 to 10,000).
    pub batch: u32,
}

impl StoreConfig {
    /// Default Redis key prefix.
    pub const DEFAULT_PREFIX: &'static str = "astack:";
    /// Default key cache lifetime, ms.
    pub const DEFAULT_KEY_CACHE_MS: u64 = 1000;
    /// Default interval of the engine's flush thread, ms.
    pub const DEFAULT_FLUSH_MS: u64 = 500;

    /// A SQLite store in `path`.
    pub fn sqlite(path: impl Into<String>) -> Self {
        StoreConfig { kind: StoreKind::Sqlite, path: Some(path.into()), ..Default::default() }
    }

    /// A Redis store at `url`, every other setting at its default.
    pub fn redis(url: impl Into<String>) -> Self {
        StoreConfig { kind: StoreKind::Redis, url: Some(url.into()), ..Default::default() }
    }

    /// The Redis key prefix in force.
    pub fn prefix(&self) -> &str {
        self.prefix.as_deref().unwrap_or(Self::DEFAULT_PREFIX)
    }

    /// The key cache lifetime in force, ms.
    pub fn key_cache_ms(&self) -> u64 {
        self.key_cache_ms.unwrap_or(Self::DEFAULT_KEY_CACHE_MS)
    }

    /// How often the engine's own thread flushes the store; `None`: no such thread (an
    /// in-memory store, which holds nothing back, or `flush_ms` 0).
    pub fn flush_every(&self) -> Option<std::time::Duration> {
        match (self.kind, self.flush_ms.unwrap_or(Self::DEFAULT_FLUSH_MS)) {
            (StoreKind::Memory, _) | (_, 0) => None,
            (_, ms) => Some(std::time::Duration::from_millis(ms)),
        }
    }

    /// Checks the fields against the kind, and each value's range.
    pub fn validate(&self) -> Result<()> {
        let redis_only = [
            ("store.url", self.url.is_some()),
            ("store.prefix", self.prefix.is_some()),
            ("store.key_cache_ms", self.key_cache_ms.is_some()),
            ("store.fail_open", self.fail_open.is_some()),
            ("store.lease", self.lease.is_some()),
        ];
        let sqlite_only = [("store.path", self.path.is_some())];
        let durable_only = [("store.flush_ms", self.flush_ms.is_some())];
        let (kind, foreign): (&str, Vec<_>) = match self.kind {
            StoreKind::Memory => ("memory", redis_only.iter().chain(&sqlite_only).chain(&durable_only).collect()),
            StoreKind::Sqlite => ("sqlite", redis_only.iter().collect()),
            StoreKind::Redis => ("redis", sqlite_only.iter().collect()),
        };
        if let Some((field, _)) = foreign.into_iter().find(|(_, given)| *given) {
            return Err(Error::config(*field, format!("is not a setting of a {kind} store")));
        }
        let compiled = match self.kind {
            StoreKind::Memory => true,
            StoreKind::Sqlite => cfg!(feature = "sqlite"),
            StoreKind::Redis => cfg!(feature = "redis"),
        };
        if !compiled {
            return Err(Error::config("store.kind", format!("this build has no {kind} store (cargo feature `{kind}`)")));
        }
        if self.flush_ms.is_some_and(|ms| ms != 0 && !(10..=60_000).contains(&ms)) {
            return Err(Error::config("store.flush_ms", "must be 0 (no thread) or 10 to 60000"));
        }
        match self.kind {
            StoreKind::Memory => {}
            StoreKind::Sqlite => match &self.path {
                None => return Err(Error::config("store.path", "a sqlite store needs a path")),
                Some(path) if path.is_empty() || path.len() > 4096 || path.contains('\0') => {
                    return Err(Error::config("store.path", "must be 1 to 4096 bytes without NUL"));
                }
                Some(_) => {}
            },
            StoreKind::Redis => {
                match &self.url {
                    None => return Err(Error::config("store.url", "a redis store needs a url")),
                    Some(url) if !(url.starts_with("redis://") || url.starts_with("unix://") || url.starts_with("redis+unix://")) || url.len() > 4096 => {
                        return Err(Error::config("store.url", "must be a redis:// or unix:// URL"));
                    }
                    Some(_) => {}
                }
                let prefix = self.prefix();
                if prefix.len() > 64 || prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(Error::config("store.prefix", "must be at most 64 characters, no spaces"));
                }
                in_range("store.key_cache_ms", self.key_cache_ms(), 0, 60_000)?;
                if let Some(lease) = self.lease {
                    in_range("store.lease.batch", u64::from(lease.batch), 1, 10_000)?;
                }
            }
        }
        Ok(())
    }
}

/// Session and token lifetimes, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSettings {
    /// How long a session may stay PENDING (default 300).
    pub pending_ttl_seconds: u64,
    /// How long a session may stay ACTIVE (default 3,600).
    pub max_duration_seconds: u64,
    /// Session token lifetime (default 600), never past the session's expiry.
    pub token_ttl_seconds: u64,
    /// Clock skew tolerated when verifying tokens (default 0).
    pub token_leeway_seconds: u64,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            pending_ttl_seconds: 300,
            max_duration_seconds: 3600,
            token_ttl_seconds: 600,
            token_leeway_seconds: 0,
        }
    }
}

/// A secret string whose `Debug` never shows it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// One token signing key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyConfig {
    /// Key id, put in each token's header.
    pub kid: String,
    /// HMAC key, at least 32 bytes, used as-is.
    pub secret: Secret,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: Limits::default(),
            sessions: SessionSettings::default(),
            features: ["vision", "transcription", "recording"].map(String::from).to_vec(),
            signing_keys: Vec::new(),
            key_pepper: None,
            workers: Vec::new(),
            default_worker: Worker {
                node_id: "local".into(),
                url: "ws://127.0.0.1:8081".into(),
                capacity: 1000,
                draining: false,
            },
            store: StoreConfig::default(),
        }
    }
}

/// Smallest pepper accepted, in bytes.
pub const MIN_PEPPER: usize = 16;

fn config_error(field: String, message: String) -> Error {
    Error::InvalidConfig { field, message }
}

fn in_range(field: &str, value: u64, min: u64, max: u64) -> Result<()> {
    if value < min || value > max {
        return Err(Error::config(field, format!("must be {min} to {max}")));
    }
    Ok(())
}

impl Config {
    /// Parses and validates a JSON configuration (`{}` gives every default).
    pub fn from_json(json: &str) -> Result<Config> {
        let config: Config = validate::from_json(json, config_error)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value's range.
    pub fn validate(&self) -> Result<()> {
        let limits = KeyLimits {
            requests_per_minute: Some(self.limits.requests_per_minute),
            requests_per_hour: Some(self.limits.requests_per_hour),
            concurrent_sessions: Some(self.limits.concurrent_sessions),
        };
        limits.validate("limits", config_error)?;
        let s = &self.sessions;
        in_range("sessions.pending_ttl_seconds", s.pending_ttl_seconds, 1, 86_400)?;
        in_range("sessions.max_duration_seconds", s.max_duration_seconds, 1, 7 * 86_400)?;
        in_range("sessions.token_ttl_seconds", s.token_ttl_seconds, 1, 86_400)?;
        in_range("sessions.token_leeway_seconds", s.token_leeway_seconds, 0, 3_600)?;
        if self.features.len() > 64 {
            return Err(Error::config("features", "at most 64 features"));
        }
        for (i, feature) in self.features.iter().enumerate() {
            let field = format!("features[{i}]");
            let valid = !feature.is_empty()
                && feature.len() <= 64
                && feature.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b));
            if !valid {
                return Err(Error::config(field, "must be 1 to 64 characters of a-z 0-9 _ -"));
            }
            if self.features[..i].contains(feature) {
                return Err(Error::config(field, "features must be distinct"));
            }
        }
        self.keyring()?;
        if let Some(pepper) = &self.key_pepper {
            if pepper.0.len() < MIN_PEPPER {
                return Err(Error::config("key_pepper", format!("must be at least {MIN_PEPPER} bytes")));
            }
        }
        for (i, worker) in self.workers.iter().enumerate() {
            worker.validate(&format!("workers[{i}]"), config_error)?;
            if self.workers[..i].iter().any(|w| w.node_id == worker.node_id) {
                return Err(Error::config(format!("workers[{i}].node_id"), "node ids must be distinct"));
            }
        }
        self.default_worker.validate("default_worker", config_error)?;
        self.store.validate()
    }

    /// The token keyring: the configured keys, or one random key with kid `default`.
    pub fn keyring(&self) -> Result<token::Keyring> {
        let keys = if self.signing_keys.is_empty() {
            let mut secret = [0u8; 32];
            getrandom::getrandom(&mut secret)
                .map_err(|e| Error::Internal(format!("the OS random source failed: {e}")))?;
            vec![token::SigningKey::new("default", secret.to_vec())]
        } else {
            self.signing_keys
                .iter()
                .map(|k| token::SigningKey::new(k.kid.clone(), k.secret.0.as_bytes().to_vec()))
                .collect()
        };
        let keys = keys
            .into_iter()
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::config("signing_keys", e.to_string()))?;
        token::Keyring::new(keys).map_err(|e| Error::config("signing_keys", e.to_string()))
    }
}
