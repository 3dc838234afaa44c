'use strict';
// index.d.ts against a program that uses the package (test/types/usage.ts): `tsc --strict`
// compiles it, and refuses each misuse it marks with @ts-expect-error.

const { spawnSync } = require('node:child_process');
const path = require('node:path');
const test = require('node:test');
const assert = require('node:assert/strict');

test('index.d.ts types the package as it is used, and refuses misuse', () => {
  const tsc = require.resolve('typescript/bin/tsc');
  const args = ['--noEmit', '--strict', '--target', 'es2022', '--module', 'commonjs', '--moduleResolution', 'node', '--types', 'node'];
  const run = spawnSync(process.execPath, [tsc, ...args, path.join(__dirname, 'types', 'usage.ts')], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stdout + run.stderr);
});
