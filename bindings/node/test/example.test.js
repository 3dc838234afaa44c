'use strict';
// The seed's end-to-end example (examples/node-express), started as its own process and driven
// over HTTP. `require('astack')` resolves through NODE_PATH to this package.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { Engine } = require('..');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const SERVER = path.join(ROOT, 'examples', 'node-express', 'server.js');

/** A folder holding `astack` → this package, for NODE_PATH. */
function modulePath() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'astack-node-path-'));
  fs.symlinkSync(path.resolve(__dirname, '..'), path.join(dir, 'astack'), 'dir');
  return [dir, path.resolve(__dirname, '..', 'node_modules')].join(path.delimiter);
}

function start(env) {
  const child = spawn(process.execPath, [SERVER], {
    env: { ...process.env, PORT: '0', NODE_PATH: modulePath(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => {
    err += d;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the example did not start: ${out} ${err}`)), 15000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, base: m[1], out: () => out });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the example exited with ${code}: ${err}`));
    });
  });
}

function post(base, key, body) {
  const headers = { 'content-type': 'application/json' };
  if (key) headers.authorization = `Bearer ${key}`;
  return fetch(`${base}/api/v1/sessions`, { method: 'POST', headers, body: JSON.stringify(body) });
}

test('the Express example runs unchanged but for its import line', async (t) => {
  // A key made by this package (same format and checksum everywhere), installed as the app's.
  const scratch = new Engine();
  const apiKey = scratch.bootstrapAdminKey();
  scratch.close();
  const { child, base } = await start({
    ASTACK_API_KEY: apiKey,
    ASTACK_CONFIG: JSON.stringify({ limits: { requests_per_minute: 4 } }),
  });
  t.after(() => child.kill('SIGTERM'));

  // The source requires the package by name, and nothing else of it.
  const source = fs.readFileSync(path.join(ROOT, 'examples', 'node-express', 'app.js'), 'utf8');
  assert.match(source, /const \{ AStackSDK, authMiddleware, errorHandler \} = require\('astack'\);/);

  let r = await post(base, apiKey, { end_user_id: 'user-42', features: ['transcription'] });
  assert.equal(r.status, 201);
  const body = await r.json();
  assert.match(body.session.id, /^sess_/);
  assert.equal(body.session.status, 'PENDING');
  assert.equal(body.session.end_user_id, 'user-42');
  assert.deepEqual(body.session.features, ['transcription']);
  assert.equal(body.workerUrl, body.session.worker_url);
  assert.equal(body.token.split('.').length, 3);
  const claims = JSON.parse(Buffer.from(body.token.split('.')[1], 'base64url'));
  assert.equal(claims.sub, body.session.id);
  assert.equal(claims.uid, 'user-42');
  assert.equal(r.headers.get('ratelimit-policy'), '"minute";q=4;w=60, "hour";q=1000;w=3600');
  assert.match(r.headers.get('ratelimit'), /^"minute";r=3;t=\d+$/);

  const got = await fetch(`${base}/api/v1/sessions/${body.session.id}`, { headers: { authorization: `Bearer ${apiKey}` } });
  assert.equal(got.status, 200);
  assert.equal((await got.json()).id, body.session.id);

  r = await post(base, null, { end_user_id: 'u' });
  assert.equal(r.status, 401);
  assert.equal((await r.json()).error.code, 'missing_api_key');

  r = await post(base, apiKey, { end_user_id: 'u', quality: 'ultra' });
  assert.equal(r.status, 400);
  assert.deepEqual((await r.json()).error.field, 'quality');

  const del = await fetch(`${base}/api/v1/sessions/${body.session.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${apiKey}` } });
  assert.equal(del.status, 200);
  assert.equal((await del.json()).status, 'COMPLETED');

  r = await post(base, apiKey, { end_user_id: 'u' });
  assert.equal(r.status, 429);
  assert.ok(Number(r.headers.get('retry-after')) >= 1);
  assert.equal((await r.json()).error.code, 'rate_limited');
});

test('the example prints a generated admin key when none is given', async (t) => {
  const { child, base, out } = await start({ ASTACK_API_KEY: '' });
  t.after(() => child.kill('SIGTERM'));
  const key = /admin key \(shown once\): (ak_\S+)/.exec(out())[1];
  const r = await post(base, key, { end_user_id: 'user-1' });
  assert.equal(r.status, 201);
});
