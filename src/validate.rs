//! Validation of input from outside: JSON documents, text fields and metadata objects.
//!
//! Every failure names the field it concerns, as a path (`limits.requests_per_minute`).

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};

/// Largest serialized `metadata` object accepted (SPEC §6).
pub const MAX_METADATA_BYTES: usize = 4096;

/// Deserializes a JSON document into `T`, naming the offending field on failure.
///
/// `make_error` builds the error from the field path and a message, so the same routine serves
/// requests (`invalid_request`) and configuration (`invalid_config`).
///
/// An object that repeats a member name (`{"a": 1, "a": 2}`) is refused, naming that member:
/// JSON leaves its meaning open (RFC 8259 §4), and two parsers that read it differently (one
/// the first value, another the last) are a classic way past a check.
pub fn from_json<T: DeserializeOwned>(
    json: &str,
    make_error: fn(String, String) -> Error,
) -> Result<T> {
    from_value(parse(json, make_error)?, make_error)
}

/// Parses a JSON document into a [`Value`] as [`from_json`] does (a repeated member name is
/// refused, naming it), for a caller that looks at the document before it deserializes it.
pub fn parse(json: &str, make_error: fn(String, String) -> Error) -> Result<Value> {
    let malformed = |e: &serde_json::Error| make_error("body".into(), clean_message(&format!("malformed JSON: {e}")));
    let mut parser = serde_json::Deserializer::from_str(json);
    let value = match serde_path_to_error::deserialize::<_, Strict>(&mut parser) {
        Ok(Strict(value)) => value,
        Err(e) if e.inner().classify() == serde_json::error::Category::Data => return Err(path_error(e, make_error)),
        Err(e) => return Err(malformed(e.inner())),
    };
    parser.end().map_err(|e| malformed(&e))?;
    Ok(value)
}

/// A JSON value read by a parser that refuses repeated member names.
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> std::result::Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> std::result::Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> std::result::Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> std::result::Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if object.contains_key(&name) {
                return Err(serde::de::Error::custom(format_args!("duplicate field `{}`", printable(&name))));
            }
            let Strict(value) = map.next_value()?;
            object.insert(name, value);
        }
        Ok(Value::Object(object))
    }
}

/// Like [`from_json`], from an already parsed value.
pub fn from_value<T: DeserializeOwned>(
    value: Value,
    make_error: fn(String, String) -> Error,
) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| path_error(e, make_error))
}

/// Names the field of a deserialization error: its path, or for an unknown or missing field
/// the path of that field itself.
fn path_error<E: std::fmt::Display>(
    error: serde_path_to_error::Error<E>,
    make_error: fn(String, String) -> Error,
) -> Error {
    let path = error.path().to_string();
    let message = clean_message(&error.into_inner().to_string());
    // An unknown or missing field is named itself, not by the object that holds it.
    let unknown = ["unknown field `", "missing field `", "duplicate field `"]
        .iter()
        .find_map(|start| message.strip_prefix(start))
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| printable(name));
    let field = match (path.as_str(), unknown) {
        (".", Some(name)) => name,
        (".", None) => "body".to_owned(),
        // serde_path_to_error already ends a nested path with the unknown field's name.
        (_, Some(name)) if path == name || path.ends_with(&format!(".{name}")) => path,
        (_, Some(name)) => format!("{path}.{name}"),
        (_, None) => path,
    };
    let message = match message.find(", expected one of") {
        Some(cut) => message[..cut].to_owned(),
        None => message,
    };
    make_error(field, message)
}

/// The `?limit=` of a list: default 50, 1 to 1,000.
pub fn page_limit(limit: Option<u64>) -> Result<usize> {
    match limit {
        None => Ok(50),
        Some(n @ 1..=1000) => Ok(n as usize),
        Some(_) => Err(Error::invalid("limit", "must be 1 to 1000")),
    }
}

/// serde's messages end with " at line L column C"; the field path says more.
fn clean_message(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// Checks a text field: `min..=max` characters and no control characters.
pub fn text(field: &str, value: &str, min: usize, max: usize) -> Result<()> {
    let chars = value.chars().count();
    if chars < min || chars > max {
        return Err(Error::invalid(field, format!("must be {min} to {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// Checks a metadata value: a JSON object of at most [`MAX_METADATA_BYTES`] serialized.
pub fn metadata(field: &str, value: &Value) -> Result<()> {
    if !value.is_object() {
        return Err(Error::invalid(field, "must be a JSON object"));
    }
    let size = serde_json::to_vec(value).map_or(usize::MAX, |bytes| bytes.len());
    if size > MAX_METADATA_BYTES {
        return Err(Error::invalid(
            field,
            format!("must be at most {MAX_METADATA_BYTES} bytes serialized"),
        ));
    }
    Ok(())
}

/// A short, escaped rendering of untrusted text for an error message.
pub fn printable(text: &str) -> String {
    const MAX: usize = 40;
    let mut shown: String = text.chars().take(MAX).flat_map(char::escape_default).collect();
    if text.chars().count() > MAX {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`parse`], checked against [`from_json`] into a `Value`: the two must agree.
    fn read(json: &str) -> Result<Value> {
        let make_error = |field, message| Error::InvalidRequest { field, message };
        let parsed = parse(json, make_error);
        assert_eq!(format!("{parsed:?}"), format!("{:?}", from_json::<Value>(json, make_error)), "{json:.20}");
        parsed
    }

    fn field(error: Error) -> String {
        match error {
            Error::InvalidRequest { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn repeated_member_names_are_refused_and_named() {
        assert_eq!(field(read(r#"{"end_user_id":"a","end_user_id":"b"}"#).unwrap_err()), "end_user_id");
        assert_eq!(field(read(r#"{"metadata":{"k":1,"k":1}}"#).unwrap_err()), "metadata.k");
        assert_eq!(field(read(r#"[{"a":1},{"b":1,"b":2}]"#).unwrap_err()), "[1].b");
        assert!(read(r#"{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}"#).is_ok());
    }

    #[test]
    fn syntax_depth_and_range_are_malformed_json() {
        for json in ["", "{", "{} {}", "[1,]", "\"\\ud800\"", &"[".repeat(100_000), "1e400", "{\"a\":1e400}"] {
            assert_eq!(field(read(json).unwrap_err()), "body", "{json:.20}");
        }
        assert!(read(&format!("{}{}", "[".repeat(100), "]".repeat(100))).unwrap()[0][0].is_array());
        assert_eq!(read("18446744073709551615").unwrap(), Value::from(u64::MAX));
        assert!(read("-9223372036854775808").unwrap().is_i64());
        assert!(read("18446744073709551616").unwrap().is_f64());
    }
}
