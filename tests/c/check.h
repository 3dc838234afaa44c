/* A tiny assertion helper for the C tests: counts checks and prints
 * "<name>: N passed, N failed" at the end (CI reads that line). */
#ifndef ASTACK_TEST_CHECK_H
#define ASTACK_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "astack.h"

static int checks_passed = 0;
static int checks_failed = 0;

#define CHECK(cond)                                                                   \
  do {                                                                                \
    if (cond) {                                                                       \
      checks_passed++;                                                                \
    } else {                                                                          \
      checks_failed++;                                                                \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);       \
    }                                                                                 \
  } while (0)

/* Checks that `expr` returns `want`, printing both codes when not. */
#define CHECK_RESULT(expr, want)                                                      \
  do {                                                                                \
    astack_result got_ = (expr);                                                      \
    if (got_ == (astack_result)(want)) {                                              \
      checks_passed++;                                                                \
    } else {                                                                          \
      checks_failed++;                                                                \
      fprintf(stderr, "%s:%d: %s returned %s, expected %s\n", __FILE__, __LINE__,     \
              #expr, astack_result_code(got_), astack_result_code(want));             \
    }                                                                                 \
  } while (0)

static inline int check_finish(const char *name) {
  printf("%s: %d passed, %d failed\n", name, checks_passed, checks_failed);
  return checks_failed == 0 ? 0 : 1;
}

/* Whether `haystack` contains `needle` (NULL-safe). */
static inline int contains(const char *haystack, const char *needle) {
  return haystack != NULL && needle != NULL && strstr(haystack, needle) != NULL;
}

/* Copies the string value of the first `"field":"..."` of a compact JSON document into `out`
 * (escapes are kept as they are: the values read here have none). Returns 1 when found. */
static inline int json_string(const char *json, const char *field, char *out, size_t size) {
  char pattern[128];
  const char *start;
  size_t n = 0;
  if (json == NULL || size == 0) return 0;
  snprintf(pattern, sizeof pattern, "\"%s\":\"", field);
  start = strstr(json, pattern);
  if (start == NULL) return 0;
  start += strlen(pattern);
  while (start[n] != '\0' && start[n] != '"' && n + 1 < size) {
    out[n] = start[n];
    n++;
  }
  out[n] = '\0';
  return start[n] == '"';
}

/* Reads the unsigned integer value of the first `"field":N`. Returns 1 when found. */
static inline int json_u64(const char *json, const char *field, unsigned long long *out) {
  char pattern[128];
  const char *start;
  char *end;
  if (json == NULL) return 0;
  snprintf(pattern, sizeof pattern, "\"%s\":", field);
  start = strstr(json, pattern);
  if (start == NULL) return 0;
  start += strlen(pattern);
  *out = strtoull(start, &end, 10);
  return end != start;
}

#endif
