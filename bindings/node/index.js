'use strict';
// astack for Node: the engine through its C ABI, errors as AstackError subclasses, and the
// Express integration. See index.d.ts for the types.

const errors = require('./lib/errors');
const { Engine, RateLimiter, OPERATIONS, SCOPES, rateLimitHeaders } = require('./lib/engine');
const { authMiddleware, errorHandler, operationFor } = require('./lib/express');
const { AStackSDK } = require('./lib/sdk');

module.exports = {
  Engine,
  RateLimiter,
  AStackSDK,
  authMiddleware,
  errorHandler,
  operationFor,
  rateLimitHeaders,
  OPERATIONS,
  SCOPES,
  version: Engine.version,
  ...errors,
};
