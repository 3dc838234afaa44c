// Types of the `astack` package: the astack engine through its C ABI, for Node.
// Records carry the SPEC's field names (snake_case); times are Unix epoch milliseconds.

/// <reference types="node" />

import type { IncomingMessage, ServerResponse } from 'http';

// ---------------------------------------------------------------------------------------------
// Operations, scopes, configuration.

/** A SPEC §3 operation. */
export type Operation =
  | 'session.create'
  | 'session.read'
  | 'session.terminate'
  | 'user.read'
  | 'user.write'
  | 'billing.read'
  | 'billing.write'
  | 'worker.read'
  | 'worker.write'
  | 'admin';

export type Scope =
  | 'sessions:read'
  | 'sessions:write'
  | 'users:read'
  | 'users:write'
  | 'billing:read'
  | 'billing:write'
  | 'workers:read'
  | 'workers:write'
  | 'admin:all';

export type Permission = 'session_create' | 'session_manage' | 'usage_read';

/** The `astack_operation` number of each operation. */
export const OPERATIONS: Readonly<Record<Operation, number>>;
/** The scope that allows each operation. */
export const SCOPES: Readonly<Record<Operation, Scope>>;
/** The library's version, "MAJOR.MINOR.PATCH". */
export const version: string;

export interface Limits {
  requests_per_minute?: number;
  requests_per_hour?: number;
  concurrent_sessions?: number;
}

export interface WorkerSpec {
  node_id: string;
  url: string;
  capacity: number;
  draining?: boolean;
}

/** The SPEC §11 configuration; every field optional. */
export interface EngineConfig {
  limits?: Limits;
  sessions?: {
    pending_ttl_seconds?: number;
    max_duration_seconds?: number;
    token_ttl_seconds?: number;
    token_leeway_seconds?: number;
  };
  features?: string[];
  signing_keys?: Array<{ kid: string; secret: string }>;
  key_pepper?: string | null;
  workers?: WorkerSpec[];
  default_worker?: { node_id: string; url: string; capacity: number };
  /** Where the engine keeps its state; in memory when omitted. */
  store?: StoreConfig;
}

/** The `store` of a configuration: in memory (the default), one SQLite file, or a Redis server
 *  shared by many processes. */
export type StoreConfig =
  | { kind: 'memory' }
  | {
      kind: 'sqlite';
      /** The database file, created with its directory if missing. */
      path: string;
      /** How often (ms) a thread of the engine writes what the store holds back (default 500;
       *  10 to 60,000, or 0 for no thread: then the first call a second after the last write
       *  does it, unless the host calls `flush()`). */
      flush_ms?: number;
    }
  | {
      kind: 'redis';
      /** `redis://[:password@]host:port/db` or `unix:///path`. */
      url: string;
      /** Prefix of every Redis key (default `astack:`), so that engines may share a server. */
      prefix?: string;
      /** How long a key's record is served from the process before it is read again (default
       *  1,000 ms, 0 to 60,000): the longest a revocation takes to reach this process. */
      key_cache_ms?: number;
      /** Allow requests of keys this process knows while Redis is unreachable (default false). */
      fail_open?: boolean;
      /** Lease tokens from Redis in batches (1 to 10,000), so that the hot path stays in memory. */
      lease?: { batch: number };
      /** As for SQLite: how often (ms) the engine's thread writes what is held back. */
      flush_ms?: number;
    };

export interface EngineOptions {
  /** 'manual': time moves only with setClock/advanceClock. Default 'system'. */
  clock?: 'system' | 'manual';
  /** Start of a manual clock (epoch ms or a Date); default Date.now(). */
  now?: number | Date;
  /** Shorthand for `{ clock: 'manual', now }`. */
  manualClock?: number | Date | true;
}

// ---------------------------------------------------------------------------------------------
// Decisions and records.

/** The decision on an allowed request (and, on errors of authenticated keys, `error.decision`). */
export interface Decision {
  keyId: string;
  accountId: string;
  /** The tightest window. */
  window: 'minute' | 'hour';
  limit: number;
  remaining: number;
  /** Seconds until the window is full again. */
  reset: number;
  /** Seconds until a token is back when denied for rate; 0 otherwise. */
  retryAfter: number;
  requestsPerMinute: number;
  requestsPerHour: number;
  concurrentSessions: number;
}

/** The rate-limit figures an error of an authenticated key carries (no ids). */
export type DeniedDecision = Omit<Decision, 'keyId' | 'accountId'>;

/** The SPEC §5 headers of a decision. */
export interface RateLimitHeaders {
  'RateLimit-Policy'?: string;
  RateLimit?: string;
  'Retry-After'?: string;
}

/** Who acts on a cold path: a key id, or anything with a `keyId` (a Decision, `req.astack`). */
export type Actor = string | { keyId: string };

export interface KeyRecord {
  id: string;
  account_id: string;
  name: string;
  prefix: string;
  scopes: Scope[];
  permissions: Permission[];
  limits: Limits;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  last_used_at: number | null;
}

/** A created or rotated key: its record plus the plaintext, shown this once. */
export interface CreatedKey extends KeyRecord {
  key: string;
}

export interface CreateKeyRequest {
  account_id?: string;
  name?: string;
  scopes?: Scope[];
  permissions?: Permission[];
  limits?: Limits;
  expires_at?: number | null;
}

export type SessionStatus = 'PENDING' | 'ACTIVE' | 'COMPLETED' | 'FAILED' | 'EXPIRED';

export interface Session {
  id: string;
  account_id: string;
  status: SessionStatus;
  end_user_id: string;
  connection_type: 'websocket' | 'webrtc';
  quality: 'low' | 'standard' | 'high';
  features: string[];
  metadata: Record<string, unknown>;
  key_id: string;
  node_id: string;
  worker_url: string;
  created_at: number;
  expires_at: number;
  connected_at: number | null;
  ended_at: number | null;
  end_reason: string | null;
}

export interface CreatedSession extends Session {
  session_token: string;
}

export interface CreateSessionRequest {
  end_user_id: string;
  connection_type?: 'websocket' | 'webrtc';
  quality?: 'low' | 'standard' | 'high';
  features?: string[];
  metadata?: Record<string, unknown>;
}

export interface EndSessionRequest {
  outcome: 'completed' | 'failed';
  reason?: string;
}

export interface TokenClaims {
  iss: string;
  sub: string;
  aud: string;
  acc: string;
  uid: string;
  features: string[];
  quality: string;
  iat: number;
  nbf: number;
  exp: number;
  jti: string;
}

export interface Worker {
  node_id: string;
  url: string;
  capacity: number;
  draining: boolean;
  active_sessions?: number;
}

export interface User {
  id: string;
  name: string;
  email: string | null;
  metadata: Record<string, unknown>;
  created_at: number;
  updated_at: number;
}

export interface UserRequest {
  name?: string;
  email?: string | null;
  metadata?: Record<string, unknown>;
}

export interface UsageRecordRequest {
  metric: string;
  quantity: number;
  idempotency_key?: string;
}

export interface UsageRecorded {
  metric: string;
  total: number;
  counted: boolean;
}

export interface Usage {
  account_id: string;
  requests: number;
  session_seconds: number;
  metrics: Record<string, number>;
}

export interface Alert {
  id: string;
  account_id: string;
  metric: string;
  threshold: number;
  created_at: number;
  fired_at: number | null;
}

export interface AuditRecord {
  id: string;
  account_id: string;
  at: number;
  action: string;
  actor_key_id: string | null;
  actor_prefix: string | null;
  target: string | null;
  detail: unknown;
}

export interface Metrics {
  keys: number;
  sessions: Partial<Record<SessionStatus, number>>;
  workers: number;
}

export interface ListOptions {
  /** 1 to 1,000; default 50. */
  limit?: number;
}

// ---------------------------------------------------------------------------------------------
// The engine.

export class Engine {
  /** `config`: the SPEC §11 document, as an object or JSON text; omitted for every default. */
  constructor(config?: EngineConfig | string | null, options?: EngineOptions);
  static readonly version: string;
  /** The configuration with defaults filled in (secrets redacted); throws InvalidConfigError. */
  static checkConfig(config?: EngineConfig | string | null): EngineConfig;

  /** Frees the engine now, or once the calls of `promises` under way have finished;
   *  idempotent. Later calls throw EngineClosedError (and those of `promises` reject with it). */
  close(): void;
  readonly closed: boolean;
  [Symbol.dispose](): void;
  /** Writes what the store holds back now (SQLite, Redis: the engine's thread writes it
   *  every `store.flush_ms`, 500 by default). */
  flush(): void;

  /** The store the configuration chose. Over SQLite and Redis a call may wait on the disk or
   *  the network: use `promises` there, so that the event loop goes on meanwhile. */
  readonly store: StoreKind;
  /** The calls that may wait on the store, as promises run on libuv's thread pool. */
  readonly promises: EnginePromises;

  /** Decides a request (SPEC §4), synchronously; throws the AstackError of a denial. */
  authorize(apiKey: string | null | undefined, operation: Operation): Decision;
  rateLimitHeaders(decision: Decision | DeniedDecision | AstackError | null | undefined): RateLimitHeaders;

  /** The operator's first admin key: generated and returned, or `plaintext` installed (null). */
  bootstrapAdminKey(plaintext?: string): string | null;
  createKey(actor: Actor, request: CreateKeyRequest): CreatedKey;
  listKeys(actor: Actor, options?: ListOptions | number): KeyRecord[];
  getKey(actor: Actor, id: string): KeyRecord;
  revokeKey(actor: Actor, id: string): KeyRecord;
  rotateKey(actor: Actor, id: string, options?: { gracePeriodSeconds?: number } | number): CreatedKey;

  createSession(actor: Actor, request: CreateSessionRequest): CreatedSession;
  getSession(actor: Actor, id: string): Session;
  listSessions(actor: Actor, options?: ListOptions | number): Session[];
  terminateSession(actor: Actor, id: string): Session;
  connectSession(actor: Actor, id: string, sessionToken: string): Session;
  endSession(actor: Actor, id: string, request?: EndSessionRequest): Session;
  sweepSessions(): number;
  sessionSlotsInUse(actor: Actor): number;

  issueToken(actor: Actor, sessionId: string): string;
  verifyToken(token: string, options?: { audience?: string; sessionId?: string }): TokenClaims;

  registerWorker(actor: Actor, worker: WorkerSpec): Worker;
  updateWorker(actor: Actor, nodeId: string, change: Partial<Omit<WorkerSpec, 'node_id'>>): Worker;
  listWorkers(actor: Actor): Worker[];

  createUser(actor: Actor, request: UserRequest): User;
  getUser(actor: Actor, id: string): User;
  listUsers(actor: Actor, options?: ListOptions | number): User[];
  updateUser(actor: Actor, id: string, change: UserRequest): User;
  deleteUser(actor: Actor, id: string): User;

  recordUsage(actor: Actor, request: UsageRecordRequest): UsageRecorded;
  getUsage(actor: Actor): Usage;
  createAlert(actor: Actor, request: { metric: string; threshold: number }): Alert;
  listAlerts(actor: Actor): Alert[];

  listAudit(actor: Actor, options?: ListOptions | number): AuditRecord[];
  metrics(actor: Actor): Metrics;

  config(): EngineConfig;
  now(): number;
  setClock(time: number | Date): void;
  advanceClock(milliseconds: number): void;
}

export type StoreKind = StoreConfig['kind'];

/** The Engine methods that `engine.promises` has. */
export type PromisedMethod =
  | 'authorize'
  | 'createKey' | 'listKeys' | 'getKey' | 'revokeKey' | 'rotateKey'
  | 'createSession' | 'getSession' | 'listSessions' | 'terminateSession' | 'connectSession' | 'endSession'
  | 'issueToken' | 'registerWorker' | 'updateWorker' | 'listWorkers'
  | 'createUser' | 'getUser' | 'listUsers' | 'updateUser' | 'deleteUser'
  | 'recordUsage' | 'getUsage' | 'createAlert' | 'listAlerts' | 'listAudit' | 'metrics'
  | 'sweepSessions' | 'sessionSlotsInUse' | 'flush';

/**
 * `engine.promises`: each of the Engine's calls that may wait on its store, with the same
 * arguments, resolving to what the Engine's method returns or rejecting with what it throws.
 * Each runs on libuv's thread pool (`UV_THREADPOOL_SIZE` threads, 4 by default).
 */
export type EnginePromises = {
  [M in PromisedMethod]: Engine[M] extends (...args: infer A) => infer R ? (...args: A) => Promise<R> : never;
};

/** The SPEC §5 headers of a decision or of an error carrying one. */
export function rateLimitHeaders(decision: Decision | DeniedDecision | AstackError | null | undefined): RateLimitHeaders;

export interface LimiterWindow {
  name: string;
  limit: number;
  period_seconds: number;
}

export interface LimiterDecision {
  allowed: boolean;
  window: string;
  limit: number;
  remaining: number;
  reset: number;
  retryAfter: number;
  headers: RateLimitHeaders;
}

/** A rate limiter on any string key, with any set of windows (SPEC §5). */
export class RateLimiter {
  constructor(windows: LimiterWindow[]);
  readonly windows: string[];
  check(key: string, nowMs?: number | Date): LimiterDecision;
  /** As check, but throws RateLimitedError when denied. */
  consume(key: string, nowMs?: number | Date): LimiterDecision;
  sweep(nowMs?: number | Date): number;
  close(): void;
}

// ---------------------------------------------------------------------------------------------
// Errors.

/** The SPEC §9 error body. */
export interface ErrorBody {
  error: { code: string; message: string; [detail: string]: unknown };
}

export class AstackError extends Error {
  constructor(message: string, details?: Record<string, unknown>, options?: { cause?: unknown });
  static readonly code: string;
  static readonly status: number;
  /** The stable snake_case code. */
  readonly code: string;
  /** The HTTP status of the code. */
  readonly status: number;
  /** The body's details beside code and message (`field`, `reason`, `retry_after`…). */
  readonly details: Record<string, unknown>;
  /** On denials of an authenticated key: the rate-limit figures, for the headers. */
  readonly decision?: DeniedDecision;
  toJSON(): ErrorBody;
}

export class MissingApiKeyError extends AstackError {}
export class InvalidApiKeyError extends AstackError {}
export class ApiKeyRevokedError extends AstackError {}
export class ApiKeyExpiredError extends AstackError {}
export class InsufficientScopeError extends AstackError {
  readonly requiredScopes: Scope[];
}
export class RateLimitedError extends AstackError {
  /** Seconds until one token is back (never 0). */
  readonly retryAfter: number;
}
export class ConcurrentSessionLimitError extends AstackError {
  readonly limit: number;
}
export class InvalidRequestError extends AstackError {
  readonly field: string;
}
export class NotFoundError extends AstackError {}
export class ForbiddenError extends AstackError {}
export class AlreadyExistsError extends AstackError {}
export class InvalidTransitionError extends AstackError {}
export class InvalidTokenError extends AstackError {
  readonly reason:
    | 'malformed'
    | 'unsupported_algorithm'
    | 'unknown_kid'
    | 'bad_signature'
    | 'expired'
    | 'not_yet_valid'
    | 'wrong_issuer'
    | 'wrong_audience'
    | 'wrong_session';
}
export class PayloadTooLargeError extends AstackError {}
export class NoWorkerAvailableError extends AstackError {}
export class InvalidConfigError extends AstackError {
  readonly field: string;
}
export class UnavailableError extends AstackError {}
export class InternalError extends AstackError {}
/** An argument refused before the engine (`invalid_argument`, `invalid_utf8`, `null_argument`). */
export class InvalidArgumentError extends AstackError {
  readonly argument?: string;
}
export class UnsupportedError extends AstackError {}
/** A call after close(). */
export class EngineClosedError extends AstackError {}

export const ERROR_CLASSES: ReadonlyArray<typeof AstackError>;
export function errorClassFor(code: string): typeof AstackError;
/** The error of a stable code from an error body (JSON text or object). */
export function fromBody(code: string, body: string | ErrorBody | ErrorBody['error'] | null): AstackError;

// ---------------------------------------------------------------------------------------------
// Express.

/** What authMiddleware puts on `req.astack`. */
export interface RequestIdentity {
  keyId: string;
  accountId: string;
  operation: Operation;
  decision: Decision;
}

type Next = (err?: unknown) => void;
type Request = IncomingMessage & { [property: string]: any };

export interface AuthMiddlewareOptions {
  /** The operation (or a function of the request); default: the route's in the SPEC §3 table. */
  operation?: Operation | ((req: Request) => Operation | null);
  /** Where the identity goes on `req`; default 'astack'. */
  property?: string;
}

export function authMiddleware(
  sdk: AStackSDK | Engine,
  options?: AuthMiddlewareOptions,
): (req: Request, res: ServerResponse, next: Next) => void;

export function errorHandler(options?: {
  /** Answer any other error as 500 internal_error too (its message hidden). */
  all?: boolean;
}): (err: unknown, req: Request, res: ServerResponse, next: Next) => void;

/** The SPEC §3 operation of a REST route, or null. */
export function operationFor(method: string, path: string): Operation | null;

// ---------------------------------------------------------------------------------------------
// The seed's SDK.

export interface AStackSDKOptions {
  /** An existing engine to wrap (not closed by sdk.close()). */
  engine?: Engine;
  /** The configuration of the engine the SDK makes. */
  config?: EngineConfig | string;
  engineOptions?: EngineOptions;
  /** The SDK's own key; default process.env.ASTACK_API_KEY. On an engine the SDK makes, it is
   *  installed as the operator's admin key (one is generated when there is none). */
  apiKey?: string;
}

export interface ActOptions {
  /** Act with this key instead of the request's or the SDK's. */
  keyId?: string;
}

export interface CreateSessionOptions extends ActOptions {
  connectionType?: 'websocket' | 'webrtc';
  connection_type?: 'websocket' | 'webrtc';
  quality?: 'low' | 'standard' | 'high';
  features?: string[];
  metadata?: Record<string, unknown>;
}

export class AStackSDK {
  constructor(options?: AStackSDKOptions | Engine);
  readonly engine: Engine;
  readonly apiKey: string | null;
  createSession(userId: string, options?: CreateSessionOptions): Promise<{ session: Session; sessionToken: string }>;
  generateSessionToken(sessionId: string, options?: ActOptions): Promise<string>;
  getSession(sessionId: string, options?: ActOptions): Promise<Session>;
  listSessions(options?: ActOptions & ListOptions): Promise<Session[]>;
  terminateSession(sessionId: string, options?: ActOptions): Promise<Session>;
  verifySessionToken(token: string, options?: { audience?: string; sessionId?: string }): Promise<TokenClaims>;
  authMiddleware(options?: AuthMiddlewareOptions): ReturnType<typeof authMiddleware>;
  errorHandler(options?: { all?: boolean }): ReturnType<typeof errorHandler>;
  close(): void;
}
