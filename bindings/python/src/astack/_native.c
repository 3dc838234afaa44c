/* astack._native: the CPython extension over the C ABI (include/astack.h), linked statically
 * with libastack.a.
 *
 * Only what must be fast or must touch raw pointers lives here: the engine handle (with a
 * reference count of calls in flight, so closing it while other threads are inside the library
 * never frees it under them), the hot path `authorize`, which fills a `Decision` object the
 * caller owns, and one generic entry point for the cold paths, which returns the result code
 * and the JSON text. Every call into the library releases the GIL, but `authorize` over the
 * memory store, which is shorter than a GIL hand-off. Python code (astack/engine.py) turns codes
 * into exceptions and JSON into records.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <stdint.h>
#include <string.h>

#include "astack.h"

/* A code of our own (never an astack_result): the engine was closed. */
#define NATIVE_ENGINE_CLOSED 1000

/* Python's `astack.errors._from_native(code, body, decision)`: builds the exception to raise. */
static PyObject *error_factory = NULL;

/* ------------------------------------------------------------------------------------------ */
/* Decision                                                                                    */

typedef struct {
    PyObject_HEAD
    astack_decision d;
} DecisionObject;

static PyTypeObject DecisionType;

/* Sets the Python exception for `code` (with the error body, the decision and the operation of
 * a denied authorize, any of them may be NULL) through the factory; returns NULL. */
static PyObject *raise_denial(uint32_t code, const char *body, PyObject *decision, PyObject *operation) {
    PyObject *exc, *pybody;
    if (error_factory == NULL) {
        PyErr_Format(PyExc_RuntimeError, "astack: %s", astack_result_code(code));
        return NULL;
    }
    if (body != NULL) {
        pybody = PyUnicode_FromString(body);
        if (pybody == NULL) return NULL;
    } else {
        pybody = Py_NewRef(Py_None);
    }
    exc = PyObject_CallFunction(error_factory, "IOOO", (unsigned int)code, pybody,
                                decision != NULL ? decision : Py_None, operation != NULL ? operation : Py_None);
    Py_DECREF(pybody);
    if (exc == NULL) return NULL;
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    return NULL;
}

/* raise_denial without a decision: the errors of every other call. */
static PyObject *raise_code(uint32_t code, const char *body, PyObject *decision) {
    return raise_denial(code, body, decision, NULL);
}

static PyObject *decision_code(DecisionObject *self, void *closure) {
    (void)closure;
    return PyUnicode_InternFromString(astack_result_code(self->d.code));
}

static PyObject *decision_result(DecisionObject *self, void *closure) {
    (void)closure;
    return PyLong_FromUnsignedLong(self->d.code);
}

static PyObject *decision_allowed(DecisionObject *self, void *closure) {
    (void)closure;
    return PyBool_FromLong(self->d.code == ASTACK_OK);
}

static PyObject *decision_window(DecisionObject *self, void *closure) {
    (void)closure;
    if (self->d.requests_per_minute == 0 && self->d.requests_per_hour == 0) Py_RETURN_NONE;
    return PyUnicode_InternFromString(self->d.window == ASTACK_WINDOW_HOUR ? "hour" : "minute");
}

#define U32_GETTER(field)                                                   \
    static PyObject *decision_##field(DecisionObject *self, void *closure) { \
        (void)closure;                                                      \
        return PyLong_FromUnsignedLong(self->d.field);                      \
    }
#define U64_GETTER(field)                                                   \
    static PyObject *decision_##field(DecisionObject *self, void *closure) { \
        (void)closure;                                                      \
        return PyLong_FromUnsignedLongLong(self->d.field);                  \
    }
U32_GETTER(limit)
U32_GETTER(remaining)
U64_GETTER(reset)
U64_GETTER(retry_after)
U32_GETTER(requests_per_minute)
U32_GETTER(requests_per_hour)
U32_GETTER(concurrent_sessions)

static PyObject *bounded_string(const char *s, size_t size) {
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strnlen(s, size), "replace");
}

static PyObject *decision_key_id(DecisionObject *self, void *closure) {
    (void)closure;
    if (self->d.key_id[0] == '\0') Py_RETURN_NONE;
    return bounded_string(self->d.key_id, sizeof self->d.key_id);
}

static PyObject *decision_account_id(DecisionObject *self, void *closure) {
    (void)closure;
    if (self->d.account_id[0] == '\0') Py_RETURN_NONE;
    return bounded_string(self->d.account_id, sizeof self->d.account_id);
}

/* The SPEC §5 headers of the decision as a dict (empty when the key was not authenticated). */
static PyObject *decision_headers(DecisionObject *self, PyObject *unused) {
    char *policy = NULL, *ratelimit = NULL;
    PyObject *headers;
    astack_result rc;
    (void)unused;
    headers = PyDict_New();
    if (headers == NULL) return NULL;
    rc = astack_decision_headers(&self->d, &policy, &ratelimit);
    if (rc != ASTACK_OK) {
        Py_DECREF(headers);
        return raise_code(rc, NULL, NULL);
    }
    if (policy != NULL && ratelimit != NULL) {
        PyObject *p = PyUnicode_FromString(policy), *r = PyUnicode_FromString(ratelimit);
        if (p == NULL || r == NULL || PyDict_SetItemString(headers, "RateLimit-Policy", p) < 0 ||
            PyDict_SetItemString(headers, "RateLimit", r) < 0) {
            Py_XDECREF(p);
            Py_XDECREF(r);
            Py_DECREF(headers);
            astack_string_free(policy);
            astack_string_free(ratelimit);
            return NULL;
        }
        Py_DECREF(p);
        Py_DECREF(r);
    }
    astack_string_free(policy);
    astack_string_free(ratelimit);
    if (self->d.code == ASTACK_RATE_LIMITED && self->d.retry_after > 0) {
        PyObject *ra = PyUnicode_FromFormat("%llu", (unsigned long long)self->d.retry_after);
        if (ra == NULL || PyDict_SetItemString(headers, "Retry-After", ra) < 0) {
            Py_XDECREF(ra);
            Py_DECREF(headers);
            return NULL;
        }
        Py_DECREF(ra);
    }
    return headers;
}

static PyObject *decision_repr(DecisionObject *self) {
    if (self->d.code == ASTACK_OK) {
        return PyUnicode_FromFormat("Decision(code='ok', key_id='%s', remaining=%u)", self->d.key_id,
                                    (unsigned int)self->d.remaining);
    }
    return PyUnicode_FromFormat("Decision(code='%s', retry_after=%llu)", astack_result_code(self->d.code),
                                (unsigned long long)self->d.retry_after);
}

static int decision_nb_bool(PyObject *self) { return ((DecisionObject *)self)->d.code == ASTACK_OK; }

static PyGetSetDef decision_getset[] = {
    {"code", (getter)decision_code, NULL, "The SPEC code: 'ok', 'rate_limited'...", NULL},
    {"result", (getter)decision_result, NULL, "The numeric astack_result.", NULL},
    {"allowed", (getter)decision_allowed, NULL, "Whether the request may proceed.", NULL},
    {"window", (getter)decision_window, NULL, "The tightest window, 'minute' or 'hour' (None if unauthenticated).", NULL},
    {"limit", (getter)decision_limit, NULL, "That window's capacity.", NULL},
    {"remaining", (getter)decision_remaining, NULL, "Tokens left in it.", NULL},
    {"reset", (getter)decision_reset, NULL, "Seconds until it is full again.", NULL},
    {"retry_after", (getter)decision_retry_after, NULL, "When rate limited, seconds until a token is back.", NULL},
    {"requests_per_minute", (getter)decision_requests_per_minute, NULL, "The key's limit in force.", NULL},
    {"requests_per_hour", (getter)decision_requests_per_hour, NULL, "The key's limit in force.", NULL},
    {"concurrent_sessions", (getter)decision_concurrent_sessions, NULL, "The key's limit in force.", NULL},
    {"key_id", (getter)decision_key_id, NULL, "The key's id when allowed, else None.", NULL},
    {"account_id", (getter)decision_account_id, NULL, "The key's account when allowed, else None.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef decision_methods[] = {
    {"headers", (PyCFunction)decision_headers, METH_NOARGS,
     "The rate-limit headers (RateLimit-Policy, RateLimit, and Retry-After on 429) as a dict."},
    {NULL, NULL, 0, NULL},
};

static PyNumberMethods decision_as_number = {.nb_bool = decision_nb_bool};

static PyTypeObject DecisionType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "astack.Decision",
    .tp_basicsize = sizeof(DecisionObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The decision on a request (SPEC §4, §5): what astack_authorize wrote.",
    .tp_repr = (reprfunc)decision_repr,
    .tp_getset = decision_getset,
    .tp_methods = decision_methods,
    .tp_as_number = &decision_as_number,
};

/* ------------------------------------------------------------------------------------------ */
/* Engine                                                                                      */

typedef struct {
    PyObject_HEAD
    astack_engine *engine;
    Py_ssize_t inflight; /* calls inside the library (changed only with the GIL held) */
    int closed;
    /* Whether authorize may wait on I/O (a SQLite or Redis store); then it releases the GIL. */
    char authorize_waits;
} EngineObject;

/* Marks a call as in flight; fails with EngineClosed after close(). With the GIL held. */
static int engine_enter(EngineObject *self) {
    if (self->closed || self->engine == NULL) {
        raise_code(NATIVE_ENGINE_CLOSED, NULL, NULL);
        return -1;
    }
    self->inflight++;
    return 0;
}

/* Ends a call; the last call out of a closed engine frees it. With the GIL held. */
static void engine_leave(EngineObject *self) {
    if (--self->inflight == 0 && self->closed && self->engine != NULL) {
        astack_engine *engine = self->engine;
        self->engine = NULL;
        astack_engine_free(engine);
    }
}

static PyObject *engine_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    EngineObject *self;
    (void)args;
    (void)kwds;
    self = (EngineObject *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->engine = NULL;
        self->inflight = 0;
        self->closed = 0;
        self->authorize_waits = 1;
    }
    return (PyObject *)self;
}

static void engine_dealloc(EngineObject *self) {
    if (self->engine != NULL) {
        astack_engine_free(self->engine);
        self->engine = NULL;
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* _open(config_json: str | None, start_ms: int | None) -> int: makes the engine; the result
 * code (0 on success). */
static PyObject *engine_open(EngineObject *self, PyObject *args) {
    const char *config = NULL;
    PyObject *start = Py_None;
    astack_engine *engine = NULL;
    astack_result rc;
    if (!PyArg_ParseTuple(args, "zO:_open", &config, &start)) return NULL;
    if (self->engine != NULL || self->closed) {
        PyErr_SetString(PyExc_RuntimeError, "the engine is already open");
        return NULL;
    }
    if (start == Py_None) {
        Py_BEGIN_ALLOW_THREADS rc = astack_engine_new(config, &engine);
        Py_END_ALLOW_THREADS
    } else {
        unsigned long long ms = PyLong_AsUnsignedLongLong(start);
        if (ms == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
        Py_BEGIN_ALLOW_THREADS rc = astack_engine_new_with_manual_clock(config, ms, &engine);
        Py_END_ALLOW_THREADS
    }
    if (rc == ASTACK_OK) self->engine = engine;
    return PyLong_FromUnsignedLong(rc);
}

static PyObject *engine_close(EngineObject *self, PyObject *unused) {
    (void)unused;
    if (!self->closed) {
        self->closed = 1;
        if (self->inflight == 0 && self->engine != NULL) {
            astack_engine *engine = self->engine;
            self->engine = NULL;
            astack_engine_free(engine);
        }
    }
    Py_RETURN_NONE;
}

static PyObject *engine_get_closed(EngineObject *self, void *closure) {
    (void)closure;
    return PyBool_FromLong(self->closed || self->engine == NULL);
}

/* The UTF-8 of a str argument, or NULL when it is not a str without NUL that encodes. */
static const char *utf8_arg(PyObject *arg) {
    Py_ssize_t size;
    const char *s;
    if (!PyUnicode_Check(arg)) return NULL;
    s = PyUnicode_AsUTF8AndSize(arg, &size);
    if (s == NULL) {
        PyErr_Clear();
        return NULL;
    }
    if ((size_t)size != strlen(s)) return NULL;
    return s;
}

/* authorize / decide: (api_key: str, operation: str) -> Decision. */
static PyObject *authorize_impl(EngineObject *self, PyObject *const *args, Py_ssize_t nargs, int raise) {
    DecisionObject *dec;
    const char *key, *op;
    astack_result rc;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "authorize(api_key, operation) takes 2 arguments");
        return NULL;
    }
    if (!PyUnicode_Check(args[0]) || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "api_key and operation must be str");
        return NULL;
    }
    key = utf8_arg(args[0]);
    if (key == NULL) key = "!"; /* not a well-formed key: refused as invalid_api_key */
    op = utf8_arg(args[1]);
    if (op == NULL) op = "";    /* not an operation: invalid_argument */
    dec = PyObject_New(DecisionObject, &DecisionType);
    if (dec == NULL) return NULL;
    memset(&dec->d, 0, sizeof dec->d);
    if (engine_enter(self) < 0) {
        Py_DECREF(dec);
        return NULL;
    }
    if (self->authorize_waits) {
        Py_BEGIN_ALLOW_THREADS rc = astack_authorize(self->engine, key, op, &dec->d);
        Py_END_ALLOW_THREADS
    } else {
        /* In memory a decision takes less time than handing the GIL over: threads that keep it
         * take turns at full speed (as hashlib keeps it for short inputs). */
        rc = astack_authorize(self->engine, key, op, &dec->d);
    }
    engine_leave(self);
    dec->d.code = rc;
    if (rc == ASTACK_OK || (!raise && rc < 200)) return (PyObject *)dec;
    raise_denial(rc, NULL, (PyObject *)dec, args[1]);
    Py_DECREF(dec);
    return NULL;
}

static PyObject *engine_authorize(EngineObject *self, PyObject *const *args, Py_ssize_t nargs) {
    return authorize_impl(self, args, nargs, 1);
}

static PyObject *engine_decide(EngineObject *self, PyObject *const *args, Py_ssize_t nargs) {
    return authorize_impl(self, args, nargs, 0);
}

/* The cold paths, by shape. */
enum call_kind { K_S, K_SS, K_SSS, K_SU32, K_SSU64, K_NONE };

typedef union {
    astack_result (*s)(const astack_engine *, const char *, char **);
    astack_result (*ss)(const astack_engine *, const char *, const char *, char **);
    astack_result (*sss)(const astack_engine *, const char *, const char *, const char *, char **);
    astack_result (*su32)(const astack_engine *, const char *, uint32_t, char **);
    astack_result (*ssu64)(const astack_engine *, const char *, const char *, uint64_t, char **);
    astack_result (*none)(const astack_engine *, char **);
} call_fn;

typedef struct {
    const char *name;
    enum call_kind kind;
    call_fn fn;
} call_entry;

/* The index of each entry is the first argument of Engine._call (astack/engine.py mirrors it). */
static const call_entry CALLS[] = {
    {"bootstrap_admin_key", K_S, {.s = astack_bootstrap_admin_key}},
    {"key_create", K_SS, {.ss = astack_key_create}},
    {"key_list", K_SU32, {.su32 = astack_key_list}},
    {"key_get", K_SS, {.ss = astack_key_get}},
    {"key_revoke", K_SS, {.ss = astack_key_revoke}},
    {"key_rotate", K_SSU64, {.ssu64 = astack_key_rotate}},
    {"session_create", K_SS, {.ss = astack_session_create}},
    {"session_get", K_SS, {.ss = astack_session_get}},
    {"session_list", K_SU32, {.su32 = astack_session_list}},
    {"session_terminate", K_SS, {.ss = astack_session_terminate}},
    {"session_connect", K_SSS, {.sss = astack_session_connect}},
    {"session_end", K_SSS, {.sss = astack_session_end}},
    {"token_issue", K_SS, {.ss = astack_token_issue}},
    {"token_verify", K_SSS, {.sss = astack_token_verify}},
    {"worker_register", K_SS, {.ss = astack_worker_register}},
    {"worker_update", K_SSS, {.sss = astack_worker_update}},
    {"worker_list", K_S, {.s = astack_worker_list}},
    {"user_create", K_SS, {.ss = astack_user_create}},
    {"user_get", K_SS, {.ss = astack_user_get}},
    {"user_list", K_SU32, {.su32 = astack_user_list}},
    {"user_update", K_SSS, {.sss = astack_user_update}},
    {"user_delete", K_SS, {.ss = astack_user_delete}},
    {"usage_record", K_SS, {.ss = astack_usage_record}},
    {"usage_get", K_S, {.s = astack_usage_get}},
    {"alert_create", K_SS, {.ss = astack_alert_create}},
    {"alert_list", K_S, {.s = astack_alert_list}},
    {"audit_list", K_SU32, {.su32 = astack_audit_list}},
    {"metrics", K_S, {.s = astack_metrics}},
    {"engine_config", K_NONE, {.none = astack_engine_config}},
};
#define N_CALLS ((Py_ssize_t)(sizeof CALLS / sizeof CALLS[0]))

/* A string argument of a cold path: str (no NUL) or None (NULL). Returns 0, or -1 when it is
 * neither (invalid_argument raised). */
static int cold_string(PyObject *arg, const char **out) {
    if (arg == Py_None) {
        *out = NULL;
        return 0;
    }
    *out = utf8_arg(arg);
    if (*out == NULL) {
        raise_code(ASTACK_INVALID_ARGUMENT, NULL, NULL);
        return -1;
    }
    return 0;
}

/* _call(index, *args) -> (code: int, json: str | None). */
static PyObject *engine_call(EngineObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const call_entry *entry;
    const char *s[3] = {NULL, NULL, NULL};
    unsigned long long number = 0;
    Py_ssize_t index, want, strings, i;
    char *out = NULL;
    astack_result rc = ASTACK_INTERNAL_ERROR;
    PyObject *json, *answer;

    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "_call(index, *args)");
        return NULL;
    }
    index = PyLong_AsSsize_t(args[0]);
    if (index == -1 && PyErr_Occurred()) return NULL;
    if (index < 0 || index >= N_CALLS) {
        PyErr_SetString(PyExc_IndexError, "no such call");
        return NULL;
    }
    entry = &CALLS[index];
    switch (entry->kind) {
    case K_NONE: want = 0; strings = 0; break;
    case K_S: want = 1; strings = 1; break;
    case K_SS: want = 2; strings = 2; break;
    case K_SSS: want = 3; strings = 3; break;
    case K_SU32: want = 2; strings = 1; break;
    case K_SSU64: want = 3; strings = 2; break;
    default: want = 0; strings = 0; break;
    }
    if (nargs - 1 != want) {
        PyErr_Format(PyExc_TypeError, "%s takes %zd arguments", entry->name, want);
        return NULL;
    }
    for (i = 0; i < strings; i++) {
        if (cold_string(args[1 + i], &s[i]) < 0) return NULL;
    }
    if (entry->kind == K_SU32 || entry->kind == K_SSU64) {
        number = PyLong_AsUnsignedLongLong(args[1 + strings]);
        if (number == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            return raise_code(ASTACK_INVALID_ARGUMENT, NULL, NULL);
        }
        if (entry->kind == K_SU32 && number > UINT32_MAX) return raise_code(ASTACK_INVALID_ARGUMENT, NULL, NULL);
    }
    if (engine_enter(self) < 0) return NULL;
    Py_BEGIN_ALLOW_THREADS
    switch (entry->kind) {
    case K_NONE: rc = entry->fn.none(self->engine, &out); break;
    case K_S: rc = entry->fn.s(self->engine, s[0], &out); break;
    case K_SS: rc = entry->fn.ss(self->engine, s[0], s[1], &out); break;
    case K_SSS: rc = entry->fn.sss(self->engine, s[0], s[1], s[2], &out); break;
    case K_SU32: rc = entry->fn.su32(self->engine, s[0], (uint32_t)number, &out); break;
    case K_SSU64: rc = entry->fn.ssu64(self->engine, s[0], s[1], (uint64_t)number, &out); break;
    }
    Py_END_ALLOW_THREADS
    engine_leave(self);
    if (out != NULL) {
        json = PyUnicode_FromString(out);
        astack_string_free(out);
        if (json == NULL) return NULL;
    } else {
        json = Py_NewRef(Py_None);
    }
    answer = Py_BuildValue("(IN)", (unsigned int)rc, json);
    return answer;
}

static PyObject *engine_now_ms(EngineObject *self, PyObject *unused) {
    uint64_t ms = 0;
    astack_result rc;
    (void)unused;
    if (engine_enter(self) < 0) return NULL;
    rc = astack_clock_now(self->engine, &ms);
    engine_leave(self);
    if (rc != ASTACK_OK) return raise_code(rc, NULL, NULL);
    return PyLong_FromUnsignedLongLong(ms);
}

static PyObject *clock_change(EngineObject *self, PyObject *arg, int set) {
    unsigned long long ms = PyLong_AsUnsignedLongLong(arg);
    astack_result rc;
    if (ms == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return raise_code(ASTACK_INVALID_ARGUMENT, NULL, NULL);
    }
    if (engine_enter(self) < 0) return NULL;
    rc = set ? astack_clock_set(self->engine, ms) : astack_clock_advance(self->engine, ms);
    engine_leave(self);
    if (rc != ASTACK_OK) return raise_code(rc, NULL, NULL);
    Py_RETURN_NONE;
}

static PyObject *engine_set_clock(EngineObject *self, PyObject *arg) { return clock_change(self, arg, 1); }
static PyObject *engine_advance_clock(EngineObject *self, PyObject *arg) { return clock_change(self, arg, 0); }

static PyObject *engine_sweep_sessions(EngineObject *self, PyObject *unused) {
    uint64_t n = 0;
    astack_result rc;
    (void)unused;
    if (engine_enter(self) < 0) return NULL;
    Py_BEGIN_ALLOW_THREADS rc = astack_session_sweep(self->engine, &n);
    Py_END_ALLOW_THREADS
    engine_leave(self);
    if (rc != ASTACK_OK) return raise_code(rc, NULL, NULL);
    return PyLong_FromUnsignedLongLong(n);
}

static PyObject *engine_flush(EngineObject *self, PyObject *unused) {
    astack_result rc;
    (void)unused;
    if (engine_enter(self) < 0) return NULL;
    Py_BEGIN_ALLOW_THREADS rc = astack_engine_flush(self->engine);
    Py_END_ALLOW_THREADS
    engine_leave(self);
    if (rc != ASTACK_OK) return raise_code(rc, NULL, NULL);
    Py_RETURN_NONE;
}

static PyObject *engine_slots_in_use(EngineObject *self, PyObject *arg) {
    uint32_t n = 0;
    const char *key_id;
    astack_result rc;
    if (cold_string(arg, &key_id) < 0) return NULL;
    if (key_id == NULL) return raise_code(ASTACK_INVALID_ARGUMENT, NULL, NULL);
    if (engine_enter(self) < 0) return NULL;
    Py_BEGIN_ALLOW_THREADS rc = astack_session_slots_in_use(self->engine, key_id, &n);
    Py_END_ALLOW_THREADS
    engine_leave(self);
    if (rc != ASTACK_OK) return raise_code(rc, NULL, NULL);
    return PyLong_FromUnsignedLong(n);
}

static PyMethodDef engine_methods[] = {
    {"_open", (PyCFunction)engine_open, METH_VARARGS, NULL},
    {"_call", (PyCFunction)(void (*)(void))engine_call, METH_FASTCALL, NULL},
    {"close", (PyCFunction)engine_close, METH_NOARGS,
     "Releases the engine (idempotent); later calls raise EngineClosed. Calls in flight on other "
     "threads finish first."},
    {"authorize", (PyCFunction)(void (*)(void))engine_authorize, METH_FASTCALL,
     "authorize(api_key, operation) -> Decision: the allowed decision, or raises the AstackError of "
     "the denial (its .decision carries the rate-limit fields)."},
    {"decide", (PyCFunction)(void (*)(void))engine_decide, METH_FASTCALL,
     "decide(api_key, operation) -> Decision: as authorize, but a denial is returned, not raised."},
    {"now_ms", (PyCFunction)engine_now_ms, METH_NOARGS, "The engine's time, Unix epoch ms."},
    {"set_clock", (PyCFunction)engine_set_clock, METH_O, "Sets a manual clock to now_ms."},
    {"advance_clock", (PyCFunction)engine_advance_clock, METH_O, "Moves a manual clock forward by ms."},
    {"flush", (PyCFunction)engine_flush, METH_NOARGS,
     "flush() -> None: writes what the store holds back now (request counts, keys' last_used_at, "
     "held audit records; over SQLite and Redis a thread of the engine writes them every "
     "store.flush_ms, 500 by default). Releases the GIL."},
    {"sweep_sessions", (PyCFunction)engine_sweep_sessions, METH_NOARGS,
     "Expires every live session past its expiry; returns how many this call expired."},
    {"slots_in_use", (PyCFunction)engine_slots_in_use, METH_O,
     "The live (PENDING or ACTIVE) sessions held by key_id."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef engine_members[] = {
    {"_authorize_waits", T_BOOL, offsetof(EngineObject, authorize_waits), 0,
     "Whether authorize may wait on I/O and so releases the GIL (true unless the store is in memory)."},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef engine_getset[] = {
    {"closed", (getter)engine_get_closed, NULL, "Whether close() was called.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject EngineType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "astack._native.Engine",
    .tp_basicsize = sizeof(EngineObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "The native engine handle (use astack.Engine).",
    .tp_new = engine_new,
    .tp_dealloc = (destructor)engine_dealloc,
    .tp_methods = engine_methods,
    .tp_members = engine_members,
    .tp_getset = engine_getset,
};

/* ------------------------------------------------------------------------------------------ */
/* Module                                                                                      */

static PyObject *mod_set_error_factory(PyObject *mod, PyObject *factory) {
    (void)mod;
    Py_XSETREF(error_factory, Py_NewRef(factory));
    Py_RETURN_NONE;
}

static PyObject *mod_config_check(PyObject *mod, PyObject *args) {
    const char *config = NULL;
    char *out = NULL;
    astack_result rc;
    PyObject *json;
    (void)mod;
    if (!PyArg_ParseTuple(args, "z:config_check", &config)) return NULL;
    rc = astack_config_check(config, &out);
    if (out != NULL) {
        json = PyUnicode_FromString(out);
        astack_string_free(out);
        if (json == NULL) return NULL;
    } else {
        json = Py_NewRef(Py_None);
    }
    return Py_BuildValue("(IN)", (unsigned int)rc, json);
}

static PyObject *mod_version(PyObject *mod, PyObject *unused) {
    (void)mod;
    (void)unused;
    return PyUnicode_FromString(astack_version());
}

static PyObject *mod_result_code(PyObject *mod, PyObject *arg) {
    unsigned long code = PyLong_AsUnsignedLong(arg);
    (void)mod;
    if (code == (unsigned long)-1 && PyErr_Occurred()) return NULL;
    return PyUnicode_FromString(astack_result_code((uint32_t)code));
}

static PyObject *mod_result_message(PyObject *mod, PyObject *arg) {
    unsigned long code = PyLong_AsUnsignedLong(arg);
    (void)mod;
    if (code == (unsigned long)-1 && PyErr_Occurred()) return NULL;
    return PyUnicode_FromString(astack_result_message((uint32_t)code));
}

static PyMethodDef module_methods[] = {
    {"_set_error_factory", mod_set_error_factory, METH_O, NULL},
    {"config_check", mod_config_check, METH_VARARGS, "config_check(json | None) -> (code, json)."},
    {"version", mod_version, METH_NOARGS, "The library's version."},
    {"result_code", mod_result_code, METH_O, "The snake_case code of a result number."},
    {"result_message", mod_result_message, METH_O, "The generic message of a result number."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "astack._native",
    .m_doc = "The C ABI of astack, as a CPython extension.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__native(void) {
    PyObject *m, *names;
    Py_ssize_t i;
    if (PyType_Ready(&DecisionType) < 0 || PyType_Ready(&EngineType) < 0) return NULL;
    m = PyModule_Create(&native_module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Decision", (PyObject *)&DecisionType) < 0 ||
        PyModule_AddObjectRef(m, "Engine", (PyObject *)&EngineType) < 0 ||
        PyModule_AddIntConstant(m, "ENGINE_CLOSED", NATIVE_ENGINE_CLOSED) < 0 ||
        PyModule_AddIntConstant(m, "MAX_REQUEST_BYTES", ASTACK_MAX_REQUEST_BYTES) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    names = PyTuple_New(N_CALLS);
    if (names == NULL) {
        Py_DECREF(m);
        return NULL;
    }
    for (i = 0; i < N_CALLS; i++) {
        PyObject *name = PyUnicode_FromString(CALLS[i].name);
        if (name == NULL) {
            Py_DECREF(names);
            Py_DECREF(m);
            return NULL;
        }
        PyTuple_SET_ITEM(names, i, name);
    }
    if (PyModule_AddObjectRef(m, "CALLS", names) < 0) {
        Py_DECREF(names);
        Py_DECREF(m);
        return NULL;
    }
    Py_DECREF(names);
    return m;
}
