//! Extractors for what a request carries: its JSON body, its `?limit=` and its path id.
//!
//! Each refuses with the SPEC §9 error: `invalid_request` naming the field (`body`,
//! `content-type`, `limit`, or the body's own field path), `payload_too_large` over 64 KiB.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use bytes::BytesMut;
use http_body_util::BodyExt;
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

/// Most bytes read (and thrown away) from a body found too large, so that the client, still
/// sending, gets to read the 413 instead of a reset connection.
const MAX_DRAIN: usize = 1024 * 1024;

/// Reads a body of at most [`MAX_BODY`] bytes: its bytes, or `PayloadTooLarge`.
async fn read_limited(body: Body, declared: Option<u64>) -> Result<Bytes, Error> {
    if declared.is_some_and(|n| n > MAX_DRAIN as u64) {
        return Err(Error::PayloadTooLarge);
    }
    let mut body = body;
    let mut buffer = BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Error::invalid("body", "the request body could not be read"))?;
        let Ok(data) = frame.into_data() else { continue };
        seen += data.len();
        if seen > MAX_DRAIN {
            break;
        }
        if seen <= MAX_BODY {
            buffer.extend_from_slice(&data);
        }
    }
    if seen > MAX_BODY {
        return Err(Error::PayloadTooLarge);
    }
    Ok(buffer.freeze())
}

/// Left in a request's extensions when its body was refused while being buffered.
#[derive(Clone)]
struct BodyRefused(Error);

/// Middleware on every request: reads its whole body (up to [`MAX_BODY`]) before routing, so
/// that no body is left unread on the connection whatever the route does with it (an unread body
/// makes the server close a keep-alive connection under the client). A body found too large is
/// dropped and remembered: [`JsonBody`] refuses it after authorization, so that a request without
/// a valid key still answers 401 first.
pub async fn buffer_body(request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = match read_limited(body, declared).await {
        Ok(bytes) => Body::from(bytes),
        Err(error) => {
            parts.extensions.insert(BodyRefused(error));
            Body::empty()
        }
    };
    next.run(Request::from_parts(parts, body)).await
}

/// Reads a body (buffered by [`buffer_body`]) as a JSON object (`{}` when empty).
pub async fn read_json(request: Request) -> Result<Value, ApiError> {
    if let Some(BodyRefused(error)) = request.extensions().get::<BodyRefused>() {
        return Err(error.clone().into());
    }
    let content_type = request.headers().get(CONTENT_TYPE).map(|v| v.to_str().unwrap_or("")).map(str::to_owned);
    let bytes = read_limited(request.into_body(), None).await?;
    if bytes.is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    match content_type {
        Some(ct) if is_json(&ct) => {}
        _ => return Err(Error::invalid("content-type", "send the body as `Content-Type: application/json`").into()),
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| Error::invalid("body", "the body is not UTF-8"))?;
    match validate::parse(text, invalid_request)? {
        object @ Value::Object(_) => Ok(object),
        _ => Err(Error::invalid("body", "the body must be a JSON object").into()),
    }
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
