//! A session as the in-memory store keeps it: a few pointers and integers in one block, its
//! own strings in another, and what many sessions share (their key and account, their worker)
//! behind [`Arc`]s interned by the session table.
//!
//! The store keeps every session it is given, so their size is its memory. As a [`Session`] a
//! typical one is about 700 bytes in ten blocks; packed it is about 150 in two, and storing it
//! copies no shared string.

use std::sync::Arc;

use serde_json::Value;

use crate::session::{ConnectionType, Quality, Session, Status};

/// The key a session was created with, and its account: shared by that key's sessions.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Owner {
    pub(super) key_id: String,
    pub(super) account_id: String,
}

impl Owner {
    /// Whether this is `session`'s owner.
    pub(super) fn owns(&self, session: &Session) -> bool {
        self.key_id == session.key_id && self.account_id == session.account_id
    }
}

/// The worker a session is placed on: shared by that worker's sessions.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Placement {
    pub(super) node_id: String,
    pub(super) worker_url: String,
}

impl Placement {
    /// Whether this is `session`'s placement.
    pub(super) fn places(&self, session: &Session) -> bool {
        self.node_id == session.node_id && self.worker_url == session.worker_url
    }
}

/// A stored session. [`Compact::new`] and [`Compact::session`] are inverses.
#[derive(Debug)]
pub(super) struct Compact {
    owner: Arc<Owner>,
    placement: Arc<Placement>,
    /// The end user, the features, then the end reason if any: each a little-endian `u32`
    /// length and that many bytes of UTF-8.
    text: Box<[u8]>,
    /// `None` for the empty object (the default).
    metadata: Option<Box<Value>>,
    created_at: u64,
    expires_at: u64,
    connected_at: Option<u64>,
    ended_at: Option<u64>,
    features: u32,
    status: Status,
    connection_type: ConnectionType,
    quality: Quality,
    has_end_reason: bool,
}

const LEN: usize = std::mem::size_of::<u32>();

fn push_text(text: &mut Vec<u8>, s: &str) {
    let len = u32::try_from(s.len()).expect("a session's strings are validated far below 4 GiB");
    text.extend_from_slice(&len.to_le_bytes());
    text.extend_from_slice(s.as_bytes());
}

/// Reads the strings [`push_text`] wrote, in order.
struct Texts<'a>(&'a [u8]);

impl<'a> Iterator for Texts<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.0.is_empty() {
            return None;
        }
        let (len, rest) = self.0.split_at(LEN);
        let (s, rest) = rest.split_at(u32::from_le_bytes(len.try_into().expect("a length")) as usize);
        self.0 = rest;
        Some(std::str::from_utf8(s).expect("written from a str"))
    }
}

impl Compact {
    /// Packs `session`, whose owner and placement are `owner` and `placement` (the caller has
    /// interned them).
    pub(super) fn new(session: &Session, owner: Arc<Owner>, placement: Arc<Placement>) -> Self {
        debug_assert!(owner.owns(session) && placement.places(session));
        let strings = std::iter::once(&session.end_user_id).chain(&session.features).chain(&session.end_reason);
        let mut text = Vec::with_capacity(strings.clone().map(|s| LEN + s.len()).sum());
        strings.for_each(|s| push_text(&mut text, s));
        let empty = session.metadata.as_object().is_some_and(serde_json::Map::is_empty);
        Compact {
            owner,
            placement,
            text: text.into_boxed_slice(),
            metadata: (!empty).then(|| Box::new(session.metadata.clone())),
            created_at: session.created_at,
            expires_at: session.expires_at,
            connected_at: session.connected_at,
            ended_at: session.ended_at,
            features: u32::try_from(session.features.len()).expect("features are validated"),
            status: session.status,
            connection_type: session.connection_type,
            quality: session.quality,
            has_end_reason: session.end_reason.is_some(),
        }
    }

    /// Whether this is `session` packed (its id aside).
    pub(super) fn describes(&self, session: &Session) -> bool {
        let strings = std::iter::once(&session.end_user_id).chain(&session.features).chain(&session.end_reason);
        let metadata = match &self.metadata {
            Some(metadata) => **metadata == session.metadata,
            None => session.metadata.as_object().is_some_and(serde_json::Map::is_empty),
        };
        self.owner.owns(session)
            && self.placement.places(session)
            && self.status == session.status
            && self.connection_type == session.connection_type
            && self.quality == session.quality
            && (self.created_at, self.expires_at) == (session.created_at, session.expires_at)
            && (self.connected_at, self.ended_at) == (session.connected_at, session.ended_at)
            && self.features as usize == session.features.len()
            && self.has_end_reason == session.end_reason.is_some()
            && Texts(&self.text).eq(strings.map(String::as_str))
            && metadata
    }

    /// Whether it holds a slot (PENDING or ACTIVE).
    pub(super) fn is_live(&self) -> bool {
        !self.status.is_final()
    }

    pub(super) fn expires_at(&self) -> u64 {
        self.expires_at
    }

    pub(super) fn owner(&self) -> &Arc<Owner> {
        &self.owner
    }

    pub(super) fn placement(&self) -> &Arc<Placement> {
        &self.placement
    }

    /// Unpacks the session with this id.
    pub(super) fn session(&self, id: String) -> Session {
        let mut texts = Texts(&self.text);
        let end_user_id = texts.next().expect("the end user").to_owned();
        let features = texts.by_ref().take(self.features as usize).map(str::to_owned).collect();
        let end_reason = self.has_end_reason.then(|| texts.next().expect("the end reason").to_owned());
        Session {
            id,
            account_id: self.owner.account_id.clone(),
            status: self.status,
            end_user_id,
            connection_type: self.connection_type,
            quality: self.quality,
            features,
            metadata: self.metadata.as_deref().cloned().unwrap_or_else(|| Value::Object(serde_json::Map::new())),
            key_id: self.owner.key_id.clone(),
            node_id: self.placement.node_id.clone(),
            worker_url: self.placement.worker_url.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            connected_at: self.connected_at,
            ended_at: self.ended_at,
            end_reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn session() -> Session {
        Session {
            id: "sess_1".into(),
            account_id: "acct-é".into(),
            status: Status::Pending,
            end_user_id: "user_123".into(),
            connection_type: ConnectionType::Webrtc,
            quality: Quality::High,
            features: vec!["vision".into(), "transcription".into()],
            metadata: json!({}),
            key_id: "key_1".into(),
            node_id: "w1".into(),
            worker_url: "ws://w1".into(),
            created_at: 1,
            expires_at: 2,
            connected_at: None,
            ended_at: None,
            end_reason: None,
        }
    }

    fn owner(session: &Session) -> Arc<Owner> {
        Arc::new(Owner { key_id: session.key_id.clone(), account_id: session.account_id.clone() })
    }

    fn placement(session: &Session) -> Arc<Placement> {
        Arc::new(Placement { node_id: session.node_id.clone(), worker_url: session.worker_url.clone() })
    }

    fn round_trip(session: &Session) -> Session {
        Compact::new(session, owner(session), placement(session)).session(session.id.clone())
    }

    #[test]
    fn every_field_comes_back() {
        let mut s = session();
        assert_eq!(round_trip(&s), s);
        s.status = Status::Completed;
        s.features.clear();
        s.end_user_id = String::new();
        s.metadata = json!({"tier": "gold", "nested": {"list": [1, "two", null]}});
        s.connected_at = Some(3);
        s.ended_at = Some(4);
        s.end_reason = Some("the caller hung up — \"bye\"".into());
        assert_eq!(round_trip(&s), s);
        s.features = vec![String::new(), "x".repeat(70_000)];
        s.end_reason = Some(String::new());
        assert_eq!(round_trip(&s), s);
    }

    #[test]
    fn it_describes_only_its_own_session() {
        let s = session();
        let compact = Compact::new(&s, owner(&s), placement(&s));
        assert!(compact.describes(&s));
        let changes: [fn(&mut Session); 10] = [
            |s| s.status = Status::Active,
            |s| s.end_user_id.push('x'),
            |s| drop(s.features.pop()),
            |s| s.features[1] = "vision".into(),
            |s| s.metadata = json!({"a": 1}),
            |s| s.expires_at += 1,
            |s| s.connected_at = Some(2),
            |s| s.end_reason = Some(String::new()),
            |s| s.key_id.push('x'),
            |s| s.worker_url.push('x'),
        ];
        for change in changes {
            let mut other = s.clone();
            change(&mut other);
            assert!(!compact.describes(&other), "{other:?}");
        }
    }

    #[test]
    fn a_typical_session_is_small() {
        let s = session();
        let compact = Compact::new(&s, owner(&s), placement(&s));
        assert!(std::mem::size_of::<Compact>() <= 112, "{}", std::mem::size_of::<Compact>());
        assert_eq!(compact.text.len(), 3 * LEN + "user_123visiontranscription".len());
        assert!(compact.metadata.is_none());
    }
}
