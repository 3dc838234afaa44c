'use strict';
// The errors of astack: one class per SPEC §9 code under AstackError, each carrying the stable
// `code`, the HTTP `status` and the machine-readable `details` of the error body.

/** Every error astack throws. `toJSON()` is the SPEC §9 body `{error: {code, message, ...}}`. */
class AstackError extends Error {
  constructor(message, details = {}, options) {
    super(message, options);
    this.name = this.constructor.name;
    /** The stable snake_case code (SPEC §9). */
    this.code = details.code !== undefined ? details.code : this.constructor.code;
    /** The HTTP status of the code. */
    this.status = this.constructor.status;
    /** The details of the error body beside `code` and `message` (`field`, `reason`…). */
    const rest = { ...details };
    delete rest.code;
    delete rest.message;
    this.details = rest;
  }

  /** The SPEC §9 error body. */
  toJSON() {
    return { error: { code: this.code, message: this.message, ...this.details } };
  }
}
AstackError.code = 'internal_error';
AstackError.status = 500;

/** Defines a subclass for one code. */
function define(name, code, status, extend) {
  const Base = extend || AstackError;
  const cls = { [name]: class extends Base {} }[name];
  cls.code = code;
  cls.status = status;
  return cls;
}

const MissingApiKeyError = define('MissingApiKeyError', 'missing_api_key', 401);
const InvalidApiKeyError = define('InvalidApiKeyError', 'invalid_api_key', 401);
const ApiKeyRevokedError = define('ApiKeyRevokedError', 'api_key_revoked', 401);
const ApiKeyExpiredError = define('ApiKeyExpiredError', 'api_key_expired', 401);

/** The key may not perform the operation; `requiredScopes` would allow it. */
class InsufficientScopeError extends AstackError {
  get requiredScopes() {
    return this.details.required_scopes || [];
  }
}
InsufficientScopeError.code = 'insufficient_scope';
InsufficientScopeError.status = 403;

/** A rate-limit window is empty: retry in `retryAfter` seconds. */
class RateLimitedError extends AstackError {
  /** Seconds until one token is back (never 0). */
  get retryAfter() {
    return this.details.retry_after;
  }
}
RateLimitedError.code = 'rate_limited';
RateLimitedError.status = 429;

/** The key already holds its maximum of PENDING and ACTIVE sessions (`limit`). */
class ConcurrentSessionLimitError extends AstackError {
  get limit() {
    return this.details.limit;
  }
}
ConcurrentSessionLimitError.code = 'concurrent_session_limit';
ConcurrentSessionLimitError.status = 429;

/** A request field is missing, of the wrong type or out of range: `field` names it. */
class InvalidRequestError extends AstackError {
  get field() {
    return this.details.field;
  }
}
InvalidRequestError.code = 'invalid_request';
InvalidRequestError.status = 400;

const NotFoundError = define('NotFoundError', 'not_found', 404);
const ForbiddenError = define('ForbiddenError', 'forbidden', 403);
const AlreadyExistsError = define('AlreadyExistsError', 'already_exists', 409);
const InvalidTransitionError = define('InvalidTransitionError', 'invalid_transition', 409);

/** A session token was refused; `reason` says why (`expired`, `bad_signature`…). */
class InvalidTokenError extends AstackError {
  get reason() {
    return this.details.reason;
  }
}
InvalidTokenError.code = 'invalid_token';
InvalidTokenError.status = 401;

const PayloadTooLargeError = define('PayloadTooLargeError', 'payload_too_large', 413);
const NoWorkerAvailableError = define('NoWorkerAvailableError', 'no_worker_available', 503);

/** The configuration is invalid: `field` names the offending field. */
class InvalidConfigError extends AstackError {
  get field() {
    return this.details.field;
  }
}
InvalidConfigError.code = 'invalid_config';
InvalidConfigError.status = 400;

const UnavailableError = define('UnavailableError', 'unavailable', 503);
const InternalError = define('InternalError', 'internal_error', 500);

/** An argument was refused before reaching the engine (`invalid_argument`, `invalid_utf8`,
 *  `null_argument`): a bug in the caller. `argument` names it where known. */
class InvalidArgumentError extends AstackError {
  get argument() {
    return this.details.argument;
  }
}
InvalidArgumentError.code = 'invalid_argument';
InvalidArgumentError.status = 400;

/** The engine cannot do this (e.g. moving the system clock). */
const UnsupportedError = define('UnsupportedError', 'unsupported', 400);

/** The engine (or limiter) was closed: no call may follow `close()`. */
const EngineClosedError = define('EngineClosedError', 'engine_closed', 500);

const CLASSES = [
  MissingApiKeyError, InvalidApiKeyError, ApiKeyRevokedError, ApiKeyExpiredError,
  InsufficientScopeError, RateLimitedError, ConcurrentSessionLimitError, InvalidRequestError,
  NotFoundError, ForbiddenError, AlreadyExistsError, InvalidTransitionError, InvalidTokenError,
  PayloadTooLargeError, NoWorkerAvailableError, InvalidConfigError, UnavailableError,
  InternalError, InvalidArgumentError, UnsupportedError, EngineClosedError,
];

/** The class of each code. */
const BY_CODE = new Map(CLASSES.map((cls) => [cls.code, cls]));
BY_CODE.set('invalid_utf8', InvalidArgumentError);
BY_CODE.set('null_argument', InvalidArgumentError);
BY_CODE.set('buffer_too_small', InternalError);

/** Default messages, for errors that come without a body (the hot path's denials). */
const MESSAGES = {
  missing_api_key: 'an API key is required: send `Authorization: Bearer <key>`',
  invalid_api_key: 'the API key is not valid',
  api_key_revoked: 'the API key has been revoked',
  api_key_expired: 'the API key has expired',
  insufficient_scope: 'the API key may not perform this operation',
  rate_limited: 'rate limit exceeded',
  concurrent_session_limit: 'concurrent session limit reached',
  engine_closed: 'the engine is closed: no call may follow close()',
  invalid_argument: 'an argument is out of range',
};

/** Builds the error of a stable `code` from the library's error body (JSON text or object). */
function fromBody(code, body) {
  let error = body;
  if (typeof body === 'string') {
    try {
      error = JSON.parse(body).error;
    } catch {
      error = { code, message: body };
    }
  } else if (body && body.error) {
    error = body.error;
  }
  error = error || {};
  const finalCode = error.code || code;
  const cls = BY_CODE.get(finalCode) || AstackError;
  const message = error.message || MESSAGES[finalCode] || finalCode;
  const details = { ...error, code: finalCode };
  return new cls(message, details);
}

module.exports = {
  AstackError,
  MissingApiKeyError,
  InvalidApiKeyError,
  ApiKeyRevokedError,
  ApiKeyExpiredError,
  InsufficientScopeError,
  RateLimitedError,
  ConcurrentSessionLimitError,
  InvalidRequestError,
  NotFoundError,
  ForbiddenError,
  AlreadyExistsError,
  InvalidTransitionError,
  InvalidTokenError,
  PayloadTooLargeError,
  NoWorkerAvailableError,
  InvalidConfigError,
  UnavailableError,
  InternalError,
  InvalidArgumentError,
  UnsupportedError,
  EngineClosedError,
  ERROR_CLASSES: CLASSES,
  errorClassFor: (code) => BY_CODE.get(code) || AstackError,
  fromBody,
};
