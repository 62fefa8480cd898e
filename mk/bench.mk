# Benchmarks and the podman integration tests (bench/, test/podman/).
# See docs/benchmarks.md.

# runc, crun: the benchmark's and the podman tests' reference runtimes.
# time: GNU time measures the runtimes' peak RSS in the benchmark.
# podman, conmon, catatonit: test/podman drives podman (conmon monitors its
# containers); busybox-static and tar make the test image.
APT_PACKAGES += busybox-static runc crun time podman conmon catatonit tar

# The runtimes the benchmark compares, as name=path; capsa-runtime is built
# first. BENCH_FLAGS passes flags, e.g. BENCH_FLAGS='-n 50' or '-quick'.
BENCH_RUNTIMES ?= capsa=$(BIN)/capsa-runtime runc=/usr/sbin/runc crun=/usr/bin/crun
BENCH_FLAGS ?=

.PHONY: bench bench-runtime bench-runtime-quick

# Every benchmark; not part of `make test` (timings are no pass/fail test).
bench: bench-runtime

# capsa-runtime vs runc vs crun: lifecycle, exec and delete --force.
bench-runtime: deps build
	$(GO) build -o $(BIN)/capsa-bench-runtime ./bench/runtime
	$(BIN)/capsa-bench-runtime $(foreach r,$(BENCH_RUNTIMES),-runtime $(r)) $(BENCH_FLAGS)

bench-runtime-quick: BENCH_FLAGS += -quick
bench-runtime-quick: bench-runtime
