//! A writer for the JSON objects the engine makes on every session created (the token's claims,
//! the audit record): keys are literals, integers go through `itoa`, and a string is copied as
//! it is unless something in it needs escaping, when `serde_json` writes it. The bytes are
//! exactly `serde_json`'s (the tests of each object compare them); what is skipped is serde's
//! per-field machinery, about a third of a record's instructions.

use serde::Serialize;

/// One JSON object being written to `out`; [`Object::end`] closes it.
pub(crate) struct Object<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Object<'a> {
    /// Opens an object at the end of `out`.
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, empty: true }
    }

    /// Writes `"key":`. Keys are literals that need no escaping.
    fn key(&mut self, key: &'static str) -> &mut Vec<u8> {
        debug_assert!(!needs_escape(key), "{key:?} needs escaping");
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    /// A string member.
    pub(crate) fn str(&mut self, key: &'static str, value: &str) -> &mut Self {
        string(self.key(key), value);
        self
    }

    /// A string member, or `null`.
    pub(crate) fn opt_str(&mut self, key: &'static str, value: Option<&str>) -> &mut Self {
        match value {
            Some(value) => self.str(key, value),
            None => {
                self.key(key).extend_from_slice(b"null");
                self
            }
        }
    }

    /// An array of strings.
    pub(crate) fn strs(&mut self, key: &'static str, values: &[String]) -> &mut Self {
        let out = self.key(key);
        out.push(b'[');
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string(out, value);
        }
        out.push(b']');
        self
    }

    /// An integer member.
    pub(crate) fn int(&mut self, key: &'static str, value: impl itoa::Integer) -> &mut Self {
        self.key(key).extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self
    }

    /// A member of any serializable value, written by `serde_json`.
    pub(crate) fn value(&mut self, key: &'static str, value: &(impl Serialize + ?Sized)) -> serde_json::Result<&mut Self> {
        serde_json::to_writer(&mut *self.key(key), value)?;
        Ok(self)
    }

    /// Closes the object.
    pub(crate) fn end(&mut self) {
        self.out.push(b'}');
    }
}

/// Whether `serde_json` would escape anything in `s`: a quote, a backslash or a control
/// character (it leaves every other character as it is).
fn needs_escape(s: &str) -> bool {
    // `fold` rather than `any`: no early exit, so the compiler checks many bytes at a time.
    s.bytes().fold(false, |found, b| found | (b < 0x20) | (b == b'"') | (b == b'\\'))
}

/// Writes `s` as a JSON string.
fn string(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s) {
        serde_json::to_writer(out, s).expect("writing to a Vec cannot fail");
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn object(write: impl FnOnce(&mut Object<'_>)) -> String {
        let mut out = Vec::new();
        let mut object = Object::new(&mut out);
        write(&mut object);
        object.end();
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn every_member_kind_is_written_as_serde_json_writes_it() {
        let features = vec!["vision".to_owned(), "a\"b".to_owned()];
        let written = object(|o| {
            o.str("s", "plain").opt_str("none", None).opt_str("some", Some("x\\y")).strs("list", &features);
            o.strs("empty", &[]).int("neg", -42i64).int("max", u64::MAX);
            o.value("detail", &json!({"k": [1, null]})).expect("serializes");
        });
        let expected = json!({
            "s": "plain", "none": null, "some": "x\\y", "list": features, "empty": [],
            "neg": -42, "max": u64::MAX, "detail": {"k": [1, null]},
        });
        // serde_json's map keeps keys sorted; compare as values, then the exact text of one.
        assert_eq!(serde_json::from_str::<serde_json::Value>(&written).expect("JSON"), expected);
        assert_eq!(object(|o| {
            o.str("a", "é\u{1}").int("b", 1u8);
        }), r#"{"a":"é\u0001","b":1}"#);
        assert_eq!(object(|_| {}), "{}");
    }

    proptest! {
        #[test]
        fn any_string_is_written_as_serde_json_writes_it(s in any::<String>()) {
            let mut out = Vec::new();
            string(&mut out, &s);
            prop_assert_eq!(out, serde_json::to_vec(&s).expect("serializes"));
        }
    }
}
