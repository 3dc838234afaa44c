'use strict';
// Thousands of engines and calls with close() and garbage collection: RSS stays flat, and
// nothing crashes after close(). Run with --expose-gc (npm test does); without it, gc is
// exposed through the V8 flag.

const test = require('node:test');
const assert = require('node:assert/strict');
const v8 = require('node:v8');
const vm = require('node:vm');

const { Engine, EngineClosedError, AStackSDK } = require('..');

if (typeof global.gc !== 'function') {
  v8.setFlagsFromString('--expose-gc');
  global.gc = vm.runInNewContext('gc');
}

function collect() {
  for (let i = 0; i < 3; i++) global.gc();
}

const MB = 1024 * 1024;

/** One round of work on a fresh engine: keys, authorize, sessions, tokens, errors; closed or
 *  left to the finalizer. */
function round(i, close) {
  const engine = new Engine(null, { clock: 'manual', now: 1_900_000_000_000 });
  const admin = engine.authorize(engine.bootstrapAdminKey(), 'admin');
  const k = engine.createKey(admin, { name: `k${i}`, account_id: 'acme', scopes: ['sessions:write', 'sessions:read'] });
  for (let j = 0; j < 10; j++) engine.authorize(k.key, 'session.read');
  const d = engine.authorize(k.key, 'session.create');
  const s = engine.createSession(d, { end_user_id: `u${i}`, metadata: { i } });
  engine.getSession(d, s.id);
  engine.verifyToken(engine.issueToken(d, s.id));
  engine.terminateSession(d, s.id);
  try {
    engine.getSession(d, 'sess_missing');
  } catch {
    // the error path allocates an error body: it must be freed too
  }
  try {
    engine.authorize(k.key, 'admin');
  } catch {
    // a denial with a decision
  }
  if (close) engine.close();
}

/** Lets the event loop turn, so that N-API finalizers (deferred after a GC) run. */
async function settle() {
  collect();
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setTimeout(resolve, 10));
  collect();
}

test('engines created and closed in a loop: RSS stable, no crash after close()', async () => {
  // Half are closed, half left to the finalizer (which runs once the event loop turns).
  for (let i = 0; i < 600; i++) round(i, i % 2 === 0); // warm-up
  await settle();
  const before = process.memoryUsage().rss;
  for (let batch = 0; batch < 4; batch++) {
    for (let i = 0; i < 500; i++) round(i, i % 2 === 0);
    await settle();
  }
  const after = process.memoryUsage().rss;
  const growth = (after - before) / MB;
  console.log(`2,000 engines: RSS ${(before / MB).toFixed(1)} MB -> ${(after / MB).toFixed(1)} MB (+${growth.toFixed(1)} MB)`);
  assert.ok(growth < 30, `RSS grew by ${growth.toFixed(1)} MB`);
});

test('hundreds of thousands of calls on one engine: RSS stable', async () => {
  const engine = new Engine({ limits: { requests_per_minute: 10_000_000, requests_per_hour: 10_000_000, concurrent_sessions: 100_000 } });
  const admin = engine.authorize(engine.bootstrapAdminKey(), 'admin');
  const k = engine.createKey(admin, { name: 'hot', scopes: ['sessions:write', 'sessions:read'] });
  const work = (n) => {
    for (let i = 0; i < n; i++) {
      const d = engine.authorize(k.key, 'session.read');
      if (i % 100 === 0) {
        const s = engine.createSession(d.keyId, { end_user_id: 'u' });
        engine.terminateSession(d.keyId, s.id);
      }
      try {
        engine.authorize('ak_bad', 'session.read');
      } catch {
        // denied
      }
    }
  };
  work(50_000);
  await settle();
  const before = process.memoryUsage().rss;
  work(200_000);
  await settle();
  const after = process.memoryUsage().rss;
  const growth = (after - before) / MB;
  console.log(`200,000 rounds: RSS ${(before / MB).toFixed(1)} MB -> ${(after / MB).toFixed(1)} MB (+${growth.toFixed(1)} MB)`);
  // The engine keeps 2,000 ended sessions and their audit records: a few MB at most.
  assert.ok(growth < 30, `RSS grew by ${growth.toFixed(1)} MB`);
  engine.close();
});

test('after close(): every call throws, repeatedly, and GC of closed engines is safe', () => {
  const engines = [];
  for (let i = 0; i < 200; i++) {
    const e = new Engine();
    e.bootstrapAdminKey();
    e.close();
    engines.push(e);
  }
  for (const e of engines) {
    for (let j = 0; j < 5; j++) {
      assert.throws(() => e.authorize('ak_x', 'admin'), EngineClosedError);
      assert.throws(() => e.listSessions('key_x'), EngineClosedError);
    }
    e.close();
  }
  engines.length = 0;
  collect();
  // An SDK whose engine is closed throws too (as rejected promises).
  const sdk = new AStackSDK();
  sdk.close();
  return assert.rejects(sdk.createSession('u'), EngineClosedError);
});
