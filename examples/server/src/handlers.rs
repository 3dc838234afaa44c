//! One handler per route: each takes the request's [`Authorized`] principal, calls the engine
//! once and answers 201 for what it creates, 200 otherwise. Lists answer `{"data": [...]}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use astack::keys::{CreateKey, CreatedKey, KeyRecord};
use astack::session::{CreateSession, CreatedSession, EndSession, Session};
use astack::usage::{Alert, CreateAlert, RecordUsage, Usage};
use astack::users::{CreateUser, UpdateUser, User};
use astack::workers::{UpdateWorker, Worker, WorkerStatus};

use crate::app::{ApiError, AppState, Authorized};
use crate::body::{Id, JsonBody, Page};

type Answer<T> = Result<Json<T>, ApiError>;
type Created<T> = Result<(StatusCode, Json<T>), ApiError>;

/// A list answer: `{"data": [...]}`.
#[derive(Serialize)]
pub struct List<T> {
    data: Vec<T>,
}

fn list<T>(data: Vec<T>) -> Answer<List<T>> {
    Ok(Json(List { data }))
}

fn created<T>(value: T) -> Created<T> {
    Ok((StatusCode::CREATED, Json(value)))
}

/// `GET /healthz`: open to all.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok", "version": astack::VERSION }))
}

// ---------------------------------------------------------------------- sessions

pub async fn create_session(
    State(engine): State<AppState>,
    Authorized(p): Authorized,
    JsonBody(request): JsonBody<CreateSession>,
) -> Created<CreatedSession> {
    created(engine.create_session(&p, request)?)
}

pub async fn list_sessions(State(engine): State<AppState>, Authorized(p): Authorized, Page(limit): Page) -> Answer<List<Session>> {
    list(engine.list_sessions(&p, limit)?)
}

pub async fn get_session(State(engine): State<AppState>, Authorized(p): Authorized, Id(id): Id) -> Answer<Session> {
    Ok(Json(engine.get_session(&p, &id)?))
}

pub async fn terminate_session(State(engine): State<AppState>, Authorized(p): Authorized, Id(id): Id) -> Answer<Session> {
    Ok(Json(engine.terminate_session(&p, &id)?))
}

/// `POST /api/v1/sessions/{id}/connect`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connect {
    session_token: String,
}

pub async fn connect_session(
    State(engine): State<AppState>,
    Authorized(p): Authorized,
    Id(id): Id,
    JsonBody(body): JsonBody<Connect>,
) -> Answer<Session> {
    Ok(Json(engine.connect_session(&p, &id, &body.session_token)?))
}

pub async fn end_session(
    State(engine): State<AppState>,
    Authorized(p): Authorized,
    Id(id): Id,
    JsonBody(request): JsonBody<EndSession>,
) -> Answer<Session> {
    Ok(Json(engine.end_session(&p, &id, request)?))
}

// ---------------------------------------------------------------------- users

pub async fn create_user(State(engine): State<AppState>, Authorized(p): Authorized, JsonBody(request): JsonBody<CreateUser>) -> Created<User> {
    created(engine.create_user(&p, request)?)
}

pub async fn list_users(State(engine): State<AppState>, Authorized(p): Authorized, Page(limit): Page) -> Answer<List<User>> {
    list(engine.list_users(&p, limit)?)
}

pub async fn get_user(State(engine): State<AppState>, Authorized(p): Authorized, Id(id): Id) -> Answer<User> {
    Ok(Json(engine.get_user(&p, &id)?))
}

pub async fn update_user(
    State(engine): State<AppState>,
    Authorized(p): Authorized,
    Id(id): Id,
    JsonBody(change): JsonBody<UpdateUser>,
) -> Answer<User> {
    Ok(Json(engine.update_user(&p, &id, change)?))
}

pub async fn delete_user(State(engine): State<AppState>, Authorized(p): Authorized, Id(id): Id) -> Answer<User> {
    Ok(Json(engine.delete_user(&p, &id)?))
}

// ---------------------------------------------------------------------- usage

pub async fn usage(State(engine): State<AppState>, Authorized(p): Authorized) -> Answer<Usage> {
    Ok(Json(engine.usage(&p)?))
}

/// Answers 201 when the record counted, 200 when its idempotency key had been seen.
pub async fn record_usage(
    State(engine): State<AppState>,
    Authorized(p): Authorized,
    JsonBody(request): JsonBody<RecordUsage>,
) -> Created<astack::engine::Recorded> {
    let recorded = engine.record_usage(&p, request)?;
    let status = if recorded.counted { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(recorded)))
}

pub async fn create_alert(State(engine): State<AppState>, Authorized(p): Authorized, JsonBody(request): JsonBody<CreateAlert>) -> Created<Alert> {
    created(engine.create_alert(&p, request)?)
}

pub async fn list_alerts(State(engine): State<AppState>, Authorized(p): Authorized, Page(limit): Page) -> Answer<List<Alert>> {
    let mut alerts = engine.list_alerts(&p)?;
    alerts.truncate(limit);
    list(alerts)
}

// ---------------------------------------------------------------------- workers

pub async fn list_workers(State(engine): State<AppState>, Authorized(p): Authorized, Page(limit): Page) -> Answer<List<WorkerStatus>> {
    let mut workers = engine.list_workers(&p)?;
    workers.truncate(limit);
    list(workers)
}

pub async fn register_worker(State(engine): State<AppState>, Authorized(p): Authorized, JsonBody(worker): JsonBody<Worker>) -> Created<Worker> {
    created(engine.register_worker(&p, worker)?)
}

pub async fn update_worker(
    State(engine): State<AppState>,
    Authorized(p): Authorized,
    Id(node_id): Id,
    JsonBody(change): JsonBody<UpdateWorker>,
) -> Answer<Worker> {
    Ok(Json(engine.update_worker(&p, &node_id, change)?))
}

// ---------------------------------------------------------------------- keys

pub async fn create_key(State(engine): State<AppState>, Authorized(p): Authorized, JsonBody(request): JsonBody<CreateKey>) -> Created<CreatedKey> {
    created(engine.create_key(&p, request)?)
}

pub async fn list_keys(State(engine): State<AppState>, Authorized(p): Authorized, Page(limit): Page) -> Answer<List<KeyRecord>> {
    list(engine.list_keys(&p, limit)?)
}

pub async fn get_key(State(engine): State<AppState>, Authorized(p): Authorized, Id(id): Id) -> Answer<KeyRecord> {
    Ok(Json(engine.get_key(&p, &id)?))
}

pub async fn revoke_key(State(engine): State<AppState>, Authorized(p): Authorized, Id(id): Id) -> Answer<KeyRecord> {
    Ok(Json(engine.revoke_key(&p, &id)?))
}

/// `POST /api/v1/keys/{id}/rotate`; an empty body rotates with no grace period.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    #[serde(default)]
    grace_period_seconds: u64,
}

pub async fn rotate_key(
    State(engine): State<AppState>,
    Authorized(p): Authorized,
    Id(id): Id,
    JsonBody(body): JsonBody<Rotate>,
) -> Created<CreatedKey> {
    created(engine.rotate_key(&p, &id, body.grace_period_seconds)?)
}

// ---------------------------------------------------------------------- audit, metrics

pub async fn audit(State(engine): State<AppState>, Authorized(p): Authorized, Page(limit): Page) -> Answer<List<astack::audit::AuditRecord>> {
    list(engine.audit(&p, limit)?)
}

pub async fn metrics(State(engine): State<AppState>, Authorized(p): Authorized) -> Answer<astack::engine::Metrics> {
    Ok(Json(engine.metrics(&p)?))
}
