'use strict';
// engine.promises.authorize (libuv's thread pool) against Engine#authorize (the JavaScript
// thread), in one run: over the Redis store, where each decision waits on a round trip; over
// SQLite, whose counts are written behind to the disk twice a second by the engine's flush
// thread, or, with that thread off (`flush_ms: 0`), once a second by the call that falls due;
// and over the memory store, where nothing waits. Starts its own redis-server on a free port.
//
//   node bindings/node/bench/promises.js          (make bench-node runs it)
//   DURATION=2000 ROUNDS=3 IN_FLIGHT=16 KEYS=100 SQLITE_KEYS=20000 node bindings/node/bench/promises.js
//
// Over SQLite the decisions cycle through SQLITE_KEYS keys, so that each write-behind (of every
// key used since the last one) has that many rows to write.
//
// Synchronous: one decision after another, with the event loop let through after each, as a
// server deciding each request in turn. Promises: IN_FLIGHT decisions in flight at once. For
// each, the rate, the event loop's utilization (performance.eventLoopUtilization: the share of
// the time the JavaScript thread was busy, so not free for anything else), and the longest
// the loop was held at once (perf_hooks.monitorEventLoopDelay's maximum).

const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { monitorEventLoopDelay, performance } = require('perf_hooks');
const { setImmediate: yieldToLoop } = require('timers/promises');
const { Engine } = require('..');

const DURATION = Number(process.env.DURATION || 2000);
const ROUNDS = Number(process.env.ROUNDS || 3);
const IN_FLIGHT = Number(process.env.IN_FLIGHT || 16);
const KEYS = Number(process.env.KEYS || 100);
const SQLITE_KEYS = Number(process.env.SQLITE_KEYS || 20000);
const HIGH = 10000000; // the engine's maximum; nothing is denied at this load

async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves once something on `port` answers a PING. */
async function ready(port) {
  for (let i = 0; i < 200; i++) {
    const answered = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
      socket.once('data', (data) => resolve(data.toString().startsWith('+PONG')) || socket.destroy());
      socket.once('error', () => resolve(false));
    });
    if (answered) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`redis-server did not start on port ${port}`);
}

/** An engine over `store` with `count` keys allowed `session.read`. */
function engineWithKeys(store, count = KEYS) {
  const engine = new Engine({ limits: { requests_per_minute: HIGH, requests_per_hour: HIGH }, ...store });
  const admin = engine.authorize(engine.bootstrapAdminKey(), 'admin');
  const keys = Array.from({ length: count }, (_, i) => engine.createKey(admin, { name: `bench ${i}`, scopes: ['sessions:read'] }).key);
  return { engine, keys };
}

/** Runs `body(deadline)` (which returns how many decisions it made); its rate, the event
 *  loop's utilization and its longest delay (ms) meanwhile. */
async function measure(body) {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const start = performance.now();
  const elu = performance.eventLoopUtilization();
  const ops = await body(start + DURATION);
  const seconds = (performance.now() - start) / 1000;
  delay.disable();
  return { rate: ops / seconds, elu: performance.eventLoopUtilization(elu).utilization, held: delay.max / 1e6 };
}

function synchronous({ engine, keys }) {
  return measure(async (deadline) => {
    let ops = 0;
    while (performance.now() < deadline) {
      engine.authorize(keys[ops % keys.length], 'session.read');
      ops++;
      await yieldToLoop();
    }
    return ops;
  });
}

function promises({ engine, keys }) {
  return measure(async (deadline) => {
    let ops = 0;
    const worker = async () => {
      while (performance.now() < deadline) {
        await engine.promises.authorize(keys[ops++ % keys.length], 'session.read');
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    return ops;
  });
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const fmt = (n) => Math.round(n).toLocaleString('en-US');

/** Alternates the two ways over ROUNDS rounds; prints each round and the BENCH line, and
 *  returns the rounds. */
async function compare(name, setup) {
  const rounds = { sync: [], promises: [] };
  for (let round = 1; round <= ROUNDS; round++) {
    const sync = await synchronous(setup);
    const pooled = await promises(setup);
    rounds.sync.push(sync);
    rounds.promises.push(pooled);
    const loop = (r) => `event loop busy ${(r.elu * 100).toFixed(0)} %, held up to ${r.held.toFixed(1)} ms`;
    console.log(`  ${name} round ${round}: synchronous ${fmt(sync.rate)}/s (${loop(sync)}), promises ${fmt(pooled.rate)}/s (${loop(pooled)})`);
  }
  const sync = median(rounds.sync.map((r) => r.rate));
  const pooled = median(rounds.promises.map((r) => r.rate));
  console.log(`  ${name}: promises ${fmt(pooled)}/s, synchronous ${fmt(sync)}/s (${(pooled / sync).toFixed(2)}x), medians of ${ROUNDS}`);
  console.log(`BENCH node/authorize_${name}_promises ours=${pooled.toFixed(1)} peer=${sync.toFixed(1)} unit=ops/s aim=-`);
  return rounds;
}

async function main() {
  console.log(`node ${process.version}, ${os.cpus().length} CPUs, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE || 4}, ${IN_FLIGHT} in flight, ${ROUNDS} rounds of ${DURATION} ms`);
  const port = await freePort();
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  try {
    await ready(port);
    const overRedis = engineWithKeys({ store: { kind: 'redis', url: `redis://127.0.0.1:${port}/0` } });
    console.log('authorize over Redis (a round trip each):');
    await compare('redis', overRedis);
    overRedis.engine.close();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'astack-bench-'));
    const overSqlite = engineWithKeys({ store: { kind: 'sqlite', path: path.join(dir, 'astack.db') } }, SQLITE_KEYS);
    console.log(`authorize over SQLite (${SQLITE_KEYS} keys, their use written behind by the engine's thread):`);
    const flushed = await compare('sqlite', overSqlite);
    overSqlite.engine.close();
    const unflushed = engineWithKeys({ store: { kind: 'sqlite', path: path.join(dir, 'unflushed.db'), flush_ms: 0 } }, SQLITE_KEYS);
    console.log(`authorize over SQLite (${SQLITE_KEYS} keys, no flush thread: the call that falls due writes their use):`);
    const unthreaded = await compare('sqlite_no_flush_thread', unflushed);
    unflushed.engine.close();
    // The longest the synchronous calls held the event loop, with the thread and without.
    const held = (rounds) => median(rounds.sync.map((r) => r.held));
    console.log(`BENCH node/authorize_sqlite_sync_loop_held ours=${held(flushed).toFixed(2)} peer=${held(unthreaded).toFixed(2)} unit=ms aim=-`);
    fs.rmSync(dir, { recursive: true, force: true });
    const inMemory = engineWithKeys({});
    console.log('authorize over the memory store:');
    await compare('memory', inMemory);
    inMemory.engine.close();
  } finally {
    redis.kill();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
