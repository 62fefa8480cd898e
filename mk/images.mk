# Images: the image store, registry pull/push, load/save and the capsa
# image CLI (image/, bundle/, cmd/capsa/). See docs/images.md.

# skopeo, podman: the interop tests load their archives and ours.
# busybox-static: the test images' rootfs. runc: reference runtime.
# umoci: the image benchmark's skopeo+umoci baseline. time: peak RSS.
APT_PACKAGES += skopeo podman busybox-static runc umoci time

BIN_CAPSA := $(BIN)/capsa

.PHONY: build-capsa bench-images bench-images-quick

build: build-capsa

# capsa is cgo-free like the runtime: one static binary.
build-capsa:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(RUNTIME_LDFLAGS)' -o $(BIN_CAPSA) ./cmd/capsa

# Pull + unpack of a ~200 MB, 5-layer image from a local registry: capsa
# vs podman pull vs skopeo copy + umoci unpack, side by side (not part of
# `make test`). IMAGES_BENCH_FLAGS passes flags, e.g. '-size 50' or '-n 3'.
IMAGES_BENCH_FLAGS ?=
bench: bench-images
bench-images: deps build
	$(GO) build -o $(BIN)/capsa-bench-images ./image/bench
	$(BIN)/capsa-bench-images -capsa $(BIN_CAPSA) $(IMAGES_BENCH_FLAGS)

bench-images-quick: IMAGES_BENCH_FLAGS += -size 40
bench-images-quick: bench-images

# Short fuzzing of the manifest/index/config/platform parsers (the seed
# corpora in image/manifest/testdata/fuzz run in every `go test`).
# FUZZTIME=5m for a longer run.
FUZZTIME ?= 30s
.PHONY: fuzz-images
fuzz-images:
	for f in FuzzParseManifest FuzzParseIndex FuzzParseConfig FuzzParsePlatform; do \
	  $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) ./image/manifest/ || exit 1; \
	done
