'use strict';
// engine.promises: the calls that may wait on the store, run on libuv's thread pool. They answer
// as the synchronous calls do, keep the limits exact with many calls in flight, let the event
// loop turn while the store answers, and survive close() and garbage collection under way.

const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const test = require('node:test');
const assert = require('node:assert/strict');
const v8 = require('node:v8');
const vm = require('node:vm');

const {
  Engine, NotFoundError, InvalidRequestError, InsufficientScopeError, RateLimitedError, InvalidApiKeyError,
  ConcurrentSessionLimitError, InvalidArgumentError, EngineClosedError, UnavailableError,
} = require('..');

if (typeof global.gc !== 'function') {
  v8.setFlagsFromString('--expose-gc');
  global.gc = vm.runInNewContext('gc');
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'astack-promises-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
let databases = 0;

/** The configuration of a fresh store of each kind that needs no server. */
function storeConfig(kind) {
  return kind === 'memory' ? {} : { store: { kind, path: path.join(tmp, `${databases++}.db`) } };
}

/** An engine on a manual clock with its operator admin and an app key of account acme. */
function setup(kind, config = {}) {
  const engine = new Engine({ ...storeConfig(kind), ...config }, { clock: 'manual', now: Date.UTC(2030, 0, 1) });
  const adminKey = engine.bootstrapAdminKey();
  const admin = engine.authorize(adminKey, 'admin');
  const app = engine.createKey(admin, { name: 'app', account_id: 'acme', scopes: ['sessions:read', 'sessions:write', 'workers:write'] });
  return { engine, admin, adminKey, appKey: app.key };
}

test('engine.store names the store the configuration chose', () => {
  const stores = [
    [undefined, 'memory'],
    [{ store: { kind: 'memory' } }, 'memory'],
    [JSON.stringify(storeConfig('sqlite')), 'sqlite'],
    // Redis is not reached until the first call.
    [{ store: { kind: 'redis', url: 'redis://127.0.0.1:1/0' } }, 'redis'],
  ];
  for (const [config, kind] of stores) {
    const engine = new Engine(config);
    assert.equal(engine.store, kind);
    engine.close();
  }
});

for (const kind of ['memory', 'sqlite']) {
  test(`promises answer as the synchronous calls do (${kind} store)`, async () => {
    const { engine, admin, appKey } = setup(kind);
    const p = engine.promises;
    assert.equal(engine.promises, p, 'one promises object per engine');

    const decision = await p.authorize(appKey, 'session.create');
    const same = engine.authorize(appKey, 'session.create');
    // The same decision but for the token the synchronous call took after it.
    assert.deepEqual({ ...decision, remaining: 0, reset: 0 }, { ...same, remaining: 0, reset: 0 });
    assert.equal(decision.remaining, same.remaining + 1);

    // A session's whole life through the promises.
    const created = await p.createSession(decision, { end_user_id: 'u1', quality: 'high' });
    assert.equal(created.status, 'PENDING');
    assert.equal(typeof created.session_token, 'string');
    assert.deepEqual(await p.getSession(decision, created.id), engine.getSession(decision, created.id));
    assert.deepEqual((await p.listSessions(decision)).map((s) => s.id), [created.id]);
    const token = await p.issueToken(decision, created.id);
    assert.equal(engine.verifyToken(token, { sessionId: created.id }).sub, created.id);
    assert.equal((await p.connectSession(decision, created.id, token)).status, 'ACTIVE');
    assert.equal((await p.endSession(decision, created.id, { outcome: 'completed' })).status, 'COMPLETED');
    assert.deepEqual((await p.listKeys(admin)).map((k) => k.id).sort(), engine.listKeys(admin).map((k) => k.id).sort());
    assert.equal((await p.listAudit(admin, { limit: 1 }))[0].action, 'session.completed');

    // Slots and the sweep: a pending session holds a slot until it expires.
    await p.createSession(decision, { end_user_id: 'u2' });
    assert.equal(await p.sessionSlotsInUse(decision), 1);
    assert.equal(engine.sessionSlotsInUse(decision), 1);
    engine.advanceClock(301_000);
    assert.equal(await p.sweepSessions(), 1);
    assert.equal(await p.sweepSessions(), 0);
    assert.equal(await p.sessionSlotsInUse(decision.keyId), 0);
    await assert.rejects(p.sessionSlotsInUse(42), TypeError);

    // Failures reject with the class the synchronous call throws.
    await assert.rejects(p.getSession(decision, 'sess_missing'), NotFoundError);
    await assert.rejects(p.createSession(decision, { end_user_id: '' }), (err) => err instanceof InvalidRequestError && err.field === 'end_user_id');
    await assert.rejects(p.authorize(appKey, 'admin'), (err) => err instanceof InsufficientScopeError && err.decision.keyId === undefined && err.decision.requestsPerMinute === 100);
    await assert.rejects(p.authorize('ak_nope', 'session.read'), InvalidApiKeyError);
    // Bad arguments reject too: a promise-returning call never throws.
    const bad = p.createSession(decision, 5);
    assert.ok(bad instanceof Promise);
    await assert.rejects(bad, TypeError);
    await assert.rejects(p.authorize(appKey, 'no.such.operation'), InvalidArgumentError);
    await assert.rejects(p.authorize(42, 'session.read'), TypeError);
    await assert.rejects(p.getSession(decision, 'sess\u0000x'), InvalidArgumentError);
    engine.close();
  });
}

test('limits stay exact with many calls in flight on the pool (SQLite store)', async () => {
  const { engine, admin } = setup('sqlite');
  const key = engine.createKey(admin, {
    name: 'burst',
    account_id: 'acme',
    scopes: ['sessions:write'],
    limits: { requests_per_minute: 25, concurrent_sessions: 4 },
  });
  const decisions = await Promise.allSettled(Array.from({ length: 60 }, () => engine.promises.authorize(key.key, 'session.create')));
  const allowed = decisions.filter((d) => d.status === 'fulfilled');
  assert.equal(allowed.length, 25);
  assert.ok(decisions.filter((d) => d.status === 'rejected').every((d) => d.reason instanceof RateLimitedError));
  // remaining counts down through every value once.
  assert.deepEqual(allowed.map((d) => d.value.remaining).sort((a, b) => a - b), Array.from({ length: 25 }, (_, i) => i));

  const sessions = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => engine.promises.createSession(key.id, { end_user_id: `u${i}` })));
  assert.equal(sessions.filter((s) => s.status === 'fulfilled').length, 4);
  assert.ok(sessions.filter((s) => s.status === 'rejected').every((s) => s.reason instanceof ConcurrentSessionLimitError));
  assert.equal(engine.sessionSlotsInUse(key.id), 4);
  engine.close();
});

/**
 * A stand-in for Redis on the event loop of this test: it answers `CLIENT SETINFO` with `+OK`
 * and every other command with an error, and records each command when it answers it.
 */
async function fakeRedis() {
  const answered = [];
  const sockets = new Set();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    let buffer = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const command = readCommand(buffer);
        if (command === null) break;
        buffer = buffer.subarray(command.length);
        answered.push(command.words.join(' '));
        socket.write(command.words[0] === 'CLIENT' ? '+OK\r\n' : '-ERR not really redis\r\n');
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = () => {
    for (const socket of sockets) socket.destroy();
    server.close();
  };
  return { url: `redis://127.0.0.1:${server.address().port}/0`, answered, close };
}

/** The first RESP command in `buffer` (its words and its length in bytes), or null if it is
 *  not all there yet. */
function readCommand(buffer) {
  const text = buffer.toString('latin1');
  let at = text.indexOf('\r\n');
  if (text[0] !== '*' || at < 0) return null;
  const words = [];
  for (let n = Number(text.slice(1, at)), i = 0; i < n; i++) {
    const end = text.indexOf('\r\n', at + 2);
    if (end < 0) return null;
    const length = Number(text.slice(at + 3, end));
    if (text.length < end + 2 + length + 2) return null;
    words.push(text.slice(end + 2, end + 2 + length));
    at = end + 2 + length;
  }
  return { words, length: at + 2 };
}

test('the event loop turns while a call waits on the store (Redis store)', async (t) => {
  const redis = await fakeRedis();
  const engine = new Engine({ store: { kind: 'redis', url: redis.url } });
  t.after(() => {
    engine.close();
    redis.close();
  });
  const key = new Engine().bootstrapAdminKey(); // well formed, so that it is looked up
  // The stand-in answers on this thread: a call that held the thread until Redis answered
  // would wait for its timeout instead, with nothing answered when it failed.
  await assert.rejects(engine.promises.authorize(key, 'session.read'), (err) => {
    assert.ok(err instanceof UnavailableError, String(err));
    assert.ok(redis.answered.some((c) => !c.startsWith('CLIENT')), `answered: ${redis.answered}`);
    return true;
  });
});

test('flush writes what the store holds back at once (SQLite store, no flush thread)', async () => {
  const config = storeConfig('sqlite');
  config.store.flush_ms = 0;
  const opened = Date.now();
  const engine = new Engine(config);
  const adminKey = engine.bootstrapAdminKey();
  const admin = engine.authorize(adminKey, 'admin');
  const key = engine.createKey(admin, { name: 'k', scopes: ['sessions:read'] });
  engine.authorize(key.key, 'session.read');
  // What another engine on the file reads of the key's last use.
  const written = () => {
    const other = new Engine(config);
    try {
      return other.getKey(other.authorize(adminKey, 'admin'), key.id).last_used_at;
    } finally {
      other.close();
    }
  };
  // Held back for a second after the store opened (a machine slower than that has written it).
  if (Date.now() - opened < 900) assert.equal(written(), null);
  assert.equal(await engine.promises.flush(), undefined);
  assert.equal(typeof written(), 'number');
  engine.flush();
  engine.close();
  assert.throws(() => engine.flush(), EngineClosedError);
});

test("the engine's thread writes what SQLite holds back, with no call on the event loop", async () => {
  const config = storeConfig('sqlite');
  config.store.flush_ms = 50;
  const engine = new Engine(config);
  const adminKey = engine.bootstrapAdminKey();
  const app = engine.createKey(engine.authorize(adminKey, 'admin'), { name: 'app', scopes: ['sessions:read'] });
  engine.authorize(app.key, 'session.read');
  // What another engine on the file reads of the app key's last use (it uses only the admin's).
  const written = () => {
    const other = new Engine({ store: { ...config.store, flush_ms: 0 } });
    try {
      return other.getKey(other.authorize(adminKey, 'admin'), app.id).last_used_at;
    } finally {
      other.close();
    }
  };
  const deadline = Date.now() + 20000;
  while (written() === null) {
    assert.ok(Date.now() < deadline, "written by the engine's thread");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  engine.close();
});

test('close() with calls in flight: they finish, later calls reject, and the engine is freed once', async () => {
  const { engine, adminKey } = setup('sqlite');
  const admin = engine.authorize(adminKey, 'admin');
  const inFlight = Array.from({ length: 40 }, (_, i) => engine.promises.createSession(admin, { end_user_id: `u${i}`, metadata: { i } }));
  engine.close();
  assert.equal(engine.closed, true);
  assert.throws(() => engine.authorize(adminKey, 'admin'), EngineClosedError);
  await assert.rejects(engine.promises.authorize(adminKey, 'admin'), EngineClosedError);
  await assert.rejects(engine.promises.listSessions(admin), EngineClosedError);
  const done = await Promise.allSettled(inFlight);
  // Ten slots: the calls accepted before close() all ran.
  assert.equal(done.filter((d) => d.status === 'fulfilled').length, 10);
  assert.ok(done.filter((d) => d.status === 'rejected').every((d) => d.reason instanceof ConcurrentSessionLimitError));
  assert.equal(engine.close(), undefined);
});

test('an engine dropped with calls in flight is not collected under them', async () => {
  let { engine, admin } = setup('sqlite');
  const inFlight = Array.from({ length: 40 }, (_, i) => engine.promises.listSessions(admin, { limit: i + 1 }));
  engine = null;
  for (let i = 0; i < 3; i++) global.gc();
  for (const answer of await Promise.all(inFlight)) assert.deepEqual(answer, []);
});
