//! The engine: one object that decides every request and owns every session.
//!
//! [`Engine::authorize`] runs the checks of SPEC §4 in order and returns either an
//! [`Authorization`] (whose [`Principal`] then acts on resources) or a [`Denial`]. Every other
//! method takes the acting [`Principal`], checks that it may perform the operation and keeps it
//! within its account (the `default` account's keys excepted, as SPEC §2 says).
//!
//! The engine is `Send + Sync`; one instance serves any number of threads.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::audit::{AuditEvent, AuditRecord};
use crate::clock::{Clock, ManualClock, SystemClock};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::keys::{self, CreateKey, CreatedKey, KeyRecord};
use crate::limits::{Decision, Headers, Limits};
use crate::scopes::{self, Operation, Permissions, Scope, Scopes};
use crate::session::{CreateSession, CreatedSession, EndSession, Session, Status};
use crate::store::{Flusher, KeyEntry, KeyRef, MemoryStore, Store};
use crate::token::{self, Claims, ClaimsRef, Keyring};
use crate::usage::{self, Alert, CreateAlert, RecordUsage, Usage};
use crate::users::{CreateUser, UpdateUser, User};
use crate::validate;
use crate::workers::{UpdateWorker, Worker, WorkerStatus};

/// The operator's account: its admin keys may create keys for any account and its worker keys
/// may act on any account's sessions.
pub const OPERATOR_ACCOUNT: &str = "default";

/// Longest grace period a rotation may give the old key: 30 days.
pub const MAX_GRACE_SECONDS: u64 = 30 * 86_400;

/// The key behind a request, once authenticated.
#[derive(Debug, Clone)]
pub struct Principal {
    entry: KeyRef,
}

impl Principal {
    fn new(entry: KeyRef) -> Self {
        Principal { entry }
    }

    /// The key's record (`last_used_at` included).
    pub fn record(&self) -> KeyRecord {
        self.entry.snapshot()
    }

    /// The key's id.
    pub fn key_id(&self) -> String {
        self.entry.record.id()
    }

    /// The key's account.
    pub fn account_id(&self) -> String {
        String::clone(&self.entry.record.account())
    }

    /// Calls `f` with the key's id and account without copying them (the C ABI's authorize
    /// copies them into a caller-owned struct and must not allocate).
    pub fn with_ids<R>(&self, f: impl FnOnce(&str, &str) -> R) -> R {
        self.entry.record.with_ids(f)
    }

    /// A number that names the key among this engine's keys for the engine's whole life (no
    /// other key ever has it), when its store gives one (the memory and SQLite stores do): lets
    /// a host cache what never changes about a key, such as its ids.
    pub fn key_slot(&self) -> Option<u32> {
        self.entry.position()
    }

    /// Whether the key belongs to the operator's account.
    pub fn is_operator(&self) -> bool {
        self.entry.record.account_is(OPERATOR_ACCOUNT)
    }

    /// Whether the key's scopes or legacy flags allow `operation`.
    pub fn may(&self, operation: Operation) -> bool {
        let record = &self.entry.record;
        scopes::allows(record.scopes(), record.permissions(), operation)
    }

    fn require(&self, operation: Operation) -> Result<()> {
        if self.may(operation) {
            Ok(())
        } else {
            Err(Error::InsufficientScope { required: operation.scope().as_str() })
        }
    }

    /// Whether this key may see a resource of `account`: its own, or any for the operator's
    /// keys when `operator_reach` allows it.
    fn reaches(&self, account: &str, operator_reach: bool) -> bool {
        let own = self.entry.record.account();
        *own == account || (operator_reach && *own == OPERATOR_ACCOUNT)
    }
}

/// An allowed request: who made it and the rate-limit decision to report.
#[derive(Debug, Clone)]
pub struct Authorization {
    /// The key that made it.
    pub principal: Principal,
    /// The rate-limit decision (tightest window).
    pub decision: Decision,
    /// The key's limits in force.
    pub limits: Limits,
}

impl Authorization {
    /// The rate-limit headers of SPEC §5 for this response.
    pub fn headers(&self) -> Headers {
        Headers::new(&self.limits.windows(), &self.decision)
    }
}

/// A refused request: the error and, once the key is known, its rate-limit state for headers.
#[derive(Debug, Clone)]
pub struct Denial {
    /// Why it was refused.
    pub error: Error,
    /// The key's rate-limit decision and limits, when the key was authenticated.
    pub rate: Option<(Decision, Limits)>,
}

impl Denial {
    /// The rate-limit headers to send with the refusal, if the key was authenticated.
    pub fn headers(&self) -> Option<Headers> {
        self.rate.map(|(decision, limits)| Headers::new(&limits.windows(), &decision))
    }
}

impl From<Error> for Denial {
    fn from(error: Error) -> Self {
        Denial { error, rate: None }
    }
}

/// The result of recording usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recorded {
    /// The metric.
    pub metric: String,
    /// Its total after this record.
    pub total: u64,
    /// False when the idempotency key had been seen: nothing was added.
    pub counted: bool,
}

/// Engine-wide figures (`GET /api/v1/metrics`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metrics {
    /// Keys visible to the caller.
    pub keys: usize,
    /// Sessions by status.
    pub sessions: std::collections::BTreeMap<String, usize>,
    /// Registered workers.
    pub workers: usize,
}

/// The control plane: keys, scopes, limits, sessions, tokens, workers, users, usage and audit.
pub struct Engine {
    /// First, so that dropping the engine stops the thread before the store's last flush.
    flusher: Option<Flusher>,
    config: Config,
    clock: Arc<dyn Clock>,
    store: Arc<dyn Store>,
    hasher: keys::Hasher,
    keyring: Keyring,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("config", &self.config).finish_non_exhaustive()
    }
}

/// A new random id: `prefix` and 32 lowercase hex digits.
pub(crate) fn new_id(prefix: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + uuid::fmt::Simple::LENGTH);
    id.push_str(prefix);
    id.push_str(Uuid::new_v4().simple().encode_lower(&mut Uuid::encode_buffer()));
    id
}

/// The account and the audit record of an event done with the key `actor`.
fn actor_audit(actor: &KeyEntry, action: &str, target: Option<&str>, detail: &impl Serialize, now: u64) -> Result<(Arc<String>, String)> {
    let (account, record) = actor.record.with_actor(|account, key_id, prefix| {
        (Arc::clone(account), audit_json(account, Some((key_id, prefix)), action, target, detail, now))
    });
    Ok((account, record?))
}

/// A new audit record's JSON; `actor` is the acting key's id and display prefix.
fn audit_json(
    account_id: &str,
    actor: Option<(&str, &str)>,
    action: &str,
    target: Option<&str>,
    detail: &impl Serialize,
    now: u64,
) -> Result<String> {
    let (actor_key_id, actor_prefix) = actor.unzip();
    let event = AuditEvent { id: &new_id("aud_"), account_id, at: now, action, actor_key_id, actor_prefix, target, detail };
    // Room for a typical record (about 280 bytes) and what a store appends (the memory store:
    // the account id), so that neither reallocates.
    let mut json = Vec::with_capacity(320);
    event.write_json(&mut json).map_err(|e| Error::Internal(format!("audit record: {e}")))?;
    Ok(String::from_utf8(json).expect("the JSON writer writes UTF-8"))
}

impl Engine {
    /// An engine with the system clock and the store its configuration names (`store`,
    /// in memory by default).
    pub fn new(config: Config) -> Result<Self> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// An engine reading time from `clock`, with the store its configuration names, and a
    /// thread that flushes it every `store.flush_ms` when it holds writes back (SQLite, Redis).
    pub fn with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<Self> {
        config.validate()?;
        let store = crate::store::open(&config.store)?;
        let mut engine = Self::with_parts(config, clock, store)?;
        if let Some(every) = engine.config.store.flush_every() {
            engine.flusher = Some(Flusher::for_store(Arc::clone(&engine.store), every)?);
        }
        Ok(engine)
    }

    /// An engine from a JSON configuration (SPEC §11).
    pub fn from_json(json: &str) -> Result<Self> {
        Self::new(Config::from_json(json)?)
    }

    /// An engine reading time from `clock` and keeping state in `store`; the host flushes it
    /// (no flush thread is started).
    pub fn with_parts(config: Config, clock: Arc<dyn Clock>, store: Arc<dyn Store>) -> Result<Self> {
        config.validate()?;
        let keyring = config.keyring()?;
        let hasher = keys::Hasher::new(config.key_pepper.as_ref().map(|p| p.0.as_bytes()));
        for worker in &config.workers {
            match store.insert_worker(worker.clone()) {
                Ok(()) | Err(Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Engine { flusher: None, config, clock, store, hasher, keyring })
    }

    /// An engine on a [`ManualClock`] starting at `now_ms`, for tests.
    pub fn with_manual_clock(config: Config, now_ms: u64) -> Result<Self> {
        Self::with_parts(config, Arc::new(ManualClock::new(now_ms)), Arc::new(MemoryStore::new()))
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The engine's clock.
    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    /// The current time (epoch ms) by the engine's clock.
    pub fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    // ------------------------------------------------------------------ authorize

    /// Decides a request (SPEC §4): key present and well-formed, known, not revoked, not
    /// expired, operation allowed, rate limits, and for `session.create` a free session slot.
    /// Stops at the first failure; a denied request consumes no tokens. On success the key's
    /// `last_used_at` and its account's `requests` are updated. Allocates nothing when allowed,
    /// but for `session.create`, whose slot check copies the key's id.
    pub fn authorize(&self, api_key: &str, operation: Operation) -> Result<Authorization, Denial> {
        if api_key.is_empty() {
            return Err(Error::MissingApiKey.into());
        }
        if !keys::is_well_formed(api_key) {
            return Err(Error::InvalidApiKey.into());
        }
        let digest = self.hasher.digest(api_key);
        let entry = self.store.key_by_digest(&digest)?.ok_or(Error::InvalidApiKey)?;
        let now = self.now();
        let record = &entry.record;
        let limits = record.limits().resolve(&self.config.limits);
        let refused = if record.is_revoked() {
            Some(Error::ApiKeyRevoked)
        } else if record.is_expired(now) {
            Some(Error::ApiKeyExpired)
        } else if !scopes::allows(record.scopes(), record.permissions(), operation) {
            Some(Error::InsufficientScope { required: operation.scope().as_str() })
        } else {
            None
        };
        let windows = limits.windows();
        if let Some(error) = refused {
            let rate = match error {
                Error::InsufficientScope { .. } => Some((self.store.peek(&entry, &windows, now)?, limits)),
                _ => None,
            };
            return Err(self.deny(&entry, operation, error, rate, now));
        }
        let decision = self.store.take(&entry, &windows, now)?;
        if !decision.allowed {
            let error = decision.to_error(&windows);
            return Err(self.deny(&entry, operation, error, Some((decision, limits)), now));
        }
        if operation == Operation::SessionCreate {
            let key_id = entry.record.id();
            // Sessions past their expiry hold no slot, swept or not.
            self.sweep()?;
            if self.store.slots_in_use(&key_id)? >= limits.concurrent_sessions {
                self.store.refund(&entry, &windows, now)?;
                let decision = self.store.peek(&entry, &windows, now)?;
                let error = Error::ConcurrentSessionLimit { limit: limits.concurrent_sessions };
                return Err(self.deny(&entry, operation, error, Some((decision, limits)), now));
            }
        }
        entry.touch(now);
        self.store.count_request(&entry, now)?;
        Ok(Authorization { principal: Principal::new(entry), decision, limits })
    }

    fn deny(
        &self,
        entry: &KeyEntry,
        operation: Operation,
        error: Error,
        rate: Option<(Decision, Limits)>,
        now: u64,
    ) -> Denial {
        /// `request.denied`'s detail (a struct: a flood of refusals writes one each), its members
        /// in the order a `json!` object writes them.
        #[derive(Serialize)]
        struct Refused {
            code: &'static str,
            operation: &'static str,
        }
        let detail = Refused { code: error.code(), operation: operation.as_str() };
        // Written behind where the store can (a flood of denials must not cost a disk write
        // each), and auditing must not turn a refusal into another error.
        let _ = actor_audit(entry, "request.denied", None, &detail, now)
            .and_then(|(account, record)| self.store.append_audit_behind(&account, record));
        Denial { error, rate }
    }

    /// The principal of the key with this id (for hosts that keep the id from an earlier
    /// authorization, such as C ABI callers). Refused like `authorize` if the key is revoked or
    /// expired.
    pub fn principal(&self, key_id: &str) -> Result<Principal> {
        let entry = self.store.key(key_id)?.ok_or(Error::NotFound { resource: "key" })?;
        let now = self.now();
        if entry.record.is_revoked() {
            return Err(Error::ApiKeyRevoked);
        }
        if entry.record.is_expired(now) {
            return Err(Error::ApiKeyExpired);
        }
        Ok(Principal::new(entry))
    }

    // ------------------------------------------------------------------ audit

    /// Audits an event done with the key `actor`.
    fn audit_event(&self, actor: &KeyEntry, action: &str, target: Option<&str>, detail: impl Serialize, now: u64) -> Result<()> {
        let (account, record) = actor_audit(actor, action, target, &detail, now)?;
        self.store.append_audit(&account, record)
    }

    /// Audits an event of `account_id` done by no key (the bootstrap).
    fn append_audit(&self, account_id: &str, action: &str, target: Option<&str>, detail: impl Serialize, now: u64) -> Result<()> {
        let record = audit_json(account_id, None, action, target, &detail, now)?;
        self.store.append_audit(account_id, record)
    }

    /// The audit log, newest first: the operator's admins see every account, others their own.
    pub fn audit(&self, principal: &Principal, limit: usize) -> Result<Vec<AuditRecord>> {
        principal.require(Operation::Admin)?;
        let account = (!principal.is_operator()).then(|| principal.account_id());
        self.store.audit(account.as_deref(), limit)
    }

    // ------------------------------------------------------------------ keys

    /// Creates the operator's first admin key (`admin:all` in account `default`). With
    /// `plaintext`, that key is used (it must be well-formed; an existing one is kept);
    /// otherwise one is generated. Returns the plaintext only when it was generated.
    pub fn bootstrap_admin_key(&self, plaintext: Option<&str>) -> Result<Option<String>> {
        let (key, generated) = match plaintext {
            Some(key) if keys::is_well_formed(key) => (key.to_owned(), false),
            Some(_) => return Err(Error::config("ASTACK_ADMIN_KEY", "is not a well-formed key")),
            None => (keys::generate()?, true),
        };
        let digest = self.hasher.digest(&key);
        if self.store.key_by_digest(&digest)?.is_some() {
            return Ok(None);
        }
        let record = self.new_key_record(
            &key,
            OPERATOR_ACCOUNT.to_owned(),
            "bootstrap admin".into(),
            Scopes::EMPTY.with(Scope::AdminAll),
            Permissions::EMPTY,
            Default::default(),
            None,
        );
        self.store.insert_key(digest, record.clone())?;
        self.append_audit(&record.account_id, "key.created", Some(&record.id), json!({"bootstrap": true}), record.created_at)?;
        Ok(generated.then_some(key))
    }

    #[allow(clippy::too_many_arguments)]
    fn new_key_record(
        &self,
        key: &str,
        account_id: String,
        name: String,
        scopes: Scopes,
        permissions: Permissions,
        limits: crate::limits::KeyLimits,
        expires_at: Option<u64>,
    ) -> KeyRecord {
        KeyRecord {
            id: new_id("key_"),
            account_id,
            name,
            prefix: keys::display_prefix(key).to_owned(),
            scopes,
            permissions,
            limits,
            created_at: self.now(),
            expires_at,
            revoked_at: None,
            last_used_at: None,
        }
    }

    fn insert_new_key(&self, principal: &Principal, record_of: impl FnOnce(&str) -> KeyRecord, action: &str, detail: Value) -> Result<CreatedKey> {
        let key = keys::generate()?;
        let record = record_of(&key);
        self.store.insert_key(self.hasher.digest(&key), record.clone())?;
        self.audit_event(&principal.entry, action, Some(&record.id), detail, record.created_at)?;
        Ok(CreatedKey { record, key })
    }

    /// Creates a key (`admin`). Only the operator's admins may name another `account_id`. The
    /// plaintext is in the result, once.
    pub fn create_key(&self, principal: &Principal, request: CreateKey) -> Result<CreatedKey> {
        principal.require(Operation::Admin)?;
        let account_id = match request.account_id {
            Some(account) => {
                validate::text("account_id", &account, 1, 128)?;
                if !principal.reaches(&account, true) {
                    return Err(Error::Forbidden("only the operator's admin keys may create keys for another account"));
                }
                account
            }
            None => principal.account_id(),
        };
        let name = request.name.unwrap_or_default();
        validate::text("name", &name, 0, 128)?;
        let scopes = Scopes::parse("scopes", &request.scopes)?;
        let permissions = Permissions::parse("permissions", &request.permissions)?;
        if scopes.is_empty() && permissions.is_empty() {
            return Err(Error::invalid("scopes", "give at least one scope or permission"));
        }
        request.limits.validate("limits", |field, message| Error::InvalidRequest { field, message })?;
        let now = self.now();
        if request.expires_at.is_some_and(|at| at <= now) {
            return Err(Error::invalid("expires_at", "must be in the future"));
        }
        let detail = json!({ "scopes": scopes, "permissions": permissions });
        self.insert_new_key(
            principal,
            |key| self.new_key_record(key, account_id, name, scopes, permissions, request.limits, request.expires_at),
            "key.created",
            detail,
        )
    }

    fn visible_key(&self, principal: &Principal, id: &str) -> Result<KeyRef> {
        principal.require(Operation::Admin)?;
        self.store
            .key(id)?
            .filter(|entry| principal.reaches(&entry.record.account(), true))
            .ok_or(Error::NotFound { resource: "key" })
    }

    /// A key's record (`admin`).
    pub fn get_key(&self, principal: &Principal, id: &str) -> Result<KeyRecord> {
        Ok(self.visible_key(principal, id)?.snapshot())
    }

    /// Keys newest first (`admin`): the operator's admins see every account.
    pub fn list_keys(&self, principal: &Principal, limit: usize) -> Result<Vec<KeyRecord>> {
        principal.require(Operation::Admin)?;
        let account = (!principal.is_operator()).then(|| principal.account_id());
        self.store.list_keys(account.as_deref(), limit)
    }

    /// Revokes a key (`admin`); revoking it again changes nothing.
    pub fn revoke_key(&self, principal: &Principal, id: &str) -> Result<KeyRecord> {
        self.visible_key(principal, id)?;
        let now = self.now();
        let mut changed = false;
        let record = self
            .store
            .update_key(id, &mut |record| {
                if record.revoked_at.is_none() {
                    record.revoked_at = Some(now);
                    changed = true;
                }
            })?
            .ok_or(Error::NotFound { resource: "key" })?;
        if changed {
            self.audit_event(&principal.entry, "key.revoked", Some(id), json!({}), now)?;
        }
        Ok(record)
    }

    /// Rotates a key (`admin`): a new key with the same account, scopes, permissions, limits
    /// and expiry; the old key then expires at the earlier of its expiry and now + grace.
    pub fn rotate_key(&self, principal: &Principal, id: &str, grace_period_seconds: u64) -> Result<CreatedKey> {
        let old = self.visible_key(principal, id)?.snapshot();
        if grace_period_seconds > MAX_GRACE_SECONDS {
            return Err(Error::invalid("grace_period_seconds", format!("must be 0 to {MAX_GRACE_SECONDS}")));
        }
        if old.revoked_at.is_some() {
            return Err(Error::invalid("id", "a revoked key cannot be rotated"));
        }
        let now = self.now();
        let created = self.insert_new_key(
            principal,
            |key| {
                self.new_key_record(
                    key,
                    old.account_id.clone(),
                    old.name.clone(),
                    old.scopes,
                    old.permissions,
                    old.limits,
                    old.expires_at,
                )
            },
            "key.rotated",
            json!({ "from": id, "grace_period_seconds": grace_period_seconds }),
        )?;
        let old_expiry = old.rotated_expiry(now, grace_period_seconds * 1000);
        self.store.update_key(id, &mut |record| record.expires_at = Some(old_expiry))?;
        Ok(created)
    }

    // ------------------------------------------------------------------ sessions

    /// Creates a session (`session.create`): validates the request, takes a slot of the
    /// principal's key, places it on a worker and issues its token.
    pub fn create_session(&self, principal: &Principal, request: CreateSession) -> Result<CreatedSession> {
        principal.require(Operation::SessionCreate)?;
        request.validate(&self.config.features)?;
        let limits = principal.entry.record.limits().resolve(&self.config.limits);
        let now = self.now();
        let (key_id, account_id) = principal.with_ids(|key, account| (key.to_owned(), account.to_owned()));
        let expires_at = now.saturating_add(self.config.sessions.pending_ttl_seconds * 1000);
        let session = Session::pending(new_id("sess_"), account_id, key_id, request, now, expires_at);
        self.sweep()?;
        let session = self.store.create_session(session, limits.concurrent_sessions, &self.config.default_worker)?;
        /// `session.created`'s detail (a struct: this is the hot path).
        #[derive(Serialize)]
        struct Placed<'a> {
            status: Status,
            node_id: &'a str,
        }
        let detail = Placed { status: session.status, node_id: &session.node_id };
        self.audit_event(&principal.entry, "session.created", Some(&session.id), detail, now)?;
        let session_token = self.sign_token(&session, now);
        Ok(CreatedSession { session, session_token })
    }

    fn sign_token(&self, session: &Session, now: u64) -> String {
        let iat = (now / 1000) as i64;
        let ttl_end = iat + self.config.sessions.token_ttl_seconds as i64;
        let mut jti = Uuid::encode_buffer();
        self.keyring.sign(ClaimsRef {
            iss: token::ISSUER,
            sub: &session.id,
            aud: &session.node_id,
            acc: &session.account_id,
            uid: &session.end_user_id,
            features: &session.features,
            quality: session.quality.as_str(),
            iat,
            nbf: iat,
            exp: ttl_end.min((session.expires_at / 1000) as i64),
            jti: Uuid::new_v4().simple().encode_lower(&mut jti),
        })
    }

    /// Applies a transition to a session the principal may reach, with expiry applied first,
    /// and does the bookkeeping of whatever changed: audit and `session_seconds`.
    fn transition(
        &self,
        actor: Option<&Principal>,
        id: &str,
        operator_reach: bool,
        change: &mut dyn FnMut(&mut Session, u64) -> Result<()>,
    ) -> Result<Session> {
        let now = self.now();
        let mut from = None;
        let mut refused = None;
        let updated = self.store.update_session(id, &mut |session| {
            if actor.is_some_and(|principal| !principal.reaches(&session.account_id, operator_reach)) {
                return Err(Error::NotFound { resource: "session" });
            }
            let status = session.status;
            let expired = session.expire_if_due(now);
            if let Err(error) = change(session, now) {
                if !expired {
                    return Err(error);
                }
                // The expiry found on the way is kept; the event is still refused.
                refused = Some(error);
            }
            from = Some(status);
            Ok(())
        })?;
        let session = updated.ok_or(Error::NotFound { resource: "session" })?;
        if let Some(from) = from.filter(|from| *from != session.status) {
            self.record_transition(actor, &session, from, now)?;
        }
        match refused {
            Some(error) => Err(error),
            None => Ok(session),
        }
    }

    fn record_transition(&self, actor: Option<&Principal>, session: &Session, from: Status, now: u64) -> Result<()> {
        let action = match session.status {
            Status::Active => "session.connected",
            Status::Completed => "session.completed",
            Status::Failed => "session.failed",
            Status::Expired => "session.expired",
            Status::Pending => "session.created",
        };
        /// A transition's detail (a struct: expiry sweeps write one per session), its members in
        /// the order a `json!` object writes them.
        #[derive(Serialize)]
        struct Moved<'a> {
            end_reason: Option<&'a str>,
            from: Status,
            to: Status,
        }
        let detail = Moved { end_reason: session.end_reason.as_deref(), from, to: session.status };
        match actor {
            Some(principal) => self.audit_event(&principal.entry, action, Some(&session.id), detail, now)?,
            // An expiry, the one transition no key makes: written behind, as denials are, since
            // a sweep writes one per session it expires, by the thousand.
            None => {
                let record = audit_json(&session.account_id, None, action, Some(&session.id), &detail, now)?;
                self.store.append_audit_behind(&session.account_id, record)?;
            }
        }
        if session.status.is_final() && session.connected_at.is_some() {
            let seconds = session.active_seconds();
            self.store.add_usage(&session.account_id, usage::SESSION_SECONDS, seconds, None, now)?;
        }
        Ok(())
    }

    /// Applies expiry to one session if it is due; returns the session.
    fn expire(&self, id: &str) -> Result<Session> {
        self.transition(None, id, true, &mut |_, _| Ok(()))
    }

    /// A session of the principal's account (`session.read`), with expiry applied.
    pub fn get_session(&self, principal: &Principal, id: &str) -> Result<Session> {
        principal.require(Operation::SessionRead)?;
        self.transition(Some(principal), id, false, &mut |_, _| Ok(()))
    }

    /// The principal's account's sessions, newest first (`session.read`), expiry applied.
    pub fn list_sessions(&self, principal: &Principal, limit: usize) -> Result<Vec<Session>> {
        principal.require(Operation::SessionRead)?;
        self.sweep()?;
        self.store.list_sessions(Some(&principal.account_id()), limit)
    }

    /// Terminates a session (`session.terminate`): PENDING/ACTIVE → COMPLETED. An ended session
    /// is returned unchanged.
    pub fn terminate_session(&self, principal: &Principal, id: &str) -> Result<Session> {
        principal.require(Operation::SessionTerminate)?;
        self.transition(Some(principal), id, false, &mut |session, now| {
            session.terminate(now);
            Ok(())
        })
    }

    /// A worker connects a session (`worker.write`) with the token its client presented: the
    /// token must verify (SPEC §7) with `sub` = `id` and `aud` = the session's worker. Moves
    /// the session PENDING → ACTIVE, once.
    pub fn connect_session(&self, principal: &Principal, id: &str, session_token: &str) -> Result<Session> {
        principal.require(Operation::WorkerWrite)?;
        let current = self.expire(id)?;
        if !principal.reaches(&current.account_id, true) {
            return Err(Error::NotFound { resource: "session" });
        }
        // A connect to a session that is not PENDING is refused for its state (SPEC §7), even
        // when its token has expired along with it.
        if current.status != Status::Pending {
            return Err(Error::InvalidTransition { from: current.status, event: "connect" });
        }
        let claims = self.verify_token(session_token, Some(&current.node_id), Some(id))?;
        if claims.acc != current.account_id {
            return Err(Error::InvalidToken { reason: token::Refusal::WrongSession });
        }
        let max_duration = self.config.sessions.max_duration_seconds * 1000;
        self.transition(Some(principal), id, true, &mut |session, now| session.connect(now, max_duration))
    }

    /// A worker reports a session's end (`worker.write`): COMPLETED or FAILED with its reason.
    pub fn end_session(&self, principal: &Principal, id: &str, request: EndSession) -> Result<Session> {
        principal.require(Operation::WorkerWrite)?;
        request.validate()?;
        self.transition(Some(principal), id, true, &mut |session, now| {
            session.end(now, request.outcome, request.reason.clone())
        })
    }

    /// Writes what the store holds back ([`Store::flush`]) now. Dropping the engine does it
    /// too; a host that keeps its engine for the life of the process calls this before it
    /// exits. An engine that opened its store from its configuration also flushes it on a
    /// thread of its own (`store.flush_ms`); with that thread off (`0`), a host that calls
    /// this more often than once a second, on a thread that may wait, keeps the write off the
    /// calls that decide requests.
    pub fn flush(&self) -> Result<()> {
        self.store.flush()
    }

    /// Expires every live session past its expiry, each audited as `session.expired`; returns
    /// how many this call expired (a sweep running at the same time may have taken some).
    pub fn sweep(&self) -> Result<usize> {
        /// Sessions expired, then audited, at a time: enough to make each store call worth its
        /// cost, few enough to stay in cache whatever the backlog.
        const BATCH: usize = 256;
        let now = self.now();
        let mut count = 0;
        loop {
            let expired = self.store.expire_due(now, BATCH)?;
            for (from, session) in &expired {
                self.record_transition(None, session, *from, now)?;
            }
            count += expired.len();
            if expired.len() < BATCH {
                return Ok(count);
            }
        }
    }

    /// Live sessions held by a key (its concurrent-session slots in use), expiry applied.
    pub fn slots_in_use(&self, key_id: &str) -> Result<u32> {
        self.sweep()?;
        self.store.slots_in_use(key_id)
    }

    // ------------------------------------------------------------------ tokens

    /// Issues a new token for a live session of the principal's account (`session.create`).
    pub fn issue_token(&self, principal: &Principal, session_id: &str) -> Result<String> {
        principal.require(Operation::SessionCreate)?;
        let session = self.transition(Some(principal), session_id, false, &mut |_, _| Ok(()))?;
        if !session.is_live() {
            return Err(Error::InvalidTransition { from: session.status, event: "issue a token for" });
        }
        Ok(self.sign_token(&session, self.now()))
    }

    /// Verifies a session token (SPEC §7) at the engine's time with its leeway; `audience` and
    /// `session_id`, when given, must match `aud` and `sub`.
    pub fn verify_token(&self, session_token: &str, audience: Option<&str>, session_id: Option<&str>) -> Result<Claims> {
        let expect = token::Expect {
            now: (self.now() / 1000) as i64,
            leeway: self.config.sessions.token_leeway_seconds as i64,
            audience,
            session_id,
        };
        self.keyring.verify(session_token, &expect).map_err(|reason| Error::InvalidToken { reason })
    }

    // ------------------------------------------------------------------ workers

    /// Registers a worker (`worker.write`, operator's keys only: workers serve every account).
    pub fn register_worker(&self, principal: &Principal, worker: Worker) -> Result<Worker> {
        principal.require(Operation::WorkerWrite)?;
        if !principal.is_operator() {
            return Err(Error::Forbidden("only the operator's keys may register workers"));
        }
        worker.validate("", |field, message| Error::InvalidRequest { field, message })?;
        self.store.insert_worker(worker.clone())?;
        self.audit_event(&principal.entry, "worker.registered", Some(&worker.node_id), json!({ "capacity": worker.capacity }), self.now())?;
        Ok(worker)
    }

    /// Changes a worker (`worker.write`, operator's keys only).
    pub fn update_worker(&self, principal: &Principal, node_id: &str, change: UpdateWorker) -> Result<Worker> {
        principal.require(Operation::WorkerWrite)?;
        if !principal.is_operator() {
            return Err(Error::Forbidden("only the operator's keys may change workers"));
        }
        let worker = self
            .store
            .update_worker(node_id, &mut |worker| change.apply(worker))?
            .ok_or(Error::NotFound { resource: "worker" })?;
        let detail = json!({ "capacity": worker.capacity, "draining": worker.draining });
        self.audit_event(&principal.entry, "worker.updated", Some(node_id), detail, self.now())?;
        Ok(worker)
    }

    /// Registered workers with their live sessions (`worker.read`).
    pub fn list_workers(&self, principal: &Principal) -> Result<Vec<WorkerStatus>> {
        principal.require(Operation::WorkerRead)?;
        self.store.workers()
    }

    // ------------------------------------------------------------------ users

    /// Creates an end user in the principal's account (`user.write`).
    pub fn create_user(&self, principal: &Principal, request: CreateUser) -> Result<User> {
        principal.require(Operation::UserWrite)?;
        request.validate()?;
        let now = self.now();
        let user = User {
            id: new_id("user_"),
            account_id: principal.account_id(),
            name: request.name,
            email: request.email,
            metadata: request.metadata.unwrap_or_else(|| json!({})),
            created_at: now,
            updated_at: now,
        };
        self.store.insert_user(user.clone())?;
        self.audit_event(&principal.entry, "user.created", Some(&user.id), json!({}), now)?;
        Ok(user)
    }

    /// A user of the principal's account (`user.read`).
    pub fn get_user(&self, principal: &Principal, id: &str) -> Result<User> {
        principal.require(Operation::UserRead)?;
        self.store
            .user(id)?
            .filter(|user| principal.reaches(&user.account_id, false))
            .ok_or(Error::NotFound { resource: "user" })
    }

    /// The principal's account's users, newest first (`user.read`).
    pub fn list_users(&self, principal: &Principal, limit: usize) -> Result<Vec<User>> {
        principal.require(Operation::UserRead)?;
        self.store.list_users(&principal.account_id(), limit)
    }

    /// Changes a user of the principal's account (`user.write`).
    pub fn update_user(&self, principal: &Principal, id: &str, change: UpdateUser) -> Result<User> {
        principal.require(Operation::UserWrite)?;
        let now = self.now();
        let user = self
            .store
            .update_user(id, &mut |user| {
                if !principal.reaches(&user.account_id, false) {
                    return Err(Error::NotFound { resource: "user" });
                }
                change.apply(user, now)
            })?
            .ok_or(Error::NotFound { resource: "user" })?;
        self.audit_event(&principal.entry, "user.updated", Some(id), json!({}), now)?;
        Ok(user)
    }

    /// Deletes a user of the principal's account (`user.write`); returns it.
    pub fn delete_user(&self, principal: &Principal, id: &str) -> Result<User> {
        principal.require(Operation::UserWrite)?;
        // Deleting needs `user.write` only (SPEC §3); another account's user is not found.
        let visible = self.store.user(id)?.is_some_and(|user| principal.reaches(&user.account_id, false));
        if !visible {
            return Err(Error::NotFound { resource: "user" });
        }
        let user = self.store.delete_user(id)?.ok_or(Error::NotFound { resource: "user" })?;
        self.audit_event(&principal.entry, "user.deleted", Some(id), json!({}), self.now())?;
        Ok(user)
    }

    // ------------------------------------------------------------------ usage

    /// Records a custom metric (`billing.write`); the same idempotency key counts once.
    pub fn record_usage(&self, principal: &Principal, request: RecordUsage) -> Result<Recorded> {
        principal.require(Operation::BillingWrite)?;
        request.validate()?;
        if request.metric == usage::REQUESTS || request.metric == usage::SESSION_SECONDS {
            return Err(Error::invalid("metric", "is metered by the engine itself"));
        }
        let (total, counted) = self.store.add_usage(
            &principal.account_id(),
            &request.metric,
            request.quantity,
            request.idempotency_key.as_deref(),
            self.now(),
        )?;
        Ok(Recorded { metric: request.metric, total, counted })
    }

    /// The principal's account's usage (`billing.read`).
    pub fn usage(&self, principal: &Principal) -> Result<Usage> {
        principal.require(Operation::BillingRead)?;
        let account = principal.account_id();
        Ok(Usage::new(&account, self.store.usage(&account)?))
    }

    /// Sets an alert on a metric of the principal's account (`billing.write`).
    pub fn create_alert(&self, principal: &Principal, request: CreateAlert) -> Result<Alert> {
        principal.require(Operation::BillingWrite)?;
        request.validate()?;
        let now = self.now();
        let alert = Alert {
            id: new_id("alert_"),
            account_id: principal.account_id(),
            metric: request.metric,
            threshold: request.threshold,
            created_at: now,
            fired_at: None,
        };
        self.store.insert_alert(alert, now)
    }

    /// The principal's account's alerts, newest first (`billing.read`).
    pub fn list_alerts(&self, principal: &Principal) -> Result<Vec<Alert>> {
        principal.require(Operation::BillingRead)?;
        self.store.alerts(&principal.account_id())
    }

    // ------------------------------------------------------------------ metrics

    /// Figures for the principal's view (`admin`): keys, sessions by status, workers.
    pub fn metrics(&self, principal: &Principal) -> Result<Metrics> {
        principal.require(Operation::Admin)?;
        let account = (!principal.is_operator()).then(|| principal.account_id());
        let keys = self.store.list_keys(account.as_deref(), usize::MAX)?.len();
        let mut sessions: std::collections::BTreeMap<String, usize> =
            Status::ALL.iter().map(|s| (s.as_str().to_owned(), 0)).collect();
        for session in self.store.list_sessions(account.as_deref(), usize::MAX)? {
            *sessions.entry(session.status.as_str().to_owned()).or_default() += 1;
        }
        Ok(Metrics { keys, sessions, workers: self.store.workers()?.len() })
    }
}
