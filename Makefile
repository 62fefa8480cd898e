# capsa build and test entry points. Feature areas add their own targets in
# mk/*.mk and append to APT_PACKAGES / TEST_TARGETS, so that `make test`
# stays the one command CI runs (.ci/run).
SHELL := /bin/bash
GO ?= $(CURDIR)/scripts/go.sh
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
BIN := $(CURDIR)/bin
# Packages the tests need from Debian; fragments append.
APT_PACKAGES := busybox-static runc crun podman skopeo uidmap iproute2 strace gcc libc6-dev make
# Test targets run by `make test` after the unit and integration tests; fragments append.
TEST_TARGETS :=
# The front: static, so that it runs from anywhere like the Go binaries.
FRONT_CC := gcc -O2 -static -Wall -Wextra -Werror -s
# The front's sources; it parses configs with jansson (libjansson-dev's
# static library), as crun does with yajl.
FRONT_SRCS := $(wildcard cmd/capsa-runtime/front/*.c)
FRONT_LIBS := -ljansson
RUNTIME_LDFLAGS := -s -w -X main.version=$(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: all build deps check demo test test-go conformance clean
all: build

-include mk/*.mk

build: $(BIN)/capsa-runtime

# capsa-runtime is static and cgo-free: it must run from any rootfs and
# start fast. Its twin capsa-runtime-nsenter is the same program built with
# cgo (statically, against glibc's libc.a; netgo/osusergo keep glibc's NSS
# out) for runtime/nsenter's constructor: capsa-runtime runs it as the child
# only when a user or time namespace must be joined (docs/nsenter.md).
#
# What users run as capsa-runtime is its C front (cmd/capsa-runtime/front):
# it does `state`, `start`, `kill`, the plain `delete`, and `create` and `exec`
# of the configs it fully understands without the Go runtime, and hands
# everything else to capsa-runtime-go, installed next to it.
$(BIN)/capsa-runtime: FORCE
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(RUNTIME_LDFLAGS)' -o $(BIN)/capsa-runtime-go ./cmd/capsa-runtime
	CGO_ENABLED=1 $(GO) build -trimpath -tags netgo,osusergo \
		-ldflags '$(RUNTIME_LDFLAGS) -linkmode external -extldflags "-static"' \
		-o $(BIN)/capsa-runtime-nsenter ./cmd/capsa-runtime
	$(FRONT_CC) -o $@ $(FRONT_SRCS) $(FRONT_LIBS)

FORCE:

# The README's first command: build, then run a busybox container.
demo: deps build
	scripts/demo.sh $(BIN)/capsa-runtime

deps:
	scripts/install-deps.sh $(APT_PACKAGES)

check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null; find . -name '*.go' -newer go.mod -not -path './.git/*') 2>/dev/null | sort -u); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# Unit tests and the integration tests (root, real kernel) in one go test run.
test-go: build
	CAPSA_BIN=$(BIN) $(GO) test -count=1 -timeout 30m ./...

conformance: build
	scripts/conformance.sh $(BIN)/capsa-runtime

# The README's test command: everything CI checks.
test: deps check test-go conformance $(TEST_TARGETS)

clean:
	rm -rf $(BIN)
