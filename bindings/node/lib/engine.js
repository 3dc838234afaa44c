'use strict';
// Engine and RateLimiter: the Node shape of the C ABI. Records are the library's JSON parsed
// as-is, so they carry the SPEC's field names; lists come back as arrays; failures throw
// AstackError subclasses.

const native = require('./native');
const errors = require('./errors');

const { fromBody, InvalidArgumentError } = errors;

/** SPEC §3 operations and their `astack_operation` numbers. */
const OPERATIONS = Object.freeze({
  'session.create': 1,
  'session.read': 2,
  'session.terminate': 3,
  'user.read': 4,
  'user.write': 5,
  'billing.read': 6,
  'billing.write': 7,
  'worker.read': 8,
  'worker.write': 9,
  admin: 10,
});

/** The scope that allows each operation (SPEC §3), for the `insufficient_scope` body. */
const SCOPES = Object.freeze({
  'session.create': 'sessions:write',
  'session.read': 'sessions:read',
  'session.terminate': 'sessions:write',
  'user.read': 'users:read',
  'user.write': 'users:write',
  'billing.read': 'billing:read',
  'billing.write': 'billing:write',
  'worker.read': 'workers:read',
  'worker.write': 'workers:write',
  admin: 'admin:all',
});

const OPERATION_NAMES = [];
for (const [name, n] of Object.entries(OPERATIONS)) OPERATION_NAMES[n] = name;

// The native error factory: every failure of the addon is thrown as what this returns.
native.setErrorFactory((code, body, decision) => {
  if (decision === null) {
    if (code === 'engine_closed' && body === null) {
      return new errors.EngineClosedError('the engine is closed: no call may follow close()', { code });
    }
    if (body !== null && body !== undefined && body[0] !== '{') {
      return fromBody(code, { error: { code, message: body } });
    }
    return fromBody(code, body);
  }
  return denial(code, decision);
});

/** The error of a denied, authenticated request, carrying its decision for the headers. */
function denial(code, decision) {
  const operation = OPERATION_NAMES[decision.operation];
  delete decision.operation;
  let error;
  switch (code) {
    case 'insufficient_scope': {
      const required = SCOPES[operation];
      error = { code, message: `this operation requires the \`${required}\` scope`, required_scopes: [required] };
      break;
    }
    case 'rate_limited':
      error = {
        code,
        message: `rate limit exceeded for the ${decision.window} window; retry in ${decision.retryAfter} s`,
        window: decision.window,
        limit: decision.limit,
        retry_after: decision.retryAfter,
      };
      break;
    case 'concurrent_session_limit':
      error = {
        code,
        message: `concurrent session limit of ${decision.concurrentSessions} reached`,
        limit: decision.concurrentSessions,
      };
      break;
    default:
      error = { code };
  }
  const err = fromBody(code, { error });
  Object.defineProperty(err, 'decision', { value: decision, enumerable: false, writable: true, configurable: true });
  return err;
}

function operationNumber(operation) {
  const n = OPERATIONS[operation];
  if (n === undefined || typeof operation !== 'string') {
    throw new InvalidArgumentError(`unknown operation ${JSON.stringify(String(operation))}: one of ${Object.keys(OPERATIONS).join(', ')}`, {
      code: 'invalid_argument',
      argument: 'operation',
    });
  }
  return n;
}

/** The acting key: a key id, or anything carrying `keyId` (a decision, `req.astack`). */
function actorId(actor) {
  if (typeof actor === 'string') return actor;
  if (actor && typeof actor.keyId === 'string') return actor.keyId;
  throw new TypeError('The "actor" argument must be a key id (string) or an object with a keyId, such as a decision');
}

function document(value, name) {
  if (typeof value === 'string') return value;
  if (value === undefined || value === null || typeof value !== 'object') {
    throw new TypeError(`The "${name}" argument must be an object`);
  }
  return JSON.stringify(value);
}

function limitOf(options) {
  if (options === undefined || options === null) return 0;
  if (typeof options === 'number') return options;
  return options.limit === undefined ? 0 : options.limit;
}

function ms(value, name) {
  if (value instanceof Date) return value.getTime();
  if (typeof value !== 'number' && typeof value !== 'bigint') {
    throw new TypeError(`The "${name}" argument must be a number of milliseconds or a Date`);
  }
  return value;
}

// The cold calls: each one's index in the addon's CALLS table (src/addon.c), and the field of
// its answer that the method returns (lists answer `{"data": [...]}`), if not the whole answer
// (a count for the sweep and the slots, nothing for the flush).
const C = {
  keyCreate: [0], keyList: [1, 'data'], keyGet: [2], keyRevoke: [3], keyRotate: [4],
  sessionCreate: [5], sessionGet: [6], sessionList: [7, 'data'], sessionTerminate: [8], sessionConnect: [9],
  sessionEnd: [10], tokenIssue: [11, 'session_token'], workerRegister: [12], workerUpdate: [13],
  workerList: [14, 'data'], userCreate: [15], userGet: [16], userList: [17, 'data'], userUpdate: [18], userDelete: [19],
  usageRecord: [20], usageGet: [21], alertCreate: [22], alertList: [23, 'data'], auditList: [24, 'data'], metrics: [25],
  sessionSweep: [26], sessionSlots: [27], engineFlush: [28],
};

// The Engine methods made of one cold call each: `engine.promises` has each of them too.
const COLD_METHODS = [
  'createKey', 'listKeys', 'getKey', 'revokeKey', 'rotateKey',
  'createSession', 'getSession', 'listSessions', 'terminateSession', 'connectSession', 'endSession',
  'issueToken', 'registerWorker', 'updateWorker', 'listWorkers',
  'createUser', 'getUser', 'listUsers', 'updateUser', 'deleteUser',
  'recordUsage', 'getUsage', 'createAlert', 'listAlerts', 'listAudit', 'metrics',
  'sweepSessions', 'sessionSlotsInUse', 'flush',
];

const kNative = Symbol('astack.native');
// How an Engine method makes its cold call: (call, keyId, arg1?, arg2?) => answer.
const kCall = Symbol('astack.call');

// Result numbers (include/astack.h) → stable codes, for the hot path's denials.
const RESULT_CODES = new Map();
function resultCode(n) {
  let code = RESULT_CODES.get(n);
  if (code === undefined) {
    code = native.resultCode(n);
    RESULT_CODES.set(n, code);
  }
  return code;
}

/** The error of a denied request, from the decision buffer `b` (see src/addon.c). */
function denied(n, b, op) {
  const code = resultCode(n);
  if (b[6] === 0) return fromBody(code, null); // not authenticated: no rate data
  return denial(code, {
    window: b[1] === 1 ? 'hour' : 'minute',
    limit: b[2],
    remaining: b[3],
    reset: b[4],
    retryAfter: b[5],
    requestsPerMinute: b[6],
    requestsPerHour: b[7],
    concurrentSessions: b[8],
    operation: op,
  });
}

/**
 * The decision of an allowed request, from authorize's answer (the ids) and the decision's
 * numbers `b` (see src/addon.c); throws the error of a denied one.
 */
function decisionOf(ids, b, op) {
  if (typeof ids !== 'string') throw denied(ids, b, op);
  const n = b[9];
  return {
    keyId: ids.slice(0, n),
    accountId: ids.slice(n),
    window: b[1] === 1 ? 'hour' : 'minute',
    limit: b[2],
    remaining: b[3],
    reset: b[4],
    retryAfter: b[5],
    requestsPerMinute: b[6],
    requestsPerHour: b[7],
    concurrentSessions: b[8],
  };
}

/** A SPEC §3 operation name's number; throws InvalidArgumentError for any other value. */
function operationOf(operation) {
  const op = OPERATIONS[operation];
  return op === undefined ? operationNumber(operation) : op;
}

/** Answers a cold call: a count (or nothing) as it is, else the JSON text parsed, or the field
 *  of it that `call` names. */
function answerOf(call, json) {
  if (typeof json !== 'string') return json;
  const answer = JSON.parse(json);
  return call[1] === undefined ? answer : answer[call[1]];
}

/**
 * One astack engine: keys, scopes, limits, sessions, tokens, workers, users, usage and audit.
 *
 * `new Engine(config?, options?)`: `config` is the SPEC §11 document (object or JSON text);
 * `options.clock` `'manual'` (with `options.now`, epoch ms or a Date; default Date.now()) gives
 * an engine whose time moves only with `setClock`/`advanceClock`. Free it with `close()`; a
 * finalizer frees it anyway when it is garbage-collected.
 */
class Engine {
  constructor(config, options = {}) {
    const json = config === undefined || config === null ? null : document(config, 'config');
    const manual = options.clock === 'manual' || options.manualClock !== undefined;
    let start = 0;
    if (manual) {
      const given = options.now !== undefined ? options.now : options.manualClock;
      start = given === undefined || given === true ? Date.now() : ms(given, 'now');
    }
    this[kNative] = new native.NativeEngine(json, manual, start);
    this.#decision = this[kNative].decision;
    const store = json === null ? undefined : JSON.parse(json).store;
    this.#store = (store && store.kind) || 'memory';
  }

  #decision;
  #store;
  #promises;

  /**
   * The kind of store the engine keeps its state in: `'memory'`, `'sqlite'` or `'redis'`.
   * Over SQLite and Redis a call may wait on the disk or the network: use `engine.promises`
   * there, so that the JavaScript thread goes on meanwhile.
   */
  get store() {
    return this.#store;
  }

  /** The engine's calls that may wait on its store, as promises (see EnginePromises). */
  get promises() {
    if (this.#promises === undefined) this.#promises = new EnginePromises(this, this[kNative]);
    return this.#promises;
  }

  /** The library's version, "MAJOR.MINOR.PATCH". */
  static get version() {
    return native.version();
  }

  /** Checks a configuration without making an engine: the configuration with every default
   *  filled in (secrets redacted), or throws InvalidConfigError naming the field. */
  static checkConfig(config) {
    const json = config === undefined || config === null ? null : document(config, 'config');
    return JSON.parse(native.configCheck(json));
  }

  /**
   * Writes what the store holds back, now: request counts, keys' `last_used_at` and held
   * audit records (nothing in memory). SQLite and Redis write them behind on a thread of the
   * engine every `store.flush_ms` (500 by default), and when the engine is closed. With that
   * thread off (`flush_ms: 0`), whichever call falls due a second after the last write does it,
   * unless the host calls `engine.promises.flush()` more often, e.g. from a `setInterval`.
   */
  flush() {
    return this[kCall](C.engineFlush, ''); // (no acting key: the addon reads none)
  }

  /** Frees the engine now, or once the calls of `engine.promises` under way have finished.
   *  Idempotent; any later call throws EngineClosedError. */
  close() {
    this[kNative].close();
  }

  /** Whether `close()` was called. */
  get closed() {
    return this[kNative].isClosed();
  }

  /**
   * Decides a request (SPEC §4), synchronously: `apiKey` is the presented key (`''`, null or
   * undefined when none was), `operation` a SPEC §3 name. Returns the decision of an allowed
   * request (`keyId`, `accountId`, and the tightest window's `window`, `limit`, `remaining`,
   * `reset`, `retryAfter`, with the key's `requestsPerMinute`, `requestsPerHour`,
   * `concurrentSessions`); throws the AstackError of a denied one, which carries the
   * `decision` when the key was authenticated (for the rate-limit headers).
   */
  authorize(apiKey, operation) {
    const op = operationOf(operation);
    return decisionOf(this[kNative].authorize(apiKey, op), this.#decision, op);
  }

  /**
   * The SPEC §5 headers of a decision (or of an error carrying one): `RateLimit-Policy`,
   * `RateLimit`, and `Retry-After` when rate-limited. `{}` when the key was not authenticated.
   */
  rateLimitHeaders(decision) {
    return rateLimitHeaders(decision);
  }

  // Keys -------------------------------------------------------------------------------------

  /** The operator's first admin key (`admin:all`, account `default`): generated and returned
   *  (shown this once) when `plaintext` is omitted; else that key is installed and null
   *  returned. */
  bootstrapAdminKey(plaintext) {
    return JSON.parse(this[kNative].bootstrapAdminKey(plaintext === undefined ? null : plaintext)).key;
  }

  createKey(actor, request) {
    return this[kCall](C.keyCreate, actor, document(request, 'request'));
  }

  listKeys(actor, options) {
    return this[kCall](C.keyList, actor, limitOf(options));
  }

  getKey(actor, id) {
    return this[kCall](C.keyGet, actor, id);
  }

  revokeKey(actor, id) {
    return this[kCall](C.keyRevoke, actor, id);
  }

  rotateKey(actor, id, options) {
    const grace = typeof options === 'number' ? options : (options && options.gracePeriodSeconds) || 0;
    return this[kCall](C.keyRotate, actor, id, grace);
  }

  // Sessions ---------------------------------------------------------------------------------

  createSession(actor, request) {
    return this[kCall](C.sessionCreate, actor, document(request, 'request'));
  }

  getSession(actor, id) {
    return this[kCall](C.sessionGet, actor, id);
  }

  listSessions(actor, options) {
    return this[kCall](C.sessionList, actor, limitOf(options));
  }

  terminateSession(actor, id) {
    return this[kCall](C.sessionTerminate, actor, id);
  }

  connectSession(actor, id, sessionToken) {
    return this[kCall](C.sessionConnect, actor, id, sessionToken);
  }

  endSession(actor, id, request = { outcome: 'completed' }) {
    return this[kCall](C.sessionEnd, actor, id, document(request, 'request'));
  }

  /** Expires every live session past its expiry; returns how many this call expired. */
  sweepSessions() {
    return this[kCall](C.sessionSweep, ''); // (no acting key: the addon reads none)
  }

  /** The live sessions held by a key: its concurrent-session slots in use. */
  sessionSlotsInUse(actor) {
    return this[kCall](C.sessionSlots, actor);
  }

  // Tokens -----------------------------------------------------------------------------------

  /** A new session token for a live session. */
  issueToken(actor, sessionId) {
    return this[kCall](C.tokenIssue, actor, sessionId);
  }

  /** Verifies a session token (SPEC §7); returns its claims or throws InvalidTokenError. */
  verifyToken(token, options = {}) {
    const audience = options.audience === undefined ? null : options.audience;
    const sessionId = options.sessionId === undefined ? null : options.sessionId;
    return JSON.parse(this[kNative].verifyToken(token, audience, sessionId));
  }

  // Workers ----------------------------------------------------------------------------------

  registerWorker(actor, worker) {
    return this[kCall](C.workerRegister, actor, document(worker, 'worker'));
  }

  updateWorker(actor, nodeId, change) {
    return this[kCall](C.workerUpdate, actor, nodeId, document(change, 'change'));
  }

  listWorkers(actor) {
    return this[kCall](C.workerList, actor);
  }

  // Users ------------------------------------------------------------------------------------

  createUser(actor, request) {
    return this[kCall](C.userCreate, actor, document(request, 'request'));
  }

  getUser(actor, id) {
    return this[kCall](C.userGet, actor, id);
  }

  listUsers(actor, options) {
    return this[kCall](C.userList, actor, limitOf(options));
  }

  updateUser(actor, id, change) {
    return this[kCall](C.userUpdate, actor, id, document(change, 'change'));
  }

  deleteUser(actor, id) {
    return this[kCall](C.userDelete, actor, id);
  }

  // Usage and alerts -------------------------------------------------------------------------

  recordUsage(actor, request) {
    return this[kCall](C.usageRecord, actor, document(request, 'request'));
  }

  getUsage(actor) {
    return this[kCall](C.usageGet, actor);
  }

  createAlert(actor, request) {
    return this[kCall](C.alertCreate, actor, document(request, 'request'));
  }

  listAlerts(actor) {
    return this[kCall](C.alertList, actor);
  }

  // Audit and metrics ------------------------------------------------------------------------

  listAudit(actor, options) {
    return this[kCall](C.auditList, actor, limitOf(options));
  }

  metrics(actor) {
    return this[kCall](C.metrics, actor);
  }

  // Configuration and clock ------------------------------------------------------------------

  /** The configuration in force (secrets redacted). */
  config() {
    return JSON.parse(this[kNative].config());
  }

  /** The engine's time, Unix epoch milliseconds. */
  now() {
    return this[kNative].now();
  }

  /** Sets a manual clock (epoch ms or a Date); it may go backwards. */
  setClock(time) {
    this[kNative].setClock(ms(time, 'time'));
  }

  /** Moves a manual clock forward by `milliseconds`. */
  advanceClock(milliseconds) {
    this[kNative].advanceClock(ms(milliseconds, 'milliseconds'));
  }

  [kCall](call, actor, a, b) {
    return answerOf(call, this[kNative].call(call[0], actorId(actor), a, b));
  }
}

/**
 * The calls of an Engine that may wait on its store, as promises (`engine.promises`, as Node's
 * `fs.promises`): `authorize` and every method made of one call on the store (keys, sessions
 * with `sweepSessions` and `sessionSlotsInUse`, tokens, workers, users, usage, alerts, audit,
 * metrics), with the Engine's arguments and answers. Each runs on libuv's thread pool
 * (`UV_THREADPOOL_SIZE` threads, 4 by default), so the JavaScript thread goes on while SQLite
 * waits on the disk or Redis on the network; a failure rejects with the AstackError the
 * Engine's method would throw. Over the memory store the Engine's own methods are faster: they
 * answer in well under a microsecond, less than the hop to a pool thread and back.
 */
class EnginePromises {
  #native;
  // The Engine, seen through an object whose cold calls go to the thread pool.
  #pooled;

  constructor(engine, nativeEngine) {
    this.#native = nativeEngine;
    const call = (c, actor, a, b) => nativeEngine.callAsync(c[0], actorId(actor), a, b).then((json) => answerOf(c, json));
    this.#pooled = Object.create(engine, { [kCall]: { value: call } });
  }

  /** Engine#authorize, as a promise: resolves to the decision, or rejects with the error of
   *  a denied request. */
  async authorize(apiKey, operation) {
    const op = operationOf(operation);
    const [ids, numbers] = await this.#native.authorizeAsync(apiKey, op);
    return decisionOf(ids, numbers, op);
  }

  static {
    for (const name of COLD_METHODS) {
      const method = Engine.prototype[name];
      const pooled = {
        async [name](...args) {
          return method.apply(this.#pooled, args);
        },
      }[name];
      Object.defineProperty(EnginePromises.prototype, name, { value: pooled, writable: true, configurable: true });
    }
  }
}

if (typeof Symbol.dispose === 'symbol') {
  Engine.prototype[Symbol.dispose] = function dispose() {
    this.close();
  };
}

/** The SPEC §5 headers of a decision (or of an error carrying one). */
function rateLimitHeaders(source) {
  const decision = source && source.decision ? source.decision : source;
  if (!decision || !decision.requestsPerMinute) return {};
  const limited = source instanceof errors.RateLimitedError;
  const allowed = !(source instanceof errors.AstackError);
  const pair = native.decisionHeaders(
    allowed,
    decision.window === 'hour' ? 1 : 0,
    decision.limit,
    decision.remaining,
    decision.reset,
    decision.retryAfter,
    decision.requestsPerMinute,
    decision.requestsPerHour,
  );
  if (pair === null) return {};
  const headers = { 'RateLimit-Policy': pair[0], RateLimit: pair[1] };
  if (limited) headers['Retry-After'] = String(decision.retryAfter);
  return headers;
}

/**
 * A rate limiter on any string key (a client IP, an end user…) with any set of windows
 * (SPEC §5): `new RateLimiter([{name: 'minute', limit: 100, period_seconds: 60}, ...])`.
 */
class RateLimiter {
  constructor(windows) {
    if (!Array.isArray(windows)) throw new TypeError('The "windows" argument must be an array');
    this[kNative] = new native.NativeLimiter(JSON.stringify(windows));
    this.windows = windows.map((w) => w.name);
  }

  /** Takes one token from every window of `key` at `nowMs` (default Date.now()), or none.
   *  Returns `{allowed, window, limit, remaining, reset, retryAfter, headers}`. */
  check(key, nowMs = Date.now()) {
    const r = this[kNative].check(key, ms(nowMs, 'nowMs'));
    const headers = r[6] ? { 'RateLimit-Policy': r[6], RateLimit: r[7] } : {};
    if (!r[0]) headers['Retry-After'] = String(r[5]);
    return {
      allowed: r[0],
      window: this.windows[r[1]],
      limit: r[2],
      remaining: r[3],
      reset: r[4],
      retryAfter: r[5],
      headers,
    };
  }

  /** As `check`, but throws RateLimitedError when denied. */
  consume(key, nowMs = Date.now()) {
    const d = this.check(key, nowMs);
    if (!d.allowed) {
      const err = fromBody('rate_limited', {
        error: {
          code: 'rate_limited',
          message: `rate limit exceeded for the ${d.window} window; retry in ${d.retryAfter} s`,
          window: d.window,
          limit: d.limit,
          retry_after: d.retryAfter,
        },
      });
      Object.defineProperty(err, 'decision', { value: d, enumerable: false });
      throw err;
    }
    return d;
  }

  /** Forgets keys whose buckets are full again; returns how many keys remain. */
  sweep(nowMs = Date.now()) {
    return this[kNative].sweep(ms(nowMs, 'nowMs'));
  }

  close() {
    this[kNative].close();
  }
}

module.exports = { Engine, RateLimiter, OPERATIONS, SCOPES, rateLimitHeaders, actorId };
