/* Misuse of the C ABI (issue 10): NULL in every pointer position of every exported function,
 * strings that are not UTF-8, numbers out of range, garbage in caller-owned structs, and objects
 * and strings made in one thread, used in others and freed in yet another. Built plain, under
 * AddressSanitizer + UBSan, under valgrind and under ThreadSanitizer (make test-c).
 *
 * What is NOT tested, because no C library can make it defined: using or freeing an object or a
 * string after it was freed, freeing it twice, or passing a pointer this library did not make.
 * Those are the caller's responsibility (include/astack.h, SECURITY.md).
 *
 * Ends with "test_misuse: N passed, N failed". */
#include <pthread.h>
#include <stdint.h>

#include "check.h"

#define BAD "\xff\xfe" /* not UTF-8 */

static astack_engine *engine;
static char admin[ASTACK_KEY_ID_SIZE];
static char session_id[64];
static char user_id[64];
static char key_id[ASTACK_KEY_ID_SIZE];
static char *out;

/* `expr` answers `want` with an error body naming that code in `out`, which is then freed. */
#define JSON_ERROR(expr, want, code)                                                  \
  do {                                                                                \
    out = NULL;                                                                       \
    CHECK_RESULT((expr), (want));                                                     \
    CHECK(contains(out, "\"code\":\"" code "\""));                                    \
    astack_string_free(out);                                                          \
    out = NULL;                                                                       \
  } while (0)

#define JSON_NULL(expr) JSON_ERROR(expr, ASTACK_NULL_ARGUMENT, "null_argument")
#define JSON_UTF8(expr) JSON_ERROR(expr, ASTACK_INVALID_UTF8, "invalid_utf8")

/* The NULL cases of a cold path f(engine, key_id, x, out_json) with x a required string. */
#define NULLS4(f, x)                                                                  \
  do {                                                                                \
    JSON_NULL(f(NULL, admin, (x), &out));                                             \
    JSON_NULL(f(engine, NULL, (x), &out));                                            \
    JSON_NULL(f(engine, admin, NULL, &out));                                          \
    CHECK_RESULT(f(engine, admin, (x), NULL), ASTACK_NULL_ARGUMENT);                  \
    JSON_UTF8(f(engine, BAD, (x), &out));                                             \
    JSON_UTF8(f(engine, admin, BAD, &out));                                           \
  } while (0)

/* f(engine, key_id, a, b, out_json) with a and b required strings. */
#define NULLS5(f, a, b)                                                               \
  do {                                                                                \
    JSON_NULL(f(NULL, admin, (a), (b), &out));                                        \
    JSON_NULL(f(engine, NULL, (a), (b), &out));                                       \
    JSON_NULL(f(engine, admin, NULL, (b), &out));                                     \
    JSON_NULL(f(engine, admin, (a), NULL, &out));                                     \
    CHECK_RESULT(f(engine, admin, (a), (b), NULL), ASTACK_NULL_ARGUMENT);             \
    JSON_UTF8(f(engine, admin, BAD, (b), &out));                                      \
    JSON_UTF8(f(engine, admin, (a), BAD, &out));                                      \
  } while (0)

/* f(engine, key_id, out_json). */
#define NULLS3(f)                                                                     \
  do {                                                                                \
    JSON_NULL(f(NULL, admin, &out));                                                  \
    JSON_NULL(f(engine, NULL, &out));                                                 \
    CHECK_RESULT(f(engine, admin, NULL), ASTACK_NULL_ARGUMENT);                       \
    JSON_UTF8(f(engine, BAD, &out));                                                  \
    JSON_ERROR(f(engine, "key_unknown", &out), ASTACK_NOT_FOUND, "not_found");        \
  } while (0)

/* f(engine, key_id, limit, out_json). */
#define NULLS_LIST(f)                                                                 \
  do {                                                                                \
    JSON_NULL(f(NULL, admin, 0, &out));                                               \
    JSON_NULL(f(engine, NULL, 0, &out));                                              \
    CHECK_RESULT(f(engine, admin, 0, NULL), ASTACK_NULL_ARGUMENT);                    \
    JSON_UTF8(f(engine, BAD, 0, &out));                                               \
    JSON_ERROR(f(engine, admin, 1001, &out), ASTACK_INVALID_REQUEST, "invalid_request"); \
    JSON_ERROR(f(engine, admin, UINT32_MAX, &out), ASTACK_INVALID_REQUEST, "invalid_request"); \
  } while (0)

static void setup(void) {
  char key[64];
  astack_decision d;
  CHECK_RESULT(astack_engine_new_with_manual_clock(NULL, 1700000000000ULL, &engine), ASTACK_OK);
  CHECK_RESULT(astack_bootstrap_admin_key(engine, NULL, &out), ASTACK_OK);
  CHECK(json_string(out, "key", key, sizeof key));
  astack_string_free(out);
  CHECK_RESULT(astack_authorize(engine, key, "admin", &d), ASTACK_OK);
  strcpy(admin, d.key_id);
  CHECK_RESULT(astack_session_create(engine, admin, "{\"end_user_id\":\"u\"}", &out), ASTACK_OK);
  CHECK(json_string(out, "id", session_id, sizeof session_id));
  astack_string_free(out);
  CHECK_RESULT(astack_user_create(engine, admin, "{\"name\":\"n\"}", &out), ASTACK_OK);
  CHECK(json_string(out, "id", user_id, sizeof user_id));
  astack_string_free(out);
  CHECK_RESULT(astack_key_create(engine, admin, "{\"scopes\":[\"sessions:read\"]}", &out), ASTACK_OK);
  CHECK(json_string(out, "id", key_id, sizeof key_id));
  astack_string_free(out);
}

static void engine_and_config(void) {
  astack_engine *e = (astack_engine *)0x1;
  CHECK_RESULT(astack_engine_new(NULL, NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_engine_new("{}", NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_engine_new(BAD, &e), ASTACK_INVALID_UTF8);
  CHECK(e == NULL);
  e = (astack_engine *)0x1;
  CHECK_RESULT(astack_engine_new("{\"limits\":{\"requests_per_minute\":1e400}}", &e), ASTACK_INVALID_CONFIG);
  CHECK(e == NULL);
  CHECK_RESULT(astack_engine_new("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", &e), ASTACK_INVALID_CONFIG);
  CHECK_RESULT(astack_engine_new_with_manual_clock(NULL, 0, NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_engine_new_with_manual_clock(BAD, 0, &e), ASTACK_INVALID_UTF8);
  CHECK_RESULT(astack_engine_new_with_manual_clock(NULL, 1700000000000ULL, &e), ASTACK_OK);
  /* A clock at the end of time still answers errors, not panics nor wrapped-around times. */
  {
    char key[64], id[ASTACK_KEY_ID_SIZE], sid[64], token[1024];
    astack_decision d;
    CHECK_RESULT(astack_bootstrap_admin_key(e, NULL, &out), ASTACK_OK);
    CHECK(json_string(out, "key", key, sizeof key));
    astack_string_free(out);
    CHECK_RESULT(astack_authorize(e, key, "admin", &d), ASTACK_OK);
    strcpy(id, d.key_id);
    CHECK_RESULT(astack_clock_set(e, UINT64_MAX), ASTACK_OK);
    /* Every bucket stays empty: refused. */
    CHECK_RESULT(astack_authorize(e, key, "session.create", &d), ASTACK_RATE_LIMITED);
    CHECK(d.retry_after >= 1);
    CHECK_RESULT(astack_authorize_op(e, key, ASTACK_OP_ADMIN, &d), ASTACK_RATE_LIMITED);
    CHECK_RESULT(astack_session_create(e, id, "{\"end_user_id\":\"u\"}", &out), ASTACK_OK);
    CHECK(json_string(out, "id", sid, sizeof sid));
    CHECK(json_string(out, "session_token", token, sizeof token));
    CHECK(contains(out, "\"expires_at\":18446744073709551615"));
    astack_string_free(out);
    out = NULL;
    CHECK(astack_session_connect(e, id, sid, token, &out) != ASTACK_INTERNAL_ERROR);
    astack_string_free(out);
    CHECK_RESULT(astack_clock_advance(e, UINT64_MAX), ASTACK_OK);
    CHECK_RESULT(astack_session_sweep(e, NULL), ASTACK_OK);
    CHECK_RESULT(astack_usage_get(e, id, &out), ASTACK_OK);
    astack_string_free(out);
  }
  astack_engine_free(e);
  astack_engine_free(NULL);
  CHECK_RESULT(astack_config_check(NULL, NULL), ASTACK_NULL_ARGUMENT);
  out = NULL;
  CHECK_RESULT(astack_config_check(NULL, &out), ASTACK_OK); /* NULL is the default config */
  astack_string_free(out);
  JSON_UTF8(astack_config_check(BAD, &out));
  JSON_ERROR(astack_config_check("{\"a\":1,\"a\":1}", &out), ASTACK_INVALID_CONFIG, "invalid_config");
  JSON_NULL(astack_engine_config(NULL, &out));
  CHECK_RESULT(astack_engine_config(engine, NULL), ASTACK_NULL_ARGUMENT);
}

static void clock_strings_codes(void) {
  uint64_t now = 0;
  CHECK_RESULT(astack_clock_now(NULL, &now), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_clock_now(engine, NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_clock_set(NULL, 0), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_clock_advance(NULL, 0), ASTACK_NULL_ARGUMENT);
  astack_string_free(NULL);
  CHECK(strcmp(astack_result_code(UINT32_MAX), "unknown") == 0);
  CHECK(strcmp(astack_result_message(12345), "unknown result") == 0);
  CHECK(astack_operation_name(0) == NULL && astack_operation_name(UINT32_MAX) == NULL);
  CHECK(astack_version() != NULL);
}

static void authorize_and_headers(void) {
  astack_decision d;
  char *policy = (char *)0x1, *ratelimit = (char *)0x1;
  CHECK_RESULT(astack_authorize(NULL, "ak_x", "admin", &d), ASTACK_NULL_ARGUMENT);
  CHECK(d.code == ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_authorize(engine, NULL, "admin", &d), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_authorize(engine, "ak_x", NULL, &d), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_authorize(engine, "ak_x", "admin", NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_authorize(engine, BAD, "admin", &d), ASTACK_INVALID_API_KEY);
  CHECK_RESULT(astack_authorize(engine, "ak_x", BAD, &d), ASTACK_INVALID_UTF8);
  CHECK_RESULT(astack_authorize(engine, "ak_x", "root", &d), ASTACK_INVALID_ARGUMENT);
  CHECK_RESULT(astack_authorize(engine, "", "admin", &d), ASTACK_MISSING_API_KEY);
  CHECK_RESULT(astack_authorize_op(NULL, "ak_x", 1, &d), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_authorize_op(engine, NULL, 1, &d), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_authorize_op(engine, "ak_x", 1, NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_authorize_op(engine, "ak_x", 0, &d), ASTACK_INVALID_ARGUMENT);
  CHECK_RESULT(astack_authorize_op(engine, "ak_x", UINT32_MAX, &d), ASTACK_INVALID_ARGUMENT);
  CHECK_RESULT(astack_decision_headers(NULL, &policy, &ratelimit), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_decision_headers(&d, NULL, &ratelimit), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_decision_headers(&d, &policy, NULL), ASTACK_NULL_ARGUMENT);
  /* Garbage in a caller-owned decision: every field at its extreme, an unknown code. */
  memset(&d, 0xff, sizeof d);
  CHECK_RESULT(astack_decision_headers(&d, &policy, &ratelimit), ASTACK_OK);
  astack_string_free(policy);
  astack_string_free(ratelimit);
  memset(&d, 0, sizeof d);
  CHECK_RESULT(astack_decision_headers(&d, &policy, &ratelimit), ASTACK_OK);
  CHECK(policy == NULL && ratelimit == NULL);
}

static void limiter(void) {
  astack_limiter *l = (astack_limiter *)0x1;
  astack_decision d;
  char *policy = NULL, *ratelimit = NULL;
  uint64_t remaining = 0;
  CHECK_RESULT(astack_limiter_new(NULL, &l, NULL), ASTACK_NULL_ARGUMENT);
  CHECK(l == NULL);
  CHECK_RESULT(astack_limiter_new("[]", NULL, NULL), ASTACK_NULL_ARGUMENT);
  JSON_UTF8(astack_limiter_new(BAD, &l, &out));
  JSON_ERROR(astack_limiter_new("[{\"name\":\"m\",\"limit\":1,\"period_seconds\":18446744073709551615}]", &l, &out),
             ASTACK_INVALID_REQUEST, "invalid_request");
  CHECK_RESULT(astack_limiter_new("[{\"name\":\"m\",\"limit\":1,\"period_seconds\":60}]", &l, NULL), ASTACK_OK);
  CHECK_RESULT(astack_limiter_check(NULL, "k", 0, &d), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_limiter_check(l, NULL, 0, &d), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_limiter_check(l, "k", 0, NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_limiter_check(l, BAD, 0, &d), ASTACK_INVALID_UTF8);
  CHECK_RESULT(astack_limiter_check(l, "k", UINT64_MAX, &d), ASTACK_RATE_LIMITED); /* the end of time */
  CHECK(d.retry_after >= 1);
  CHECK_RESULT(astack_limiter_check(l, "k", 0, &d), ASTACK_OK); /* time going back */
  CHECK_RESULT(astack_limiter_headers(NULL, &d, &policy, &ratelimit), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_limiter_headers(l, NULL, &policy, &ratelimit), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_limiter_headers(l, &d, NULL, &ratelimit), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_limiter_headers(l, &d, &policy, NULL), ASTACK_NULL_ARGUMENT);
  memset(&d, 0xff, sizeof d); /* a window index out of range */
  CHECK_RESULT(astack_limiter_headers(l, &d, &policy, &ratelimit), ASTACK_OK);
  astack_string_free(policy);
  astack_string_free(ratelimit);
  CHECK_RESULT(astack_limiter_sweep(NULL, 0, &remaining), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_limiter_sweep(l, UINT64_MAX, NULL), ASTACK_OK);
  astack_limiter_free(l);
  astack_limiter_free(NULL);
}

static void cold_paths(void) {
  uint32_t slots = 0;
  uint64_t expired = 0;
  /* Keys. */
  JSON_NULL(astack_bootstrap_admin_key(NULL, NULL, &out));
  CHECK_RESULT(astack_bootstrap_admin_key(engine, NULL, NULL), ASTACK_NULL_ARGUMENT);
  JSON_UTF8(astack_bootstrap_admin_key(engine, BAD, &out));
  JSON_ERROR(astack_bootstrap_admin_key(engine, "ak_bad", &out), ASTACK_INVALID_CONFIG, "invalid_config");
  NULLS4(astack_key_create, "{\"scopes\":[\"sessions:read\"]}");
  NULLS_LIST(astack_key_list);
  NULLS4(astack_key_get, key_id);
  NULLS4(astack_key_revoke, "key_unknown");
  JSON_NULL(astack_key_rotate(NULL, admin, key_id, 0, &out));
  JSON_NULL(astack_key_rotate(engine, NULL, key_id, 0, &out));
  JSON_NULL(astack_key_rotate(engine, admin, NULL, 0, &out));
  CHECK_RESULT(astack_key_rotate(engine, admin, key_id, 0, NULL), ASTACK_NULL_ARGUMENT);
  JSON_UTF8(astack_key_rotate(engine, admin, BAD, 0, &out));
  JSON_ERROR(astack_key_rotate(engine, admin, key_id, UINT64_MAX, &out), ASTACK_INVALID_REQUEST, "invalid_request");
  /* Sessions. */
  NULLS4(astack_session_create, "{\"end_user_id\":\"u\"}");
  NULLS4(astack_session_get, session_id);
  NULLS_LIST(astack_session_list);
  NULLS4(astack_session_terminate, "sess_unknown");
  NULLS5(astack_session_connect, session_id, "a.b.c");
  NULLS5(astack_session_end, "sess_unknown", "{\"outcome\":\"completed\"}");
  CHECK_RESULT(astack_session_sweep(NULL, &expired), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_session_sweep(engine, NULL), ASTACK_OK);
  CHECK_RESULT(astack_engine_flush(NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_session_slots_in_use(NULL, admin, &slots), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_session_slots_in_use(engine, NULL, &slots), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_session_slots_in_use(engine, admin, NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_session_slots_in_use(engine, BAD, &slots), ASTACK_INVALID_UTF8);
  /* Tokens. */
  NULLS4(astack_token_issue, session_id);
  JSON_NULL(astack_token_verify(NULL, "a.b.c", NULL, NULL, &out));
  JSON_NULL(astack_token_verify(engine, NULL, NULL, NULL, &out));
  CHECK_RESULT(astack_token_verify(engine, "a.b.c", NULL, NULL, NULL), ASTACK_NULL_ARGUMENT);
  JSON_ERROR(astack_token_verify(engine, "a.b.c", NULL, NULL, &out), ASTACK_INVALID_TOKEN, "invalid_token");
  JSON_UTF8(astack_token_verify(engine, BAD, NULL, NULL, &out));
  JSON_UTF8(astack_token_verify(engine, "a.b.c", BAD, NULL, &out));
  JSON_UTF8(astack_token_verify(engine, "a.b.c", NULL, BAD, &out));
  /* Workers. */
  NULLS4(astack_worker_register, "{\"node_id\":\"w\",\"url\":\"ws://w\",\"capacity\":1}");
  NULLS5(astack_worker_update, "w", "{\"draining\":true}");
  NULLS3(astack_worker_list);
  /* Users. */
  NULLS4(astack_user_create, "{\"name\":\"n\"}");
  NULLS4(astack_user_get, user_id);
  NULLS_LIST(astack_user_list);
  NULLS5(astack_user_update, user_id, "{\"name\":\"m\"}");
  NULLS4(astack_user_delete, "user_unknown");
  /* Usage, alerts, audit, metrics. */
  NULLS4(astack_usage_record, "{\"metric\":\"m\",\"quantity\":1}");
  NULLS3(astack_usage_get);
  NULLS4(astack_alert_create, "{\"metric\":\"m\",\"threshold\":1}");
  NULLS3(astack_alert_list);
  NULLS_LIST(astack_audit_list);
  NULLS3(astack_metrics);
}

/* Objects and strings made in one thread, used in others, freed in yet another. */
#define THREADS 6
static astack_engine *shared;
static char shared_admin[ASTACK_KEY_ID_SIZE];
static char *strings[THREADS];

static void *make(void *arg) {
  char key[64];
  astack_decision d;
  char *o = NULL;
  (void)arg;
  CHECK_RESULT(astack_engine_new(NULL, &shared), ASTACK_OK);
  CHECK_RESULT(astack_bootstrap_admin_key(shared, NULL, &o), ASTACK_OK);
  CHECK(json_string(o, "key", key, sizeof key));
  astack_string_free(o);
  CHECK_RESULT(astack_authorize(shared, key, "admin", &d), ASTACK_OK);
  memcpy(shared_admin, d.key_id, sizeof shared_admin);
  return NULL;
}

static int failures[THREADS]; /* per thread: the check counters are not shared across threads */

static void *use(void *arg) {
  int i = (int)(intptr_t)arg;
  int n;
  astack_decision d;
  char *o = NULL;
  for (n = 0; n < 30; n++) {
    if (astack_user_create(shared, shared_admin, "{\"name\":\"t\"}", &o) != ASTACK_OK) failures[i]++;
    astack_string_free(o);
    o = NULL;
    if (astack_session_create(shared, NULL, "{}", &o) != ASTACK_NULL_ARGUMENT || o == NULL) failures[i]++;
    astack_string_free(o);
    if (astack_authorize(shared, NULL, "admin", &d) != ASTACK_NULL_ARGUMENT) failures[i]++;
    if (astack_key_list(NULL, shared_admin, 1, &o) != ASTACK_NULL_ARGUMENT) failures[i]++;
    astack_string_free(o);
  }
  if (astack_key_list(shared, shared_admin, 1, &strings[i]) != ASTACK_OK) failures[i]++;
  return NULL;
}

static void *release(void *arg) {
  int i;
  (void)arg;
  for (i = 0; i < THREADS; i++) {
    CHECK(contains(strings[i], "\"data\""));
    astack_string_free(strings[i]);
    strings[i] = NULL;
  }
  astack_engine_free(shared);
  shared = NULL;
  return NULL;
}

static void across_threads(void) {
  pthread_t maker, users[THREADS], releaser;
  int created[THREADS + 2], joined = 0;
  int i;
  /* The check counters are shared: nothing is CHECKed while a thread that CHECKs may run. */
  created[0] = pthread_create(&maker, NULL, make, NULL);
  joined += pthread_join(maker, NULL);
  for (i = 0; i < THREADS; i++) created[i + 1] = pthread_create(&users[i], NULL, use, (void *)(intptr_t)i);
  for (i = 0; i < THREADS; i++) joined += pthread_join(users[i], NULL);
  created[THREADS + 1] = pthread_create(&releaser, NULL, release, NULL);
  joined += pthread_join(releaser, NULL);
  for (i = 0; i < THREADS + 2; i++) CHECK(created[i] == 0);
  CHECK(joined == 0);
  for (i = 0; i < THREADS; i++) CHECK(failures[i] == 0);
}

int main(void) {
  setup();
  engine_and_config();
  clock_strings_codes();
  authorize_and_headers();
  limiter();
  cold_paths();
  across_threads();
  astack_engine_free(engine);
  return check_finish("test_misuse");
}
