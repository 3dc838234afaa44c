# The map of every task. `make demo` runs the reference server; `make test` runs every test.
SHELL := /bin/bash
CARGO ?= cargo
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
PREFIX ?= /usr/local
PROFILE ?= release
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)

# The C ABI's tests: strict C99, linked with the static library.
CC ?= cc
CXX ?= c++
C_OUT := target/c
C_WARN := -Wall -Wextra -Werror -pedantic
C_FLAGS := -std=c99 $(C_WARN) -g -Iinclude -DASTACK_EXPECTED_VERSION='"$(VERSION)"'
C_SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
C_LIB_DEBUG := target/debug/libastack.a
C_LIBS := -lpthread -ldl -lm
C_TESTS := test_abi test_threads test_misuse
# Run under ThreadSanitizer too, against the shared library (tests/c/tsan.supp says why).
C_TSAN_TESTS := test_threads test_misuse
C_TSAN := -fsanitize=thread -fno-omit-frame-pointer

# The Python binding: a virtual environment at the root, the package installed into it from
# bindings/python (which builds the Rust library in release), and the test tools.
PYTHON ?= python3
PY_VENV := .venv-python
PY := $(PY_VENV)/bin/python
PY_TEST_DEPS := pytest pyjwt limits httpx uvicorn fastapi mypy

# Where `make bench` keeps each bench's output for the table.
BENCH_OUT := target/bench
# BENCH_QUICK=1 shortens the binding benches as well.
NODE_BENCH_ENV := $(if $(BENCH_QUICK),OPS=200000 NODE_OPS=60000 DURATION=1000,)
PY_BENCH_ARGS := $(if $(BENCH_QUICK),--requests 50000,)
GO_BENCH_ARGS := $(if $(BENCH_QUICK),-pairs 7,)

.PHONY: all help build demo test test-rust test-server test-c test-c-tsan fuzz miri test-node test-python test-go bench bench-quick bench-table bench-rust bench-server bench-server-budget bench-server-keys bench-stores bench-node bench-python bench-go redis-server install examples clean python-env

all: build

## List the tasks.
help:
	@awk '/^## /{doc=(doc ? doc " " : "") substr($$0,4); next} /^[a-z-]+:/{if(doc){split($$0,t,":"); printf "  make %-14s %s\n", t[1], doc}; doc=""}' $(MAKEFILE_LIST)

build:
	$(CARGO) build --release

## Build and start the reference REST server on 127.0.0.1:8080 (Ctrl-C stops it).
## It prints the admin key (unless ASTACK_ADMIN_KEY is set) and curl lines to paste.
demo:
	$(CARGO) build --release -p astack-server
	./target/release/astack-server --listen 127.0.0.1:8080

## Every test, all languages.
test: test-rust test-server test-c test-node test-python test-go

# The engine's suites that run a second time over the SQLite store.
SQLITE_SUITES := sessions concurrency authorize users_usage_audit keys

## The Rust core: unit, integration and property tests (the Redis store's against a real
## redis-server, installed here when missing), the engine's suites again over SQLite, and
## the memory-only build (no default features).
test-rust: redis-server
	$(CARGO) test --all-targets
	$(CARGO) test --doc
	ASTACK_TEST_STORE=sqlite $(CARGO) test $(addprefix --test ,$(SQLITE_SUITES))
	$(CARGO) test --no-default-features --lib --tests

# The Redis store's tests and benchmark start their own redis-server (Debian's package).
redis-server:
	@command -v redis-server >/dev/null || { apt-get update && apt-get install -y redis-server; }

## The reference server over real HTTP: pytest and schemathesis against the running binary;
## and `make bench`'s table (benches/test_table.py).
VENV ?= .venv
$(VENV)/.installed:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q pytest requests schemathesis pyjwt pyyaml
	touch $@

test-server: $(VENV)/.installed redis-server
	$(CARGO) build -p astack-server
	$(VENV)/bin/pytest examples/server/tests benches/test_table.py -q


## The C ABI: the header is up to date, compiles as C99 and C++11, and the programs of tests/c
## pass plain, under AddressSanitizer + UBSan and under valgrind; the quickstart builds against
## an installed copy through pkg-config.
test-c:
	$(CARGO) build --lib
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	  git diff --exit-code --stat -- include/astack.h || { \
	    echo "test-c: regenerating include/astack.h changed it: commit the new header" >&2; exit 1; }; \
	fi
	@command -v valgrind >/dev/null || { apt-get update && apt-get install -y valgrind; }
	@mkdir -p $(C_OUT)
	$(CXX) -std=c++11 $(C_WARN) -Iinclude tests/c/test_header.cpp $(C_LIB_DEBUG) $(C_LIBS) -o $(C_OUT)/test_header
	$(C_OUT)/test_header
	@set -e; for t in $(C_TESTS); do \
	  echo "== $$t (plain)"; \
	  $(CC) $(C_FLAGS) tests/c/$$t.c $(C_LIB_DEBUG) $(C_LIBS) -o $(C_OUT)/$$t; \
	  $(C_OUT)/$$t; \
	  echo "== $$t (AddressSanitizer + UBSan)"; \
	  $(CC) $(C_FLAGS) $(C_SAN) tests/c/$$t.c $(C_LIB_DEBUG) $(C_LIBS) -o $(C_OUT)/$$t-san; \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $(C_OUT)/$$t-san; \
	  echo "== $$t (valgrind)"; \
	  valgrind -q --leak-check=full --error-exitcode=1 --suppressions=tests/c/valgrind.supp $(C_OUT)/$$t; \
	done
	@$(MAKE) --no-print-directory test-c-tsan
	@echo "== quickstart against an installed copy (pkg-config)"
	rm -rf $(C_OUT)/prefix
	$(MAKE) --no-print-directory install PREFIX=$(CURDIR)/$(C_OUT)/prefix PROFILE=debug
	PKG_CONFIG_PATH=$(CURDIR)/$(C_OUT)/prefix/lib/pkgconfig $(CC) $(C_WARN) -std=c99 examples/c/quickstart.c \
	  $$(PKG_CONFIG_PATH=$(CURDIR)/$(C_OUT)/prefix/lib/pkgconfig pkg-config --cflags --libs astack) -o $(C_OUT)/quickstart
	$(C_OUT)/quickstart
	@echo "test-c: $(words $(C_TESTS) $(C_TESTS) $(C_TESTS) $(C_TSAN_TESTS) header quickstart) passed, 0 failed"

## The threaded C tests under ThreadSanitizer (part of test-c).
test-c-tsan:
	$(CARGO) build --lib
	@mkdir -p $(C_OUT)
	@set -e; for t in $(C_TSAN_TESTS); do \
	  echo "== $$t (ThreadSanitizer)"; \
	  $(CC) $(C_FLAGS) $(C_TSAN) tests/c/$$t.c -Ltarget/debug -lastack -Wl,-rpath,$(CURDIR)/target/debug $(C_LIBS) -o $(C_OUT)/$$t-tsan; \
	  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/c/tsan.supp" $(C_OUT)/$$t-tsan; \
	done

## The unsafe code (the key slab and its index) under Miri, which checks every access for
## undefined behaviour (nightly; installs the miri component if missing). Not part of `make test`.
miri:
	@rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^miri' || rustup component add --toolchain nightly miri rust-src
	$(CARGO) +nightly miri test --lib -- store::slab store::positions

## Fuzz every target for FUZZ_SECONDS each (nightly; installs cargo-fuzz if missing). New
## inputs go to fuzz/work (ignored); a crash stops with its input in fuzz/artifacts: copy it to
## fuzz/regressions/<target>/ and fix it (tests/fuzz_corpus.rs replays those on stable).
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := key_format token_verify config session_create ffi_json
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz
	@set -e; for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; \
	  mkdir -p fuzz/work/$$t; \
	  $(CARGO) +nightly fuzz run $$t fuzz/work/$$t fuzz/corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -print_final_stats=1 2>&1 | grep -E '^(stat::|Done|==|SUMMARY|.*panicked)' ; \
	  test $${PIPESTATUS[0]} -eq 0; \
	done

## The C example, built against the in-tree header and static library.
examples:
	$(CARGO) build --lib
	@mkdir -p $(C_OUT)
	$(CC) -std=c99 $(C_WARN) -Iinclude examples/c/quickstart.c $(C_LIB_DEBUG) $(C_LIBS) -o $(C_OUT)/quickstart
	@echo "built $(C_OUT)/quickstart"

## Installs the libraries, the header and astack.pc under PREFIX (PROFILE=release by default).
install:
	$(CARGO) build --lib $(if $(filter release,$(PROFILE)),--release,)
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 644 target/$(PROFILE)/libastack.a $(DESTDIR)$(PREFIX)/lib/libastack.a
	install -m 755 target/$(PROFILE)/libastack.so $(DESTDIR)$(PREFIX)/lib/libastack.so
	install -m 644 include/astack.h $(DESTDIR)$(PREFIX)/include/astack.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' astack.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/astack.pc

## The Node binding: `npm install` builds the Rust library and the N-API addon (node-gyp,
## offline, --nodedir=/usr), then `node --test` runs bindings/node/test.
test-node:
	cd bindings/node && npm install && npm test

$(PY):
	$(PYTHON) -m venv $(PY_VENV)
	$(PY) -m pip install -q --upgrade pip

# Installs the package (cargo build --release, then the C extension) and the test tools.
python-env: $(PY)
	$(PY) -m pip install -q ./bindings/python $(PY_TEST_DEPS)

# Every method and exception, both middlewares over HTTP, 8 threads, PyJWT interop,
# mypy --strict, and the FastAPI example.
## The Python binding, in a virtual environment it creates (.venv-python).
test-python: python-env
	cd bindings/python && ../../$(PY) -m pytest -q tests
	$(PY) -m pytest -q examples/python

## The Go binding: builds the static library, then `go vet` and `go test -race` of
## bindings/go and of the Go worker example (examples/go).
test-go:
	$(CARGO) build --release
	@command -v $(GO) >/dev/null || { echo "test-go: Go not found (set GO=/path/to/go)" >&2; exit 1; }
	cd bindings/go && $(GO) vet ./... && $(GO) test -race -count=1 ./...
	cd examples/go && $(GO) vet ./... && $(GO) test -race -count=1 ./... && $(GO) run .

# A binding whose toolchain is missing is skipped; the table shows what ran.
## Every benchmark, ours beside the peer's, then one table of them all (BENCH_QUICK=1: shorter).
bench:
	@mkdir -p $(BENCH_OUT)
	@rm -f $(BENCH_OUT)/*.log
	-$(MAKE) --no-print-directory bench-rust
	-$(MAKE) --no-print-directory bench-server
	-$(MAKE) --no-print-directory bench-stores 2>&1 | tee $(BENCH_OUT)/stores.log
	-$(MAKE) --no-print-directory bench-node 2>&1 | tee $(BENCH_OUT)/node.log
	-$(MAKE) --no-print-directory bench-python 2>&1 | tee $(BENCH_OUT)/python.log
	-$(MAKE) --no-print-directory bench-go 2>&1 | tee $(BENCH_OUT)/go.log
	@$(MAKE) --no-print-directory bench-table

## The same, shorter (fewer calls and rounds): a couple of minutes less, noisier figures.
bench-quick:
	BENCH_QUICK=1 $(MAKE) --no-print-directory bench

## The one table, from the logs of the last runs (target/bench/*.log and target/criterion).
bench-table:
	@echo; echo "== all benchmarks ($$(nproc) CPUs, $$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
	@$(PYTHON) benches/table.py $(BENCH_OUT)/*.log

# Criterion: authorize vs governor, tokens vs jsonwebtoken; then key-count scaling with memory
# per key, two threads vs one, and the session life.
## The Rust benches, each beside its peer (authorize, tokens, scaling, threads, sessions).
bench-rust:
	@mkdir -p $(BENCH_OUT)
	$(CARGO) bench --bench authorize --bench tokens 2>&1 | tee $(BENCH_OUT)/rust-criterion.log
	$(CARGO) bench --bench scaling 2>&1 | tee $(BENCH_OUT)/rust-scaling.log
	$(CARGO) bench --bench threads 2>&1 | tee $(BENCH_OUT)/rust-threads.log
	$(CARGO) bench --bench sessions 2>&1 | tee $(BENCH_OUT)/rust-sessions.log

## authorize through the Node addon vs the same policy in plain Node (rate-limiter-flexible);
## then engine.promises against the synchronous calls, over Redis (its own redis-server) and
## over the memory store.
bench-node: redis-server
	cd bindings/node && npm install
	$(NODE_BENCH_ENV) node bindings/node/bench/authorize.js
	$(NODE_BENCH_ENV) node bindings/node/bench/promises.js

## Go: Authorize through cgo beside the same policy in plain Go (sha256 + map + x/time/rate),
## 100,000 keys, serial and parallel, with the ratio.
bench-go:
	$(CARGO) build --release
	cd bindings/go && $(GO) test -run '^$$' -bench Authorize -benchtime 1000000x -count 1 .
	cd bindings/go && $(GO) run ./cmd/authbench $(GO_BENCH_ARGS)

## authorize through the Python package vs hashlib + dict + the limits package.
bench-python: python-env
	$(PY) bindings/python/bench/authorize.py $(PY_BENCH_ARGS)

## The reference server's throughput beside the bare HTTP stack's and beside itself with the
## engine's checks switched off (wrk, loopback), and one key's flood of 429s over SQLite and
## over Redis beside memory.
bench-server: redis-server
	@mkdir -p $(BENCH_OUT)
	set -o pipefail; bash benches/server/run.sh 2>&1 | tee $(BENCH_OUT)/server.log
	set -o pipefail; bash benches/server/denials.sh 2>&1 | tee $(BENCH_OUT)/server-denials.log

## How many µs of engine work per POST the stack allows at 0.8x, and how many the engine takes.
bench-server-budget:
	bash benches/server/budget.sh

## The server's latency when every request comes with another of 20,000 keys, over SQLite
## (each key's use written behind) beside memory: wrk's p99 and maximum.
bench-server-keys:
	bash benches/server/many_keys.sh

STORES_VENV := target/bench-venv
## authorize over Redis (exact and leasing) and memory, beside Python's `limits` on the same Redis.
bench-stores: redis-server
	@test -x $(STORES_VENV)/bin/python || python3 -m venv $(STORES_VENV)
	@$(STORES_VENV)/bin/python -c 'import limits, redis' 2>/dev/null || $(STORES_VENV)/bin/pip install -q 'limits[redis]'
	ASTACK_PEER_PYTHON=$(CURDIR)/$(STORES_VENV)/bin/python $(CARGO) bench --bench stores

clean:
	$(CARGO) clean
	rm -rf $(PY_VENV) bindings/python/build bindings/python/src/*.egg-info
