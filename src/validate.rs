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
pub fn from_json<T: DeserializeOwned>(
    json: &str,
    make_error: fn(String, String) -> Error,
) -> Result<T> {
    let value: Value = serde_json::from_str(json)
        .map_err(|e| make_error("body".into(), clean_message(&format!("malformed JSON: {e}"))))?;
    from_value(value, make_error)
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
    let unknown = ["unknown field `", "missing field `"]
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
