//! BENCHMARK ONLY: the references the server's throughput is measured against. Never serve
//! with either: nothing here checks anything.
//!
//! - `--no-engine`: the same HTTP stack with the engine taken out, to measure what the stack
//!   itself can serve. The session routes answer canned sessions of the real shape, through the
//!   same layers (request log, panic guard, JSON fallbacks), the same body extractor and the
//!   same header writing; only the engine's work is skipped: no key lookup, no scopes, no rate
//!   limits, no state, no token signing.
//! - `--no-checks`: the same server, engine and routes with the engine's checks switched off.
//!   Every request that needs a key runs as the admin key, authorized once at start; no
//!   request's key is looked up, and no scope, rate limit or request count is checked or kept
//!   ([`astack::Engine::authorize`] is not called). The handlers do all their work: a session
//!   created is stored, audited and given a signed token.
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

use astack::limits::Headers;
use astack::session::{CreateSession, CreatedSession, Session};
use astack::{Error, Principal};

use crate::app::{bearer, operation, run_as, set_rate_headers, ApiError, AppState};
use crate::body::{Id, JsonBody};
use crate::log::Logger;

/// A fixed stand-in for a signed session token, of a real token's length.
const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImRlZmF1bHQifQ.eyJpc3MiOiJhc3RhY2siLCJzdWIiOiJzZXNzXzAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwIiwiYXVkIjoibG9jYWwiLCJhY2MiOiJkZWZhdWx0IiwidWlkIjoidXNlcl8xMjMiLCJmZWF0dXJlcyI6WyJ2aXNpb24iLCJ0cmFuc2NyaXB0aW9uIl0sInF1YWxpdHkiOiJoaWdoIiwiaWF0IjoxNzAwMDAwMDAwLCJuYmYiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMDMwMCwianRpIjoiMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAifQ.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmUtc2k";

fn session(id: String, request: CreateSession) -> Session {
    let key_id = "key_00000000000000000000000000000000".into();
    Session {
        node_id: "local".into(),
        worker_url: "ws://127.0.0.1:8081".into(),
        ..Session::pending(id, "default".into(), key_id, request, 1_700_000_000_000, 1_700_000_300_000)
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

/// Whether the request carries a bearer key (parsed as the real middleware does; not checked).
fn has_bearer(request: &Request) -> bool {
    request.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer).is_some()
}

/// The rate-limit headers the references answer: fixed, as the engine's read under the
/// benchmark's limits.
fn fixed_rate_headers(response: &mut Response) {
    let rate = Headers {
        policy: "\"minute\";q=10000000;w=60, \"hour\";q=100000000;w=3600".into(),
        ratelimit: "\"minute\";r=9999999;t=1".into(),
        retry_after: None,
    };
    set_rate_headers(response.headers_mut(), &rate);
}

/// Asks for a bearer key like the real middleware, and sets fixed rate-limit headers.
async fn headers_only(request: Request, next: Next) -> Response {
    let healthz = request.extensions().get::<MatchedPath>().is_some_and(|m| m.as_str() == "/healthz");
    let mut response = if has_bearer(&request) || healthz {
        next.run(request).await
    } else {
        ApiError(Error::MissingApiKey).into_response()
    };
    fixed_rate_headers(&mut response);
    response
}

/// `--no-engine`'s router: the session routes and `/healthz`, canned; creating a session runs
/// `stand_in` first.
pub fn ceiling_router(logger: Logger, stand_in: StandIn) -> Router {
    let routes = Router::new()
        .route("/api/v1/sessions", axum::routing::post(create))
        .route("/api/v1/sessions/{id}", get(read))
        .route("/healthz", get(crate::handlers::healthz))
        .route_layer(middleware::from_fn(headers_only))
        .with_state(stand_in);
    crate::app::finish(routes, logger)
}

/// `--no-checks`' middleware: a route that needs a key runs as `admin` if the request carries
/// any bearer key, with fixed rate-limit headers; routes open to all pass through.
async fn unchecked(State(admin): State<&'static Principal>, request: Request, next: Next) -> Response {
    let matched = request.extensions().get::<MatchedPath>();
    if matched.and_then(|m| operation(request.method(), m.as_str())).is_none() {
        return next.run(request).await;
    }
    if !has_bearer(&request) {
        return ApiError(Error::MissingApiKey).into_response();
    }
    let mut response = run_as(admin.clone(), request, next).await;
    fixed_rate_headers(&mut response);
    response
}

/// `--no-checks`' router: every route of the real one, each request run as `admin`.
pub fn unchecked_router(engine: AppState, admin: &'static Principal, logger: Logger) -> Router {
    let api = crate::app::routes().route_layer(middleware::from_fn_with_state(admin, unchecked)).with_state(engine);
    crate::app::finish(api, logger)
}
