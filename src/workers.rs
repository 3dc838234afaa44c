//! Workers and session placement (SPEC §6).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Most capacity a worker may declare.
pub const MAX_CAPACITY: u32 = 1_000_000;

/// A worker node that hosts sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Worker {
    /// Its id (the `aud` of its sessions' tokens).
    pub node_id: String,
    /// Where clients connect (`ws://`, `wss://`, `http://` or `https://`).
    pub url: String,
    /// Most PENDING and ACTIVE sessions at once.
    pub capacity: u32,
    /// A draining worker takes no new sessions.
    #[serde(default)]
    pub draining: bool,
}

impl Worker {
    /// Checks every field; `prefix` is the path of this object.
    pub fn validate(&self, prefix: &str, error: fn(String, String) -> Error) -> Result<()> {
        let field = |name: &str| if prefix.is_empty() { name.to_owned() } else { format!("{prefix}.{name}") };
        if self.node_id.is_empty()
            || self.node_id.len() > 128
            || !self.node_id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(error(field("node_id"), "must be 1 to 128 characters of A-Z a-z 0-9 . _ -".into()));
        }
        validate_url(&self.url).map_err(|message| error(field("url"), message))?;
        if self.capacity == 0 || self.capacity > MAX_CAPACITY {
            return Err(error(field("capacity"), format!("must be 1 to {MAX_CAPACITY}")));
        }
        Ok(())
    }
}

fn validate_url(url: &str) -> std::result::Result<(), String> {
    let scheme_ok = ["ws://", "wss://", "http://", "https://"].iter().any(|s| url.starts_with(s));
    if !scheme_ok || url.len() > 2048 || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must be a ws, wss, http or https URL of at most 2048 characters".into());
    }
    Ok(())
}

/// A change to a worker (`PATCH /api/v1/workers/:node_id`); absent fields stay.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateWorker {
    /// New URL.
    #[serde(default)]
    pub url: Option<String>,
    /// New capacity.
    #[serde(default)]
    pub capacity: Option<u32>,
    /// Start or stop draining.
    #[serde(default)]
    pub draining: Option<bool>,
}

impl UpdateWorker {
    /// The worker with this change applied, validated.
    pub fn apply(&self, worker: &Worker) -> Result<Worker> {
        let updated = Worker {
            node_id: worker.node_id.clone(),
            url: self.url.clone().unwrap_or_else(|| worker.url.clone()),
            capacity: self.capacity.unwrap_or(worker.capacity),
            draining: self.draining.unwrap_or(worker.draining),
        };
        updated.validate("", |field, message| Error::InvalidRequest { field, message })?;
        Ok(updated)
    }
}

/// A worker as listed: the worker and its live sessions.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerStatus {
    /// The worker.
    #[serde(flatten)]
    pub worker: Worker,
    /// Sessions placed on it in PENDING or ACTIVE.
    pub active_sessions: u32,
}

/// Chooses the worker for a new session: among registered workers that are not draining and
/// have room, the one with the most free capacity, ties going to the earliest registered.
/// With no worker registered, `default` is used, within its capacity.
/// `load` gives the live sessions on a node.
pub fn place<'a>(
    workers: &'a [Worker],
    default: &'a Worker,
    load: impl Fn(&str) -> u32,
) -> Result<&'a Worker> {
    let candidates: &[Worker] = if workers.is_empty() { std::slice::from_ref(default) } else { workers };
    let mut best: Option<(&Worker, u32)> = None;
    for worker in candidates.iter().filter(|w| !w.draining) {
        let free = worker.capacity.saturating_sub(load(&worker.node_id));
        if free > 0 && best.map_or(true, |(_, most)| free > most) {
            best = Some((worker, free));
        }
    }
    best.map(|(worker, _)| worker).ok_or(Error::NoWorkerAvailable)
}
