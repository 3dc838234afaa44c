'use strict';
// Every Engine method, every error class, the limiter, close() and misuse.

const fs = require('node:fs');
const path = require('node:path');
const test = require('node:test');
const assert = require('node:assert/strict');

const astack = require('..');
const native = require('../lib/native');
const {
  Engine, RateLimiter, AstackError, MissingApiKeyError, InvalidApiKeyError, ApiKeyRevokedError,
  ApiKeyExpiredError, InsufficientScopeError, RateLimitedError, ConcurrentSessionLimitError,
  InvalidRequestError, NotFoundError, ForbiddenError, AlreadyExistsError, InvalidTransitionError,
  InvalidTokenError, PayloadTooLargeError, NoWorkerAvailableError, InvalidConfigError,
  UnavailableError, InternalError, InvalidArgumentError, UnsupportedError, EngineClosedError,
} = astack;

const T0 = Date.UTC(2030, 0, 1);
const SECRET = 'a test signing secret of at least thirty-two bytes';

/** A manual-clock engine with an operator admin, an app key of account acme, a worker key. */
function setup(config = {}) {
  const engine = new Engine({ signing_keys: [{ kid: 'k1', secret: SECRET }], ...config }, { clock: 'manual', now: T0 });
  const adminKey = engine.bootstrapAdminKey();
  const admin = engine.authorize(adminKey, 'admin');
  const app = engine.createKey(admin, {
    name: 'acme app',
    account_id: 'acme',
    scopes: ['sessions:read', 'sessions:write', 'users:read', 'users:write', 'billing:read', 'billing:write', 'workers:read'],
  });
  const worker = engine.createKey(admin, { name: 'workers', scopes: ['workers:write', 'workers:read'] });
  return { engine, adminKey, admin, app, appKey: app.key, worker, workerKey: worker.key };
}

/** Asserts that fn throws an instance of cls with its code and status. */
function throwsA(fn, cls, check) {
  let caught;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught, `expected ${cls.name}`);
  assert.ok(caught instanceof cls, `expected ${cls.name}, got ${caught && caught.name}: ${caught && caught.message}`);
  assert.ok(caught instanceof AstackError);
  assert.ok(caught instanceof Error);
  assert.equal(caught.name, cls.name);
  assert.equal(caught.status, cls.status);
  if (cls.code !== AstackError.code || cls === InternalError) assert.equal(typeof caught.code, 'string');
  if (check) check(caught);
  return caught;
}

test('version and checkConfig', () => {
  assert.match(Engine.version, /^\d+\.\d+\.\d+$/);
  assert.equal(astack.version, Engine.version);
  const filled = Engine.checkConfig({ limits: { requests_per_minute: 5 } });
  assert.equal(filled.limits.requests_per_minute, 5);
  assert.equal(filled.limits.requests_per_hour, 1000);
  assert.equal(filled.sessions.pending_ttl_seconds, 300);
  assert.deepEqual(Engine.checkConfig().features, ['vision', 'transcription', 'recording']);
  throwsA(() => Engine.checkConfig({ limits: { requests_per_minute: 0 } }), InvalidConfigError, (e) => {
    assert.equal(e.field, 'limits.requests_per_minute');
    assert.equal(e.toJSON().error.field, 'limits.requests_per_minute');
  });
  throwsA(() => Engine.checkConfig({ nope: 1 }), InvalidConfigError, (e) => assert.equal(e.field, 'nope'));
  throwsA(() => new Engine({ signing_keys: [{ kid: 'x', secret: 'short' }] }), InvalidConfigError);
  throwsA(() => new Engine('{not json'), InvalidConfigError);
  // Config as JSON text, and the engine's config with secrets redacted.
  const engine = new Engine(JSON.stringify({ signing_keys: [{ kid: 'k1', secret: SECRET }] }));
  const shown = engine.config();
  assert.deepEqual(shown.signing_keys, [{ kid: 'k1' }]);
  assert.ok(!JSON.stringify(shown).includes(SECRET));
  engine.close();
});

test('authorize: allowed decision, headers, and every denial', () => {
  const { engine, adminKey, admin, appKey } = setup();
  assert.match(admin.keyId, /^key_[0-9a-f]{32}$/);
  assert.equal(admin.accountId, 'default');
  const d = engine.authorize(appKey, 'session.create');
  assert.deepEqual(Object.keys(d), [
    'keyId', 'accountId', 'window', 'limit', 'remaining', 'reset', 'retryAfter',
    'requestsPerMinute', 'requestsPerHour', 'concurrentSessions',
  ]);
  assert.equal(d.accountId, 'acme');
  assert.equal(d.window, 'minute');
  assert.equal(d.limit, 100);
  assert.equal(d.remaining, 99);
  assert.equal(d.retryAfter, 0);
  assert.equal(d.requestsPerMinute, 100);
  assert.equal(d.requestsPerHour, 1000);
  assert.equal(d.concurrentSessions, 10);
  assert.deepEqual(engine.rateLimitHeaders(d), {
    'RateLimit-Policy': '"minute";q=100;w=60, "hour";q=1000;w=3600',
    RateLimit: `"minute";r=99;t=${d.reset}`,
  });

  throwsA(() => engine.authorize('', 'admin'), MissingApiKeyError, (e) => assert.equal(e.code, 'missing_api_key'));
  throwsA(() => engine.authorize(undefined, 'admin'), MissingApiKeyError);
  throwsA(() => engine.authorize(null, 'admin'), MissingApiKeyError);
  throwsA(() => engine.authorize('ak_nope', 'admin'), InvalidApiKeyError);
  // A well-formed key with a wrong checksum, a string with a NUL, a very long string.
  throwsA(() => engine.authorize(adminKey.slice(0, -1) + (adminKey.endsWith('0') ? '1' : '0'), 'admin'), InvalidApiKeyError);
  throwsA(() => engine.authorize(`${adminKey}\0`, 'admin'), InvalidApiKeyError);
  throwsA(() => engine.authorize(adminKey + 'x'.repeat(5000), 'admin'), InvalidApiKeyError);
  const scope = throwsA(() => engine.authorize(appKey, 'admin'), InsufficientScopeError);
  assert.deepEqual(scope.requiredScopes, ['admin:all']);
  assert.equal(scope.toJSON().error.code, 'insufficient_scope');
  assert.equal(scope.decision.requestsPerMinute, 100, 'the decision rides on the error for the headers');
  assert.equal(engine.rateLimitHeaders(scope).RateLimit.startsWith('"minute";r='), true);
  assert.equal(engine.rateLimitHeaders(scope)['Retry-After'], undefined);
  assert.throws(() => engine.authorize(appKey, 'nope'), InvalidArgumentError);
  assert.throws(() => engine.authorize(42, 'admin'), TypeError);
  assert.deepEqual(engine.rateLimitHeaders(null), {});
  engine.close();
});

test('rate limits: RateLimitedError with retryAfter, no token taken when denied', () => {
  const { engine, admin } = setup();
  const k = engine.createKey(admin, { name: 'tiny', scopes: ['sessions:read'], limits: { requests_per_minute: 3 } });
  for (let i = 2; i >= 0; i--) assert.equal(engine.authorize(k.key, 'session.read').remaining, i);
  const e = throwsA(() => engine.authorize(k.key, 'session.read'), RateLimitedError);
  assert.equal(e.code, 'rate_limited');
  assert.equal(e.status, 429);
  assert.equal(e.retryAfter, 20);
  assert.deepEqual(e.toJSON().error, {
    code: 'rate_limited', message: 'rate limit exceeded for the minute window; retry in 20 s', window: 'minute', limit: 3, retry_after: 20,
  });
  assert.deepEqual(engine.rateLimitHeaders(e), {
    'RateLimit-Policy': '"minute";q=3;w=60, "hour";q=1000;w=3600',
    RateLimit: '"minute";r=0;t=60',
    'Retry-After': '20',
  });
  engine.advanceClock(20000);
  assert.equal(engine.authorize(k.key, 'session.read').remaining, 0);
  engine.close();
});

test('keys: create, list, get, revoke, rotate, expiry, forbidden', () => {
  const { engine, admin, app } = setup();
  assert.match(app.key, /^ak_[0-9A-Za-z]{36}$/);
  assert.equal(app.prefix, app.key.slice(0, 7));
  assert.equal(app.account_id, 'acme');
  for (const f of ['id', 'account_id', 'name', 'prefix', 'scopes', 'permissions', 'limits', 'created_at', 'expires_at', 'revoked_at', 'last_used_at']) {
    assert.ok(f in app, f);
  }
  const list = engine.listKeys(admin);
  assert.ok(Array.isArray(list));
  assert.equal(list.length, 3);
  assert.ok(!('key' in list[0]), 'a listed key has no plaintext');
  assert.equal(engine.listKeys(admin, { limit: 1 }).length, 1);
  assert.equal(engine.getKey(admin, app.id).name, 'acme app');
  throwsA(() => engine.getKey(admin, 'key_nope'), NotFoundError, (e) => assert.equal(e.details.resource, 'key'));
  throwsA(() => engine.createKey(admin, { name: 'x', scopes: ['nope:nope'] }), InvalidRequestError, (e) => assert.match(e.field, /scopes/));
  throwsA(() => engine.createKey(admin, { name: 'x', scopes: ['admin:all'], extra: 1 }), InvalidRequestError, (e) => assert.equal(e.field, 'extra'));
  throwsA(() => engine.listKeys(admin, { limit: 5000 }), InvalidRequestError);

  // A non-operator admin may not create keys for another account.
  const acmeAdmin = engine.createKey(admin, { name: 'acme admin', account_id: 'acme', scopes: ['admin:all'] });
  const acme = engine.authorize(acmeAdmin.key, 'admin');
  throwsA(() => engine.createKey(acme, { name: 'x', account_id: 'other', scopes: ['sessions:read'] }), ForbiddenError);
  throwsA(() => engine.getKey(acme, admin.keyId), NotFoundError);

  // Rotate: a new key, the old one expires after the grace period.
  const rotated = engine.rotateKey(admin, app.id, { gracePeriodSeconds: 60 });
  assert.notEqual(rotated.key, app.key);
  assert.deepEqual(rotated.scopes, app.scopes);
  assert.equal(engine.getKey(admin, app.id).expires_at, T0 + 60000);
  engine.authorize(app.key, 'session.read');
  engine.advanceClock(61000);
  throwsA(() => engine.authorize(app.key, 'session.read'), ApiKeyExpiredError);
  engine.authorize(rotated.key, 'session.read');
  assert.equal(engine.rotateKey(admin, rotated.id, 0).account_id, 'acme');

  // Revoke.
  const revoked = engine.revokeKey(admin, rotated.id);
  assert.equal(revoked.revoked_at, engine.now());
  throwsA(() => engine.authorize(rotated.key, 'session.read'), ApiKeyRevokedError);

  // expires_at given at creation.
  const shortLived = engine.createKey(admin, { name: 's', scopes: ['sessions:read'], expires_at: engine.now() + 1000 });
  engine.authorize(shortLived.key, 'session.read');
  engine.advanceClock(1000);
  throwsA(() => engine.authorize(shortLived.key, 'session.read'), ApiKeyExpiredError);

  // Installing a known admin key.
  const other = new Engine();
  assert.equal(other.bootstrapAdminKey(app.key), null);
  assert.equal(other.authorize(app.key, 'admin').accountId, 'default');
  throwsA(() => other.bootstrapAdminKey('ak_malformed'), InvalidConfigError);
  other.close();
  engine.close();
});

test('sessions and tokens: the whole life, expiry, limits', () => {
  const { engine, appKey, workerKey, admin } = setup();
  const app = engine.authorize(appKey, 'session.create');
  const worker = engine.authorize(workerKey, 'worker.write');
  const created = engine.createSession(app, {
    end_user_id: 'user-42', connection_type: 'webrtc', quality: 'high', features: ['vision'], metadata: { plan: 'pro' },
  });
  assert.match(created.id, /^sess_/);
  assert.equal(created.status, 'PENDING');
  assert.equal(created.end_user_id, 'user-42');
  assert.equal(created.connection_type, 'webrtc');
  assert.deepEqual(created.features, ['vision']);
  assert.deepEqual(created.metadata, { plan: 'pro' });
  assert.equal(created.key_id, app.keyId);
  assert.equal(created.created_at, T0);
  assert.equal(created.expires_at, T0 + 300000);
  assert.equal(typeof created.session_token, 'string');
  assert.equal(engine.sessionSlotsInUse(app), 1);
  assert.equal(engine.sessionSlotsInUse(app.keyId), 1);

  // Tokens.
  const claims = engine.verifyToken(created.session_token, { audience: created.node_id, sessionId: created.id });
  assert.equal(claims.iss, 'astack');
  assert.equal(claims.sub, created.id);
  assert.equal(claims.acc, 'acme');
  assert.equal(claims.uid, 'user-42');
  const token = engine.issueToken(app, created.id);
  assert.equal(token.split('.').length, 3);
  assert.equal(JSON.parse(Buffer.from(token.split('.')[0], 'base64url')).kid, 'k1');
  throwsA(() => engine.verifyToken('garbage'), InvalidTokenError, (e) => assert.equal(e.reason, 'malformed'));
  throwsA(() => engine.verifyToken(token, { audience: 'elsewhere' }), InvalidTokenError, (e) => assert.equal(e.reason, 'wrong_audience'));
  throwsA(() => engine.verifyToken(token, { sessionId: 'sess_other' }), InvalidTokenError, (e) => assert.equal(e.reason, 'wrong_session'));

  // Reads.
  assert.equal(engine.getSession(app, created.id).status, 'PENDING');
  assert.ok(!('session_token' in engine.getSession(app, created.id)));
  assert.equal(engine.listSessions(app).length, 1);
  assert.equal(engine.listSessions(app, { limit: 1 }).length, 1);
  throwsA(() => engine.getSession(app, 'sess_nope'), NotFoundError);

  // The worker connects with the token, then ends the session.
  throwsA(() => engine.connectSession(worker, created.id, 'garbage'), InvalidTokenError);
  const active = engine.connectSession(worker, created.id, token);
  assert.equal(active.status, 'ACTIVE');
  assert.equal(active.connected_at, T0);
  throwsA(() => engine.connectSession(worker, created.id, token), InvalidTransitionError, (e) => {
    assert.equal(e.details.status, 'ACTIVE');
  });
  engine.advanceClock(5000);
  const ended = engine.endSession(worker, created.id, { outcome: 'failed', reason: 'codec error' });
  assert.equal(ended.status, 'FAILED');
  assert.equal(ended.end_reason, 'codec error');
  throwsA(() => engine.endSession(worker, created.id), InvalidTransitionError);
  throwsA(() => engine.issueToken(app, created.id), InvalidTransitionError);
  assert.equal(engine.sessionSlotsInUse(app), 0);
  assert.equal(engine.getUsage(app).session_seconds, 5);

  // Terminate, and terminate again (unchanged).
  const s2 = engine.createSession(app, { end_user_id: 'u2' });
  assert.equal(engine.terminateSession(app, s2.id).status, 'COMPLETED');
  assert.equal(engine.terminateSession(app, s2.id).status, 'COMPLETED');
  const s3 = engine.createSession(app, { end_user_id: 'u3' });
  engine.connectSession(worker, s3.id, s3.session_token);
  assert.equal(engine.endSession(worker, s3.id).status, 'COMPLETED');

  // Expiry by the clock and by the sweep.
  const s4 = engine.createSession(app, { end_user_id: 'u4' });
  const s5 = engine.createSession(app, { end_user_id: 'u5' });
  engine.advanceClock(300000);
  assert.equal(engine.getSession(app, s4.id).status, 'EXPIRED');
  assert.equal(engine.sweepSessions(), 1);
  assert.equal(engine.getSession(app, s5.id).ended_at, s5.expires_at);
  engine.setClock(new Date(T0 + 10_000_000));
  assert.equal(engine.now(), T0 + 10_000_000);
  throwsA(() => engine.verifyToken(token), InvalidTokenError, (e) => assert.equal(e.reason, 'expired'));

  // Invalid requests name the field.
  throwsA(() => engine.createSession(app, { end_user_id: '' }), InvalidRequestError, (e) => assert.equal(e.field, 'end_user_id'));
  throwsA(() => engine.createSession(app, { end_user_id: 'u', quality: 'ultra' }), InvalidRequestError, (e) => assert.equal(e.field, 'quality'));
  throwsA(() => engine.createSession(app, { end_user_id: 'u', features: ['teleport'] }), InvalidRequestError, (e) => assert.equal(e.field, 'features[0]'));
  throwsA(() => engine.createSession(app, { end_user_id: 'u', metadata: { big: 'x'.repeat(70000) } }), PayloadTooLargeError, (e) => {
    assert.equal(e.status, 413);
  });
  throwsA(() => engine.createSession(app, '{"end_user_id":'), InvalidRequestError);
  assert.throws(() => engine.createSession(app, 42), TypeError);
  assert.throws(() => engine.createSession(42, { end_user_id: 'u' }), TypeError);

  // Another account's session is not found; the admin of default may not see it either way.
  const otherApp = engine.createKey(admin, { name: 'globex', account_id: 'globex', scopes: ['sessions:read'] });
  throwsA(() => engine.getSession(otherApp.id, s4.id), NotFoundError);
  engine.close();
});

test('concurrent session limit', () => {
  const { engine, admin } = setup();
  const k = engine.createKey(admin, { name: 'one', scopes: ['sessions:write'], limits: { concurrent_sessions: 1 } });
  const d = engine.authorize(k.key, 'session.create');
  const s = engine.createSession(d, { end_user_id: 'u' });
  const e = throwsA(() => engine.authorize(k.key, 'session.create'), ConcurrentSessionLimitError);
  assert.equal(e.limit, 1);
  assert.equal(e.status, 429);
  throwsA(() => engine.createSession(d, { end_user_id: 'u' }), ConcurrentSessionLimitError);
  engine.terminateSession(d, s.id);
  engine.createSession(engine.authorize(k.key, 'session.create'), { end_user_id: 'u' });
  engine.close();
});

test('workers: register, update, list, placement, no worker available', () => {
  const { engine, admin, appKey, workerKey } = setup();
  const worker = engine.authorize(workerKey, 'worker.write');
  const app = engine.authorize(appKey, 'session.create');
  const w = engine.registerWorker(worker, { node_id: 'w1', url: 'wss://w1.example', capacity: 1 });
  assert.equal(w.node_id, 'w1');
  throwsA(() => engine.registerWorker(worker, { node_id: 'w1', url: 'wss://w1.example', capacity: 1 }), AlreadyExistsError);
  throwsA(() => engine.registerWorker(worker, { node_id: 'w2', url: 7, capacity: 1 }), InvalidRequestError, (e) => assert.equal(e.field, 'url'));
  throwsA(() => engine.registerWorker(app, { node_id: 'w3', url: 'wss://w3', capacity: 1 }), InsufficientScopeError);
  const s = engine.createSession(app, { end_user_id: 'u' });
  assert.equal(s.node_id, 'w1');
  assert.equal(s.worker_url, 'wss://w1.example');
  throwsA(() => engine.createSession(app, { end_user_id: 'u' }), NoWorkerAvailableError, (e) => assert.equal(e.status, 503));
  assert.equal(engine.updateWorker(worker, 'w1', { capacity: 2 }).capacity, 2);
  engine.createSession(app, { end_user_id: 'u' });
  const list = engine.listWorkers(worker);
  assert.equal(list.length, 1);
  assert.equal(list[0].active_sessions, 2);
  assert.equal(engine.listWorkers(app).length, 1, 'workers:read lists');
  throwsA(() => engine.updateWorker(worker, 'nope', { capacity: 2 }), NotFoundError);
  // Only the operator's keys register workers.
  const acmeWorker = engine.createKey(admin, { name: 'acme w', account_id: 'acme', scopes: ['workers:write'] });
  throwsA(() => engine.registerWorker(acmeWorker.id, { node_id: 'w9', url: 'wss://w9', capacity: 1 }), ForbiddenError);
  engine.close();
});

test('users: create, get, list, update, delete', () => {
  const { engine, appKey } = setup();
  const app = engine.authorize(appKey, 'user.write');
  const u = engine.createUser(app, { name: 'Ada', email: 'ada@example.com', metadata: { tier: 1 } });
  for (const f of ['id', 'name', 'email', 'metadata', 'created_at', 'updated_at']) assert.ok(f in u, f);
  assert.equal(engine.getUser(app, u.id).email, 'ada@example.com');
  engine.advanceClock(1000);
  const changed = engine.updateUser(app, u.id, { name: 'Ada L.', email: null });
  assert.equal(changed.name, 'Ada L.');
  assert.equal(changed.email, null);
  assert.equal(changed.updated_at, T0 + 1000);
  engine.createUser(app, { name: 'Bob' });
  const users = engine.listUsers(app);
  assert.equal(users.length, 2);
  assert.equal(users[0].name, 'Bob', 'newest first');
  assert.equal(engine.listUsers(app, 1).length, 1);
  assert.equal(engine.deleteUser(app, u.id).id, u.id);
  throwsA(() => engine.getUser(app, u.id), NotFoundError);
  throwsA(() => engine.createUser(app, { name: 'x', email: 5 }), InvalidRequestError, (e) => assert.equal(e.field, 'email'));
  engine.close();
});

test('usage, alerts, audit, metrics', () => {
  const { engine, admin, appKey } = setup();
  const app = engine.authorize(appKey, 'billing.write');
  engine.authorize(appKey, 'billing.read');
  assert.deepEqual(engine.createAlert(app, { metric: 'minutes', threshold: 10 }).fired_at, null);
  assert.deepEqual(engine.recordUsage(app, { metric: 'minutes', quantity: 6, idempotency_key: 'a' }), { metric: 'minutes', total: 6, counted: true });
  assert.equal(engine.recordUsage(app, { metric: 'minutes', quantity: 6, idempotency_key: 'a' }).counted, false);
  assert.equal(engine.recordUsage(app, { metric: 'minutes', quantity: 4, idempotency_key: 'b' }).total, 10);
  const usage = engine.getUsage(app);
  assert.equal(usage.account_id, 'acme');
  assert.equal(usage.requests, 2);
  assert.equal(usage.session_seconds, 0);
  assert.ok(usage.metrics);
  const alerts = engine.listAlerts(app);
  assert.equal(alerts.length, 1);
  assert.equal(alerts[0].fired_at, T0);
  throwsA(() => engine.recordUsage(app, { metric: 'minutes' }), InvalidRequestError);

  const audit = engine.listAudit(admin);
  assert.ok(audit.length >= 3);
  assert.ok(audit.every((r) => 'action' in r && 'at' in r && 'actor_prefix' in r));
  assert.ok(!JSON.stringify(audit).includes(appKey), 'no plaintext key in the audit log');
  assert.equal(engine.listAudit(admin, { limit: 2 }).length, 2);
  throwsA(() => engine.listAudit(app), InsufficientScopeError);
  const m = engine.metrics(admin);
  assert.equal(m.keys, 3);
  assert.ok('sessions' in m && 'workers' in m);
  engine.close();
});

test('the manual clock, and the system clock refuses to move', () => {
  const engine = new Engine(null, { clock: 'manual', now: new Date(T0) });
  assert.equal(engine.now(), T0);
  engine.advanceClock(1500);
  assert.equal(engine.now(), T0 + 1500);
  engine.setClock(T0 - 1);
  assert.equal(engine.now(), T0 - 1);
  assert.throws(() => engine.advanceClock(-1), RangeError);
  assert.throws(() => engine.setClock('soon'), TypeError);
  engine.close();
  const system = new Engine();
  assert.ok(Math.abs(system.now() - Date.now()) < 5000);
  throwsA(() => system.setClock(T0), UnsupportedError, (e) => assert.equal(e.code, 'unsupported'));
  throwsA(() => system.advanceClock(1), UnsupportedError);
  system.close();
  const defaultManual = new Engine(undefined, { clock: 'manual' });
  assert.ok(Math.abs(defaultManual.now() - Date.now()) < 5000);
  defaultManual.close();
});

test('close(): idempotent, and every later call throws EngineClosedError', () => {
  const { engine, adminKey, admin } = setup();
  assert.equal(engine.closed, false);
  engine.close();
  assert.equal(engine.closed, true);
  engine.close();
  const calls = [
    () => engine.authorize(adminKey, 'admin'),
    () => engine.createKey(admin, { name: 'x', scopes: ['admin:all'] }),
    () => engine.listKeys(admin),
    () => engine.getSession(admin, 'sess_x'),
    () => engine.bootstrapAdminKey(),
    () => engine.verifyToken('x'),
    () => engine.config(),
    () => engine.now(),
    () => engine.setClock(1),
    () => engine.advanceClock(1),
    () => engine.sweepSessions(),
    () => engine.sessionSlotsInUse(admin),
    () => engine.metrics(admin),
  ];
  for (const call of calls) {
    throwsA(call, EngineClosedError, (e) => {
      assert.equal(e.code, 'engine_closed');
      assert.equal(e.toJSON().error.code, 'engine_closed');
    });
  }
});

test('strings with NUL characters are refused, not cut', () => {
  const { engine, admin } = setup();
  throwsA(() => engine.getKey(admin, `${admin.keyId}\0tail`), InvalidArgumentError);
  throwsA(() => engine.createKey(`${admin.keyId}\0`, { name: 'x', scopes: ['admin:all'] }), InvalidArgumentError);
  engine.close();
});

test('RateLimiter on any string key', () => {
  const limiter = new RateLimiter([
    { name: 'second', limit: 2, period_seconds: 1 },
    { name: 'minute', limit: 3, period_seconds: 60 },
  ]);
  const now = T0;
  assert.equal(limiter.check('1.2.3.4', now).remaining, 1);
  const second = limiter.check('1.2.3.4', now);
  assert.equal(second.allowed, true);
  assert.equal(second.window, 'second');
  assert.equal(second.headers['RateLimit-Policy'], '"second";q=2;w=1, "minute";q=3;w=60');
  const denied = limiter.check('1.2.3.4', now);
  assert.equal(denied.allowed, false);
  assert.equal(denied.retryAfter, 1);
  assert.equal(denied.headers['Retry-After'], '1');
  throwsA(() => limiter.consume('1.2.3.4', now), RateLimitedError, (e) => assert.equal(e.retryAfter, 1));
  assert.equal(limiter.check('5.6.7.8', now).allowed, true, 'keys are independent');
  assert.equal(limiter.check('1.2.3.4', now + 1000).window, 'minute');
  assert.equal(limiter.sweep(now + 3_600_000), 0);
  assert.equal(limiter.check('x').allowed, true, 'the wall clock by default');
  throwsA(() => new RateLimiter([{ name: 'm', limit: 0, period_seconds: 60 }]), InvalidRequestError);
  assert.throws(() => new RateLimiter('nope'), TypeError);
  limiter.close();
  limiter.close();
  throwsA(() => limiter.check('x', now), EngineClosedError);
});

test('every result of the C header has its code and its class', () => {
  // A result added to the C ABI and not to lib/errors.js would surface as a bare AstackError.
  const header = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'include', 'astack.h'), 'utf8');
  const body = header.split('enum astack_result')[1].split('}')[0];
  const results = [...body.matchAll(/^\s*ASTACK_([A-Z_]+) = (\d+),$/gm)].map((m) => [Number(m[2]), m[1].toLowerCase()]);
  assert.ok(results.length > 20);
  for (const [result, code] of results) {
    assert.equal(native.resultCode(result), code);
    if (result !== 0) assert.notEqual(astack.errorClassFor(code), AstackError, code);
  }
});

test('every error class: code, status, toJSON, hierarchy', () => {
  const table = [
    [MissingApiKeyError, 'missing_api_key', 401],
    [InvalidApiKeyError, 'invalid_api_key', 401],
    [ApiKeyRevokedError, 'api_key_revoked', 401],
    [ApiKeyExpiredError, 'api_key_expired', 401],
    [InsufficientScopeError, 'insufficient_scope', 403],
    [RateLimitedError, 'rate_limited', 429],
    [ConcurrentSessionLimitError, 'concurrent_session_limit', 429],
    [InvalidRequestError, 'invalid_request', 400],
    [NotFoundError, 'not_found', 404],
    [ForbiddenError, 'forbidden', 403],
    [AlreadyExistsError, 'already_exists', 409],
    [InvalidTransitionError, 'invalid_transition', 409],
    [InvalidTokenError, 'invalid_token', 401],
    [PayloadTooLargeError, 'payload_too_large', 413],
    [NoWorkerAvailableError, 'no_worker_available', 503],
    [InvalidConfigError, 'invalid_config', 400],
    [UnavailableError, 'unavailable', 503],
    [InternalError, 'internal_error', 500],
    [InvalidArgumentError, 'invalid_argument', 400],
    [UnsupportedError, 'unsupported', 400],
    [EngineClosedError, 'engine_closed', 500],
  ];
  assert.equal(astack.ERROR_CLASSES.length, table.length);
  for (const [cls, code, status] of table) {
    assert.equal(cls.code, code);
    assert.equal(cls.status, status);
    assert.equal(astack.errorClassFor(code), cls);
    const e = astack.fromBody(code, JSON.stringify({ error: { code, message: `m ${code}`, field: 'f', retry_after: 3, reason: 'expired' } }));
    assert.ok(e instanceof cls && e instanceof AstackError && e instanceof Error);
    assert.equal(e.name, cls.name);
    assert.equal(e.code, code);
    assert.equal(e.status, status);
    assert.equal(e.message, `m ${code}`);
    assert.deepEqual(e.toJSON(), { error: { code, message: `m ${code}`, field: 'f', retry_after: 3, reason: 'expired' } });
    assert.match(e.stack, new RegExp(cls.name));
  }
  assert.equal(astack.fromBody('rate_limited', { error: { code: 'rate_limited', message: 'x', retry_after: 7 } }).retryAfter, 7);
  assert.equal(astack.fromBody('invalid_token', { error: { code: 'invalid_token', message: 'x', reason: 'expired' } }).reason, 'expired');
  assert.equal(astack.fromBody('invalid_utf8', null).constructor, InvalidArgumentError);
  assert.equal(astack.fromBody('invalid_utf8', null).code, 'invalid_utf8');
  assert.equal(astack.fromBody('something_new', null).constructor, AstackError);
});
