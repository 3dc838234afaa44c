//! Shared setup for the integration tests: an engine on a manual clock with the operator's
//! admin key, and helpers to create keys, authorize and move time.
#![allow(dead_code)]

use std::sync::Arc;

use astack::config::SigningKeyConfig;
use astack::config::Secret;
use astack::keys::{CreateKey, CreatedKey};
use astack::limits::KeyLimits;
use astack::session::{CreateSession, CreatedSession, EndSession, Outcome, Session};
use astack::store::{MemoryStore, Store};
use astack::workers::Worker;
use astack::{Config, Engine, Error, ManualClock, Operation, Principal};

/// The start of every test's clock: 2023-11-14T22:13:20Z.
pub const T0: u64 = 1_700_000_000_000;
/// The signing secret of the test engines (32 bytes).
pub const SECRET: &str = "test-signing-secret-of-32-bytes!";

/// A default configuration with a fixed signing key.
pub fn config() -> Config {
    Config {
        signing_keys: vec![SigningKeyConfig { kid: "k1".into(), secret: Secret(SECRET.into()) }],
        ..Config::default()
    }
}

/// A worker for placement tests.
pub fn worker(node_id: &str, capacity: u32) -> Worker {
    Worker { node_id: node_id.into(), url: format!("wss://{node_id}.example"), capacity, draining: false }
}

/// An engine on a manual clock, its store, and the operator's admin key.
///
/// The store is in memory, or SQLite in a temporary directory when `ASTACK_TEST_STORE=sqlite`
/// (`make test-rust` runs the engine's suites both ways).
pub struct Fixture {
    pub engine: Engine,
    pub store: Arc<dyn Store>,
    /// Holds the SQLite store's directory until the fixture is dropped.
    pub dir: Option<tempfile::TempDir>,
    pub admin_key: String,
    /// The operator's admin (`admin:all`, account `default`).
    pub admin: Principal,
}

impl Fixture {
    pub fn new() -> Self {
        Self::with_config(config())
    }

    pub fn with_config(config: Config) -> Self {
        let (store, dir) = test_store();
        Self::with_store(config, store, dir)
    }

    /// A fixture over `store`.
    pub fn with_store(config: Config, store: Arc<dyn Store>, dir: Option<tempfile::TempDir>) -> Self {
        let engine = Engine::with_parts(config, Arc::new(ManualClock::new(T0)), store.clone()).expect("engine");
        let admin_key = engine.bootstrap_admin_key(None).expect("bootstrap").expect("generated");
        let admin = engine.authorize(&admin_key, Operation::Admin).expect("admin authorizes").principal;
        Fixture { engine, store, dir, admin_key, admin }
    }

    pub fn clock(&self) -> &ManualClock {
        self.engine.clock().as_manual().expect("manual clock")
    }

    /// Moves the clock forward; returns the new time.
    pub fn advance(&self, ms: u64) -> u64 {
        self.clock().advance(ms)
    }

    pub fn now(&self) -> u64 {
        self.engine.now()
    }

    /// Creates a key as the operator's admin.
    pub fn create(&self, request: CreateKey) -> CreatedKey {
        self.engine.create_key(&self.admin, request).expect("create key")
    }

    /// A key with these scopes in `account` (the operator's account when `None`).
    pub fn key_in(&self, account: Option<&str>, scopes: &[&str]) -> CreatedKey {
        self.create(CreateKey {
            account_id: account.map(str::to_owned),
            name: Some("test".into()),
            scopes: strings(scopes),
            ..Default::default()
        })
    }

    /// A key with these scopes in the operator's account.
    pub fn key(&self, scopes: &[&str]) -> CreatedKey {
        self.key_in(None, scopes)
    }

    /// A key with these scopes and limit overrides in `account`.
    pub fn key_with_limits(&self, account: Option<&str>, scopes: &[&str], limits: KeyLimits) -> CreatedKey {
        self.create(CreateKey {
            account_id: account.map(str::to_owned),
            scopes: strings(scopes),
            limits,
            ..Default::default()
        })
    }

    /// Authorizes, panicking with the code on a denial.
    pub fn auth(&self, key: &str, operation: Operation) -> Principal {
        match self.engine.authorize(key, operation) {
            Ok(authorization) => authorization.principal,
            Err(denial) => panic!("{operation} denied: {}", denial.error.code()),
        }
    }

    /// The code of a denial (panics if allowed).
    pub fn denied(&self, key: &str, operation: Operation) -> Error {
        match self.engine.authorize(key, operation) {
            Ok(_) => panic!("{operation} unexpectedly allowed"),
            Err(denial) => denial.error,
        }
    }

    /// A principal for the key, without going through the rate limits.
    pub fn principal(&self, created: &CreatedKey) -> Principal {
        self.engine.principal(&created.record.id).expect("principal")
    }

    /// A client key (`sessions:read`, `sessions:write`) of `account`, as a principal.
    pub fn client(&self, account: Option<&str>) -> (CreatedKey, Principal) {
        let key = self.key_in(account, &["sessions:read", "sessions:write"]);
        let principal = self.principal(&key);
        (key, principal)
    }

    /// The operator's worker key (`workers:write`, account `default`).
    pub fn operator_worker(&self) -> Principal {
        let key = self.key(&["workers:write", "workers:read"]);
        self.principal(&key)
    }

    pub fn session(&self, principal: &Principal) -> CreatedSession {
        self.engine.create_session(principal, CreateSession::new("user-1")).expect("create session")
    }

    pub fn connect(&self, worker: &Principal, created: &CreatedSession) -> Session {
        self.engine
            .connect_session(worker, &created.session.id, &created.session_token)
            .expect("connect")
    }

    pub fn end(&self, worker: &Principal, id: &str, outcome: Outcome, reason: Option<&str>) -> astack::Result<Session> {
        self.engine.end_session(worker, id, EndSession { outcome, reason: reason.map(str::to_owned) })
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

/// The store `ASTACK_TEST_STORE` names: `memory` (default) or `sqlite` (in a new temporary
/// directory, returned to be kept alive; feature `sqlite`).
pub fn test_store() -> (Arc<dyn Store>, Option<tempfile::TempDir>) {
    match std::env::var("ASTACK_TEST_STORE").as_deref() {
        #[cfg(feature = "sqlite")]
        Ok("sqlite") => {
            let dir = tempfile::tempdir().expect("temporary directory");
            let store = astack::store::SqliteStore::open(dir.path().join("astack.db")).expect("sqlite store");
            (Arc::new(store), Some(dir))
        }
        #[cfg(not(feature = "sqlite"))]
        Ok("sqlite") => panic!("ASTACK_TEST_STORE=sqlite: this build has no `sqlite` feature"),
        Ok("memory") | Err(_) => (Arc::new(MemoryStore::new()), None),
        Ok(other) => panic!("ASTACK_TEST_STORE={other}: expected memory or sqlite"),
    }
}

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Asserts that `result` failed with `code`, and returns the error.
#[track_caller]
pub fn expect_code<T: std::fmt::Debug>(result: astack::Result<T>, code: &str) -> Error {
    match result {
        Ok(value) => panic!("expected {code}, got Ok({value:?})"),
        Err(error) => {
            assert_eq!(error.code(), code, "{error}");
            error
        }
    }
}

/// Asserts an `invalid_request` naming `field`.
#[track_caller]
pub fn expect_field<T: std::fmt::Debug>(result: astack::Result<T>, field: &str) {
    match expect_code(result, "invalid_request") {
        Error::InvalidRequest { field: got, .. } => assert_eq!(got, field),
        other => panic!("{other:?}"),
    }
}

/// Asserts an `invalid_config` naming `field`.
#[track_caller]
pub fn expect_config_field<T: std::fmt::Debug>(result: astack::Result<T>, field: &str) {
    match expect_code(result, "invalid_config") {
        Error::InvalidConfig { field: got, .. } => assert_eq!(got, field),
        other => panic!("{other:?}"),
    }
}
