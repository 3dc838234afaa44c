'use strict';
// engine.promises.authorize (libuv's thread pool) against Engine#authorize (the JavaScript
// thread), in one run: over the Redis store, where each decision waits on a round trip, and
// over the memory store, where it does not. Starts its own redis-server on a free port.
//
//   node bindings/node/bench/promises.js          (make bench-node runs it)
//   DURATION=2000 ROUNDS=3 IN_FLIGHT=16 node bindings/node/bench/promises.js
//
// Synchronous: one decision after another, with the event loop let through after each, as a
// server deciding each request in turn. Promises: IN_FLIGHT decisions in flight at once. For
// each, the rate and the event loop's utilization (performance.eventLoopUtilization: the share
// of the time the JavaScript thread was busy, so not free for anything else).

const { spawn } = require('child_process');
const net = require('net');
const os = require('os');
const { performance } = require('perf_hooks');
const { setImmediate: yieldToLoop } = require('timers/promises');
const { Engine } = require('..');

const DURATION = Number(process.env.DURATION || 2000);
const ROUNDS = Number(process.env.ROUNDS || 3);
const IN_FLIGHT = Number(process.env.IN_FLIGHT || 16);
const KEYS = 100;
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

/** An engine over `store` with KEYS keys allowed `session.read`. */
function engineWithKeys(store) {
  const engine = new Engine({ limits: { requests_per_minute: HIGH, requests_per_hour: HIGH }, ...store });
  const admin = engine.authorize(engine.bootstrapAdminKey(), 'admin');
  const keys = Array.from({ length: KEYS }, (_, i) => engine.createKey(admin, { name: `bench ${i}`, scopes: ['sessions:read'] }).key);
  return { engine, keys };
}

/** Runs `body(deadline)` (which returns how many decisions it made); its rate and the event
 *  loop's utilization meanwhile. */
async function measure(body) {
  const start = performance.now();
  const elu = performance.eventLoopUtilization();
  const ops = await body(start + DURATION);
  const seconds = (performance.now() - start) / 1000;
  return { rate: ops / seconds, elu: performance.eventLoopUtilization(elu).utilization };
}

function synchronous({ engine, keys }) {
  return measure(async (deadline) => {
    let ops = 0;
    while (performance.now() < deadline) {
      engine.authorize(keys[ops % KEYS], 'session.read');
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
        await engine.promises.authorize(keys[ops++ % KEYS], 'session.read');
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

/** Alternates the two ways over ROUNDS rounds; prints each round and the BENCH line. */
async function compare(name, setup) {
  const rounds = { sync: [], promises: [] };
  for (let round = 1; round <= ROUNDS; round++) {
    const sync = await synchronous(setup);
    const pooled = await promises(setup);
    rounds.sync.push(sync);
    rounds.promises.push(pooled);
    console.log(
      `  ${name} round ${round}: synchronous ${fmt(sync.rate)}/s (event loop busy ${(sync.elu * 100).toFixed(0)} %), ` +
        `promises ${fmt(pooled.rate)}/s (busy ${(pooled.elu * 100).toFixed(0)} %)`,
    );
  }
  const sync = median(rounds.sync.map((r) => r.rate));
  const pooled = median(rounds.promises.map((r) => r.rate));
  console.log(`  ${name}: promises ${fmt(pooled)}/s, synchronous ${fmt(sync)}/s (${(pooled / sync).toFixed(2)}x), medians of ${ROUNDS}`);
  console.log(`BENCH node/authorize_${name}_promises ours=${pooled.toFixed(1)} peer=${sync.toFixed(1)} unit=ops/s aim=-`);
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
