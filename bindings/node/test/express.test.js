'use strict';
// authMiddleware and errorHandler in a real Express app, over HTTP.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const test = require('node:test');
const assert = require('node:assert/strict');
const express = require('express');

const { Engine, AStackSDK, authMiddleware, errorHandler, operationFor, NotFoundError } = require('..');

/** Starts `app` on an ephemeral port; returns its base URL and a stop function. */
async function listen(app) {
  const server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return { base: `http://127.0.0.1:${server.address().port}`, stop: () => new Promise((r) => server.close(r)) };
}

function call(base, method, path, { key, body, headers = {} } = {}) {
  const h = { ...headers };
  if (key !== undefined) h.authorization = `Bearer ${key}`;
  if (body !== undefined) h['content-type'] = 'application/json';
  return fetch(base + path, { method, headers: h, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'astack-express-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

let databases = 0;

/** A fresh store of `kind`: over SQLite, the middleware and the SDK go through engine.promises. */
function store(kind) {
  return kind === 'memory' ? {} : { store: { kind, path: path.join(tmp, `${databases++}.db`) } };
}

function build(kind) {
  const engine = new Engine({ limits: { requests_per_minute: 5, requests_per_hour: 1000 }, ...store(kind) });
  const sdk = new AStackSDK({ engine });
  const adminKey = engine.bootstrapAdminKey();
  const admin = engine.authorize(adminKey, 'admin');
  const appKey = engine.createKey(admin, { name: 'app', account_id: 'acme', scopes: ['sessions:write', 'sessions:read'] }).key;
  const readKey = engine.createKey(admin, { name: 'ro', account_id: 'acme', scopes: ['sessions:read'] }).key;

  const app = express();
  app.use(express.json({ limit: '64kb' }));
  // The operation of each route from the SPEC §3 table.
  app.use('/api/v1', authMiddleware(sdk));
  app.post('/api/v1/sessions', async (req, res, next) => {
    try {
      // The SDK acts with the key the middleware authorized (AsyncLocalStorage).
      const { session, sessionToken } = await sdk.createSession(req.body.end_user_id, { quality: req.body.quality });
      res.status(201).json({ ...session, session_token: sessionToken, who: req.astack.keyId, account: req.astack.accountId });
    } catch (err) {
      next(err);
    }
  });
  app.get('/api/v1/sessions/:id', (req, res) => res.json(engine.getSession(req.astack, req.params.id)));
  app.get('/api/v1/sessions', (req, res) => res.json({ data: engine.listSessions(req.astack) }));
  app.get('/api/v1/keys', (req, res) => res.json({ data: engine.listKeys(req.astack) }));
  app.get('/api/v1/boom', () => {
    throw new Error('not an astack error');
  });
  // A fixed operation, and a function.
  app.get('/custom/fixed', authMiddleware(engine, { operation: 'session.read' }), (req, res) => res.json(req.astack.operation));
  app.get('/custom/fn', authMiddleware(sdk, { operation: () => 'admin', property: 'auth' }), (req, res) => res.json(req.auth.keyId));
  app.use(errorHandler());
  app.use((err, req, res, next) => {
    res.status(599).json({ other: err.message });
  });
  return { engine, sdk, app, adminKey, admin, appKey, readKey };
}

for (const kind of ['memory', 'sqlite']) test(`Express: authMiddleware + errorHandler over HTTP (${kind} store)`, async (t) => {
  const { engine, app, adminKey, admin, appKey, readKey } = build(kind);
  assert.equal(engine.store, kind);
  const { base, stop } = await listen(app);
  t.after(async () => {
    await stop();
    engine.close();
  });

  await t.test('201 with the rate-limit headers and the identity on req', async () => {
    const r = await call(base, 'POST', '/api/v1/sessions', { key: appKey, body: { end_user_id: 'user-1', quality: 'high' } });
    assert.equal(r.status, 201);
    assert.equal(r.headers.get('ratelimit-policy'), '"minute";q=5;w=60, "hour";q=1000;w=3600');
    assert.match(r.headers.get('ratelimit'), /^"minute";r=4;t=\d+$/);
    assert.equal(r.headers.get('retry-after'), null);
    const body = await r.json();
    assert.equal(body.status, 'PENDING');
    assert.equal(body.quality, 'high');
    assert.equal(body.end_user_id, 'user-1');
    assert.equal(body.account, 'acme');
    assert.equal(body.key_id, body.who);
    assert.equal(typeof body.session_token, 'string');
    const got = await call(base, 'GET', `/api/v1/sessions/${body.id}`, { key: readKey });
    assert.equal(got.status, 200);
    assert.equal((await got.json()).id, body.id);
  });

  await t.test('401 missing, malformed and unknown keys', async () => {
    let r = await call(base, 'GET', '/api/v1/sessions');
    assert.equal(r.status, 401);
    assert.deepEqual(await r.json(), { error: { code: 'missing_api_key', message: 'an API key is required: send `Authorization: Bearer <key>`' } });
    assert.equal(r.headers.get('ratelimit'), null, 'no rate headers for an unauthenticated request');
    r = await call(base, 'GET', '/api/v1/sessions', { headers: { authorization: `Basic ${appKey}` } });
    assert.equal(r.status, 401);
    assert.equal((await r.json()).error.code, 'invalid_api_key');
    r = await call(base, 'GET', '/api/v1/sessions', { key: 'ak_000000000000000000000000000000000000' });
    assert.equal(r.status, 401);
    assert.equal((await r.json()).error.code, 'invalid_api_key');
    assert.match(r.headers.get('content-type'), /application\/json/);
  });

  await t.test('403 insufficient scope, with the headers', async () => {
    const r = await call(base, 'POST', '/api/v1/sessions', { key: readKey, body: { end_user_id: 'u' } });
    assert.equal(r.status, 403);
    const body = await r.json();
    assert.equal(body.error.code, 'insufficient_scope');
    assert.deepEqual(body.error.required_scopes, ['sessions:write']);
    assert.ok(r.headers.get('ratelimit-policy'));
    const keys = await call(base, 'GET', '/api/v1/keys', { key: appKey });
    assert.equal(keys.status, 403);
    assert.deepEqual((await keys.json()).error.required_scopes, ['admin:all']);
  });

  await t.test('400 invalid request names the field; malformed JSON; 404', async () => {
    let r = await call(base, 'POST', '/api/v1/sessions', { key: adminKey, body: { end_user_id: '' } });
    assert.equal(r.status, 400);
    let body = await r.json();
    assert.equal(body.error.code, 'invalid_request');
    assert.equal(body.error.field, 'end_user_id');
    r = await call(base, 'POST', '/api/v1/sessions', { key: adminKey, body: '{"end_user_id":' });
    assert.equal(r.status, 400);
    body = await r.json();
    assert.equal(body.error.code, 'invalid_request');
    assert.equal(body.error.field, 'body');
    r = await call(base, 'GET', '/api/v1/sessions/sess_nope', { key: adminKey });
    assert.equal(r.status, 404);
    assert.equal((await r.json()).error.code, 'not_found');
    r = await call(base, 'GET', '/api/v1/nothing-here', { key: adminKey });
    assert.equal(r.status, 404);
    assert.equal((await r.json()).error.code, 'not_found');
  });

  await t.test('413 payload too large', async () => {
    const r = await call(base, 'POST', '/api/v1/sessions', { key: adminKey, body: { end_user_id: 'u', metadata: { x: 'y'.repeat(70 * 1024) } } });
    assert.equal(r.status, 413);
    assert.equal((await r.json()).error.code, 'payload_too_large');
  });

  await t.test('non-astack errors go to the next handler', async () => {
    const r = await call(base, 'GET', '/api/v1/boom', { key: adminKey });
    // /api/v1/boom has no SPEC operation: 404 from the middleware, before the route.
    assert.equal(r.status, 404);
    const fixed = await call(base, 'GET', '/custom/fixed', { key: readKey });
    assert.equal(fixed.status, 200);
    assert.equal(await fixed.json(), 'session.read');
    const fn = await call(base, 'GET', '/custom/fn', { key: adminKey });
    assert.equal(await fn.json(), admin.keyId);
  });

  await t.test('429 after the limit, with Retry-After', async () => {
    const k = engine.createKey(admin, { name: 'burst', scopes: ['sessions:read'], limits: { requests_per_minute: 3 } }).key;
    for (let i = 0; i < 3; i++) {
      const ok = await call(base, 'GET', '/api/v1/sessions', { key: k });
      assert.equal(ok.status, 200);
      assert.match(ok.headers.get('ratelimit'), new RegExp(`^"minute";r=${2 - i};t=\\d+$`));
    }
    const r = await call(base, 'GET', '/api/v1/sessions', { key: k });
    assert.equal(r.status, 429);
    assert.equal(r.headers.get('retry-after'), '20');
    assert.equal(r.headers.get('ratelimit-policy'), '"minute";q=3;w=60, "hour";q=1000;w=3600');
    assert.match(r.headers.get('ratelimit'), /^"minute";r=0;t=\d+$/);
    const body = await r.json();
    assert.equal(body.error.code, 'rate_limited');
    assert.equal(body.error.retry_after, 20);
  });
});

test('errorHandler({ all: true }) answers 500 internal_error; plain http responses work', async () => {
  const app = express();
  app.get('/boom', () => {
    throw new Error('secret detail');
  });
  app.get('/nf', (req, res, next) => next(new NotFoundError('session not found', { resource: 'session' })));
  app.use(errorHandler({ all: true }));
  const { base, stop } = await listen(app);
  try {
    let r = await fetch(`${base}/boom`);
    assert.equal(r.status, 500);
    const body = await r.json();
    assert.equal(body.error.code, 'internal_error');
    assert.ok(!JSON.stringify(body).includes('secret detail'));
    r = await fetch(`${base}/nf`);
    assert.equal(r.status, 404);
    assert.deepEqual(await r.json(), { error: { code: 'not_found', message: 'session not found', resource: 'session' } });
  } finally {
    await stop();
  }
});

test('operationFor follows the SPEC §3 table', () => {
  const table = [
    ['POST', '/api/v1/sessions', 'session.create'],
    ['GET', '/api/v1/sessions', 'session.read'],
    ['GET', '/api/v1/sessions/sess_1', 'session.read'],
    ['DELETE', '/api/v1/sessions/sess_1', 'session.terminate'],
    ['POST', '/api/v1/sessions/sess_1/connect', 'worker.write'],
    ['POST', '/api/v1/sessions/sess_1/end', 'worker.write'],
    ['GET', '/api/v1/users', 'user.read'],
    ['GET', '/api/v1/users/u1', 'user.read'],
    ['POST', '/api/v1/users', 'user.write'],
    ['PATCH', '/api/v1/users/u1', 'user.write'],
    ['DELETE', '/api/v1/users/u1', 'user.write'],
    ['GET', '/api/v1/usage', 'billing.read'],
    ['GET', '/api/v1/usage/alerts', 'billing.read'],
    ['POST', '/api/v1/usage', 'billing.write'],
    ['POST', '/api/v1/usage/alerts', 'billing.write'],
    ['GET', '/api/v1/workers', 'worker.read'],
    ['POST', '/api/v1/workers', 'worker.write'],
    ['PATCH', '/api/v1/workers/w1', 'worker.write'],
    ['POST', '/api/v1/keys', 'admin'],
    ['POST', '/api/v1/keys/key_1/rotate', 'admin'],
    ['GET', '/api/v1/audit', 'admin'],
    ['GET', '/api/v1/metrics?x=1', 'admin'],
    ['GET', '/healthz', null],
    ['PUT', '/api/v1/sessions', null],
  ];
  for (const [method, path, op] of table) assert.equal(operationFor(method, path), op, `${method} ${path}`);
  assert.throws(() => authMiddleware({}, {}), TypeError);
  assert.throws(() => authMiddleware(new AStackSDK({ apiKey: undefined }), { operation: 'nope' }), TypeError);
});

for (const kind of ['memory', 'sqlite']) test(`AStackSDK outside a request acts with its own key (${kind} store)`, async () => {
  const sdk = new AStackSDK({ config: { features: ['vision'], ...store(kind) } });
  assert.match(sdk.apiKey, /^ak_/);
  const { session, sessionToken } = await sdk.createSession('user-9', { connectionType: 'webrtc', features: ['vision'], metadata: { a: 1 } });
  assert.equal(session.connection_type, 'webrtc');
  assert.equal(session.end_user_id, 'user-9');
  assert.ok(!('session_token' in session));
  assert.equal(typeof sessionToken, 'string');
  const token = await sdk.generateSessionToken(session.id);
  const claims = await sdk.verifySessionToken(token, { sessionId: session.id });
  assert.equal(claims.sub, session.id);
  assert.equal((await sdk.getSession(session.id)).id, session.id);
  assert.equal((await sdk.listSessions()).length, 1);
  assert.equal((await sdk.terminateSession(session.id)).status, 'COMPLETED');
  await assert.rejects(sdk.createSession('', {}), { code: 'invalid_request', status: 400 });
  // An explicit key id.
  const engine = sdk.engine;
  const admin = engine.authorize(sdk.apiKey, 'admin');
  const k = engine.createKey(admin, { name: 'x', account_id: 'acme', scopes: ['sessions:write'] });
  const made = await sdk.createSession('u', { keyId: k.id });
  assert.equal(made.session.key_id, k.id);
  // A given key is installed as the operator's.
  const given = new AStackSDK({ apiKey: k.key });
  assert.equal(given.engine.authorize(k.key, 'admin').accountId, 'default');
  given.close();
  sdk.close();
  assert.equal(engine.closed, true);
  // Wrapping an engine does not close it.
  const e2 = new Engine();
  const wrapped = new AStackSDK(e2);
  wrapped.close();
  assert.equal(e2.closed, false);
  e2.close();
});
