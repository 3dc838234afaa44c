/* Every exported function of include/astack.h, used rightly and wrongly: NULL arguments, bad
 * UTF-8, bad JSON, keys of the wrong format, out-of-range values. Ends with
 * "test_abi: N passed, N failed"; leaks and memory errors are caught by ASan and valgrind. */
#include "check.h"

#define T0 1700000000000ULL /* the manual clock's start, epoch ms */

static const char BAD_UTF8[] = {'\xff', '\xfe', 'a', '\0'};

static astack_engine *engine;
static char admin_key[64];
static char admin_id[ASTACK_KEY_ID_SIZE];

/* Frees a returned string and clears the pointer. */
static void drop(char **s) {
  astack_string_free(*s);
  *s = NULL;
}

/* Asserts that `json` is an error body with `code`. */
static void check_error_body(const char *json, const char *code) {
  char got[64];
  CHECK(contains(json, "{\"error\":{"));
  CHECK(json_string(json, "code", got, sizeof got) && strcmp(got, code) == 0);
  if (!contains(json, code)) fprintf(stderr, "  body was: %s\n", json ? json : "(null)");
}

/* Authorizes `key` for `operation`, copying the key id into `id` (when not NULL). */
static astack_result authorize(const char *key, const char *operation, char *id) {
  astack_decision d;
  astack_result r = astack_authorize(engine, key, operation, &d);
  if (id != NULL) strcpy(id, r == ASTACK_OK ? d.key_id : "");
  return r;
}

/* Creates a key with `request` as the admin; copies its plaintext and id. */
static void create_key(const char *request, char *key, char *id) {
  char *out = NULL;
  CHECK_RESULT(astack_key_create(engine, admin_id, request, &out), ASTACK_OK);
  CHECK(json_string(out, "key", key, 64));
  CHECK(json_string(out, "id", id, ASTACK_KEY_ID_SIZE));
  drop(&out);
}

static void test_codes_and_version(void) {
  CHECK(strcmp(astack_result_code(ASTACK_OK), "ok") == 0);
  CHECK(strcmp(astack_result_code(ASTACK_INVALID_API_KEY), "invalid_api_key") == 0);
  CHECK(strcmp(astack_result_code(ASTACK_INTERNAL_ERROR), "internal_error") == 0);
  CHECK(strcmp(astack_result_code(ASTACK_NULL_ARGUMENT), "null_argument") == 0);
  CHECK(strcmp(astack_result_code(12345), "unknown") == 0);
  CHECK(strlen(astack_result_message(ASTACK_RATE_LIMITED)) > 0);
  CHECK(strcmp(astack_result_message(12345), "unknown result") == 0);
  CHECK(ASTACK_OK == 0 && ASTACK_MISSING_API_KEY == 101 && ASTACK_CONCURRENT_SESSION_LIMIT == 107);
  CHECK(ASTACK_INVALID_REQUEST == 201 && ASTACK_NO_WORKER_AVAILABLE == 208);
  CHECK(ASTACK_INVALID_CONFIG == 301 && ASTACK_NULL_ARGUMENT == 401 && ASTACK_INTERNAL_ERROR == 502);

  CHECK(strcmp(astack_version(), ASTACK_VERSION) == 0);
  {
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", ASTACK_VERSION_MAJOR, ASTACK_VERSION_MINOR,
             ASTACK_VERSION_PATCH);
    CHECK(strcmp(expected, ASTACK_VERSION) == 0);
  }
#ifdef ASTACK_EXPECTED_VERSION /* the version of Cargo.toml, passed by the Makefile */
  CHECK(strcmp(astack_version(), ASTACK_EXPECTED_VERSION) == 0);
#endif

  CHECK(strcmp(astack_operation_name(ASTACK_OP_SESSION_CREATE), "session.create") == 0);
  CHECK(strcmp(astack_operation_name(ASTACK_OP_ADMIN), "admin") == 0);
  CHECK(astack_operation_name(0) == NULL);
  CHECK(astack_operation_name(99) == NULL);
  astack_string_free(NULL);
}

static void test_engine_and_config(void) {
  astack_engine *e = (astack_engine *)&e; /* garbage that must be overwritten */
  char *out = NULL;
  uint64_t now = 0;

  CHECK_RESULT(astack_engine_new(NULL, &e), ASTACK_OK);
  CHECK(e != NULL);
  CHECK_RESULT(astack_clock_now(e, &now), ASTACK_OK);
  CHECK(now > T0);
  CHECK_RESULT(astack_clock_set(e, T0), ASTACK_UNSUPPORTED);
  CHECK_RESULT(astack_clock_advance(e, 1000), ASTACK_UNSUPPORTED);
  CHECK_RESULT(astack_engine_config(e, &out), ASTACK_OK);
  CHECK(contains(out, "\"requests_per_minute\":100"));
  CHECK(contains(out, "\"pending_ttl_seconds\":300"));
  drop(&out);
  astack_engine_free(e);

  CHECK_RESULT(astack_engine_new("", &e), ASTACK_OK);
  astack_engine_free(e);
  CHECK_RESULT(astack_engine_new("{}", &e), ASTACK_OK);
  astack_engine_free(e);
  astack_engine_free(NULL);

  e = (astack_engine *)&e;
  CHECK_RESULT(astack_engine_new("{\"limits\":{\"requests_per_minute\":0}}", &e), ASTACK_INVALID_CONFIG);
  CHECK(e == NULL);
  CHECK_RESULT(astack_engine_new("{\"nope\":1}", &e), ASTACK_INVALID_CONFIG);
  CHECK_RESULT(astack_engine_new("{not json", &e), ASTACK_INVALID_CONFIG);
  CHECK_RESULT(astack_engine_new(BAD_UTF8, &e), ASTACK_INVALID_UTF8);
  CHECK(e == NULL);
  CHECK_RESULT(astack_engine_new(NULL, NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_engine_new_with_manual_clock(NULL, T0, NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_engine_new_with_manual_clock("{\"signing_keys\":[{\"kid\":\"k\",\"secret\":\"short\"}]}", T0, &e),
               ASTACK_INVALID_CONFIG);

  /* astack_config_check names the field. */
  CHECK_RESULT(astack_config_check("{\"limits\":{\"requests_per_minute\":0}}", &out), ASTACK_INVALID_CONFIG);
  check_error_body(out, "invalid_config");
  CHECK(contains(out, "\"field\":\"limits.requests_per_minute\""));
  drop(&out);
  CHECK_RESULT(astack_config_check("{\"sessions\":{\"pending_ttl_seconds\":60},"
                                   "\"key_pepper\":\"0123456789abcdef0123\","
                                   "\"signing_keys\":[{\"kid\":\"k1\",\"secret\":\"0123456789abcdef0123456789abcdef\"}]}",
                                   &out),
               ASTACK_OK);
  CHECK(contains(out, "\"pending_ttl_seconds\":60"));
  CHECK(contains(out, "\"kid\":\"k1\""));
  CHECK(!contains(out, "0123456789abcdef")); /* secrets never leave */
  drop(&out);
  CHECK_RESULT(astack_config_check(NULL, &out), ASTACK_OK);
  drop(&out);
  CHECK_RESULT(astack_config_check(BAD_UTF8, &out), ASTACK_INVALID_UTF8);
  check_error_body(out, "invalid_utf8");
  drop(&out);
  CHECK_RESULT(astack_config_check("{}", NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_engine_config(NULL, &out), ASTACK_NULL_ARGUMENT);
  check_error_body(out, "null_argument");
  drop(&out);
  CHECK_RESULT(astack_engine_config(NULL, NULL), ASTACK_NULL_ARGUMENT);

  /* The manual clock. */
  CHECK_RESULT(astack_engine_new_with_manual_clock(NULL, T0, &e), ASTACK_OK);
  CHECK_RESULT(astack_clock_now(e, &now), ASTACK_OK);
  CHECK(now == T0);
  CHECK_RESULT(astack_clock_advance(e, 1500), ASTACK_OK);
  CHECK_RESULT(astack_clock_now(e, &now), ASTACK_OK);
  CHECK(now == T0 + 1500);
  CHECK_RESULT(astack_clock_set(e, 42), ASTACK_OK);
  CHECK_RESULT(astack_clock_now(e, &now), ASTACK_OK);
  CHECK(now == 42);
  CHECK_RESULT(astack_clock_advance(e, UINT64_MAX), ASTACK_OK); /* saturates */
  CHECK_RESULT(astack_clock_now(e, &now), ASTACK_OK);
  CHECK(now == UINT64_MAX);
  CHECK_RESULT(astack_clock_now(e, NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_clock_now(NULL, &now), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_clock_set(NULL, 1), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_clock_advance(NULL, 1), ASTACK_NULL_ARGUMENT);
  astack_engine_free(e);
}

static void test_bootstrap(void) {
  char *out = NULL;
  astack_engine *other = NULL;
  CHECK_RESULT(astack_engine_new_with_manual_clock(
                   "{\"limits\":{\"requests_per_minute\":1000,\"requests_per_hour\":10000}}", T0, &engine),
               ASTACK_OK);
  CHECK_RESULT(astack_bootstrap_admin_key(engine, NULL, &out), ASTACK_OK);
  CHECK(json_string(out, "key", admin_key, sizeof admin_key));
  CHECK(strlen(admin_key) == 39 && strncmp(admin_key, "ak_", 3) == 0);
  drop(&out);
  CHECK_RESULT(authorize(admin_key, "admin", admin_id), ASTACK_OK);
  CHECK(strncmp(admin_id, "key_", 4) == 0);

  /* The same plaintext installed in another engine: kept once, never echoed. */
  CHECK_RESULT(astack_engine_new(NULL, &other), ASTACK_OK);
  CHECK_RESULT(astack_bootstrap_admin_key(other, admin_key, &out), ASTACK_OK);
  CHECK(contains(out, "{\"key\":null}"));
  drop(&out);
  CHECK_RESULT(astack_bootstrap_admin_key(other, admin_key, &out), ASTACK_OK);
  drop(&out);
  {
    astack_decision d;
    CHECK_RESULT(astack_authorize(other, admin_key, "admin", &d), ASTACK_OK);
  }
  CHECK_RESULT(astack_bootstrap_admin_key(other, "ak_not_a_key", &out), ASTACK_INVALID_CONFIG);
  check_error_body(out, "invalid_config");
  drop(&out);
  CHECK_RESULT(astack_bootstrap_admin_key(other, BAD_UTF8, &out), ASTACK_INVALID_UTF8);
  drop(&out);
  CHECK_RESULT(astack_bootstrap_admin_key(NULL, NULL, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_bootstrap_admin_key(other, NULL, NULL), ASTACK_NULL_ARGUMENT);
  astack_engine_free(other);
}

static void test_authorize(void) {
  astack_decision d;
  char key[64], id[ASTACK_KEY_ID_SIZE], bad[64], other[64], other_id[ASTACK_KEY_ID_SIZE];
  char *policy = NULL, *ratelimit = NULL;
  uint32_t slot;
  int i;

  create_key("{\"name\":\"reader\",\"account_id\":\"acme\",\"scopes\":[\"sessions:read\"],"
             "\"limits\":{\"requests_per_minute\":3}}",
             key, id);

  memset(&d, 0xAB, sizeof d);
  CHECK_RESULT(astack_authorize(engine, key, "session.read", &d), ASTACK_OK);
  CHECK(d.code == ASTACK_OK);
  CHECK(strcmp(d.key_id, id) == 0);
  CHECK(strcmp(d.account_id, "acme") == 0);
  CHECK(d.limit == 3 && d.remaining == 2 && d.window == ASTACK_WINDOW_MINUTE);
  CHECK(d.retry_after == 0);
  CHECK(d.requests_per_minute == 3 && d.requests_per_hour == 10000 && d.concurrent_sessions == 10);
  CHECK_RESULT(astack_decision_headers(&d, &policy, &ratelimit), ASTACK_OK);
  CHECK(policy && strcmp(policy, "\"minute\";q=3;w=60, \"hour\";q=10000;w=3600") == 0);
  CHECK(ratelimit && strncmp(ratelimit, "\"minute\";r=2;t=", 15) == 0);
  drop(&policy);
  drop(&ratelimit);

  /* The operation as a number; the key's slot stays the same from call to call. */
  slot = d.key_slot;
  CHECK(slot != ASTACK_NO_KEY_SLOT);
  CHECK_RESULT(astack_authorize_op(engine, key, ASTACK_OP_SESSION_READ, &d), ASTACK_OK);
  CHECK(d.remaining == 1 && d.key_slot == slot);
  CHECK_RESULT(astack_authorize_op(engine, key, 0, &d), ASTACK_INVALID_ARGUMENT);
  CHECK(d.code == ASTACK_INVALID_ARGUMENT);
  CHECK_RESULT(astack_authorize_op(engine, key, 11, &d), ASTACK_INVALID_ARGUMENT);
  /* The key as bytes and a length: no NUL terminator needed, a NUL inside is no key. */
  strcpy(bad, key);
  strcat(bad, "trailing");
  CHECK_RESULT(astack_authorize_bytes(engine, bad, strlen(key), ASTACK_OP_SESSION_READ, &d), ASTACK_OK);
  CHECK(d.remaining == 0 && strcmp(d.key_id, id) == 0 && strcmp(d.account_id, "acme") == 0);
  CHECK_RESULT(astack_clock_advance(engine, 40000), ASTACK_OK);
  CHECK_RESULT(astack_authorize_bytes(engine, key, strlen(key) - 1, ASTACK_OP_SESSION_READ, &d), ASTACK_INVALID_API_KEY);
  CHECK_RESULT(astack_authorize_bytes(engine, key, strlen(key) + 1, ASTACK_OP_SESSION_READ, &d), ASTACK_INVALID_API_KEY);
  CHECK(d.key_id[0] == '\0' && d.requests_per_minute == 0 && d.key_slot == ASTACK_NO_KEY_SLOT);
  CHECK_RESULT(astack_authorize_bytes(engine, NULL, 0, ASTACK_OP_SESSION_READ, &d), ASTACK_MISSING_API_KEY);
  CHECK_RESULT(astack_authorize_bytes(engine, NULL, 1, ASTACK_OP_SESSION_READ, &d), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_authorize_bytes(engine, key, strlen(key), 0, &d), ASTACK_INVALID_ARGUMENT);
  CHECK_RESULT(astack_authorize_bytes(NULL, key, strlen(key), ASTACK_OP_SESSION_READ, &d), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_authorize_bytes(engine, key, strlen(key), ASTACK_OP_SESSION_READ, NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_authorize_bytes(engine, key, strlen(key), ASTACK_OP_SESSION_READ, &d), ASTACK_OK);
  CHECK(d.remaining == 1);

  /* Wrong scope: denied, no token taken, rate fields still reported. */
  CHECK_RESULT(astack_authorize(engine, key, "session.create", &d), ASTACK_INSUFFICIENT_SCOPE);
  CHECK(d.key_id[0] == '\0' && d.limit == 3 && d.requests_per_minute == 3 && d.key_slot == ASTACK_NO_KEY_SLOT);
  /* Another key has another slot. */
  create_key("{\"name\":\"other\",\"scopes\":[\"sessions:read\"]}", other, other_id);
  CHECK_RESULT(astack_authorize(engine, other, "session.read", &d), ASTACK_OK);
  CHECK(d.key_slot != ASTACK_NO_KEY_SLOT && d.key_slot != slot);
  CHECK_RESULT(astack_authorize(engine, key, "session.read", &d), ASTACK_OK);
  CHECK(d.remaining == 0);
  /* Rate limited: retry_after and headers. */
  CHECK_RESULT(astack_authorize(engine, key, "session.read", &d), ASTACK_RATE_LIMITED);
  CHECK(d.code == ASTACK_RATE_LIMITED && d.retry_after >= 1 && d.retry_after <= 20);
  CHECK_RESULT(astack_decision_headers(&d, &policy, &ratelimit), ASTACK_OK);
  CHECK(contains(ratelimit, "\"minute\";r=0;t="));
  drop(&policy);
  drop(&ratelimit);
  CHECK_RESULT(astack_clock_advance(engine, 20000), ASTACK_OK);
  CHECK_RESULT(astack_authorize(engine, key, "session.read", &d), ASTACK_OK);

  /* Missing, malformed and unknown keys. */
  CHECK_RESULT(astack_authorize(engine, "", "session.read", &d), ASTACK_MISSING_API_KEY);
  CHECK(d.code == ASTACK_MISSING_API_KEY && d.requests_per_minute == 0 && d.key_id[0] == '\0');
  CHECK_RESULT(astack_decision_headers(&d, &policy, &ratelimit), ASTACK_OK);
  CHECK(policy == NULL && ratelimit == NULL);
  CHECK_RESULT(astack_authorize(engine, "ak_short", "session.read", &d), ASTACK_INVALID_API_KEY);
  CHECK_RESULT(astack_authorize(engine, "Bearer whatever", "session.read", &d), ASTACK_INVALID_API_KEY);
  strcpy(bad, key);
  bad[38] = bad[38] == 'A' ? 'B' : 'A'; /* the checksum no longer matches */
  CHECK_RESULT(astack_authorize(engine, bad, "session.read", &d), ASTACK_INVALID_API_KEY);
  strcpy(bad, key);
  bad[3] = '\xff'; /* not UTF-8: cannot be well-formed */
  CHECK_RESULT(astack_authorize(engine, bad, "session.read", &d), ASTACK_INVALID_API_KEY);

  /* Misuse. */
  CHECK_RESULT(astack_authorize(engine, key, "no.such.operation", &d), ASTACK_INVALID_ARGUMENT);
  CHECK_RESULT(astack_authorize(engine, key, BAD_UTF8, &d), ASTACK_INVALID_UTF8);
  CHECK_RESULT(astack_authorize(engine, key, NULL, &d), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_authorize(engine, NULL, "session.read", &d), ASTACK_NULL_ARGUMENT);
  CHECK(d.code == ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_authorize(NULL, key, "session.read", &d), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_authorize(engine, key, "session.read", NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_authorize_op(NULL, key, ASTACK_OP_ADMIN, &d), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_authorize_op(engine, key, ASTACK_OP_ADMIN, NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_decision_headers(NULL, &policy, &ratelimit), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_decision_headers(&d, NULL, &ratelimit), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_decision_headers(&d, &policy, NULL), ASTACK_NULL_ARGUMENT);
  /* A decision full of garbage is formatted, never undefined behaviour. */
  memset(&d, 0xFF, sizeof d);
  CHECK_RESULT(astack_decision_headers(&d, &policy, &ratelimit), ASTACK_OK);
  drop(&policy);
  drop(&ratelimit);

  /* Revoked and expired keys. */
  {
    char *out = NULL;
    char exp_key[64], exp_id[ASTACK_KEY_ID_SIZE], request[256];
    CHECK_RESULT(astack_key_revoke(engine, admin_id, id, &out), ASTACK_OK);
    CHECK(contains(out, "\"revoked_at\":"));
    drop(&out);
    CHECK_RESULT(astack_authorize(engine, key, "session.read", &d), ASTACK_API_KEY_REVOKED);
    CHECK_RESULT(astack_session_list(engine, id, 0, &out), ASTACK_API_KEY_REVOKED);
    check_error_body(out, "api_key_revoked");
    drop(&out);
    {
      uint64_t now = 0;
      CHECK_RESULT(astack_clock_now(engine, &now), ASTACK_OK);
      snprintf(request, sizeof request, "{\"scopes\":[\"users:read\"],\"expires_at\":%llu}",
               (unsigned long long)(now + 1000));
    }
    create_key(request, exp_key, exp_id);
    CHECK_RESULT(astack_authorize(engine, exp_key, "user.read", &d), ASTACK_OK);
    CHECK_RESULT(astack_clock_advance(engine, 1000), ASTACK_OK);
    CHECK_RESULT(astack_authorize(engine, exp_key, "user.read", &d), ASTACK_API_KEY_EXPIRED);
    CHECK_RESULT(astack_user_list(engine, exp_id, 0, &out), ASTACK_API_KEY_EXPIRED);
    drop(&out);
  }
  for (i = 0; i < 3; i++) CHECK_RESULT(astack_authorize(engine, admin_key, "admin", &d), ASTACK_OK);
}

static void test_keys(void) {
  char *out = NULL;
  char key[64], id[ASTACK_KEY_ID_SIZE], new_key[64], new_id[ASTACK_KEY_ID_SIZE], acct_admin[64];
  char acct_admin_id[ASTACK_KEY_ID_SIZE];
  astack_decision d;

  create_key("{\"name\":\"app\",\"scopes\":[\"sessions:write\"],\"permissions\":[\"usage_read\"]}", key, id);
  CHECK_RESULT(astack_key_get(engine, admin_id, id, &out), ASTACK_OK);
  CHECK(contains(out, "\"name\":\"app\""));
  CHECK(!contains(out, key)); /* the plaintext is shown once */
  drop(&out);
  CHECK_RESULT(astack_key_list(engine, admin_id, 0, &out), ASTACK_OK);
  CHECK(contains(out, "{\"data\":[") && contains(out, id));
  drop(&out);
  CHECK_RESULT(astack_key_list(engine, admin_id, 1, &out), ASTACK_OK);
  drop(&out);
  CHECK_RESULT(astack_key_list(engine, admin_id, 1001, &out), ASTACK_INVALID_REQUEST);
  check_error_body(out, "invalid_request");
  CHECK(contains(out, "\"field\":\"limit\""));
  drop(&out);

  /* Rotation: a new key; the old one expires after the grace period. */
  CHECK_RESULT(astack_key_rotate(engine, admin_id, id, 60, &out), ASTACK_OK);
  CHECK(json_string(out, "key", new_key, sizeof new_key));
  CHECK(json_string(out, "id", new_id, sizeof new_id));
  CHECK(strcmp(new_id, id) != 0);
  drop(&out);
  CHECK_RESULT(astack_key_rotate(engine, admin_id, id, 31ULL * 86400, &out), ASTACK_INVALID_REQUEST);
  drop(&out);
  CHECK_RESULT(astack_authorize(engine, key, "session.create", &d), ASTACK_OK);
  CHECK_RESULT(astack_authorize(engine, new_key, "session.create", &d), ASTACK_OK);
  CHECK_RESULT(astack_authorize(engine, key, "billing.read", &d), ASTACK_OK); /* legacy flag */

  /* Bad requests. */
  CHECK_RESULT(astack_key_create(engine, admin_id, "{\"scopes\":[\"sessions:fly\"]}", &out), ASTACK_INVALID_REQUEST);
  CHECK(contains(out, "scopes"));
  drop(&out);
  CHECK_RESULT(astack_key_create(engine, admin_id, "{\"name\":\"x\"}", &out), ASTACK_INVALID_REQUEST);
  drop(&out);
  CHECK_RESULT(astack_key_create(engine, admin_id, "{\"scopes\":[\"admin:all\"],\"extra\":1}", &out),
               ASTACK_INVALID_REQUEST);
  CHECK(contains(out, "\"field\":\"extra\""));
  drop(&out);
  CHECK_RESULT(astack_key_create(engine, admin_id, "[1,2", &out), ASTACK_INVALID_REQUEST);
  CHECK(contains(out, "\"field\":\"body\""));
  drop(&out);
  CHECK_RESULT(astack_key_create(engine, admin_id, BAD_UTF8, &out), ASTACK_INVALID_UTF8);
  check_error_body(out, "invalid_utf8");
  CHECK(contains(out, "\"argument\":\"request_json\""));
  drop(&out);
  {
    /* Over 64 KiB: payload_too_large. */
    size_t n = ASTACK_MAX_REQUEST_BYTES + 16;
    char *big = (char *)malloc(n + 1);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    CHECK_RESULT(astack_key_create(engine, admin_id, big, &out), ASTACK_PAYLOAD_TOO_LARGE);
    check_error_body(out, "payload_too_large");
    drop(&out);
    free(big);
  }

  /* Accounts: a non-operator admin keeps to its own account. */
  create_key("{\"account_id\":\"acme\",\"scopes\":[\"admin:all\"]}", acct_admin, acct_admin_id);
  CHECK_RESULT(astack_authorize(engine, acct_admin, "admin", &d), ASTACK_OK);
  CHECK_RESULT(astack_key_create(engine, acct_admin_id, "{\"account_id\":\"other\",\"scopes\":[\"users:read\"]}", &out),
               ASTACK_FORBIDDEN);
  check_error_body(out, "forbidden");
  drop(&out);
  CHECK_RESULT(astack_key_get(engine, acct_admin_id, id, &out), ASTACK_NOT_FOUND);
  drop(&out);
  CHECK_RESULT(astack_key_revoke(engine, acct_admin_id, admin_id, &out), ASTACK_NOT_FOUND);
  drop(&out);
  /* A key without admin:all may not manage keys. */
  CHECK_RESULT(astack_key_list(engine, id, 0, &out), ASTACK_INSUFFICIENT_SCOPE);
  check_error_body(out, "insufficient_scope");
  drop(&out);

  /* NULLs, unknown ids, bad UTF-8 everywhere. */
  CHECK_RESULT(astack_key_create(NULL, admin_id, "{}", &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_key_create(engine, NULL, "{}", &out), ASTACK_NULL_ARGUMENT);
  CHECK(contains(out, "\"argument\":\"key_id\""));
  drop(&out);
  CHECK_RESULT(astack_key_create(engine, admin_id, NULL, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_key_create(engine, admin_id, "{}", NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_key_create(engine, "key_unknown", "{}", &out), ASTACK_NOT_FOUND);
  drop(&out);
  CHECK_RESULT(astack_key_create(engine, BAD_UTF8, "{}", &out), ASTACK_INVALID_UTF8);
  drop(&out);
  CHECK_RESULT(astack_key_list(NULL, admin_id, 0, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_key_list(engine, NULL, 0, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_key_list(engine, admin_id, 0, NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_key_get(engine, admin_id, NULL, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_key_get(engine, admin_id, "key_nope", &out), ASTACK_NOT_FOUND);
  check_error_body(out, "not_found");
  drop(&out);
  CHECK_RESULT(astack_key_get(engine, admin_id, BAD_UTF8, &out), ASTACK_INVALID_UTF8);
  drop(&out);
  CHECK_RESULT(astack_key_get(NULL, admin_id, id, NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_key_revoke(engine, admin_id, NULL, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_key_revoke(NULL, admin_id, id, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_key_revoke(engine, admin_id, id, NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_key_rotate(engine, admin_id, NULL, 0, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_key_rotate(engine, NULL, id, 0, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_key_rotate(engine, admin_id, id, 0, NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_key_rotate(engine, admin_id, "key_nope", 0, &out), ASTACK_NOT_FOUND);
  drop(&out);
}

static void test_sessions_tokens_workers(void) {
  char *out = NULL;
  char app[64], app_id[ASTACK_KEY_ID_SIZE], worker[64], worker_id[ASTACK_KEY_ID_SIZE];
  char sess[64], token[1024], token2[1024], sess2[64], node[64];
  uint32_t slots = 99;
  uint64_t expired = 99;
  astack_decision d;

  create_key("{\"account_id\":\"acme\",\"scopes\":[\"sessions:write\",\"sessions:read\"],"
             "\"limits\":{\"concurrent_sessions\":2}}",
             app, app_id);
  create_key("{\"scopes\":[\"workers:write\",\"workers:read\"]}", worker, worker_id);
  CHECK_RESULT(authorize(app, "session.create", NULL), ASTACK_OK);
  CHECK_RESULT(authorize(worker, "worker.write", NULL), ASTACK_OK);

  /* Workers: the operator's worker key registers two. */
  CHECK_RESULT(astack_worker_register(engine, worker_id, "{\"node_id\":\"w1\",\"url\":\"wss://w1.example\",\"capacity\":5}", &out),
               ASTACK_OK);
  CHECK(contains(out, "\"node_id\":\"w1\""));
  drop(&out);
  CHECK_RESULT(astack_worker_register(engine, worker_id, "{\"node_id\":\"w1\",\"url\":\"wss://w1.example\",\"capacity\":5}", &out),
               ASTACK_ALREADY_EXISTS);
  check_error_body(out, "already_exists");
  drop(&out);
  CHECK_RESULT(astack_worker_register(engine, worker_id, "{\"node_id\":\"w2\",\"url\":\"ftp://x\",\"capacity\":5}", &out),
               ASTACK_INVALID_REQUEST);
  CHECK(contains(out, "\"field\":\"url\""));
  drop(&out);
  CHECK_RESULT(astack_worker_register(engine, app_id, "{\"node_id\":\"w3\",\"url\":\"ws://x\",\"capacity\":5}", &out),
               ASTACK_INSUFFICIENT_SCOPE);
  drop(&out);
  CHECK_RESULT(astack_worker_update(engine, worker_id, "w1", "{\"capacity\":7}", &out), ASTACK_OK);
  CHECK(contains(out, "\"capacity\":7"));
  drop(&out);
  CHECK_RESULT(astack_worker_update(engine, worker_id, "nope", "{\"capacity\":7}", &out), ASTACK_NOT_FOUND);
  drop(&out);
  CHECK_RESULT(astack_worker_update(engine, worker_id, "w1", "{\"capacity\":0}", &out), ASTACK_INVALID_REQUEST);
  drop(&out);
  CHECK_RESULT(astack_worker_update(engine, worker_id, "w1", "{\"capacity\":\"big\"}", &out), ASTACK_INVALID_REQUEST);
  drop(&out);
  CHECK_RESULT(astack_worker_update(engine, worker_id, NULL, "{}", &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_worker_update(engine, worker_id, "w1", NULL, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_worker_update(engine, worker_id, "w1", "{}", NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_worker_register(engine, worker_id, NULL, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_worker_register(NULL, worker_id, "{}", &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_worker_register(engine, worker_id, "{}", NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_worker_list(engine, worker_id, &out), ASTACK_OK);
  CHECK(contains(out, "\"active_sessions\":0"));
  drop(&out);
  CHECK_RESULT(astack_worker_list(engine, app_id, &out), ASTACK_INSUFFICIENT_SCOPE);
  drop(&out);
  CHECK_RESULT(astack_worker_list(NULL, worker_id, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_worker_list(engine, worker_id, NULL), ASTACK_NULL_ARGUMENT);

  /* Create a session and read it. */
  CHECK_RESULT(astack_session_create(engine, app_id, "{\"end_user_id\":\"user-42\",\"features\":[\"vision\"],"
                                     "\"quality\":\"high\",\"metadata\":{\"room\":\"a\"}}",
                                     &out),
               ASTACK_OK);
  CHECK(json_string(out, "id", sess, sizeof sess));
  CHECK(json_string(out, "session_token", token, sizeof token));
  CHECK(json_string(out, "node_id", node, sizeof node) && strcmp(node, "w1") == 0);
  CHECK(contains(out, "\"status\":\"PENDING\""));
  drop(&out);
  CHECK_RESULT(astack_session_get(engine, app_id, sess, &out), ASTACK_OK);
  CHECK(contains(out, "\"end_user_id\":\"user-42\"") && !contains(out, "session_token"));
  drop(&out);
  CHECK_RESULT(astack_session_list(engine, app_id, 10, &out), ASTACK_OK);
  CHECK(contains(out, sess));
  drop(&out);
  CHECK_RESULT(astack_session_slots_in_use(engine, app_id, &slots), ASTACK_OK);
  CHECK(slots == 1);
  CHECK_RESULT(astack_session_slots_in_use(engine, "key_unknown", &slots), ASTACK_OK);
  CHECK(slots == 0);

  /* Tokens: issue and verify. */
  CHECK_RESULT(astack_token_issue(engine, app_id, sess, &out), ASTACK_OK);
  CHECK(json_string(out, "session_token", token2, sizeof token2));
  drop(&out);
  CHECK_RESULT(astack_token_verify(engine, token2, "w1", sess, &out), ASTACK_OK);
  CHECK(contains(out, "\"iss\":\"astack\"") && contains(out, "\"aud\":\"w1\"") && contains(out, "\"acc\":\"acme\""));
  drop(&out);
  CHECK_RESULT(astack_token_verify(engine, token2, NULL, NULL, &out), ASTACK_OK);
  drop(&out);
  CHECK_RESULT(astack_token_verify(engine, token2, "w2", NULL, &out), ASTACK_INVALID_TOKEN);
  CHECK(contains(out, "\"reason\":\"wrong_audience\""));
  drop(&out);
  CHECK_RESULT(astack_token_verify(engine, token2, NULL, "sess_other", &out), ASTACK_INVALID_TOKEN);
  CHECK(contains(out, "\"reason\":\"wrong_session\""));
  drop(&out);
  CHECK_RESULT(astack_token_verify(engine, "not.a.token", NULL, NULL, &out), ASTACK_INVALID_TOKEN);
  CHECK(contains(out, "\"reason\":\"malformed\""));
  CHECK(!contains(out, "not.a.token")); /* no token in an error */
  drop(&out);
  CHECK_RESULT(astack_token_verify(engine, NULL, NULL, NULL, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_token_verify(engine, BAD_UTF8, NULL, NULL, &out), ASTACK_INVALID_UTF8);
  drop(&out);
  CHECK_RESULT(astack_token_verify(engine, token2, BAD_UTF8, NULL, &out), ASTACK_INVALID_UTF8);
  drop(&out);
  CHECK_RESULT(astack_token_verify(NULL, token2, NULL, NULL, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_token_verify(engine, token2, NULL, NULL, NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_token_issue(engine, app_id, "sess_nope", &out), ASTACK_NOT_FOUND);
  drop(&out);
  CHECK_RESULT(astack_token_issue(engine, worker_id, sess, &out), ASTACK_INSUFFICIENT_SCOPE);
  drop(&out);
  CHECK_RESULT(astack_token_issue(engine, app_id, NULL, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_token_issue(NULL, app_id, sess, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_token_issue(engine, app_id, sess, NULL), ASTACK_NULL_ARGUMENT);

  /* Connect as a worker: once. */
  CHECK_RESULT(astack_session_connect(engine, worker_id, sess, "garbage", &out), ASTACK_INVALID_TOKEN);
  drop(&out);
  CHECK_RESULT(astack_session_connect(engine, app_id, sess, token, &out), ASTACK_INSUFFICIENT_SCOPE);
  drop(&out);
  CHECK_RESULT(astack_session_connect(engine, worker_id, sess, token, &out), ASTACK_OK);
  CHECK(contains(out, "\"status\":\"ACTIVE\""));
  drop(&out);
  CHECK_RESULT(astack_session_connect(engine, worker_id, sess, token, &out), ASTACK_INVALID_TRANSITION);
  check_error_body(out, "invalid_transition");
  drop(&out);
  CHECK_RESULT(astack_session_connect(engine, worker_id, sess, NULL, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_session_connect(engine, worker_id, NULL, token, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_session_connect(engine, NULL, sess, token, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_session_connect(NULL, worker_id, sess, token, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_session_connect(engine, worker_id, sess, token, NULL), ASTACK_NULL_ARGUMENT);

  /* End it: COMPLETED, then final. */
  CHECK_RESULT(astack_clock_advance(engine, 30000), ASTACK_OK);
  CHECK_RESULT(astack_session_end(engine, worker_id, sess, "{\"outcome\":\"exploded\"}", &out), ASTACK_INVALID_REQUEST);
  drop(&out);
  CHECK_RESULT(astack_session_end(engine, worker_id, sess, "{\"outcome\":\"completed\"}", &out), ASTACK_OK);
  CHECK(contains(out, "\"status\":\"COMPLETED\""));
  drop(&out);
  CHECK_RESULT(astack_session_end(engine, worker_id, sess, "{\"outcome\":\"failed\",\"reason\":\"x\"}", &out),
               ASTACK_INVALID_TRANSITION);
  drop(&out);
  CHECK_RESULT(astack_session_end(engine, worker_id, sess, NULL, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_session_end(engine, worker_id, NULL, "{}", &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_session_end(NULL, worker_id, sess, "{}", &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_session_end(engine, worker_id, sess, "{}", NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_token_issue(engine, app_id, sess, &out), ASTACK_INVALID_TRANSITION);
  drop(&out);
  CHECK_RESULT(astack_session_terminate(engine, app_id, sess, &out), ASTACK_OK); /* unchanged */
  CHECK(contains(out, "\"status\":\"COMPLETED\""));
  drop(&out);

  /* Concurrent-session limit 2; terminate releases a slot at once. */
  CHECK_RESULT(astack_session_create(engine, app_id, "{\"end_user_id\":\"u1\"}", &out), ASTACK_OK);
  CHECK(json_string(out, "id", sess2, sizeof sess2));
  drop(&out);
  CHECK_RESULT(astack_session_create(engine, app_id, "{\"end_user_id\":\"u2\",\"connection_type\":\"webrtc\"}", &out),
               ASTACK_OK);
  drop(&out);
  CHECK_RESULT(astack_authorize(engine, app, "session.create", &d), ASTACK_CONCURRENT_SESSION_LIMIT);
  CHECK(d.concurrent_sessions == 2);
  CHECK_RESULT(astack_session_create(engine, app_id, "{\"end_user_id\":\"u3\"}", &out), ASTACK_CONCURRENT_SESSION_LIMIT);
  check_error_body(out, "concurrent_session_limit");
  drop(&out);
  CHECK_RESULT(astack_session_terminate(engine, app_id, sess2, &out), ASTACK_OK);
  CHECK(contains(out, "\"status\":\"COMPLETED\""));
  drop(&out);
  CHECK_RESULT(astack_session_slots_in_use(engine, app_id, &slots), ASTACK_OK);
  CHECK(slots == 1);

  /* Expiry by the clock and the sweep. */
  CHECK_RESULT(astack_clock_advance(engine, 301000), ASTACK_OK);
  CHECK_RESULT(astack_session_sweep(engine, &expired), ASTACK_OK);
  CHECK(expired == 1);
  CHECK_RESULT(astack_session_sweep(engine, NULL), ASTACK_OK);
  CHECK_RESULT(astack_session_sweep(NULL, &expired), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_session_slots_in_use(engine, app_id, &slots), ASTACK_OK);
  CHECK(slots == 0);
  /* Nothing held back in memory: a flush is a no-op, and NULL is refused. */
  CHECK_RESULT(astack_engine_flush(engine), ASTACK_OK);
  CHECK_RESULT(astack_engine_flush(NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_session_list(engine, app_id, 0, &out), ASTACK_OK);
  CHECK(contains(out, "\"status\":\"EXPIRED\""));
  drop(&out);

  /* Bad session requests. */
  CHECK_RESULT(astack_session_create(engine, app_id, "{}", &out), ASTACK_INVALID_REQUEST);
  CHECK(contains(out, "end_user_id"));
  drop(&out);
  CHECK_RESULT(astack_session_create(engine, app_id, "{\"end_user_id\":\"u\",\"features\":[\"teleport\"]}", &out),
               ASTACK_INVALID_REQUEST);
  CHECK(contains(out, "\"field\":\"features[0]\""));
  drop(&out);
  CHECK_RESULT(astack_session_create(engine, app_id, "{\"end_user_id\":\"u\",\"quality\":7}", &out), ASTACK_INVALID_REQUEST);
  drop(&out);
  CHECK_RESULT(astack_session_create(engine, app_id, "{\"end_user_id\":\"u\"", &out), ASTACK_INVALID_REQUEST);
  drop(&out);
  CHECK_RESULT(astack_session_create(engine, app_id, BAD_UTF8, &out), ASTACK_INVALID_UTF8);
  drop(&out);
  CHECK_RESULT(astack_session_create(engine, worker_id, "{\"end_user_id\":\"u\"}", &out), ASTACK_INSUFFICIENT_SCOPE);
  drop(&out);
  CHECK_RESULT(astack_session_create(engine, app_id, NULL, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_session_create(NULL, app_id, "{}", &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_session_create(engine, app_id, "{}", NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_session_get(engine, app_id, "sess_nope", &out), ASTACK_NOT_FOUND);
  drop(&out);
  CHECK_RESULT(astack_session_get(engine, admin_id, sess, &out), ASTACK_NOT_FOUND); /* another account */
  drop(&out);
  CHECK_RESULT(astack_session_get(engine, app_id, NULL, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_session_get(NULL, app_id, sess, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_session_get(engine, app_id, sess, NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_session_list(engine, app_id, 5000, &out), ASTACK_INVALID_REQUEST);
  drop(&out);
  CHECK_RESULT(astack_session_list(NULL, app_id, 0, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_session_list(engine, app_id, 0, NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_session_terminate(engine, app_id, "sess_nope", &out), ASTACK_NOT_FOUND);
  drop(&out);
  CHECK_RESULT(astack_session_terminate(engine, app_id, NULL, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_session_terminate(NULL, app_id, sess, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_session_terminate(engine, app_id, sess, NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_session_slots_in_use(NULL, app_id, &slots), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_session_slots_in_use(engine, NULL, &slots), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_session_slots_in_use(engine, BAD_UTF8, &slots), ASTACK_INVALID_UTF8);
  CHECK_RESULT(astack_session_slots_in_use(engine, app_id, NULL), ASTACK_NULL_ARGUMENT);

  /* No worker with room: draining both. */
  CHECK_RESULT(astack_worker_update(engine, worker_id, "w1", "{\"draining\":true}", &out), ASTACK_OK);
  drop(&out);
  CHECK_RESULT(astack_session_create(engine, app_id, "{\"end_user_id\":\"u9\"}", &out), ASTACK_NO_WORKER_AVAILABLE);
  check_error_body(out, "no_worker_available");
  drop(&out);
  CHECK_RESULT(astack_worker_update(engine, worker_id, "w1", "{\"draining\":false}", &out), ASTACK_OK);
  drop(&out);
}

static void test_users_usage_audit(void) {
  char *out = NULL;
  char key[64], id[ASTACK_KEY_ID_SIZE], user[64];
  unsigned long long total = 0;

  create_key("{\"account_id\":\"acme\",\"scopes\":[\"users:read\",\"users:write\",\"billing:read\",\"billing:write\"]}",
             key, id);
  CHECK_RESULT(authorize(key, "user.write", NULL), ASTACK_OK);

  CHECK_RESULT(astack_user_create(engine, id, "{\"name\":\"Ada\",\"email\":\"ada@example.com\"}", &out), ASTACK_OK);
  CHECK(json_string(out, "id", user, sizeof user));
  drop(&out);
  CHECK_RESULT(astack_user_create(engine, id, "{\"name\":\"\"}", &out), ASTACK_INVALID_REQUEST);
  drop(&out);
  CHECK_RESULT(astack_user_create(engine, id, "{\"name\":\"B\",\"email\":\"nope\"}", &out), ASTACK_INVALID_REQUEST);
  CHECK(contains(out, "\"field\":\"email\""));
  drop(&out);
  CHECK_RESULT(astack_user_get(engine, id, user, &out), ASTACK_OK);
  CHECK(contains(out, "\"name\":\"Ada\""));
  drop(&out);
  CHECK_RESULT(astack_user_get(engine, admin_id, user, &out), ASTACK_NOT_FOUND); /* another account */
  drop(&out);
  CHECK_RESULT(astack_user_update(engine, id, user, "{\"name\":\"Ada L.\",\"email\":null}", &out), ASTACK_OK);
  CHECK(contains(out, "\"name\":\"Ada L.\"") && contains(out, "\"email\":null"));
  drop(&out);
  CHECK_RESULT(astack_user_update(engine, id, user, "{\"age\":3}", &out), ASTACK_INVALID_REQUEST);
  drop(&out);
  CHECK_RESULT(astack_user_list(engine, id, 0, &out), ASTACK_OK);
  CHECK(contains(out, user));
  drop(&out);
  CHECK_RESULT(astack_user_delete(engine, id, user, &out), ASTACK_OK);
  drop(&out);
  CHECK_RESULT(astack_user_delete(engine, id, user, &out), ASTACK_NOT_FOUND);
  drop(&out);
  CHECK_RESULT(astack_user_get(engine, id, user, &out), ASTACK_NOT_FOUND);
  drop(&out);
  CHECK_RESULT(astack_user_create(NULL, id, "{}", &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_user_create(engine, id, NULL, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_user_create(engine, id, "{}", NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_user_get(engine, id, NULL, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_user_get(engine, id, user, NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_user_list(engine, NULL, 0, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_user_list(engine, id, 0, NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_user_update(engine, id, NULL, "{}", &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_user_update(engine, id, user, NULL, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_user_update(engine, id, user, BAD_UTF8, &out), ASTACK_INVALID_UTF8);
  drop(&out);
  CHECK_RESULT(astack_user_update(engine, id, user, "{}", NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_user_delete(engine, id, NULL, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_user_delete(NULL, id, user, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_user_delete(engine, id, user, NULL), ASTACK_NULL_ARGUMENT);

  /* Usage: idempotent records and an alert that fires once. */
  CHECK_RESULT(astack_alert_create(engine, id, "{\"metric\":\"minutes\",\"threshold\":10}", &out), ASTACK_OK);
  CHECK(contains(out, "\"fired_at\":null"));
  drop(&out);
  CHECK_RESULT(astack_alert_create(engine, id, "{\"metric\":\"minutes\",\"threshold\":0}", &out), ASTACK_INVALID_REQUEST);
  drop(&out);
  CHECK_RESULT(astack_usage_record(engine, id, "{\"metric\":\"minutes\",\"quantity\":6,\"idempotency_key\":\"a\"}", &out),
               ASTACK_OK);
  CHECK(contains(out, "\"counted\":true"));
  drop(&out);
  CHECK_RESULT(astack_usage_record(engine, id, "{\"metric\":\"minutes\",\"quantity\":6,\"idempotency_key\":\"a\"}", &out),
               ASTACK_OK);
  CHECK(contains(out, "\"counted\":false"));
  CHECK(json_u64(out, "total", &total) && total == 6);
  drop(&out);
  CHECK_RESULT(astack_usage_record(engine, id, "{\"metric\":\"minutes\",\"quantity\":4}", &out), ASTACK_OK);
  CHECK(json_u64(out, "total", &total) && total == 10);
  drop(&out);
  CHECK_RESULT(astack_usage_record(engine, id, "{\"metric\":\"requests\",\"quantity\":4}", &out), ASTACK_INVALID_REQUEST);
  drop(&out);
  CHECK_RESULT(astack_usage_record(engine, id, "{\"metric\":\"m\",\"quantity\":-1}", &out), ASTACK_INVALID_REQUEST);
  drop(&out);
  CHECK_RESULT(astack_alert_list(engine, id, &out), ASTACK_OK);
  CHECK(contains(out, "\"metric\":\"minutes\"") && !contains(out, "\"fired_at\":null"));
  drop(&out);
  CHECK_RESULT(astack_usage_get(engine, id, &out), ASTACK_OK);
  CHECK(contains(out, "\"account_id\":\"acme\"") && contains(out, "\"minutes\":10"));
  CHECK(json_u64(out, "requests", &total) && total >= 1);
  CHECK(json_u64(out, "session_seconds", &total) && total == 30);
  drop(&out);
  CHECK_RESULT(astack_usage_get(engine, admin_id, &out), ASTACK_OK); /* admin:all reads its own */
  CHECK(contains(out, "\"account_id\":\"default\""));
  drop(&out);
  CHECK_RESULT(astack_usage_record(NULL, id, "{}", &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_usage_record(engine, id, NULL, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_usage_record(engine, id, "{}", NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_usage_get(engine, NULL, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_usage_get(engine, id, NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_alert_create(engine, id, NULL, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_alert_create(engine, id, "{}", NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_alert_list(NULL, id, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_alert_list(engine, id, NULL), ASTACK_NULL_ARGUMENT);

  /* Audit and metrics (admin). */
  CHECK_RESULT(astack_audit_list(engine, admin_id, 1000, &out), ASTACK_OK);
  CHECK(contains(out, "\"action\":\"key.created\"") && contains(out, "\"action\":\"session.connected\""));
  CHECK(contains(out, "\"action\":\"request.denied\"") && contains(out, "\"action\":\"user.deleted\""));
  CHECK(!contains(out, admin_key)); /* never a key */
  drop(&out);
  CHECK_RESULT(astack_audit_list(engine, id, 0, &out), ASTACK_INSUFFICIENT_SCOPE);
  drop(&out);
  CHECK_RESULT(astack_audit_list(engine, admin_id, 1001, &out), ASTACK_INVALID_REQUEST);
  drop(&out);
  CHECK_RESULT(astack_audit_list(NULL, admin_id, 0, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_audit_list(engine, admin_id, 0, NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_metrics(engine, admin_id, &out), ASTACK_OK);
  CHECK(contains(out, "\"COMPLETED\":2") && contains(out, "\"EXPIRED\":1") && contains(out, "\"workers\":1"));
  drop(&out);
  CHECK_RESULT(astack_metrics(engine, id, &out), ASTACK_INSUFFICIENT_SCOPE);
  drop(&out);
  CHECK_RESULT(astack_metrics(engine, NULL, &out), ASTACK_NULL_ARGUMENT);
  drop(&out);
  CHECK_RESULT(astack_metrics(engine, admin_id, NULL), ASTACK_NULL_ARGUMENT);
}

static void test_limiter(void) {
  astack_limiter *limiter = (astack_limiter *)&limiter;
  astack_decision d;
  char *err = NULL, *policy = NULL, *ratelimit = NULL;
  uint64_t remaining = 9;
  int i;

  CHECK_RESULT(astack_limiter_new("[]", &limiter, &err), ASTACK_INVALID_REQUEST);
  CHECK(limiter == NULL);
  check_error_body(err, "invalid_request");
  drop(&err);
  CHECK_RESULT(astack_limiter_new("[{\"name\":\"second\",\"limit\":0,\"period_seconds\":1}]", &limiter, &err),
               ASTACK_INVALID_REQUEST);
  CHECK(contains(err, "\"field\":\"[0].limit\""));
  drop(&err);
  CHECK_RESULT(astack_limiter_new("[{\"name\":\"a b\",\"limit\":1,\"period_seconds\":1}]", &limiter, NULL),
               ASTACK_INVALID_REQUEST);
  CHECK_RESULT(astack_limiter_new("{oops", &limiter, &err), ASTACK_INVALID_REQUEST);
  drop(&err);
  CHECK_RESULT(astack_limiter_new(BAD_UTF8, &limiter, &err), ASTACK_INVALID_UTF8);
  drop(&err);
  CHECK_RESULT(astack_limiter_new(NULL, &limiter, &err), ASTACK_NULL_ARGUMENT);
  drop(&err);
  CHECK_RESULT(astack_limiter_new("[]", NULL, &err), ASTACK_NULL_ARGUMENT);
  drop(&err);

  CHECK_RESULT(astack_limiter_new("[{\"name\":\"second\",\"limit\":2,\"period_seconds\":1},"
                                  "{\"name\":\"minute\",\"limit\":3,\"period_seconds\":60}]",
                                  &limiter, &err),
               ASTACK_OK);
  CHECK(limiter != NULL && err == NULL);
  CHECK_RESULT(astack_limiter_check(limiter, "10.0.0.1", T0, &d), ASTACK_OK);
  CHECK(d.remaining == 1 && d.limit == 2);
  CHECK_RESULT(astack_limiter_headers(limiter, &d, &policy, &ratelimit), ASTACK_OK);
  CHECK(policy && strcmp(policy, "\"second\";q=2;w=1, \"minute\";q=3;w=60") == 0);
  drop(&policy);
  drop(&ratelimit);
  CHECK_RESULT(astack_limiter_check(limiter, "10.0.0.1", T0, &d), ASTACK_OK);
  CHECK_RESULT(astack_limiter_check(limiter, "10.0.0.1", T0, &d), ASTACK_RATE_LIMITED);
  CHECK(d.retry_after == 1);
  CHECK_RESULT(astack_limiter_check(limiter, "10.0.0.1", T0 + 1000, &d), ASTACK_OK);
  CHECK(d.window == 1 && d.remaining == 0); /* the minute window is now the tightest */
  for (i = 0; i < 3; i++) CHECK_RESULT(astack_limiter_check(limiter, "10.0.0.1", T0 + 2000 + i, &d), ASTACK_RATE_LIMITED);
  CHECK_RESULT(astack_limiter_check(limiter, "10.0.0.2", T0, &d), ASTACK_OK); /* keys are independent */
  CHECK_RESULT(astack_limiter_sweep(limiter, T0, &remaining), ASTACK_OK);
  CHECK(remaining == 2);
  CHECK_RESULT(astack_limiter_sweep(limiter, T0 + 3600000, &remaining), ASTACK_OK);
  CHECK(remaining == 0);
  CHECK_RESULT(astack_limiter_sweep(limiter, T0, NULL), ASTACK_OK);
  CHECK_RESULT(astack_limiter_sweep(NULL, T0, &remaining), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_limiter_check(limiter, NULL, T0, &d), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_limiter_check(limiter, BAD_UTF8, T0, &d), ASTACK_INVALID_UTF8);
  CHECK_RESULT(astack_limiter_check(limiter, "k", T0, NULL), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_limiter_check(NULL, "k", T0, &d), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_limiter_headers(NULL, &d, &policy, &ratelimit), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_limiter_headers(limiter, NULL, &policy, &ratelimit), ASTACK_NULL_ARGUMENT);
  CHECK_RESULT(astack_limiter_headers(limiter, &d, NULL, &ratelimit), ASTACK_NULL_ARGUMENT);
  memset(&d, 0xFF, sizeof d); /* garbage in, no undefined behaviour */
  CHECK_RESULT(astack_limiter_headers(limiter, &d, &policy, &ratelimit), ASTACK_OK);
  drop(&policy);
  drop(&ratelimit);
  astack_limiter_free(limiter);
  astack_limiter_free(NULL);
}

int main(void) {
  test_codes_and_version();
  test_engine_and_config();
  test_bootstrap();
  test_authorize();
  test_keys();
  test_sessions_tokens_workers();
  test_users_usage_audit();
  test_limiter();
  astack_engine_free(engine);
  return check_finish("test_abi");
}
