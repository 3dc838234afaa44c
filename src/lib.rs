//! # astack
//!
//! The control plane of a realtime voice/vision AI session service, as a library: API keys
//! stored only as digests, scopes and legacy permission flags, per-key token-bucket rate limits
//! and concurrent-session slots, the session state machine with its TTLs, HS256 session tokens,
//! worker placement, users, usage metering with alerts, and an audit log.
//!
//! Start with [`Engine`]: build it from a [`Config`] (or its JSON, SPEC §11), call
//! [`Engine::authorize`] for each request, then act through the returned [`Principal`].
//!
//! ```
//! use astack::{Engine, Config, Operation, session::CreateSession};
//!
//! let engine = Engine::new(Config::default())?;
//! let admin_key = engine.bootstrap_admin_key(None)?.expect("generated");
//! let admin = engine.authorize(&admin_key, Operation::SessionCreate).map_err(|d| d.error)?;
//! let created = engine.create_session(&admin.principal, CreateSession::new("user-42"))?;
//! assert_eq!(created.session.status, astack::session::Status::Pending);
//! # Ok::<(), astack::Error>(())
//! ```

#![deny(missing_docs)]

pub mod audit;
pub mod clock;
pub mod config;
pub mod engine;
pub mod error;
pub mod ffi;
mod json;
pub mod keys;
pub mod limits;
pub mod scopes;
pub mod session;
pub mod store;
pub mod token;
pub mod usage;
pub mod users;
pub mod validate;
pub mod workers;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::Config;
pub use engine::{Authorization, Denial, Engine, Principal, OPERATOR_ACCOUNT};
pub use error::{Error, Result};
pub use scopes::{Operation, Permission, Scope};

/// The crate version, as in `Cargo.toml`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
