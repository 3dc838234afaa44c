// The header compiles as C++11 and its declarations link from C++.
#include "astack.h"

#include <cstdio>
#include <cstring>

int main() {
  astack_engine *engine = nullptr;
  astack_decision decision;
  if (astack_engine_new(nullptr, &engine) != ASTACK_OK) return 1;
  astack_result r = astack_authorize(engine, "", "admin", &decision);
  astack_engine_free(engine);
  bool ok = r == ASTACK_MISSING_API_KEY && std::strcmp(astack_version(), ASTACK_VERSION) == 0 &&
            std::strcmp(astack_result_code(r), "missing_api_key") == 0;
  std::printf("test_header: %d passed, %d failed\n", ok ? 1 : 0, ok ? 0 : 1);
  return ok ? 0 : 1;
}
