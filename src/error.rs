//! The one error type of the engine, with its stable codes and HTTP statuses.
//!
//! Every failure the engine reports is an [`Error`]. Its [`code`](Error::code) is a stable
//! snake_case string (SPEC §4–§9) that hosts put in their JSON errors; its
//! [`status`](Error::status) is the HTTP status those codes map to. Hosts never match on the
//! message, which is for humans and never contains a key, a token or a secret.

use serde_json::{json, Map, Value};

use crate::session::Status;
use crate::token::Refusal;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, one variant per stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No API key was presented.
    #[error("an API key is required: send `Authorization: Bearer <key>`")]
    MissingApiKey,
    /// The key is malformed or unknown.
    #[error("the API key is not valid")]
    InvalidApiKey,
    /// The key was revoked.
    #[error("the API key has been revoked")]
    ApiKeyRevoked,
    /// The key is past its expiry.
    #[error("the API key has expired")]
    ApiKeyExpired,
    /// The key may not perform the operation.
    #[error("this operation requires the `{required}` scope")]
    InsufficientScope {
        /// The scope that would allow the operation.
        required: &'static str,
    },
    /// A rate-limit window is empty.
    #[error("rate limit exceeded for the {window} window; retry in {retry_after} s")]
    RateLimited {
        /// Name of the window that refused.
        window: String,
        /// Capacity of that window.
        limit: u32,
        /// Seconds until one token is back (never 0).
        retry_after: u64,
    },
    /// The key already has its maximum of PENDING and ACTIVE sessions.
    #[error("concurrent session limit of {limit} reached")]
    ConcurrentSessionLimit {
        /// The key's concurrent-session limit.
        limit: u32,
    },
    /// A request field is missing, of the wrong type or out of range.
    #[error("invalid `{field}`: {message}")]
    InvalidRequest {
        /// Path of the offending field (`metadata`, `limits.requests_per_minute`…).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The resource does not exist or belongs to another account.
    #[error("{resource} not found")]
    NotFound {
        /// Kind of resource (`session`, `key`, `user`, `worker`).
        resource: &'static str,
    },
    /// The key may not act on that account or resource.
    #[error("{0}")]
    Forbidden(&'static str),
    /// A resource with that identity already exists.
    #[error("{resource} already exists")]
    AlreadyExists {
        /// Kind of resource.
        resource: &'static str,
    },
    /// The session's state does not allow the event.
    #[error("cannot {event} a session that is {from}")]
    InvalidTransition {
        /// The session's status.
        from: Status,
        /// The refused event (`connect`, `end`…).
        event: &'static str,
    },
    /// A session token was refused.
    #[error("the session token was refused: {}", reason.as_str())]
    InvalidToken {
        /// Why.
        reason: Refusal,
    },
    /// No worker has room for a new session.
    #[error("no worker has capacity for a new session")]
    NoWorkerAvailable,
    /// The request body is larger than a host accepts.
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// The configuration is invalid.
    #[error("invalid configuration `{field}`: {message}")]
    InvalidConfig {
        /// Path of the offending field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The state store cannot be reached.
    #[error("the state store is unavailable: {0}")]
    Unavailable(String),
    /// A bug: a panic or a broken invariant, caught at a boundary.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::MissingApiKey => "missing_api_key",
            Error::InvalidApiKey => "invalid_api_key",
            Error::ApiKeyRevoked => "api_key_revoked",
            Error::ApiKeyExpired => "api_key_expired",
            Error::InsufficientScope { .. } => "insufficient_scope",
            Error::RateLimited { .. } => "rate_limited",
            Error::ConcurrentSessionLimit { .. } => "concurrent_session_limit",
            Error::InvalidRequest { .. } => "invalid_request",
            Error::NotFound { .. } => "not_found",
            Error::Forbidden(_) => "forbidden",
            Error::AlreadyExists { .. } => "already_exists",
            Error::InvalidTransition { .. } => "invalid_transition",
            Error::InvalidToken { .. } => "invalid_token",
            Error::NoWorkerAvailable => "no_worker_available",
            Error::PayloadTooLarge => "payload_too_large",
            Error::InvalidConfig { .. } => "invalid_config",
            Error::Unavailable(_) => "unavailable",
            Error::Internal(_) => "internal_error",
        }
    }

    /// The HTTP status the code maps to.
    pub fn status(&self) -> u16 {
        match self {
            Error::MissingApiKey
            | Error::InvalidApiKey
            | Error::ApiKeyRevoked
            | Error::ApiKeyExpired
            | Error::InvalidToken { .. } => 401,
            Error::InsufficientScope { .. } | Error::Forbidden(_) => 403,
            Error::RateLimited { .. } | Error::ConcurrentSessionLimit { .. } => 429,
            Error::InvalidRequest { .. } | Error::InvalidConfig { .. } => 400,
            Error::NotFound { .. } => 404,
            Error::AlreadyExists { .. } | Error::InvalidTransition { .. } => 409,
            Error::PayloadTooLarge => 413,
            Error::NoWorkerAvailable | Error::Unavailable(_) => 503,
            Error::Internal(_) => 500,
        }
    }

    /// Machine-readable details beside `code` and `message` (the field, the required scope,
    /// `retry_after`, the token refusal `reason`…).
    pub fn details(&self) -> Map<String, Value> {
        let details = match self {
            Error::InsufficientScope { required } => json!({ "required_scopes": [required] }),
            Error::RateLimited { window, limit, retry_after } => {
                json!({ "window": window, "limit": limit, "retry_after": retry_after })
            }
            Error::ConcurrentSessionLimit { limit } => json!({ "limit": limit }),
            Error::InvalidRequest { field, .. } | Error::InvalidConfig { field, .. } => {
                json!({ "field": field })
            }
            Error::NotFound { resource } | Error::AlreadyExists { resource } => {
                json!({ "resource": resource })
            }
            Error::InvalidTransition { from, event } => json!({ "status": from, "event": event }),
            Error::InvalidToken { reason } => json!({ "reason": reason.as_str() }),
            _ => json!({}),
        };
        match details {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// The SPEC §9 body: `{"error": {"code", "message", ...details}}`.
    pub fn to_json(&self) -> Value {
        let mut body = self.details();
        body.insert("code".into(), self.code().into());
        body.insert("message".into(), self.to_string().into());
        json!({ "error": body })
    }

    /// Shorthand for an [`Error::InvalidRequest`].
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidRequest { field: field.into(), message: message.into() }
    }

    /// Shorthand for an [`Error::InvalidConfig`].
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidConfig { field: field.into(), message: message.into() }
    }
}
