//! The audit log (SPEC §8): an append-only record of what changed and what was refused.
//!
//! A record names its actor by key id and display prefix, never by the key itself, and holds no
//! token or secret: the engine builds every record from ids and codes only.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One audited event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// `aud_…`.
    pub id: String,
    /// Account the event belongs to.
    pub account_id: String,
    /// When (epoch ms).
    pub at: u64,
    /// What happened: `key.created`, `session.connected`, `request.denied`…
    pub action: String,
    /// The acting key's id, if any.
    pub actor_key_id: Option<String>,
    /// The acting key's display prefix (`ak_` + 4), if any.
    pub actor_prefix: Option<String>,
    /// The resource acted on (`sess_…`, `key_…`…), if any.
    pub target: Option<String>,
    /// Event details (codes, statuses, operation names).
    pub detail: Value,
}
