/* astack from C: the seed's flow.
 *
 *   make install PREFIX=/tmp/astack
 *   export PKG_CONFIG_PATH=/tmp/astack/lib/pkgconfig
 *   cc examples/c/quickstart.c $(pkg-config --cflags --libs astack) -o quickstart && ./quickstart
 *
 * An operator bootstraps an admin key, creates a scoped key for an app and one for its workers;
 * the app authorizes a request and creates a session; the session gets a token; a worker
 * connects with that token and later reports the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <astack.h>

/* Stops with the error body when a call fails. */
static void must(astack_result result, const char *what, char *json) {
  if (result != ASTACK_OK) {
    fprintf(stderr, "%s failed: %s (%s)\n", what, astack_result_code(result), json ? json : "");
    astack_string_free(json);
    exit(1);
  }
}

/* Copies the string value of `"field":"..."` from a compact JSON answer (a real host would use
 * its JSON library). */
static void field(const char *json, const char *name, char *out, size_t size) {
  char pattern[64];
  const char *p;
  size_t n = 0;
  snprintf(pattern, sizeof pattern, "\"%s\":\"", name);
  p = strstr(json, pattern);
  if (p != NULL) {
    p += strlen(pattern);
    while (p[n] != '"' && p[n] != '\0' && n + 1 < size) {
      out[n] = p[n];
      n++;
    }
  }
  out[n] = '\0';
}

/* Authorizes `key` for `operation`, printing the rate-limit headers a server would send. */
static void authorize(astack_engine *engine, const char *key, const char *operation, astack_decision *d) {
  char *policy = NULL, *ratelimit = NULL;
  must(astack_authorize(engine, key, operation, d), operation, NULL);
  must(astack_decision_headers(d, &policy, &ratelimit), "headers", NULL);
  printf("%-15s allowed for %s (account %s)\n  RateLimit-Policy: %s\n  RateLimit: %s\n", operation,
         d->key_id, d->account_id, policy, ratelimit);
  astack_string_free(policy);
  astack_string_free(ratelimit);
}

int main(void) {
  astack_engine *engine = NULL;
  astack_decision admin, app, worker;
  char *json = NULL;
  char admin_key[64], app_key[64], worker_key[64], session_id[64], token[1024];

  printf("astack %s\n", astack_version());
  must(astack_engine_new(NULL, &engine), "engine", NULL);

  /* The operator's first admin key, shown once. */
  must(astack_bootstrap_admin_key(engine, NULL, &json), "bootstrap", json);
  field(json, "key", admin_key, sizeof admin_key);
  astack_string_free(json);
  authorize(engine, admin_key, "admin", &admin);

  /* A scoped key for the app (account "acme") and one for the workers. */
  must(astack_key_create(engine, admin.key_id,
                         "{\"name\":\"acme app\",\"account_id\":\"acme\","
                         "\"scopes\":[\"sessions:write\",\"sessions:read\"]}",
                         &json),
       "create app key", json);
  field(json, "key", app_key, sizeof app_key);
  astack_string_free(json);
  must(astack_key_create(engine, admin.key_id, "{\"name\":\"workers\",\"scopes\":[\"workers:write\"]}", &json),
       "create worker key", json);
  field(json, "key", worker_key, sizeof worker_key);
  astack_string_free(json);

  /* The app authorizes a request and creates a session. */
  authorize(engine, app_key, "session.create", &app);
  must(astack_session_create(engine, app.key_id,
                             "{\"end_user_id\":\"user-42\",\"features\":[\"transcription\"]}", &json),
       "create session", json);
  field(json, "id", session_id, sizeof session_id);
  printf("session created: %s\n", json);
  astack_string_free(json);

  /* Its token, for the client to present to the worker (a fresh one may be issued any time). */
  must(astack_token_issue(engine, app.key_id, session_id, &json), "issue token", json);
  field(json, "session_token", token, sizeof token);
  astack_string_free(json);
  printf("session token: %.24s...\n", token);

  /* The worker connects the session with the token the client presented... */
  authorize(engine, worker_key, "worker.write", &worker);
  must(astack_session_connect(engine, worker.key_id, session_id, token, &json), "connect", json);
  printf("connected: %s\n", strstr(json, "\"status\":\"ACTIVE\"") ? "ACTIVE" : json);
  astack_string_free(json);

  /* ...and reports its end. */
  must(astack_session_end(engine, worker.key_id, session_id, "{\"outcome\":\"completed\"}", &json), "end", json);
  printf("ended: %s\n", strstr(json, "\"status\":\"COMPLETED\"") ? "COMPLETED" : json);
  astack_string_free(json);

  astack_engine_free(engine);
  printf("quickstart: done\n");
  return 0;
}
