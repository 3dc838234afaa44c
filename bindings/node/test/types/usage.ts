// Compiled by test/types.test.js with `tsc --strict --noEmit`: index.d.ts describes this use of
// the package, and refuses each misuse marked @ts-expect-error (tsc fails if one compiles).
import {
  AStackSDK, AstackError, Decision, Engine, EnginePromises, RateLimitedError, RateLimiter, Session, StoreKind,
  authMiddleware, errorHandler, rateLimitHeaders,
} from '../..';

async function use(): Promise<void> {
  const engine = new Engine({ limits: { requests_per_minute: 100 }, store: { kind: 'sqlite', path: '/tmp/a.db', flush_ms: 0 } });
  const kind: StoreKind = engine.store;
  const admin: Decision = engine.authorize(engine.bootstrapAdminKey(), 'admin');
  const created = engine.createKey(admin, { name: 'app', account_id: 'acme', scopes: ['sessions:write'] });
  const plaintext: string = created.key;

  const p: EnginePromises = engine.promises;
  const decision: Decision = await p.authorize(plaintext, 'session.create');
  const session = await p.createSession(decision, { end_user_id: 'user-42' });
  const token: string = session.session_token;
  const same: Session = await p.getSession(decision.keyId, session.id);
  const listed: Session[] = await p.listSessions(decision, { limit: 10 });
  const expired: number = await p.sweepSessions();
  const slots: number = await p.sessionSlotsInUse(decision);
  const headers = rateLimitHeaders(decision);
  try {
    engine.authorize(plaintext, 'session.read');
  } catch (err) {
    if (err instanceof RateLimitedError) console.log(err.retryAfter, err.status);
    else if (err instanceof AstackError) console.log(err.code, err.toJSON());
  }

  new Engine({ store: { kind: 'redis', url: 'redis://127.0.0.1:6379/0', prefix: 'app:', lease: { batch: 100 } } });
  new Engine(null, { clock: 'manual', now: new Date() });
  const limiter = new RateLimiter([{ name: 'minute', limit: 10, period_seconds: 60 }]);
  const sdk = new AStackSDK({ engine });
  const made = await sdk.createSession('user-1', { quality: 'high' });
  const middleware = [authMiddleware(sdk), errorHandler({ all: true })];
  console.log(kind, token, same, listed, expired, slots, headers, limiter, made.sessionToken, middleware);

  // @ts-expect-error: not an operation
  engine.authorize(plaintext, 'session.write');
  // @ts-expect-error: a promise's answer is not the value itself
  const notYet: string = p.issueToken(decision, session.id);
  // @ts-expect-error: engine.promises has only the calls that may wait on the store
  p.close();
  // @ts-expect-error: a SQLite store needs its path
  new Engine({ store: { kind: 'sqlite' } });
  // @ts-expect-error: no such store
  new Engine({ store: { kind: 'postgres', url: 'x' } });
  console.log(notYet);
}

void use;
