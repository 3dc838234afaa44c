'use strict';
// Loads the addon built by `npm install` (node-gyp): build/Release/astack.node.
const path = require('path');

const candidates = [
  path.join(__dirname, '..', 'build', 'Release', 'astack.node'),
  path.join(__dirname, '..', 'build', 'Debug', 'astack.node'),
];

let addon;
let firstError;
for (const file of candidates) {
  try {
    addon = require(file);
    break;
  } catch (err) {
    if (err.code !== 'MODULE_NOT_FOUND') throw err;
    firstError = firstError || err;
  }
}
if (!addon) {
  const err = new Error(
    'astack: the native addon is not built. Run `npm install` in bindings/node (it builds the Rust ' +
      'library with cargo and the addon with node-gyp).',
  );
  err.cause = firstError;
  throw err;
}

module.exports = addon;
