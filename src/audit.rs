//! The audit log (SPEC §8): an append-only record of what changed and what was refused.
//!
//! A record names its actor by key id and display prefix, never by the key itself, and holds no
//! token or secret: the engine builds every record from ids and codes only.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::json;

/// One audited event, as read back from a store.
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

/// An audited event as the engine writes it: borrowed, and serialized exactly as the
/// [`AuditRecord`] it reads back as. Stores keep that JSON, so a record is built and
/// serialized once, without copying its strings.
#[derive(Debug, Serialize)]
pub struct AuditEvent<'a, D: Serialize + ?Sized> {
    /// [`AuditRecord::id`].
    pub id: &'a str,
    /// [`AuditRecord::account_id`].
    pub account_id: &'a str,
    /// [`AuditRecord::at`].
    pub at: u64,
    /// [`AuditRecord::action`].
    pub action: &'a str,
    /// [`AuditRecord::actor_key_id`].
    pub actor_key_id: Option<&'a str>,
    /// [`AuditRecord::actor_prefix`].
    pub actor_prefix: Option<&'a str>,
    /// [`AuditRecord::target`].
    pub target: Option<&'a str>,
    /// [`AuditRecord::detail`]: anything that serializes to a JSON object.
    pub detail: &'a D,
}

impl<D: Serialize + ?Sized> AuditEvent<'_, D> {
    /// Writes this event's JSON to `out`: the bytes its `Serialize` writes, in less time.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        json::Object::new(out)
            .str("id", self.id)
            .str("account_id", self.account_id)
            .int("at", self.at)
            .str("action", self.action)
            .opt_str("actor_key_id", self.actor_key_id)
            .opt_str("actor_prefix", self.actor_prefix)
            .opt_str("target", self.target)
            .value("detail", self.detail)?
            .end();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    proptest! {
        #[test]
        fn events_are_written_as_they_serialize(
            strings in proptest::array::uniform3(any::<String>()),
            actor in proptest::option::of((any::<String>(), any::<String>())),
            target in proptest::option::of(any::<String>()),
            at in any::<u64>(),
        ) {
            let [id, account_id, action] = &strings;
            let event = AuditEvent {
                id, account_id, at, action,
                actor_key_id: actor.as_ref().map(|(key, _)| key.as_str()),
                actor_prefix: actor.as_ref().map(|(_, prefix)| prefix.as_str()),
                target: target.as_deref(),
                detail: &json!({"status": "PENDING", "text": action}),
            };
            let mut written = Vec::new();
            event.write_json(&mut written).expect("writes");
            prop_assert_eq!(written, serde_json::to_vec(&event).expect("serializes"));
        }
    }

    #[test]
    fn an_event_reads_back_as_the_record_it_describes() {
        #[derive(Serialize)]
        struct Detail<'a> {
            status: &'a str,
            count: u32,
        }
        let event = AuditEvent {
            id: "aud_1",
            account_id: "acct-\"é",
            at: 42,
            action: "session.created",
            actor_key_id: Some("key_1"),
            actor_prefix: Some("ak_Ab9z"),
            target: None,
            detail: &Detail { status: "PENDING", count: 2 },
        };
        let record: AuditRecord = serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
        let expected = AuditRecord {
            id: "aud_1".into(),
            account_id: "acct-\"é".into(),
            at: 42,
            action: "session.created".into(),
            actor_key_id: Some("key_1".into()),
            actor_prefix: Some("ak_Ab9z".into()),
            target: None,
            detail: json!({"status": "PENDING", "count": 2}),
        };
        assert_eq!(record, expected);
        // And the record serializes as the event did.
        assert_eq!(serde_json::to_value(&expected).unwrap(), serde_json::to_value(&event).unwrap());
    }
}
