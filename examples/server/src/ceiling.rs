//! BENCHMARK ONLY (`--no-engine`): the same HTTP stack with the engine taken out, to measure
//! what the stack itself can serve.
//!
//! The session routes answer canned sessions of the real shape, through the same layers (request
//! log, panic guard, JSON fallbacks), the same body extractor and the same header writing; only
//! the engine's work is skipped: no key lookup, no scopes, no rate limits, no state, no token
//! signing. Nothing here checks anything: never serve with it.
//!
//! Two stand-ins for the engine, to find how much of its work the stack's ceiling allows at a
//! given ratio (`benches/server/budget.sh`): with `--ceiling-work-ns N`, each session created
//! first spins N nanoseconds (the engine's CPU time); with `--ceiling-keep-bytes N`, it keeps N
//! bytes, never freed (the memory the engine keeps per session: the session, its indexes and
//! its audit record, which the kernel must find and zero pages for).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use astack::limits::Headers;
use astack::session::{CreateSession, CreatedSession, Session, Status};
use astack::Error;

use crate::app::{bearer, set_rate_headers, ApiError};
use crate::body::{Id, JsonBody};
use crate::log::Logger;

/// A fixed stand-in for a signed session token, of a real token's length.
const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImRlZmF1bHQifQ.eyJpc3MiOiJhc3RhY2siLCJzdWIiOiJzZXNzXzAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwIiwiYXVkIjoibG9jYWwiLCJhY2MiOiJkZWZhdWx0IiwidWlkIjoidXNlcl8xMjMiLCJmZWF0dXJlcyI6WyJ2aXNpb24iLCJ0cmFuc2NyaXB0aW9uIl0sInF1YWxpdHkiOiJoaWdoIiwiaWF0IjoxNzAwMDAwMDAwLCJuYmYiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMDMwMCwianRpIjoiMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAifQ.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmUtc2k";

fn session(id: String, request: CreateSession) -> Session {
    Session {
        id,
        account_id: "default".into(),
        status: Status::Pending,
        end_user_id: request.end_user_id,
        connection_type: request.connection_type,
        quality: request.quality,
        features: request.features,
        metadata: request.metadata.unwrap_or_else(|| json!({})),
        key_id: "key_00000000000000000000000000000000".into(),
        node_id: "local".into(),
        worker_url: "ws://127.0.0.1:8081".into(),
        created_at: 1_700_000_000_000,
        expires_at: 1_700_000_300_000,
        connected_at: None,
        ended_at: None,
        end_reason: None,
    }
}

/// What the ceiling does for each session created, in place of the engine's work.
#[derive(Clone, Copy)]
pub struct StandIn {
    work: Duration,
    keep: usize,
    /// What was kept, for as long as the process lives (as the engine keeps its sessions).
    kept: &'static Mutex<Vec<Box<[u8]>>>,
}

impl StandIn {
    /// Spins `work`, then keeps `keep` bytes, for each session created.
    pub fn new(work: Duration, keep: usize) -> Self {
        StandIn { work, keep, kept: Box::leak(Box::default()) }
    }

    fn run(&self) {
        let start = Instant::now();
        while start.elapsed() < self.work {
            std::hint::spin_loop();
        }
        if self.keep > 0 {
            // Written, as a record is: memory only allocated costs nothing until touched.
            let block = vec![1; self.keep].into_boxed_slice();
            self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(block);
        }
    }
}

async fn create(State(stand_in): State<StandIn>, JsonBody(request): JsonBody<CreateSession>) -> (StatusCode, Json<CreatedSession>) {
    stand_in.run();
    let session = session("sess_00000000000000000000000000000000".into(), request);
    (StatusCode::CREATED, Json(CreatedSession { session, session_token: TOKEN.into() }))
}

async fn read(Id(id): Id) -> Json<Session> {
    Json(session(id, CreateSession::new("user_123")))
}

/// Parses the bearer key like the real middleware, and sets fixed rate-limit headers.
async fn headers_only(request: Request, next: Next) -> Response {
    let healthz = request.extensions().get::<MatchedPath>().is_some_and(|m| m.as_str() == "/healthz");
    let present = request.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer).is_some();
    let mut response = if present || healthz {
        next.run(request).await
    } else {
        ApiError(Error::MissingApiKey).into_response()
    };
    let rate = Headers {
        policy: "\"minute\";q=10000000;w=60, \"hour\";q=100000000;w=3600".into(),
        ratelimit: "\"minute\";r=9999999;t=1".into(),
        retry_after: None,
    };
    set_rate_headers(response.headers_mut(), &rate);
    response
}

/// The ceiling's router: the session routes and `/healthz`, canned; creating a session runs
/// `stand_in` first.
pub fn router(logger: Logger, stand_in: StandIn) -> Router {
    let routes = Router::new()
        .route("/api/v1/sessions", axum::routing::post(create))
        .route("/api/v1/sessions/{id}", get(read))
        .route("/healthz", get(crate::handlers::healthz))
        .route_layer(middleware::from_fn(headers_only))
        .with_state(stand_in);
    crate::app::finish(routes, logger)
}
