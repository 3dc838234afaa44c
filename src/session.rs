//! Sessions (SPEC §6): the create request, the record and its state machine.
//!
//! ```text
//! (new) ──create──▶ PENDING ──connect──▶ ACTIVE
//!                      │                    │
//!                      ├── end/terminate ───┴──▶ COMPLETED
//!                      ├── worker error ────────▶ FAILED
//!                      └── clock ≥ expires_at ──▶ EXPIRED (ended_at = expires_at)
//! ```
//! COMPLETED, FAILED and EXPIRED are final. Every transition here is a pure function of the
//! session and `now`; the engine applies them atomically through its store.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::scopes::string_enum;
use crate::validate;

string_enum! {
    /// A session's state.
    Status {
        /// Created, waiting for its worker to connect.
        Pending = "PENDING",
        /// Connected to its worker.
        Active = "ACTIVE",
        /// Ended normally or terminated (final).
        Completed = "COMPLETED",
        /// Ended by a worker error (final).
        Failed = "FAILED",
        /// Passed its expiry (final).
        Expired = "EXPIRED",
    }
}

impl Status {
    /// Whether no transition can leave this state.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Completed | Status::Failed | Status::Expired)
    }
}

string_enum! {
    /// How the client reaches its worker.
    ConnectionType {
        /// WebSocket (default).
        Websocket = "websocket",
        /// WebRTC.
        Webrtc = "webrtc",
    }
}

string_enum! {
    /// Media quality.
    Quality {
        /// Low.
        Low = "low",
        /// Standard (default).
        Standard = "standard",
        /// High.
        High = "high",
    }
}

string_enum! {
    /// How a worker reports a session's end.
    Outcome {
        /// A normal end: COMPLETED.
        Completed = "completed",
        /// An error: FAILED.
        Failed = "failed",
    }
}

/// Longest `end_user_id`.
pub const MAX_END_USER_ID: usize = 128;
/// Longest `end_reason`.
pub const MAX_REASON: usize = 512;

/// A request to create a session (`POST /api/v1/sessions`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// The end user the session is for (1–128 characters, no control characters).
    pub end_user_id: String,
    /// `websocket` (default) or `webrtc`.
    #[serde(default = "default_connection")]
    pub connection_type: ConnectionType,
    /// `low`, `standard` (default) or `high`.
    #[serde(default = "default_quality")]
    pub quality: Quality,
    /// Distinct names from the engine's feature catalog.
    #[serde(default)]
    pub features: Vec<String>,
    /// A JSON object of at most 4 KiB serialized.
    #[serde(default)]
    pub metadata: Option<Value>,
}

fn default_connection() -> ConnectionType {
    ConnectionType::Websocket
}

fn default_quality() -> Quality {
    Quality::Standard
}

impl CreateSession {
    /// A request for `end_user_id` with every default.
    pub fn new(end_user_id: impl Into<String>) -> Self {
        CreateSession {
            end_user_id: end_user_id.into(),
            connection_type: default_connection(),
            quality: default_quality(),
            features: Vec::new(),
            metadata: None,
        }
    }

    /// Checks every field against SPEC §6 and the feature `catalog`.
    pub fn validate(&self, catalog: &[String]) -> Result<()> {
        validate::text("end_user_id", &self.end_user_id, 1, MAX_END_USER_ID)?;
        for (i, feature) in self.features.iter().enumerate() {
            if !catalog.iter().any(|f| f == feature) {
                return Err(Error::invalid(
                    format!("features[{i}]"),
                    format!("unknown feature `{}`", validate::printable(feature)),
                ));
            }
            if self.features[..i].contains(feature) {
                return Err(Error::invalid(format!("features[{i}]"), "features must be distinct"));
            }
        }
        if let Some(metadata) = &self.metadata {
            validate::metadata("metadata", metadata)?;
        }
        Ok(())
    }
}

/// A request from a worker to end a session (`POST /api/v1/sessions/:id/end`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndSession {
    /// `completed` or `failed`.
    pub outcome: Outcome,
    /// Why (kept as `end_reason`).
    #[serde(default)]
    pub reason: Option<String>,
}

impl EndSession {
    /// Checks the reason's length and characters.
    pub fn validate(&self) -> Result<()> {
        match &self.reason {
            Some(reason) => validate::text("reason", reason, 0, MAX_REASON),
            None => Ok(()),
        }
    }
}

/// A session record. Times are Unix epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// `sess_…`.
    pub id: String,
    /// Owning account.
    pub account_id: String,
    /// Current state.
    pub status: Status,
    /// The end user.
    pub end_user_id: String,
    /// Transport.
    pub connection_type: ConnectionType,
    /// Quality.
    pub quality: Quality,
    /// Features enabled.
    pub features: Vec<String>,
    /// Caller's metadata object.
    pub metadata: Value,
    /// The key that created it (its concurrent-session slot).
    pub key_id: String,
    /// The worker it is placed on.
    pub node_id: String,
    /// Where the client connects.
    pub worker_url: String,
    /// Creation time.
    pub created_at: u64,
    /// When it expires unless it moves on first.
    pub expires_at: u64,
    /// When its worker connected.
    pub connected_at: Option<u64>,
    /// When it reached a final state.
    pub ended_at: Option<u64>,
    /// Why it ended.
    pub end_reason: Option<String>,
}

impl Session {
    /// A new session of `request`, made by the key `key_id` of `account_id`: `PENDING` from
    /// `created_at` until `expires_at`, not yet placed on a worker (`node_id` and `worker_url`
    /// empty); metadata left out is `{}`.
    pub fn pending(id: String, account_id: String, key_id: String, request: CreateSession, created_at: u64, expires_at: u64) -> Self {
        Session {
            id,
            account_id,
            status: Status::Pending,
            end_user_id: request.end_user_id,
            connection_type: request.connection_type,
            quality: request.quality,
            features: request.features,
            metadata: request.metadata.unwrap_or_else(|| Value::Object(Default::default())),
            key_id,
            node_id: String::new(),
            worker_url: String::new(),
            created_at,
            expires_at,
            connected_at: None,
            ended_at: None,
            end_reason: None,
        }
    }

    /// Whether it holds a concurrent-session slot (PENDING or ACTIVE).
    pub fn is_live(&self) -> bool {
        !self.status.is_final()
    }

    /// Applies expiry: a live session whose `expires_at` has passed becomes EXPIRED with
    /// `ended_at = expires_at`. Returns whether it changed.
    pub fn expire_if_due(&mut self, now: u64) -> bool {
        if self.is_live() && now >= self.expires_at {
            self.status = Status::Expired;
            self.ended_at = Some(self.expires_at);
            self.end_reason = Some("expired".into());
            return true;
        }
        false
    }

    /// PENDING → ACTIVE, expiring `max_duration_ms` after `now`.
    pub fn connect(&mut self, now: u64, max_duration_ms: u64) -> Result<()> {
        self.expire_if_due(now);
        if self.status != Status::Pending {
            return Err(Error::InvalidTransition { from: self.status, event: "connect" });
        }
        self.status = Status::Active;
        self.connected_at = Some(now);
        self.expires_at = now.saturating_add(max_duration_ms);
        Ok(())
    }

    /// PENDING/ACTIVE → COMPLETED or FAILED, as the worker reports.
    pub fn end(&mut self, now: u64, outcome: Outcome, reason: Option<String>) -> Result<()> {
        self.expire_if_due(now);
        if !self.is_live() {
            return Err(Error::InvalidTransition { from: self.status, event: "end" });
        }
        self.status = match outcome {
            Outcome::Completed => Status::Completed,
            Outcome::Failed => Status::Failed,
        };
        self.ended_at = Some(now);
        self.end_reason = reason.or_else(|| Some(outcome.as_str().into()));
        Ok(())
    }

    /// Terminate (DELETE): PENDING/ACTIVE → COMPLETED; an ended session is left unchanged so
    /// that retries are safe. Returns whether it changed.
    pub fn terminate(&mut self, now: u64) -> bool {
        self.expire_if_due(now);
        if !self.is_live() {
            return false;
        }
        self.status = Status::Completed;
        self.ended_at = Some(now);
        self.end_reason = Some("terminated".into());
        true
    }

    /// Whole seconds spent ACTIVE, once ended.
    pub fn active_seconds(&self) -> u64 {
        match (self.connected_at, self.ended_at) {
            (Some(from), Some(to)) => to.saturating_sub(from) / 1000,
            _ => 0,
        }
    }
}

/// A new session as returned by create: the record and its token.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedSession {
    /// The session.
    #[serde(flatten)]
    pub session: Session,
    /// The session token for the client to present to its worker.
    pub session_token: String,
}
