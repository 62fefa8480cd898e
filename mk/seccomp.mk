# runtime/seccomp: the kernel headers feed `go generate` of the syscall
# tables (gcc, already listed, builds the 32-bit int $0x80 test program
# with -m32 -nostdlib, which needs no multilib). CI also fuzzes the
# compiler against its reference interpreter for a short while, on top of
# the committed seed corpus that `go test` replays.
APT_PACKAGES += linux-libc-dev
TEST_TARGETS += test-seccomp-fuzz

.PHONY: test-seccomp-fuzz
test-seccomp-fuzz:
	$(GO) test -count=1 -run '^$$' -fuzz '^FuzzCompile$$' -fuzztime 45s -parallel 2 ./runtime/seccomp/
