//! Usage metering and alerts (SPEC §8).
//!
//! The engine meters two metrics itself, [`REQUESTS`] (authorized requests) and
//! [`SESSION_SECONDS`] (time spent ACTIVE, added when a session ends); callers with
//! `billing:write` record their own, once per idempotency key. An alert fires once, when its
//! metric's total first reaches its threshold, and records when.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::validate;

/// Authorized requests.
pub const REQUESTS: &str = "requests";
/// Seconds spent ACTIVE.
pub const SESSION_SECONDS: &str = "session_seconds";
/// Largest quantity one record may add (keeps totals exact in every host's numbers).
pub const MAX_QUANTITY: u64 = (1 << 53) - 1;

/// A custom usage record (`POST /api/v1/usage`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordUsage {
    /// Metric name: 1–64 characters of `a-z 0-9 _ . -`.
    pub metric: String,
    /// Amount to add (a whole number, at most 2^53 − 1).
    pub quantity: u64,
    /// The same key twice counts once.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

impl RecordUsage {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        check_metric(&self.metric)?;
        if self.quantity > MAX_QUANTITY {
            return Err(Error::invalid("quantity", format!("must be at most {MAX_QUANTITY}")));
        }
        if let Some(key) = &self.idempotency_key {
            validate::text("idempotency_key", key, 1, 256)?;
        }
        Ok(())
    }
}

fn check_metric(metric: &str) -> Result<()> {
    let valid = !metric.is_empty()
        && metric.len() <= 64
        && metric.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(Error::invalid("metric", "must be 1 to 64 characters of a-z 0-9 _ . -"))
    }
}

/// A request to set an alert (`POST /api/v1/usage/alerts`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAlert {
    /// The metric watched.
    pub metric: String,
    /// The total at which it fires (≥ 1).
    pub threshold: u64,
}

impl CreateAlert {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        check_metric(&self.metric)?;
        if self.threshold == 0 || self.threshold > MAX_QUANTITY {
            return Err(Error::invalid("threshold", format!("must be 1 to {MAX_QUANTITY}")));
        }
        Ok(())
    }
}

/// An alert on a metric's total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// `alert_…`.
    pub id: String,
    /// Owning account.
    pub account_id: String,
    /// The metric watched.
    pub metric: String,
    /// The total at which it fires.
    pub threshold: u64,
    /// Creation time (epoch ms).
    pub created_at: u64,
    /// When it fired, once it has.
    pub fired_at: Option<u64>,
}

/// An account's usage: every metric's total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// The account.
    pub account_id: String,
    /// Authorized requests.
    pub requests: u64,
    /// Seconds spent ACTIVE by ended sessions.
    pub session_seconds: u64,
    /// Every metric's total, the two above included.
    pub metrics: BTreeMap<String, u64>,
}

impl Usage {
    /// The report for `account_id` from its totals.
    pub fn new(account_id: &str, metrics: BTreeMap<String, u64>) -> Self {
        Usage {
            account_id: account_id.to_owned(),
            requests: metrics.get(REQUESTS).copied().unwrap_or(0),
            session_seconds: metrics.get(SESSION_SECONDS).copied().unwrap_or(0),
            metrics,
        }
    }
}
