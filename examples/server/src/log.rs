//! One structured log line per request, on stdout:
//!
//! ```json
//! {"ts":1732870000000,"method":"POST","route":"/api/v1/sessions","status":201,"key_prefix":"ak_3fQx","latency_ms":0.412}
//! ```
//!
//! The line holds the route *template* (never the path with its ids), and of the key only its
//! display prefix (`ak_` + 4), and only when the key is well-formed. Never the key, a token, the
//! `Authorization` header, a query string or a body.

use std::io::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;

/// Writes the request log, or nothing when disabled.
#[derive(Debug, Clone, Copy)]
pub struct Logger {
    enabled: bool,
}

#[derive(Serialize)]
struct Line<'a> {
    ts: u128,
    method: &'a str,
    route: Option<&'a str>,
    status: u16,
    key_prefix: Option<&'a str>,
    latency_ms: f64,
}

impl Logger {
    /// A logger writing to stdout when `enabled`.
    pub fn new(enabled: bool) -> Self {
        Logger { enabled }
    }
}

/// The display prefix of the presented key, when the `Authorization` header carries a
/// well-formed one.
pub fn key_prefix(request: &Request) -> Option<String> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let key = crate::app::bearer(value)?;
    astack::keys::is_well_formed(key).then(|| astack::keys::display_prefix(key).to_owned())
}

/// Middleware: times the request and logs one line once the response is ready. It runs after
/// routing (a [`Router::layer`](axum::Router::layer) wraps each route), so the route template is
/// the [`MatchedPath`] in the request's extensions: present for every route, a wrong method
/// (405) included, and absent only for a path that matches no route (404).
pub async fn log_request(State(logger): State<Logger>, request: Request, next: Next) -> Response {
    if !logger.enabled {
        return next.run(request).await;
    }
    let start = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let prefix = key_prefix(&request);
    let response = next.run(request).await;
    let latency_ms = (start.elapsed().as_secs_f64() * 1e6).round() / 1e3;
    let line = Line {
        ts: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis()),
        method: method.as_str(),
        route: route.as_ref().map(MatchedPath::as_str),
        status: response.status().as_u16(),
        key_prefix: prefix.as_deref(),
        latency_ms,
    };
    if let Ok(mut text) = serde_json::to_vec(&line) {
        text.push(b'\n');
        // A closed stdout must not take the server down: the line is dropped.
        let _ = std::io::stdout().lock().write_all(&text);
    }
    response
}
