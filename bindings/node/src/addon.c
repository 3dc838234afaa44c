/* The native part of the `astack` npm package: a plain-C N-API addon over the C ABI
 * (include/astack.h), linked with the static library.
 *
 * It stays thin. `NativeEngine` and `NativeLimiter` own one `astack_engine` / `astack_limiter`
 * each (napi_wrap, with a finalizer calling the matching `_free`, and an explicit `close()`);
 * lib/engine.js gives them their Node shape. Cold paths return the library's JSON text as-is
 * and JavaScript parses it. The hot path, `authorize`, reads the key into a stack buffer, fills
 * a stack `astack_decision`, writes its numbers into a Float64Array shared with JavaScript and
 * returns only the ids as one string (or the result number of a denial): JavaScript builds the
 * decision object or the error, which is far cheaper than setting properties through N-API.
 * Every other failure is thrown as the value the JavaScript error factory (lib/engine.js,
 * installed with `setErrorFactory`) makes from the stable code and the error body.
 *
 * `authorizeAsync` and `callAsync` run the same calls on libuv's thread pool and answer with a
 * promise (`engine.promises` in lib/engine.js), for stores that wait on a disk or a network.
 *
 * Per-environment state (the error factory) lives in napi instance data, so
 * the addon also loads in worker threads. */
#define _POSIX_C_SOURCE 200809L /* strnlen */
#define NAPI_VERSION 8
#include <node_api.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <astack.h>

/* ------------------------------------------------------------------------------------------ */
/* Per-environment state. */

typedef struct {
  napi_ref error_factory; /* (code, errorJson, decision) => Error */
} addon_state;

static void state_free(napi_env env, void *data, void *hint) {
  addon_state *state = data;
  (void)hint;
  if (state == NULL) return;
  if (state->error_factory) napi_delete_reference(env, state->error_factory);
  free(state);
}

static addon_state *state_of(napi_env env) {
  void *data = NULL;
  napi_get_instance_data(env, &data);
  return data;
}

static napi_value ref_value(napi_env env, napi_ref ref) {
  napi_value value = NULL;
  napi_get_reference_value(env, ref, &value);
  return value;
}

/* ------------------------------------------------------------------------------------------ */
/* Small helpers. */

#define CHECK_NAPI(call)                                   \
  do {                                                     \
    if ((call) != napi_ok) {                               \
      throw_last_napi_error(env);                          \
      return NULL;                                         \
    }                                                      \
  } while (0)

static void throw_last_napi_error(napi_env env) {
  const napi_extended_error_info *info = NULL;
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  napi_get_last_error_info(env, &info);
  napi_throw_error(env, "ERR_ASTACK_NAPI",
                   info && info->error_message ? info->error_message : "N-API call failed");
}

static napi_value undefined_value(napi_env env) {
  napi_value value = NULL;
  napi_get_undefined(env, &value);
  return value;
}

static napi_value make_string(napi_env env, const char *text) {
  napi_value value = NULL;
  if (text == NULL) {
    napi_get_null(env, &value);
  } else {
    napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &value);
  }
  return value;
}

/* The error the JavaScript factory makes of `code` (a stable snake_case code), the error body
 * `json` (may be NULL) and a decision object (may be NULL); NULL with an exception pending if
 * the factory failed. */
static napi_value astack_error(napi_env env, const char *code, const char *json, napi_value decision) {
  addon_state *state = state_of(env);
  napi_value argv[3], factory, error = NULL, global;
  if (state == NULL || state->error_factory == NULL) {
    napi_value message;
    napi_create_string_utf8(env, json ? json : code, NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, make_string(env, code), message, &error);
    return error;
  }
  factory = ref_value(env, state->error_factory);
  argv[0] = make_string(env, code);
  argv[1] = make_string(env, json);
  if (decision == NULL) napi_get_null(env, &decision);
  argv[2] = decision;
  napi_get_global(env, &global);
  if (napi_call_function(env, global, factory, 3, argv, &error) != napi_ok || error == NULL) {
    throw_last_napi_error(env);
    return NULL;
  }
  return error;
}

/* Throws astack_error(...). Returns NULL so callers can `return throw_astack(...)`. */
static napi_value throw_astack(napi_env env, const char *code, const char *json, napi_value decision) {
  napi_value error = astack_error(env, code, json, decision);
  if (error != NULL) napi_throw(env, error);
  return NULL;
}

static napi_value throw_result(napi_env env, astack_result result, const char *json) {
  return throw_astack(env, astack_result_code(result), json, NULL);
}

static napi_value throw_closed(napi_env env, const char *what) {
  return throw_astack(env, "engine_closed", what, NULL);
}

/* Reads a string argument into a fresh heap buffer (free it with free()). `optional` lets
 * null and undefined through as NULL. A string holding a NUL character is refused, since C
 * would silently cut it there. Returns false with a JavaScript exception pending. */
static bool read_string(napi_env env, napi_value value, const char *name, bool optional, char **out) {
  napi_valuetype type;
  size_t length = 0, copied = 0;
  char *buffer;
  *out = NULL;
  if (napi_typeof(env, value, &type) != napi_ok) {
    throw_last_napi_error(env);
    return false;
  }
  if (optional && (type == napi_undefined || type == napi_null)) return true;
  if (type != napi_string) {
    char message[128];
    snprintf(message, sizeof message, "The \"%s\" argument must be of type string%s", name,
             optional ? " or null" : "");
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
    return false;
  }
  napi_get_value_string_utf8(env, value, NULL, 0, &length);
  buffer = malloc(length + 1);
  if (buffer == NULL) {
    napi_throw_error(env, "ERR_ASTACK_NO_MEMORY", "out of memory");
    return false;
  }
  napi_get_value_string_utf8(env, value, buffer, length + 1, &copied);
  if (strlen(buffer) != copied) {
    char message[128];
    free(buffer);
    snprintf(message, sizeof message, "`%s` must not contain a NUL character", name);
    throw_astack(env, "invalid_argument", message, NULL);
    return false;
  }
  *out = buffer;
  return true;
}

/* Reads a whole number in [0, max] (a JavaScript number, or a bigint). */
static bool read_integer(napi_env env, napi_value value, const char *name, uint64_t max, uint64_t *out) {
  napi_valuetype type;
  *out = 0;
  napi_typeof(env, value, &type);
  if (type == napi_bigint) {
    bool lossless = false;
    uint64_t n = 0;
    int64_t signed_n = 0;
    napi_get_value_bigint_int64(env, value, &signed_n, &lossless);
    if (lossless && signed_n < 0) goto range;
    napi_get_value_bigint_uint64(env, value, &n, &lossless);
    if (!lossless || n > max) goto range;
    *out = n;
    return true;
  }
  if (type == napi_number) {
    double d = 0;
    napi_get_value_double(env, value, &d);
    if (!(d >= 0) || d != (double)(uint64_t)d || d > (double)max) goto range;
    *out = (uint64_t)d;
    return true;
  }
  {
    char message[128];
    snprintf(message, sizeof message, "The \"%s\" argument must be of type number", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
    return false;
  }
range : {
  char message[160];
  snprintf(message, sizeof message, "The value of \"%s\" is out of range: a whole number from 0 to %llu is expected",
           name, (unsigned long long)max);
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
  return false;
}
}

/* Answers a cold path: its JSON text on success, the thrown error otherwise. Frees `json`. */
static napi_value answer_json(napi_env env, astack_result result, char *json) {
  napi_value value = NULL;
  if (result != ASTACK_OK) {
    throw_result(env, result, json);
    astack_string_free(json);
    return NULL;
  }
  value = make_string(env, json);
  astack_string_free(json);
  return value;
}

/* ------------------------------------------------------------------------------------------ */
/* NativeEngine. */

/* Slots of the decision buffer (a Float64Array the engine shares with lib/engine.js). */
enum {
  D_CODE,
  D_WINDOW,
  D_LIMIT,
  D_REMAINING,
  D_RESET,
  D_RETRY_AFTER,
  D_REQUESTS_PER_MINUTE,
  D_REQUESTS_PER_HOUR,
  D_CONCURRENT_SESSIONS,
  D_KEY_ID_LENGTH,
  D_SLOTS
};

/* A NativeEngine. `pending` counts its calls queued or running on libuv's thread pool; each
 * holds a reference to the JavaScript object, so it cannot be collected under them. close()
 * marks the box `closed` at once, and frees the engine then or, while calls are pending, when
 * the last one completes. Both run on the JavaScript thread only. */
typedef struct {
  astack_engine *engine; /* NULL once freed */
  napi_ref decision;     /* the ArrayBuffer behind the decision buffer */
  unsigned pending;
  bool closed;
} engine_box;

static void engine_finalize(napi_env env, void *data, void *hint) {
  engine_box *box = data;
  (void)hint;
  if (box == NULL) return;
  if (box->decision != NULL) napi_delete_reference(env, box->decision);
  /* Calls pending here means the environment is being torn down under them (a collected
   * object has none): leave the engine and the box to the process's exit rather than free
   * them under a thread still running. */
  if (box->pending > 0) return;
  astack_engine_free(box->engine); /* NULL after close(): a no-op */
  free(box);
}

/* The box behind `this` (and `this` itself in `*self` unless `self` is NULL), and up to `max`
 * arguments (missing ones are undefined). */
static engine_box *engine_this(napi_env env, napi_callback_info info, size_t max, napi_value *argv, napi_value *self) {
  napi_value this_value;
  size_t argc = max;
  void *box = NULL;
  if (self == NULL) self = &this_value;
  if (napi_get_cb_info(env, info, &argc, argv, self, NULL) != napi_ok) {
    throw_last_napi_error(env);
    return NULL;
  }
  if (napi_unwrap(env, *self, &box) != napi_ok || box == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_THIS", "not a NativeEngine");
    return NULL;
  }
  return box;
}

/* The live engine behind `this`, or NULL with an exception pending (engine_closed after
 * close()). */
static astack_engine *live_engine(napi_env env, napi_callback_info info, size_t max, napi_value *argv) {
  engine_box *box = engine_this(env, info, max, argv, NULL);
  if (box == NULL) return NULL;
  if (box->closed) {
    throw_closed(env, NULL);
    return NULL;
  }
  return box->engine;
}

/* new NativeEngine(configJson | null, manualClock: boolean, startMs: number) */
static napi_value engine_new(napi_env env, napi_callback_info info) {
  napi_value argv[3], self;
  size_t argc = 3;
  char *config = NULL;
  bool manual = false;
  uint64_t start_ms = 0;
  astack_engine *engine = NULL;
  astack_result result;
  engine_box *box;

  CHECK_NAPI(napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  while (argc < 3) napi_get_undefined(env, &argv[argc++]);
  if (!read_string(env, argv[0], "config", true, &config)) return NULL;
  napi_get_value_bool(env, argv[1], &manual);
  if (manual && !read_integer(env, argv[2], "startMs", UINT64_MAX, &start_ms)) {
    free(config);
    return NULL;
  }
  result = manual ? astack_engine_new_with_manual_clock(config, start_ms, &engine) : astack_engine_new(config, &engine);
  if (result != ASTACK_OK) {
    char *json = NULL;
    if (result == ASTACK_INVALID_CONFIG) astack_config_check(config, &json);
    free(config);
    throw_result(env, result, json);
    astack_string_free(json);
    return NULL;
  }
  free(config);
  box = malloc(sizeof *box);
  if (box == NULL) {
    astack_engine_free(engine);
    napi_throw_error(env, "ERR_ASTACK_NO_MEMORY", "out of memory");
    return NULL;
  }
  box->engine = engine;
  box->decision = NULL;
  box->pending = 0;
  box->closed = false;
  if (napi_wrap(env, self, box, engine_finalize, NULL, NULL) != napi_ok) {
    engine_finalize(env, box, NULL);
    throw_last_napi_error(env);
    return NULL;
  }
  {
    /* The decision buffer: authorize writes the numbers of each decision there, and JavaScript
     * builds the object (far cheaper than setting properties through N-API). */
    napi_value buffer, array;
    void *data = NULL;
    CHECK_NAPI(napi_create_arraybuffer(env, D_SLOTS * sizeof(double), &data, &buffer));
    CHECK_NAPI(napi_create_typedarray(env, napi_float64_array, D_SLOTS, buffer, 0, &array));
    CHECK_NAPI(napi_create_reference(env, buffer, 1, &box->decision));
    CHECK_NAPI(napi_set_named_property(env, self, "decision", array));
  }
  return self;
}

/* Frees the engine of a closed box once no call is pending on it. */
static void engine_release(engine_box *box) {
  if (!box->closed || box->pending > 0) return;
  astack_engine_free(box->engine);
  box->engine = NULL;
}

/* close(): no call may follow; the engine is freed now, or when the last pending call
 * completes. Idempotent. Returns whether this call closed it. */
static napi_value engine_close(napi_env env, napi_callback_info info) {
  engine_box *box = engine_this(env, info, 0, NULL, NULL);
  napi_value closed;
  if (box == NULL) return NULL;
  napi_get_boolean(env, !box->closed, &closed);
  box->closed = true;
  engine_release(box);
  return closed;
}

static napi_value engine_is_closed(napi_env env, napi_callback_info info) {
  engine_box *box = engine_this(env, info, 0, NULL, NULL);
  napi_value closed;
  if (box == NULL) return NULL;
  napi_get_boolean(env, box->closed, &closed);
  return closed;
}

/* Longest key read onto the stack. Keys are 39 characters: anything longer is invalid. */
#define KEY_BUFFER 128

/* Reads authorize's arguments: the key into `key` (a KEY_BUFFER; "-", which no key matches,
 * for a string too long or holding a NUL, "" for null or undefined) and the operation number.
 * Returns false with a JavaScript exception pending. */
static bool read_authorize_args(napi_env env, napi_value *argv, char *key, uint32_t *operation) {
  napi_valuetype type = napi_undefined;
  size_t length = 0;
  key[0] = '\0';
  if (argv[0] != NULL) napi_typeof(env, argv[0], &type);
  if (type == napi_string) {
    napi_get_value_string_utf8(env, argv[0], key, KEY_BUFFER, &length);
    /* Too long to be a key (possibly cut short), or holding a NUL that would cut it short:
     * either way not a key. "-" fails the format check before any lookup. */
    if (length >= KEY_BUFFER - 4 || strlen(key) != length) strcpy(key, "-");
  } else if (type != napi_undefined && type != napi_null) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "The \"apiKey\" argument must be of type string");
    return false;
  }
  if (argv[1] == NULL || napi_get_value_uint32(env, argv[1], operation) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "The \"operation\" argument must be an operation number");
    return false;
  }
  return true;
}

/* authorize's answer: writes the decision's numbers into the D_SLOTS doubles of `slots`, and
 * returns the string keyId + accountId when allowed (split at slot D_KEY_ID_LENGTH), else the
 * result number. NULL with an exception pending. */
static napi_value authorize_answer(napi_env env, astack_result result, const astack_decision *d, double *slots) {
  char ids[ASTACK_KEY_ID_SIZE + ASTACK_ACCOUNT_ID_SIZE];
  size_t key_id_length = result == ASTACK_OK ? strnlen(d->key_id, ASTACK_KEY_ID_SIZE - 1) : 0, account_length;
  napi_value answer;
  slots[D_CODE] = (double)result;
  slots[D_WINDOW] = (double)d->window;
  slots[D_LIMIT] = (double)d->limit;
  slots[D_REMAINING] = (double)d->remaining;
  slots[D_RESET] = (double)d->reset;
  slots[D_RETRY_AFTER] = (double)d->retry_after;
  slots[D_REQUESTS_PER_MINUTE] = (double)d->requests_per_minute;
  slots[D_REQUESTS_PER_HOUR] = (double)d->requests_per_hour;
  slots[D_CONCURRENT_SESSIONS] = (double)d->concurrent_sessions;
  slots[D_KEY_ID_LENGTH] = (double)key_id_length; /* ASCII: UTF-16 length = byte length */
  if (result != ASTACK_OK) {
    CHECK_NAPI(napi_create_uint32(env, result, &answer));
    return answer;
  }
  account_length = strnlen(d->account_id, ASTACK_ACCOUNT_ID_SIZE - 1);
  memcpy(ids, d->key_id, key_id_length);
  memcpy(ids + key_id_length, d->account_id, account_length);
  CHECK_NAPI(napi_create_string_utf8(env, ids, key_id_length + account_length, &answer));
  return answer;
}

/* authorize(apiKey: string | null | undefined, operation: number) → authorize_answer; either
 * way the decision's numbers are in the decision buffer. Allocates nothing but the answer
 * string. */
static napi_value engine_authorize(napi_env env, napi_callback_info info) {
  napi_value argv[2] = {NULL, NULL};
  char key[KEY_BUFFER];
  size_t buffer_length = 0;
  uint32_t operation = 0;
  astack_decision d;
  astack_result result;
  double *slots = NULL;
  engine_box *box = engine_this(env, info, 2, argv, NULL);
  if (box == NULL) return NULL;
  if (box->closed) return throw_closed(env, NULL);
  if (!read_authorize_args(env, argv, key, &operation)) return NULL;
  CHECK_NAPI(napi_get_arraybuffer_info(env, ref_value(env, box->decision), (void **)&slots, &buffer_length));
  if (slots == NULL || buffer_length < D_SLOTS * sizeof(double)) {
    napi_throw_error(env, "ERR_ASTACK_DETACHED", "the decision buffer was detached");
    return NULL;
  }
  result = astack_authorize_op(box->engine, key, operation, &d);
  return authorize_answer(env, result, &d, slots);
}

/* headers(allowed, window, limit, remaining, reset, retryAfter, requestsPerMinute,
 * requestsPerHour) → [policy, ratelimit] or null. */
static napi_value decision_headers(napi_env env, napi_callback_info info) {
  napi_value argv[8], self, out, v;
  size_t argc = 8, i;
  astack_decision d;
  uint64_t n[7];
  bool allowed = false;
  char *policy = NULL, *ratelimit = NULL;
  static const char *const names[7] = {"window", "limit", "remaining", "reset", "retryAfter",
                                       "requestsPerMinute", "requestsPerHour"};
  static const uint64_t max[7] = {1, UINT32_MAX, UINT32_MAX, UINT64_MAX, UINT64_MAX, UINT32_MAX, UINT32_MAX};

  CHECK_NAPI(napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  if (argc < 8) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "headers() takes 8 arguments");
    return NULL;
  }
  napi_get_value_bool(env, argv[0], &allowed);
  for (i = 0; i < 7; i++)
    if (!read_integer(env, argv[i + 1], names[i], max[i], &n[i])) return NULL;
  memset(&d, 0, sizeof d);
  d.code = allowed ? ASTACK_OK : ASTACK_RATE_LIMITED;
  d.window = (uint32_t)n[0];
  d.limit = (uint32_t)n[1];
  d.remaining = (uint32_t)n[2];
  d.reset = n[3];
  d.retry_after = n[4];
  d.requests_per_minute = (uint32_t)n[5];
  d.requests_per_hour = (uint32_t)n[6];
  if (astack_decision_headers(&d, &policy, &ratelimit) != ASTACK_OK) return throw_result(env, ASTACK_INTERNAL_ERROR, NULL);
  if (policy == NULL || ratelimit == NULL) {
    astack_string_free(policy);
    astack_string_free(ratelimit);
    napi_get_null(env, &out);
    return out;
  }
  napi_create_array_with_length(env, 2, &out);
  v = make_string(env, policy);
  napi_set_element(env, out, 0, v);
  v = make_string(env, ratelimit);
  napi_set_element(env, out, 1, v);
  astack_string_free(policy);
  astack_string_free(ratelimit);
  return out;
}

/* The cold paths, by the shape of their arguments after (engine, key_id). */
typedef astack_result (*fn_k)(const astack_engine *, const char *, char **);
typedef astack_result (*fn_ks)(const astack_engine *, const char *, const char *, char **);
typedef astack_result (*fn_kss)(const astack_engine *, const char *, const char *, const char *, char **);
typedef astack_result (*fn_ku)(const astack_engine *, const char *, uint32_t, char **);
typedef astack_result (*fn_ksu)(const astack_engine *, const char *, const char *, uint64_t, char **);
/* The two that answer a number: no key and a count, a key and a count; and the one that
 * answers nothing. */
typedef astack_result (*fn_n)(const astack_engine *, uint64_t *);
typedef astack_result (*fn_kn)(const astack_engine *, const char *, uint32_t *);
typedef astack_result (*fn_0)(const astack_engine *);

typedef enum { SHAPE_K, SHAPE_KS, SHAPE_KSS, SHAPE_KU, SHAPE_KSU, SHAPE_N, SHAPE_KN, SHAPE_0 } call_shape;

typedef struct {
  call_shape shape;
  void (*fn)(void);
  const char *arg1;
  const char *arg2;
} cold_call;

#define CALL(shape, fn, a1, a2) {shape, (void (*)(void))(fn), a1, a2}

/* The order is the CALLS table of lib/engine.js. */
static const cold_call CALLS[] = {
    CALL(SHAPE_KS, astack_key_create, "request", NULL),
    CALL(SHAPE_KU, astack_key_list, "limit", NULL),
    CALL(SHAPE_KS, astack_key_get, "id", NULL),
    CALL(SHAPE_KS, astack_key_revoke, "id", NULL),
    CALL(SHAPE_KSU, astack_key_rotate, "id", "gracePeriodSeconds"),
    CALL(SHAPE_KS, astack_session_create, "request", NULL),
    CALL(SHAPE_KS, astack_session_get, "id", NULL),
    CALL(SHAPE_KU, astack_session_list, "limit", NULL),
    CALL(SHAPE_KS, astack_session_terminate, "id", NULL),
    CALL(SHAPE_KSS, astack_session_connect, "id", "sessionToken"),
    CALL(SHAPE_KSS, astack_session_end, "id", "request"),
    CALL(SHAPE_KS, astack_token_issue, "id", NULL),
    CALL(SHAPE_KS, astack_worker_register, "worker", NULL),
    CALL(SHAPE_KSS, astack_worker_update, "nodeId", "change"),
    CALL(SHAPE_K, astack_worker_list, NULL, NULL),
    CALL(SHAPE_KS, astack_user_create, "request", NULL),
    CALL(SHAPE_KS, astack_user_get, "id", NULL),
    CALL(SHAPE_KU, astack_user_list, "limit", NULL),
    CALL(SHAPE_KSS, astack_user_update, "id", "change"),
    CALL(SHAPE_KS, astack_user_delete, "id", NULL),
    CALL(SHAPE_KS, astack_usage_record, "request", NULL),
    CALL(SHAPE_K, astack_usage_get, NULL, NULL),
    CALL(SHAPE_KS, astack_alert_create, "request", NULL),
    CALL(SHAPE_K, astack_alert_list, NULL, NULL),
    CALL(SHAPE_KU, astack_audit_list, "limit", NULL),
    CALL(SHAPE_K, astack_metrics, NULL, NULL),
    CALL(SHAPE_N, astack_session_sweep, NULL, NULL),
    CALL(SHAPE_KN, astack_session_slots_in_use, NULL, NULL),
    CALL(SHAPE_0, astack_engine_flush, NULL, NULL),
};
#define CALL_COUNT (sizeof CALLS / sizeof CALLS[0])

/* A cold call and its arguments, read from JavaScript (free with free_call). */
typedef struct {
  const cold_call *c;
  char *key_id, *s1, *s2;
  uint64_t number;
} call_args;

/* What a cold call answered: its result, and its JSON text or (SHAPE_N, SHAPE_KN) its count
 * (SHAPE_0: nothing). */
typedef struct {
  astack_result result;
  char *json;
  uint64_t count;
} call_answer;

static void free_call(call_args *a) {
  free(a->key_id);
  free(a->s1);
  free(a->s2);
  a->key_id = a->s1 = a->s2 = NULL;
}

/* Reads (index, keyId, arg1?, arg2?) into `a`, missing arguments undefined (SHAPE_N and
 * SHAPE_0 read no key). Returns false with a JavaScript exception pending (and `a` freed). */
static bool read_call(napi_env env, napi_value *argv, call_args *a) {
  uint32_t index = 0;
  int i;
  memset(a, 0, sizeof *a);
  for (i = 0; i < 4; i++)
    if (argv[i] == NULL) napi_get_undefined(env, &argv[i]);
  if (napi_get_value_uint32(env, argv[0], &index) != napi_ok || index >= CALL_COUNT) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "unknown call");
    return false;
  }
  a->c = &CALLS[index];
  if (a->c->shape != SHAPE_N && a->c->shape != SHAPE_0 && !read_string(env, argv[1], "keyId", false, &a->key_id))
    goto fail;
  switch (a->c->shape) {
    case SHAPE_K:
    case SHAPE_N:
    case SHAPE_KN:
    case SHAPE_0:
      return true;
    case SHAPE_KS:
      if (!read_string(env, argv[2], a->c->arg1, false, &a->s1)) goto fail;
      return true;
    case SHAPE_KSS:
      if (!read_string(env, argv[2], a->c->arg1, false, &a->s1)) goto fail;
      if (!read_string(env, argv[3], a->c->arg2, false, &a->s2)) goto fail;
      return true;
    case SHAPE_KU:
      if (!read_integer(env, argv[2], a->c->arg1, UINT32_MAX, &a->number)) goto fail;
      return true;
    case SHAPE_KSU:
      if (!read_string(env, argv[2], a->c->arg1, false, &a->s1)) goto fail;
      if (!read_integer(env, argv[3], a->c->arg2, UINT64_MAX, &a->number)) goto fail;
      return true;
  }
fail:
  free_call(a);
  return false;
}

/* Runs a call read by read_call; touches no JavaScript value, so any thread may run it. */
static void run_call(const astack_engine *engine, const call_args *a, call_answer *out) {
  const cold_call *c = a->c;
  uint32_t count = 0;
  out->json = NULL;
  out->count = 0;
  switch (c->shape) {
    case SHAPE_K:
      out->result = ((fn_k)c->fn)(engine, a->key_id, &out->json);
      return;
    case SHAPE_KS:
      out->result = ((fn_ks)c->fn)(engine, a->key_id, a->s1, &out->json);
      return;
    case SHAPE_KSS:
      out->result = ((fn_kss)c->fn)(engine, a->key_id, a->s1, a->s2, &out->json);
      return;
    case SHAPE_KU:
      out->result = ((fn_ku)c->fn)(engine, a->key_id, (uint32_t)a->number, &out->json);
      return;
    case SHAPE_KSU:
      out->result = ((fn_ksu)c->fn)(engine, a->key_id, a->s1, a->number, &out->json);
      return;
    case SHAPE_N:
      out->result = ((fn_n)c->fn)(engine, &out->count);
      return;
    case SHAPE_KN:
      out->result = ((fn_kn)c->fn)(engine, a->key_id, &count);
      out->count = count;
      return;
    case SHAPE_0:
      out->result = ((fn_0)c->fn)(engine);
      return;
  }
  out->result = ASTACK_INTERNAL_ERROR;
}

/* The JavaScript value of a call's answer, and frees its JSON text. Returns true with the
 * answer (the JSON text, the count, or undefined) in `*value`; false with the error to throw or reject
 * with in `*value`, or NULL there and an exception pending. */
static bool answer_value(napi_env env, const call_args *a, call_answer *out, napi_value *value) {
  bool ok = out->result == ASTACK_OK;
  *value = NULL;
  if (!ok) {
    *value = astack_error(env, astack_result_code(out->result), out->json, NULL);
  } else if (a->c->shape == SHAPE_N || a->c->shape == SHAPE_KN) {
    ok = napi_create_double(env, (double)out->count, value) == napi_ok;
  } else if (a->c->shape == SHAPE_0) {
    ok = napi_get_undefined(env, value) == napi_ok;
  } else {
    ok = napi_create_string_utf8(env, out->json, NAPI_AUTO_LENGTH, value) == napi_ok;
  }
  if (!ok && *value == NULL) throw_last_napi_error(env);
  astack_string_free(out->json);
  out->json = NULL;
  return ok;
}

/* call(index, keyId, arg1?, arg2?) → the answer's JSON text, or its count. */
static napi_value engine_call(napi_env env, napi_callback_info info) {
  napi_value argv[4] = {NULL, NULL, NULL, NULL}, value;
  call_args a;
  call_answer out;
  bool ok;
  astack_engine *engine = live_engine(env, info, 4, argv);
  if (engine == NULL || !read_call(env, argv, &a)) return NULL;
  run_call(engine, &a, &out);
  ok = answer_value(env, &a, &out, &value);
  free_call(&a);
  if (ok) return value;
  if (value != NULL) napi_throw(env, value);
  return NULL;
}

/* bootstrapAdminKey(plaintext | null) → JSON text. */
static napi_value engine_bootstrap(napi_env env, napi_callback_info info) {
  napi_value argv[1] = {NULL};
  char *plaintext = NULL, *json = NULL;
  astack_result result;
  astack_engine *engine = live_engine(env, info, 1, argv);
  if (engine == NULL) return NULL;
  if (argv[0] != NULL && !read_string(env, argv[0], "plaintext", true, &plaintext)) return NULL;
  result = astack_bootstrap_admin_key(engine, plaintext, &json);
  free(plaintext);
  return answer_json(env, result, json);
}

/* verifyToken(token, audience | null, sessionId | null) → claims JSON text. */
static napi_value engine_verify(napi_env env, napi_callback_info info) {
  napi_value argv[3] = {NULL, NULL, NULL}, answer = NULL;
  char *token = NULL, *audience = NULL, *session = NULL, *json = NULL;
  astack_engine *engine = live_engine(env, info, 3, argv);
  int i;
  if (engine == NULL) return NULL;
  for (i = 0; i < 3; i++)
    if (argv[i] == NULL) napi_get_undefined(env, &argv[i]);
  if (read_string(env, argv[0], "token", false, &token) && read_string(env, argv[1], "audience", true, &audience) &&
      read_string(env, argv[2], "sessionId", true, &session)) {
    astack_result result = astack_token_verify(engine, token, audience, session, &json);
    answer = answer_json(env, result, json);
  }
  free(token);
  free(audience);
  free(session);
  return answer;
}

static napi_value engine_config(napi_env env, napi_callback_info info) {
  char *json = NULL;
  astack_result result;
  astack_engine *engine = live_engine(env, info, 0, NULL);
  if (engine == NULL) return NULL;
  result = astack_engine_config(engine, &json);
  return answer_json(env, result, json);
}

static napi_value engine_now(napi_env env, napi_callback_info info) {
  uint64_t now = 0;
  astack_result result;
  napi_value value;
  astack_engine *engine = live_engine(env, info, 0, NULL);
  if (engine == NULL) return NULL;
  result = astack_clock_now(engine, &now);
  if (result != ASTACK_OK) return throw_result(env, result, NULL);
  napi_create_double(env, (double)now, &value);
  return value;
}

static napi_value clock_move(napi_env env, napi_callback_info info, bool set) {
  napi_value argv[1] = {NULL};
  uint64_t ms = 0;
  astack_result result;
  astack_engine *engine = live_engine(env, info, 1, argv);
  if (engine == NULL) return NULL;
  if (argv[0] == NULL) napi_get_undefined(env, &argv[0]);
  if (!read_integer(env, argv[0], "ms", UINT64_MAX, &ms)) return NULL;
  result = set ? astack_clock_set(engine, ms) : astack_clock_advance(engine, ms);
  if (result != ASTACK_OK) {
    return throw_astack(env, astack_result_code(result),
                        result == ASTACK_UNSUPPORTED
                            ? "{\"error\":{\"code\":\"unsupported\",\"message\":\"this engine reads the system "
                              "clock: make it with a manual clock to move time\"}}"
                            : NULL,
                        NULL);
  }
  return undefined_value(env);
}

static napi_value engine_clock_set(napi_env env, napi_callback_info info) { return clock_move(env, info, true); }
static napi_value engine_clock_advance(napi_env env, napi_callback_info info) { return clock_move(env, info, false); }

/* ------------------------------------------------------------------------------------------ */
/* Calls on libuv's thread pool (authorizeAsync, callAsync), for stores that wait on a disk or
 * a network: the JavaScript thread goes on meanwhile. A job's arguments are read on the
 * JavaScript thread, the call runs on a pool thread (touching no JavaScript value), and its
 * promise is settled back on the JavaScript thread. */

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref self; /* the NativeEngine: not collected while the job is pending */
  engine_box *box;
  bool authorize; /* authorize (key, operation, result, decision) or a cold call (call, answer) */
  char key[KEY_BUFFER];
  uint32_t operation;
  astack_result result;
  astack_decision decision;
  call_args call;
  call_answer answer;
} job;

static void job_execute(napi_env env, void *data) {
  job *j = data;
  (void)env;
  if (j->authorize) {
    j->result = astack_authorize_op(j->box->engine, j->key, j->operation, &j->decision);
  } else {
    run_call(j->box->engine, &j->call, &j->answer);
  }
}

/* authorizeAsync's answer: [authorize_answer, a Float64Array of the decision's numbers]. NULL
 * with an exception pending. */
static napi_value job_decision(napi_env env, const job *j) {
  napi_value buffer, slots, answer, pair;
  void *data = NULL;
  CHECK_NAPI(napi_create_arraybuffer(env, D_SLOTS * sizeof(double), &data, &buffer));
  if ((answer = authorize_answer(env, j->result, &j->decision, data)) == NULL) return NULL;
  CHECK_NAPI(napi_create_typedarray(env, napi_float64_array, D_SLOTS, buffer, 0, &slots));
  CHECK_NAPI(napi_create_array_with_length(env, 2, &pair));
  CHECK_NAPI(napi_set_element(env, pair, 0, answer));
  CHECK_NAPI(napi_set_element(env, pair, 1, slots));
  return pair;
}

static void job_free(napi_env env, job *j) {
  if (j->work != NULL) napi_delete_async_work(env, j->work);
  if (j->self != NULL) napi_delete_reference(env, j->self);
  free_call(&j->call);
  astack_string_free(j->answer.json);
  free(j);
}

/* Settles the job's promise: a cold call resolves to its answer or rejects with its error, as
 * the synchronous call returns or throws; authorize resolves to job_decision either way. */
static void job_complete(napi_env env, napi_status status, void *data) {
  job *j = data;
  napi_value value = NULL;
  bool resolve = false;
  if (status != napi_ok) {
    value = astack_error(env, "internal_error", "the call was cancelled", NULL);
  } else if (j->authorize) {
    resolve = (value = job_decision(env, j)) != NULL;
  } else {
    resolve = answer_value(env, &j->call, &j->answer, &value);
  }
  if (!resolve && value == NULL) napi_get_and_clear_last_exception(env, &value);
  if (resolve) {
    napi_resolve_deferred(env, j->deferred, value);
  } else {
    napi_reject_deferred(env, j->deferred, value);
  }
  j->box->pending--;
  engine_release(j->box);
  job_free(env, j);
}

/* Queues a job whose arguments are read, and returns its promise. On failure the promise is
 * rejected (or NULL returned with an exception pending) and the job freed. */
static napi_value job_start(napi_env env, napi_value self, engine_box *box, job *j) {
  napi_value promise, name, error = NULL;
  j->box = box;
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok) {
    throw_last_napi_error(env);
    job_free(env, j);
    return NULL;
  }
  if (napi_create_string_utf8(env, "astack", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_reference(env, self, 1, &j->self) != napi_ok ||
      napi_create_async_work(env, NULL, name, job_execute, job_complete, j, &j->work) != napi_ok ||
      napi_queue_async_work(env, j->work) != napi_ok) {
    throw_last_napi_error(env);
    napi_get_and_clear_last_exception(env, &error);
    napi_reject_deferred(env, j->deferred, error);
    job_free(env, j);
    return promise;
  }
  box->pending++;
  return promise;
}

/* A new job on the live engine behind `this`, with up to `max` arguments; NULL with an
 * exception pending. */
static job *job_new(napi_env env, napi_callback_info info, size_t max, napi_value *argv, napi_value *self,
                    engine_box **box) {
  job *j;
  if ((*box = engine_this(env, info, max, argv, self)) == NULL) return NULL;
  if ((*box)->closed) {
    throw_closed(env, NULL);
    return NULL;
  }
  if ((j = calloc(1, sizeof *j)) == NULL) napi_throw_error(env, "ERR_ASTACK_NO_MEMORY", "out of memory");
  return j;
}

/* authorizeAsync(apiKey, operation) → a promise of [authorize's answer, the decision's numbers
 * (a Float64Array laid out as the decision buffer)]. */
static napi_value engine_authorize_async(napi_env env, napi_callback_info info) {
  napi_value argv[2] = {NULL, NULL}, self;
  engine_box *box;
  job *j = job_new(env, info, 2, argv, &self, &box);
  if (j == NULL) return NULL;
  j->authorize = true;
  if (!read_authorize_args(env, argv, j->key, &j->operation)) {
    job_free(env, j);
    return NULL;
  }
  return job_start(env, self, box, j);
}

/* callAsync(index, keyId, arg1?, arg2?) → a promise of call's answer. */
static napi_value engine_call_async(napi_env env, napi_callback_info info) {
  napi_value argv[4] = {NULL, NULL, NULL, NULL}, self;
  engine_box *box;
  job *j = job_new(env, info, 4, argv, &self, &box);
  if (j == NULL) return NULL;
  if (!read_call(env, argv, &j->call)) {
    job_free(env, j);
    return NULL;
  }
  return job_start(env, self, box, j);
}

/* ------------------------------------------------------------------------------------------ */
/* NativeLimiter: the rate limiter on any string key. */

typedef struct {
  astack_limiter *limiter;
} limiter_box;

static void limiter_finalize(napi_env env, void *data, void *hint) {
  limiter_box *box = data;
  (void)env;
  (void)hint;
  if (box == NULL) return;
  astack_limiter_free(box->limiter);
  free(box);
}

static limiter_box *limiter_this(napi_env env, napi_callback_info info, size_t max, napi_value *argv, bool live) {
  napi_value self;
  size_t argc = max;
  void *box = NULL;
  size_t i;
  if (napi_get_cb_info(env, info, &argc, argv, &self, NULL) != napi_ok) {
    throw_last_napi_error(env);
    return NULL;
  }
  for (i = argc; i < max; i++) napi_get_undefined(env, &argv[i]);
  if (napi_unwrap(env, self, &box) != napi_ok || box == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_THIS", "not a NativeLimiter");
    return NULL;
  }
  if (live && ((limiter_box *)box)->limiter == NULL) {
    throw_closed(env, "{\"error\":{\"code\":\"engine_closed\",\"message\":\"the limiter is closed\"}}");
    return NULL;
  }
  return box;
}

/* new NativeLimiter(windowsJson) */
static napi_value limiter_new(napi_env env, napi_callback_info info) {
  napi_value argv[1] = {NULL}, self;
  size_t argc = 1;
  char *windows = NULL, *error = NULL;
  astack_limiter *limiter = NULL;
  astack_result result;
  limiter_box *box;
  CHECK_NAPI(napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  if (argv[0] == NULL) napi_get_undefined(env, &argv[0]);
  if (!read_string(env, argv[0], "windows", false, &windows)) return NULL;
  result = astack_limiter_new(windows, &limiter, &error);
  free(windows);
  if (result != ASTACK_OK) {
    throw_result(env, result, error);
    astack_string_free(error);
    return NULL;
  }
  box = malloc(sizeof *box);
  if (box == NULL) {
    astack_limiter_free(limiter);
    napi_throw_error(env, "ERR_ASTACK_NO_MEMORY", "out of memory");
    return NULL;
  }
  box->limiter = limiter;
  if (napi_wrap(env, self, box, limiter_finalize, NULL, NULL) != napi_ok) {
    limiter_finalize(env, box, NULL);
    throw_last_napi_error(env);
    return NULL;
  }
  return self;
}

static napi_value limiter_close(napi_env env, napi_callback_info info) {
  limiter_box *box = limiter_this(env, info, 0, NULL, false);
  napi_value closed;
  if (box == NULL) return NULL;
  napi_get_boolean(env, box->limiter != NULL, &closed);
  astack_limiter_free(box->limiter);
  box->limiter = NULL;
  return closed;
}

/* check(key, nowMs) → [allowed, window, limit, remaining, reset, retryAfter, policy, ratelimit] */
static napi_value limiter_check(napi_env env, napi_callback_info info) {
  napi_value argv[2], out, v;
  char *key = NULL;
  uint64_t now = 0;
  astack_decision d;
  astack_result result;
  limiter_box *box = limiter_this(env, info, 2, argv, true);
  if (box == NULL) return NULL;
  if (!read_string(env, argv[0], "key", false, &key)) return NULL;
  if (!read_integer(env, argv[1], "nowMs", UINT64_MAX, &now)) {
    free(key);
    return NULL;
  }
  result = astack_limiter_check(box->limiter, key, now, &d);
  free(key);
  if (result != ASTACK_OK && result != ASTACK_RATE_LIMITED) return throw_result(env, result, NULL);
  napi_create_array_with_length(env, 8, &out);
  napi_get_boolean(env, result == ASTACK_OK, &v);
  napi_set_element(env, out, 0, v);
  napi_create_uint32(env, d.window, &v);
  napi_set_element(env, out, 1, v);
  napi_create_uint32(env, d.limit, &v);
  napi_set_element(env, out, 2, v);
  napi_create_uint32(env, d.remaining, &v);
  napi_set_element(env, out, 3, v);
  napi_create_double(env, (double)d.reset, &v);
  napi_set_element(env, out, 4, v);
  napi_create_double(env, (double)d.retry_after, &v);
  napi_set_element(env, out, 5, v);
  /* The headers need the whole decision: format them now, while it is at hand. */
  {
    char *policy = NULL, *ratelimit = NULL;
    if (astack_limiter_headers(box->limiter, &d, &policy, &ratelimit) == ASTACK_OK) {
      napi_set_element(env, out, 6, make_string(env, policy));
      napi_set_element(env, out, 7, make_string(env, ratelimit));
    }
    astack_string_free(policy);
    astack_string_free(ratelimit);
  }
  return out;
}

static napi_value limiter_sweep(napi_env env, napi_callback_info info) {
  napi_value argv[1], value;
  uint64_t now = 0, remaining = 0;
  astack_result result;
  limiter_box *box = limiter_this(env, info, 1, argv, true);
  if (box == NULL) return NULL;
  if (!read_integer(env, argv[0], "nowMs", UINT64_MAX, &now)) return NULL;
  result = astack_limiter_sweep(box->limiter, now, &remaining);
  if (result != ASTACK_OK) return throw_result(env, result, NULL);
  napi_create_double(env, (double)remaining, &value);
  return value;
}

/* ------------------------------------------------------------------------------------------ */
/* Module functions. */

static napi_value set_error_factory(napi_env env, napi_callback_info info) {
  napi_value argv[1] = {NULL};
  size_t argc = 1;
  napi_valuetype type = napi_undefined;
  addon_state *state = state_of(env);
  CHECK_NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argv[0] != NULL) napi_typeof(env, argv[0], &type);
  if (type != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "setErrorFactory takes a function");
    return NULL;
  }
  if (state->error_factory) napi_delete_reference(env, state->error_factory);
  CHECK_NAPI(napi_create_reference(env, argv[0], 1, &state->error_factory));
  return undefined_value(env);
}

static napi_value config_check(napi_env env, napi_callback_info info) {
  napi_value argv[1] = {NULL};
  size_t argc = 1;
  char *config = NULL, *json = NULL;
  astack_result result;
  CHECK_NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argv[0] == NULL) napi_get_undefined(env, &argv[0]);
  if (!read_string(env, argv[0], "config", true, &config)) return NULL;
  result = astack_config_check(config, &json);
  free(config);
  return answer_json(env, result, json);
}

static napi_value version(napi_env env, napi_callback_info info) {
  (void)info;
  return make_string(env, astack_version());
}

/* resultCode(n) → the stable code of a result number. */
static napi_value result_code(napi_env env, napi_callback_info info) {
  napi_value argv[1] = {NULL};
  size_t argc = 1;
  uint32_t n = 0;
  CHECK_NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argv[0] != NULL) napi_get_value_uint32(env, argv[0], &n);
  return make_string(env, astack_result_code(n));
}

/* operationName(n) → the SPEC name of an operation number, or null. */
static napi_value operation_name(napi_env env, napi_callback_info info) {
  napi_value argv[1] = {NULL};
  size_t argc = 1;
  uint32_t n = 0;
  CHECK_NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argv[0] != NULL) napi_get_value_uint32(env, argv[0], &n);
  return make_string(env, astack_operation_name(n));
}

#define METHOD(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_default, NULL}

static napi_value init(napi_env env, napi_value exports) {
  napi_value engine_class, limiter_class;
  addon_state *state;
  static const napi_property_descriptor engine_methods[] = {
      METHOD("close", engine_close),
      METHOD("isClosed", engine_is_closed),
      METHOD("authorize", engine_authorize),
      METHOD("call", engine_call),
      METHOD("authorizeAsync", engine_authorize_async),
      METHOD("callAsync", engine_call_async),
      METHOD("bootstrapAdminKey", engine_bootstrap),
      METHOD("verifyToken", engine_verify),
      METHOD("config", engine_config),
      METHOD("now", engine_now),
      METHOD("setClock", engine_clock_set),
      METHOD("advanceClock", engine_clock_advance),
  };
  static const napi_property_descriptor limiter_methods[] = {
      METHOD("close", limiter_close),
      METHOD("check", limiter_check),
      METHOD("sweep", limiter_sweep),
  };
  const napi_property_descriptor functions[] = {
      METHOD("setErrorFactory", set_error_factory),
      METHOD("configCheck", config_check),
      METHOD("version", version),
      METHOD("resultCode", result_code),
      METHOD("operationName", operation_name),
      METHOD("decisionHeaders", decision_headers),
  };

  state = calloc(1, sizeof *state);
  if (state == NULL) {
    napi_throw_error(env, "ERR_ASTACK_NO_MEMORY", "out of memory");
    return NULL;
  }
  CHECK_NAPI(napi_set_instance_data(env, state, state_free, NULL));

  CHECK_NAPI(napi_define_class(env, "NativeEngine", NAPI_AUTO_LENGTH, engine_new, NULL,
                               sizeof engine_methods / sizeof engine_methods[0], engine_methods, &engine_class));
  CHECK_NAPI(napi_define_class(env, "NativeLimiter", NAPI_AUTO_LENGTH, limiter_new, NULL,
                               sizeof limiter_methods / sizeof limiter_methods[0], limiter_methods, &limiter_class));
  CHECK_NAPI(napi_set_named_property(env, exports, "NativeEngine", engine_class));
  CHECK_NAPI(napi_set_named_property(env, exports, "NativeLimiter", limiter_class));
  CHECK_NAPI(napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
