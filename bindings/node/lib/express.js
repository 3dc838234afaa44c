'use strict';
// Express (and Connect-style) integration: authMiddleware and errorHandler.

const { AsyncLocalStorage } = require('async_hooks');

const errors = require('./errors');
const { Engine, OPERATIONS, rateLimitHeaders } = require('./engine');

const { AstackError, InvalidRequestError, PayloadTooLargeError, NotFoundError, InternalError } = errors;

/** The key a request was authorized with, for the SDK's calls made while handling it. */
const requestContext = new AsyncLocalStorage();

/** The SPEC §3 operation of a REST route, or null. `path` is the full path (no query). */
function operationFor(method, path) {
  const m = String(method).toUpperCase();
  const p = String(path).split('?')[0].replace(/\/+$/, '');
  const parts = p.split('/').filter(Boolean);
  if (parts[0] !== 'api' || parts[1] !== 'v1') return null;
  const [resource, id, action] = parts.slice(2);
  const n = parts.length - 2;
  switch (resource) {
    case 'sessions':
      if (n === 1) return m === 'POST' ? 'session.create' : m === 'GET' ? 'session.read' : null;
      if (n === 2) return m === 'GET' ? 'session.read' : m === 'DELETE' ? 'session.terminate' : null;
      if (n === 3 && m === 'POST' && (action === 'connect' || action === 'end')) return 'worker.write';
      return null;
    case 'users':
      if (n === 1) return m === 'GET' ? 'user.read' : m === 'POST' ? 'user.write' : null;
      if (n === 2) return m === 'GET' ? 'user.read' : m === 'PATCH' || m === 'DELETE' ? 'user.write' : null;
      return null;
    case 'usage':
      if (n === 1 || (n === 2 && id === 'alerts')) {
        return m === 'GET' ? 'billing.read' : m === 'POST' ? 'billing.write' : null;
      }
      return null;
    case 'workers':
      if (n === 1) return m === 'GET' ? 'worker.read' : m === 'POST' ? 'worker.write' : null;
      if (n === 2 && m === 'PATCH') return 'worker.write';
      return null;
    case 'keys':
      return 'admin';
    case 'audit':
    case 'metrics':
      return n === 1 && m === 'GET' ? 'admin' : null;
    default:
      return null;
  }
}

/** The engine behind an AStackSDK or an Engine. */
function engineOf(sdk) {
  if (sdk instanceof Engine) return sdk;
  if (sdk && sdk.engine instanceof Engine) return sdk.engine;
  throw new TypeError('authMiddleware: the first argument must be an AStackSDK or an Engine');
}

/** The API key of an `Authorization` header: '' when absent, the key of `Bearer <key>`, and a
 *  string that is not a key when the header is malformed (so it is `invalid_api_key`). */
function bearerKey(header) {
  if (header === undefined || header === null || header === '') return '';
  const match = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(String(header));
  return match ? match[1] : '-';
}

function setHeaders(res, headers) {
  for (const name of Object.keys(headers)) res.setHeader(name, headers[name]);
}

/**
 * Express middleware deciding each request (SPEC §4): the `Authorization: Bearer <key>`
 * header, the operation of the route, and the key's limits. Sets `RateLimit-Policy`,
 * `RateLimit` and, on 429, `Retry-After`; on success puts `{keyId, accountId, operation,
 * decision}` on `req.astack` (or `options.property`) and calls `next()`, else `next(error)`
 * with the AstackError (see errorHandler).
 *
 * `options.operation` is a SPEC §3 name or a function `(req) => name`; by default the
 * operation is that of the route in the SPEC §3 table.
 *
 * Over the memory store each request is decided synchronously (well under a microsecond); over
 * SQLite or Redis, on libuv's thread pool (`engine.promises.authorize`), so that the event loop
 * goes on while the store answers.
 */
function authMiddleware(sdk, options = {}) {
  const engine = engineOf(sdk);
  const property = options.property || 'astack';
  let pick;
  if (typeof options.operation === 'function') {
    pick = options.operation;
  } else if (options.operation !== undefined) {
    if (OPERATIONS[options.operation] === undefined) {
      throw new TypeError(`authMiddleware: unknown operation ${JSON.stringify(options.operation)}`);
    }
    const fixed = options.operation;
    pick = () => fixed;
  } else {
    pick = (req) => operationFor(req.method, (req.baseUrl || '') + (req.path !== undefined ? req.path : req.url));
  }

  function allow(req, res, next, operation, decision) {
    setHeaders(res, rateLimitHeaders(decision));
    const identity = { keyId: decision.keyId, accountId: decision.accountId, operation, decision };
    req[property] = identity;
    requestContext.run(identity, next);
  }

  function deny(res, next, err) {
    if (err.decision) setHeaders(res, rateLimitHeaders(err));
    next(err);
  }

  const waits = engine.store !== 'memory';
  return function astackAuth(req, res, next) {
    const operation = pick(req);
    if (!operation) {
      next(new NotFoundError(`no API operation matches ${req.method} ${req.originalUrl || req.url}`, { resource: 'route' }));
      return;
    }
    const key = bearerKey(req.headers.authorization);
    if (waits) {
      engine.promises
        .authorize(key, operation)
        .then(
          (decision) => allow(req, res, next, operation, decision),
          (err) => deny(res, next, err),
        )
        .catch(next); // as Express 5 does with a handler's rejected promise
      return;
    }
    let decision;
    try {
      decision = engine.authorize(key, operation);
    } catch (err) {
      deny(res, next, err);
      return;
    }
    allow(req, res, next, operation, decision);
  };
}

/** Turns a non-astack error that an Express body parser throws into the SPEC's error. */
function toAstackError(err) {
  if (err instanceof AstackError) return err;
  if (err && err.type === 'entity.too.large') {
    return new PayloadTooLargeError('the request body is too large', {});
  }
  if (err && (err.type === 'entity.parse.failed' || err.type === 'encoding.unsupported' || err.type === 'charset.unsupported')) {
    return new InvalidRequestError('invalid `body`: the request body is not valid JSON', { field: 'body' });
  }
  return null;
}

/**
 * Express error handler answering any AstackError (and body-parser errors) with the SPEC §9
 * body `{"error": {"code", "message", ...}}` and its HTTP status (and `Retry-After` on
 * rate-limited errors). Other errors go to the next handler, or, with `{ all: true }`, answer
 * 500 `internal_error` (their message is not shown).
 */
function errorHandler(options = {}) {
  return function astackErrorHandler(err, req, res, next) {
    let error = toAstackError(err);
    if (!error) {
      if (!options.all) {
        next(err);
        return;
      }
      error = new InternalError('internal error', {});
    }
    if (res.headersSent) {
      next(err);
      return;
    }
    if (error.decision && !res.getHeader('RateLimit')) setHeaders(res, rateLimitHeaders(error));
    if (error.retryAfter !== undefined && error.code === 'rate_limited') res.setHeader('Retry-After', String(error.retryAfter));
    res.statusCode = error.status;
    if (typeof res.json === 'function') {
      res.status(error.status).json(error.toJSON());
    } else {
      res.setHeader('Content-Type', 'application/json; charset=utf-8');
      res.end(JSON.stringify(error.toJSON()));
    }
  };
}

module.exports = { authMiddleware, errorHandler, operationFor, bearerKey, requestContext };
