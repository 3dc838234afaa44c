'use strict';
// authorize through the addon vs the same policy in plain Node, in one run, over 100,000 keys.
//
//   node bindings/node/bench/authorize.js        (or: make bench-node)
//   KEYS=100000 OPS=1000000 node bindings/node/bench/authorize.js
//
// The addon: Engine#authorize(apiKey, 'session.read') — key format and checksum, SHA-256
// digest, lookup, revocation, expiry, scope, and one token from both windows atomically.
//
// Plain Node, the usual gateway: key prefix and length, crypto SHA-256 hex, a Map lookup,
// revocation, expiry and scope checks, then rate-limiter-flexible's RateLimiterMemory for the
// minute and the hour. Its consume() returns a promise, so it is measured the two ways a server
// uses it: awaiting each request in turn, and 1,000 requests in flight (Promise.all).

const crypto = require('crypto');
const os = require('os');
const { RateLimiterMemory } = require('rate-limiter-flexible');
const { Engine } = require('..');

const KEYS = Number(process.env.KEYS || 100000);
const OPS = Number(process.env.OPS || 1000000);
const NODE_OPS = Number(process.env.NODE_OPS || Math.min(OPS, 300000));
const BATCH = 1000;
const HIGH = 10000000; // the engine's maximum; nothing is denied at this load

function rate(ops, ns) {
  return ops / (Number(ns) / 1e9);
}

function fmt(n) {
  return Math.round(n).toLocaleString('en-US');
}

async function main() {
  console.log(`node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0].model}), ${KEYS.toLocaleString('en-US')} keys`);

  // --- The addon: one engine, KEYS keys made through createKey with high limits. ----------
  let t0 = process.hrtime.bigint();
  const engine = new Engine({ limits: { requests_per_minute: HIGH, requests_per_hour: HIGH } });
  const admin = engine.authorize(engine.bootstrapAdminKey(), 'admin');
  const keys = new Array(KEYS);
  const records = new Map();
  for (let i = 0; i < KEYS; i++) {
    const created = engine.createKey(admin, { name: `bench ${i}`, account_id: `acct${i % 1000}`, scopes: ['sessions:read'] });
    keys[i] = created.key;
    // The same key for plain Node: its digest and record.
    records.set(crypto.createHash('sha256').update(created.key).digest('hex'), {
      id: created.id,
      accountId: created.account_id,
      scopes: new Set(created.scopes),
      revokedAt: null,
      expiresAt: null,
    });
  }
  console.log(`setup: ${KEYS.toLocaleString('en-US')} keys in ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)} s`);

  // --- Plain Node's authorize. ------------------------------------------------------------
  const minute = new RateLimiterMemory({ points: HIGH, duration: 60 });
  const hour = new RateLimiterMemory({ points: HIGH, duration: 3600 });
  class Denied extends Error {}
  async function plainAuthorize(apiKey, scope) {
    if (typeof apiKey !== 'string' || apiKey.length !== 39 || !apiKey.startsWith('ak_')) throw new Denied('invalid_api_key');
    const record = records.get(crypto.createHash('sha256').update(apiKey).digest('hex'));
    if (record === undefined) throw new Denied('invalid_api_key');
    if (record.revokedAt !== null) throw new Denied('api_key_revoked');
    if (record.expiresAt !== null && record.expiresAt <= Date.now()) throw new Denied('api_key_expired');
    if (!record.scopes.has(scope) && !record.scopes.has('admin:all')) throw new Denied('insufficient_scope');
    const [m, h] = await Promise.all([minute.consume(record.id), hour.consume(record.id)]);
    const tight = m.remainingPoints <= h.remainingPoints ? m : h;
    return { keyId: record.id, accountId: record.accountId, remaining: tight.remainingPoints, reset: Math.ceil(tight.msBeforeNext / 1000) };
  }

  // --- Runs. -------------------------------------------------------------------------------
  function runAddon(ops) {
    let sink = 0;
    const start = process.hrtime.bigint();
    for (let i = 0; i < ops; i++) sink += engine.authorize(keys[i % KEYS], 'session.read').remaining;
    const ns = process.hrtime.bigint() - start;
    if (sink === -1) console.log('');
    return ns;
  }
  async function runNodeAwait(ops) {
    let sink = 0;
    const start = process.hrtime.bigint();
    for (let i = 0; i < ops; i++) sink += (await plainAuthorize(keys[i % KEYS], 'sessions:read')).remaining;
    const ns = process.hrtime.bigint() - start;
    if (sink === -1) console.log('');
    return ns;
  }
  async function runNodeBatched(ops) {
    let sink = 0;
    const start = process.hrtime.bigint();
    for (let i = 0; i < ops; i += BATCH) {
      const batch = [];
      for (let j = i; j < i + BATCH && j < ops; j++) batch.push(plainAuthorize(keys[j % KEYS], 'sessions:read'));
      for (const d of await Promise.all(batch)) sink += d.remaining;
    }
    const ns = process.hrtime.bigint() - start;
    if (sink === -1) console.log('');
    return ns;
  }

  // Warm up every path (JIT, and every key's buckets on both sides).
  runAddon(KEYS);
  await runNodeAwait(KEYS);
  await runNodeBatched(KEYS);

  const addon = rate(OPS, runAddon(OPS));
  const nodeAwait = rate(NODE_OPS, await runNodeAwait(NODE_OPS));
  const nodeBatched = rate(NODE_OPS, await runNodeBatched(NODE_OPS));
  const bestNode = Math.max(nodeAwait, nodeBatched);

  console.log('');
  console.log(`astack addon   Engine#authorize (sync)                      ${fmt(addon).padStart(12)} ops/s   (${OPS.toLocaleString('en-US')} calls)`);
  console.log(`plain Node     sha256 + Map + RateLimiterMemory x2, await each ${fmt(nodeAwait).padStart(9)} ops/s   (${NODE_OPS.toLocaleString('en-US')} calls)`);
  console.log(`plain Node     same, ${BATCH} in flight (Promise.all)          ${fmt(nodeBatched).padStart(12)} ops/s   (${NODE_OPS.toLocaleString('en-US')} calls)`);
  console.log('');
  console.log(`ratio: addon / plain Node awaited = ${(addon / nodeAwait).toFixed(2)}x, addon / plain Node batched = ${(addon / nodeBatched).toFixed(2)}x`);
  console.log(`ratio against the faster plain-Node way: ${(addon / bestNode).toFixed(2)}x (aim: at least 3x)`);
  engine.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
