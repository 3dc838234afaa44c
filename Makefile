# The map of every task. `make demo` runs the reference server; `make test` runs every test.
SHELL := /bin/bash
CARGO ?= cargo
PREFIX ?= /usr/local

.PHONY: all build demo test test-rust test-server test-c test-node test-python test-go bench bench-server install clean

all: build

build:
	$(CARGO) build --release

## Build and start the reference REST server on 127.0.0.1:8080 (Ctrl-C stops it).
## It prints the admin key (unless ASTACK_ADMIN_KEY is set) and curl lines to paste.
demo:
	$(CARGO) build --release -p astack-server
	./target/release/astack-server --listen 127.0.0.1:8080

## Every test, all languages.
test: test-rust test-server

## The Rust core: unit, integration and property tests.
test-rust:
	$(CARGO) test --all-targets
	$(CARGO) test --doc

## The reference server over real HTTP: pytest and schemathesis against the running binary.
VENV ?= .venv
$(VENV)/.installed:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q pytest requests schemathesis pyjwt pyyaml
	touch $@

test-server: $(VENV)/.installed
	$(CARGO) build -p astack-server
	$(VENV)/bin/pytest examples/server/tests -q

## The C ABI (coming with issue 3).
test-c:
	@echo "test-c: the C ABI is coming (issue 3)"

## The Node binding (coming with issue 4).
test-node:
	@echo "test-node: the Node binding is coming (issue 4)"

## The Python binding (coming with issue 5).
test-python:
	@echo "test-python: the Python binding is coming (issue 5)"

## The Go binding (coming with issue 6).
test-go:
	@echo "test-go: the Go binding is coming (issue 6)"

## Every benchmark, ours beside the peer's.
bench: bench-server
	$(CARGO) bench --bench authorize

## The reference server's throughput beside the bare HTTP stack's (wrk, loopback).
bench-server:
	bash benches/server/run.sh

clean:
	$(CARGO) clean
