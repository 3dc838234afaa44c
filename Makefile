# The map of every task. `make demo` runs the reference server; `make test` runs every test.
SHELL := /bin/bash
CARGO ?= cargo
PREFIX ?= /usr/local

.PHONY: all help build demo test test-rust test-c test-node test-python test-go bench install clean

all: build

## List the tasks.
help:
	@awk '/^## /{doc=substr($$0,4); next} /^[a-z-]+:/{if(doc){split($$0,t,":"); printf "  make %-14s %s\n", t[1], doc}; doc=""}' $(MAKEFILE_LIST)

build:
	$(CARGO) build --release

## Build and start the reference REST server on 127.0.0.1:8080.
demo:
	@echo "The reference server is coming (issue 7); meanwhile 'make test' runs the engine's tests."

## Every test, all languages.
test: test-rust

## The Rust core: unit, integration and property tests.
test-rust:
	$(CARGO) test --all-targets
	$(CARGO) test --doc

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
bench:
	$(CARGO) bench --bench authorize

clean:
	$(CARGO) clean
