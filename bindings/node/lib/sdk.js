'use strict';
// AStackSDK: the seed's SDK surface over an Engine, so that the seed's Express example runs
// with only its import line changed.

const { Engine, actorId } = require('./engine');
const { authMiddleware, errorHandler, requestContext } = require('./express');

/** Option names of the seed's camelCase style, and the SPEC's field names they stand for. */
const SESSION_FIELDS = {
  connectionType: 'connection_type',
  connection_type: 'connection_type',
  quality: 'quality',
  features: 'features',
  metadata: 'metadata',
};

/**
 * The seed's SDK. `new AStackSDK({ engine })` wraps an existing Engine; `new AStackSDK({
 * config, apiKey })` makes one from a SPEC §11 configuration and installs `apiKey` (default:
 * `process.env.ASTACK_API_KEY`, else a generated key, see `sdk.apiKey`) as its operator's
 * admin key.
 *
 * Calls act with the key that authMiddleware authorized for the request being handled (found
 * through AsyncLocalStorage, or given as `options.keyId`), else with the SDK's own `apiKey`,
 * authorized for the operation at each call.
 */
class AStackSDK {
  constructor(options = {}) {
    if (options instanceof Engine) options = { engine: options };
    this.ownsEngine = !options.engine;
    this.engine = options.engine || new Engine(options.config, options.engineOptions || {});
    let apiKey = options.apiKey !== undefined ? options.apiKey : process.env.ASTACK_API_KEY;
    if (this.ownsEngine) {
      if (apiKey) this.engine.bootstrapAdminKey(apiKey);
      else apiKey = this.engine.bootstrapAdminKey();
    }
    /** The SDK's own key (null when it has none). */
    this.apiKey = apiKey || null;
    this.#calls = this.engine.store === 'memory' ? this.engine : this.engine.promises;
  }

  // The engine's calls: its own methods over the memory store, else its promises, which run
  // on libuv's thread pool while the store waits on the disk or the network.
  #calls;

  /** The acting key id for `operation`. */
  async #actor(operation, options) {
    if (options.keyId !== undefined || options.actor !== undefined) return actorId(options.keyId || options.actor);
    const context = requestContext.getStore();
    if (context) return context.keyId;
    return (await this.#calls.authorize(this.apiKey, operation)).keyId;
  }

  /**
   * Creates a session for end user `userId` (SPEC §6); `options`: `connectionType`
   * (`connection_type`), `quality`, `features`, `metadata`. Resolves to `{ session,
   * sessionToken }`: `session` is the SPEC session object.
   */
  async createSession(userId, options = {}) {
    const request = { end_user_id: userId };
    for (const [name, field] of Object.entries(SESSION_FIELDS)) {
      if (options[name] !== undefined) request[field] = options[name];
    }
    const created = await this.#calls.createSession(await this.#actor('session.create', options), request);
    const sessionToken = created.session_token;
    delete created.session_token;
    return { session: created, sessionToken };
  }

  /** Resolves to a new session token (a JWT, SPEC §7) for live session `sessionId`. */
  async generateSessionToken(sessionId, options = {}) {
    return this.#calls.issueToken(await this.#actor('session.create', options), sessionId);
  }

  /** Resolves to the session. */
  async getSession(sessionId, options = {}) {
    return this.#calls.getSession(await this.#actor('session.read', options), sessionId);
  }

  /** Resolves to the account's sessions, newest first. */
  async listSessions(options = {}) {
    return this.#calls.listSessions(await this.#actor('session.read', options), options);
  }

  /** Terminates a session (COMPLETED); resolves to it. */
  async terminateSession(sessionId, options = {}) {
    return this.#calls.terminateSession(await this.#actor('session.terminate', options), sessionId);
  }

  /** Resolves to a session token's claims, or rejects with InvalidTokenError. */
  async verifySessionToken(token, options = {}) {
    return this.engine.verifyToken(token, options);
  }

  /** The Express middleware of this SDK (see authMiddleware). */
  authMiddleware(options) {
    return authMiddleware(this, options);
  }

  /** The Express error handler (see errorHandler). */
  errorHandler(options) {
    return errorHandler(options);
  }

  /** Closes the engine when the SDK made it. */
  close() {
    if (this.ownsEngine) this.engine.close();
  }
}

module.exports = { AStackSDK };
