//! The router: every route of SPEC §3 and §10, each mapped to one [`Operation`], behind the
//! middleware that authorizes it and sets the rate-limit headers of §5.

use std::cell::Cell;

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::header::{HeaderName, AUTHORIZATION, RETRY_AFTER};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use astack::limits::Headers;
use astack::{Engine, Error, Operation, Principal};

use crate::handlers as h;
use crate::log::{self, Logger};

/// What every handler shares: the engine, which lives as long as the process. Axum copies the
/// state into every handler and middleware a request passes; a reference copies for free,
/// where each copy of an `Arc` writes its count, a line both cores would pass back and forth.
pub type AppState = &'static Engine;

/// `RateLimit-Policy` (SPEC §5).
pub static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit` (SPEC §5).
pub static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// An error answered as SPEC §9 says: the status of its code and `{"error": {...}}`.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.0.to_json())).into_response()
    }
}

/// The operation a route performs (SPEC §3), or `None` for the routes open to all.
pub fn operation(method: &Method, route: &str) -> Option<Operation> {
    use Operation as Op;
    // HEAD is answered by the GET handler, so it is the GET operation.
    let method = if method == Method::HEAD { "GET" } else { method.as_str() };
    let op = match (method, route) {
        ("POST", "/api/v1/sessions") => Op::SessionCreate,
        ("GET", "/api/v1/sessions" | "/api/v1/sessions/{id}") => Op::SessionRead,
        ("DELETE", "/api/v1/sessions/{id}") => Op::SessionTerminate,
        ("POST", "/api/v1/sessions/{id}/connect" | "/api/v1/sessions/{id}/end") => Op::WorkerWrite,
        ("GET", "/api/v1/users" | "/api/v1/users/{id}") => Op::UserRead,
        ("POST", "/api/v1/users") | ("PATCH" | "DELETE", "/api/v1/users/{id}") => Op::UserWrite,
        ("GET", "/api/v1/usage" | "/api/v1/usage/alerts") => Op::BillingRead,
        ("POST", "/api/v1/usage" | "/api/v1/usage/alerts") => Op::BillingWrite,
        ("GET", "/api/v1/workers") => Op::WorkerRead,
        ("POST", "/api/v1/workers") | ("PATCH", "/api/v1/workers/{node_id}") => Op::WorkerWrite,
        ("GET" | "POST", "/api/v1/keys")
        | ("GET" | "DELETE", "/api/v1/keys/{id}")
        | ("POST", "/api/v1/keys/{id}/rotate")
        | ("GET", "/api/v1/audit" | "/api/v1/metrics") => Op::Admin,
        _ => return None,
    };
    Some(op)
}

/// The key of an `Authorization` value: `Bearer <key>` (scheme case-insensitive), or `None`
/// when the value has another shape.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, key) = value.split_once(' ')?;
    let key = key.trim_matches(' ');
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty() && !key.contains(' ')).then_some(key)
}

/// Sets the rate-limit headers of SPEC §5 on a response.
pub fn set_rate_headers(headers: &mut HeaderMap, rate: &Headers) {
    if let Ok(value) = HeaderValue::from_str(&rate.policy) {
        headers.insert(RATELIMIT_POLICY.clone(), value);
    }
    if let Ok(value) = HeaderValue::from_str(&rate.ratelimit) {
        headers.insert(RATELIMIT.clone(), value);
    }
    if let Some(value) = rate.retry_after.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
        headers.insert(RETRY_AFTER, value);
    }
}

tokio::task_local! {
    /// The principal [`run_as`] hands over, for the route's handler to take. A task-local
    /// rather than a request extension: handing it over allocates nothing and rehashes no map,
    /// and the handler runs inside [`run_as`]'s future, on the same task.
    static PRINCIPAL: Cell<Option<Principal>>;
}

/// The request's [`Principal`], as [`run_as`] left it: taken, not copied (a copy would touch
/// the key's shared reference count twice more per request).
pub struct Authorized(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let principal = PRINCIPAL.try_with(Cell::take).ok().flatten();
        principal.map(Authorized).ok_or_else(|| ApiError(Error::Internal("a handler of an open route asked for a principal".into())))
    }
}

/// Middleware on every route: decides the request (SPEC §4) with the engine, hands the
/// [`astack::Principal`] to the handler, and puts the rate-limit headers on the response,
/// whether it succeeds or fails. Routes open to all (`/healthz`, a wrong method) pass through.
async fn authorize(State(engine): State<AppState>, request: Request, next: Next) -> Response {
    let matched = request.extensions().get::<MatchedPath>();
    match matched.and_then(|m| operation(request.method(), m.as_str())) {
        None => next.run(request).await,
        Some(op) => authorized(engine, op, request, next).await,
    }
}

async fn authorized(engine: &Engine, op: Operation, request: Request, next: Next) -> Response {
    // More than one `Authorization` header is refused: which one counts would be ambiguous.
    let mut values = request.headers().get_all(AUTHORIZATION).iter();
    let key = match (values.next(), values.next()) {
        (None, _) => "",
        (Some(value), None) => match value.to_str().ok().and_then(bearer) {
            Some(key) => key,
            None => return ApiError(Error::InvalidApiKey).into_response(),
        },
        (Some(_), Some(_)) => return ApiError(Error::InvalidApiKey).into_response(),
    };
    match engine.authorize(key, op) {
        Ok(authorization) => {
            let rate = authorization.headers();
            let mut response = run_as(authorization.principal, request, next).await;
            set_rate_headers(response.headers_mut(), &rate);
            response
        }
        Err(denial) => {
            let rate = denial.headers();
            let mut response = ApiError(denial.error).into_response();
            if let Some(rate) = rate {
                set_rate_headers(response.headers_mut(), &rate);
            }
            response
        }
    }
}

/// Runs the rest of `request` (its handler takes `principal` with [`Authorized`]).
pub async fn run_as(principal: Principal, request: Request, next: Next) -> Response {
    PRINCIPAL.scope(Cell::new(Some(principal)), next.run(request)).await
}

async fn not_found() -> ApiError {
    ApiError(Error::NotFound { resource: "route" })
}

async fn method_not_allowed() -> Response {
    let body = json!({"error": {"code": "method_not_allowed", "message": "this route does not accept that method"}});
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}

/// A panic in a handler answers a §9 `internal` error instead of dropping the connection.
fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError(Error::Internal("the server hit a bug; it has been logged".into())).into_response()
}

/// The whole application: routes, authorization, fallbacks, panic guard and request log.
pub fn router(engine: AppState, logger: Logger) -> Router {
    let api = routes().route_layer(middleware::from_fn_with_state(engine, authorize)).with_state(engine);
    finish(api, logger)
}

/// Every route of SPEC §3 and §10 with its handler, before any layer.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/sessions", get(h::list_sessions).post(h::create_session))
        .route("/api/v1/sessions/{id}", get(h::get_session).delete(h::terminate_session))
        .route("/api/v1/sessions/{id}/connect", post(h::connect_session))
        .route("/api/v1/sessions/{id}/end", post(h::end_session))
        .route("/api/v1/users", get(h::list_users).post(h::create_user))
        .route("/api/v1/users/{id}", get(h::get_user).patch(h::update_user).delete(h::delete_user))
        .route("/api/v1/usage", get(h::usage).post(h::record_usage))
        .route("/api/v1/usage/alerts", get(h::list_alerts).post(h::create_alert))
        .route("/api/v1/workers", get(h::list_workers).post(h::register_worker))
        .route("/api/v1/workers/{node_id}", axum::routing::patch(h::update_worker))
        .route("/api/v1/keys", get(h::list_keys).post(h::create_key))
        .route("/api/v1/keys/{id}", get(h::get_key).delete(h::revoke_key))
        .route("/api/v1/keys/{id}/rotate", post(h::rotate_key))
        .route("/api/v1/audit", get(h::audit))
        .route("/api/v1/metrics", get(h::metrics))
        .route("/healthz", get(h::healthz))
}

/// The layers every router of this server shares (the ceiling's too): JSON fallbacks, the
/// panic guard and the request log.
pub fn finish(routes: Router, logger: Logger) -> Router {
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(crate::body::buffer_body))
        .layer(middleware::from_fn_with_state(logger, log::log_request))
}
