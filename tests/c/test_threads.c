/* One engine, many pthreads at once: the limits stay exact (no token lost or taken twice, no
 * session slot over-granted) and the cold paths are safe in parallel. Ends with
 * "test_threads: N passed, N failed". */
#include <pthread.h>

#include "check.h"

#define THREADS 8
#define ATTEMPTS 100
#define PER_MINUTE 500 /* < THREADS * ATTEMPTS: some must be refused */
#define SLOTS 7

static astack_engine *engine;
static char admin_id[ASTACK_KEY_ID_SIZE];
static char reader_key[64];
static char app_key[64];
static char app_id[ASTACK_KEY_ID_SIZE];

struct tally {
  int allowed;
  int limited;
  int other;
  int sessions;
  int slot_refusals;
  int users;
  int json_errors;
};

static struct tally tallies[THREADS];

static void *hammer_authorize(void *arg) {
  struct tally *t = (struct tally *)arg;
  astack_decision d;
  int i;
  for (i = 0; i < ATTEMPTS; i++) {
    astack_result r = astack_authorize(engine, reader_key, "session.read", &d);
    if (r == ASTACK_OK) t->allowed++;
    else if (r == ASTACK_RATE_LIMITED && d.retry_after >= 1) t->limited++;
    else t->other++;
  }
  return NULL;
}

static void *race_sessions(void *arg) {
  struct tally *t = (struct tally *)arg;
  astack_decision d;
  char *out = NULL;
  int i;
  for (i = 0; i < 5; i++) {
    astack_result r = astack_authorize(engine, app_key, "session.create", &d);
    if (r == ASTACK_CONCURRENT_SESSION_LIMIT) {
      t->slot_refusals++;
      continue;
    }
    if (r != ASTACK_OK) {
      t->other++;
      continue;
    }
    r = astack_session_create(engine, d.key_id, "{\"end_user_id\":\"racer\"}", &out);
    if (r == ASTACK_OK) t->sessions++;
    else if (r == ASTACK_CONCURRENT_SESSION_LIMIT) t->slot_refusals++;
    else t->other++;
    if (out == NULL || (r != ASTACK_OK && !contains(out, "\"error\""))) t->json_errors++;
    astack_string_free(out);
    out = NULL;
  }
  return NULL;
}

static void *busy_cold_paths(void *arg) {
  struct tally *t = (struct tally *)arg;
  char *out = NULL;
  uint64_t now = 0;
  int i;
  for (i = 0; i < 20; i++) {
    if (astack_user_create(engine, admin_id, "{\"name\":\"parallel\"}", &out) == ASTACK_OK) t->users++;
    astack_string_free(out);
    if (astack_session_list(engine, admin_id, 5, &out) != ASTACK_OK) t->other++;
    astack_string_free(out);
    if (astack_audit_list(engine, admin_id, 5, &out) != ASTACK_OK) t->other++;
    astack_string_free(out);
    if (astack_key_create(engine, admin_id, "{\"nope\":true}", &out) != ASTACK_INVALID_REQUEST) t->other++;
    astack_string_free(out);
    if (astack_clock_now(engine, &now) != ASTACK_OK) t->other++;
    if (astack_clock_advance(engine, 1) != ASTACK_OK) t->other++;
    if (astack_session_sweep(engine, NULL) != ASTACK_OK) t->other++;
    out = NULL;
  }
  return NULL;
}

static void run(void *(*body)(void *)) {
  pthread_t threads[THREADS];
  int i;
  memset(tallies, 0, sizeof tallies);
  for (i = 0; i < THREADS; i++) CHECK(pthread_create(&threads[i], NULL, body, &tallies[i]) == 0);
  for (i = 0; i < THREADS; i++) CHECK(pthread_join(threads[i], NULL) == 0);
}

static void make_key(const char *request, char *key, char *id) {
  char *out = NULL;
  CHECK_RESULT(astack_key_create(engine, admin_id, request, &out), ASTACK_OK);
  CHECK(json_string(out, "key", key, 64));
  if (id != NULL) CHECK(json_string(out, "id", id, ASTACK_KEY_ID_SIZE));
  astack_string_free(out);
}

int main(void) {
  char admin_key[64];
  char *out = NULL;
  astack_decision d;
  struct tally sum;
  uint32_t slots = 0;
  int i;

  CHECK_RESULT(astack_engine_new_with_manual_clock(NULL, 1700000000000ULL, &engine), ASTACK_OK);
  CHECK_RESULT(astack_bootstrap_admin_key(engine, NULL, &out), ASTACK_OK);
  CHECK(json_string(out, "key", admin_key, sizeof admin_key));
  astack_string_free(out);
  CHECK_RESULT(astack_authorize(engine, admin_key, "admin", &d), ASTACK_OK);
  strcpy(admin_id, d.key_id);

  /* 1. Exactly PER_MINUTE of THREADS * ATTEMPTS requests pass, at a frozen clock. */
  make_key("{\"scopes\":[\"sessions:read\"],\"limits\":{\"requests_per_minute\":500,\"requests_per_hour\":100000}}",
           reader_key, NULL);
  run(hammer_authorize);
  memset(&sum, 0, sizeof sum);
  for (i = 0; i < THREADS; i++) {
    sum.allowed += tallies[i].allowed;
    sum.limited += tallies[i].limited;
    sum.other += tallies[i].other;
  }
  CHECK(sum.allowed == PER_MINUTE);
  CHECK(sum.limited == THREADS * ATTEMPTS - PER_MINUTE);
  CHECK(sum.other == 0);
  if (sum.allowed != PER_MINUTE) fprintf(stderr, "allowed %d limited %d other %d\n", sum.allowed, sum.limited, sum.other);

  /* 2. Exactly SLOTS sessions are granted to racing threads. */
  make_key("{\"scopes\":[\"sessions:write\"],\"limits\":{\"concurrent_sessions\":7}}", app_key, app_id);
  run(race_sessions);
  memset(&sum, 0, sizeof sum);
  for (i = 0; i < THREADS; i++) {
    sum.sessions += tallies[i].sessions;
    sum.slot_refusals += tallies[i].slot_refusals;
    sum.other += tallies[i].other;
    sum.json_errors += tallies[i].json_errors;
  }
  CHECK(sum.sessions == SLOTS);
  CHECK(sum.sessions + sum.slot_refusals == THREADS * 5);
  CHECK(sum.other == 0 && sum.json_errors == 0);
  CHECK_RESULT(astack_session_slots_in_use(engine, app_id, &slots), ASTACK_OK);
  CHECK(slots == SLOTS);

  /* 3. Cold paths and the clock in parallel, while another thread moves the clock. */
  run(busy_cold_paths);
  memset(&sum, 0, sizeof sum);
  for (i = 0; i < THREADS; i++) {
    sum.users += tallies[i].users;
    sum.other += tallies[i].other;
  }
  CHECK(sum.users == THREADS * 20);
  CHECK(sum.other == 0);
  CHECK_RESULT(astack_user_list(engine, admin_id, 1000, &out), ASTACK_OK);
  {
    int count = 0;
    const char *p = out;
    while ((p = strstr(p, "\"name\":\"parallel\"")) != NULL) {
      count++;
      p++;
    }
    CHECK(count == THREADS * 20);
  }
  astack_string_free(out);

  astack_engine_free(engine);
  return check_finish("test_threads");
}
