# cmd/capsa-runtime/front: the C front reads config.json itself for the
# creates it does. CI fuzzes its config reader and planner against the Go
# runtime's (runtime/cfront_fuzz_test.go, through internal/cfront with
# cgo and jansson) for a short while, on top of the committed corpus that
# `go test` replays.
APT_PACKAGES += libjansson-dev
TEST_TARGETS += test-front-fuzz

.PHONY: test-front-fuzz
test-front-fuzz:
	CGO_ENABLED=1 $(GO) test -count=1 -run '^$$' -fuzz '^FuzzFrontConfig$$' -fuzztime 45s -parallel 2 ./runtime/
