//! Extractors for what a request carries: its JSON body, its `?limit=` and its path id.
//!
//! Each refuses with the SPEC §9 error: `invalid_request` naming the field (`body`,
//! `content-type`, `limit`, or the body's own field path), `payload_too_large` over 64 KiB.

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;

use astack::{validate, Error};

use crate::app::ApiError;

/// Largest request body accepted: 64 KiB (SPEC §9).
pub const MAX_BODY: usize = 64 * 1024;

/// A JSON request body deserialized into `T`. An empty body stands for `{}`; a non-empty one
/// must be sent as `application/json`.
pub struct JsonBody<T>(pub T);

fn invalid_request(field: String, message: String) -> Error {
    Error::InvalidRequest { field, message }
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Reads a body of at most [`MAX_BODY`] bytes as JSON (`{}` when empty).
pub async fn read_json(request: Request) -> Result<Value, ApiError> {
    let headers = request.headers();
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(Error::PayloadTooLarge.into());
    }
    let content_type = headers.get(CONTENT_TYPE).map(|v| v.to_str().unwrap_or("")).map(str::to_owned);
    let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if too_large {
            Error::PayloadTooLarge
        } else {
            Error::invalid("body", "the request body could not be read")
        }
    })?;
    if bytes.is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    match content_type {
        Some(ct) if is_json(&ct) => {}
        _ => return Err(Error::invalid("content-type", "send the body as `Content-Type: application/json`").into()),
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| Error::invalid("body", "the body is not UTF-8"))?;
    Ok(validate::from_json::<Value>(text, invalid_request)?)
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let value = read_json(request).await?;
        Ok(JsonBody(validate::from_value(value, invalid_request)?))
    }
}

/// The `?limit=` of a list: default 50, 1 to 1,000 (other query parameters are ignored).
pub struct Page(pub usize);

impl<S: Send + Sync> FromRequestParts<S> for Page {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut limit = None;
        for pair in parts.uri.query().unwrap_or("").split('&') {
            if let Some(value) = pair.strip_prefix("limit=") {
                let n = value.parse::<u64>().map_err(|_| Error::invalid("limit", "must be an integer from 1 to 1000"))?;
                limit = Some(n);
            }
        }
        Ok(Page(validate::page_limit(limit)?))
    }
}

/// The `{id}` (or `{node_id}`) segment of the path, percent-decoded.
pub struct Id(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(Id(id)),
            Err(_) => Err(Error::invalid("id", "the path segment is not valid UTF-8").into()),
        }
    }
}
