# cgroup v2 tests in a VM (issue 3): the host CI runs cgroup v1 (hybrid), so
# the cgroups package's v2 code and the runtime's integration tests run in
# qemu with a unified hierarchy. See docs/cgroups.md.
APT_PACKAGES += qemu-system-x86 cpio
TEST_TARGETS += test-cgroupv2

# Go packages whose tests run inside the VM (each built with go test -c).
# bin/capsa-runtime (with capsa-runtime-go and the nsenter twin) go into the VM: the target builds
# them first.
VM_TEST_PKGS ?= ./runtime/cgroups ./test/integration
# The runtime integration tests that make sense in the VM: the cgroup ones
# and the lifecycle, bad-input, security and user-namespace ones, and the
# front's create and exec against the Go runtime's (the v2 device filter and
# cgroup layout). Left out:
# TestRuntimeDependencies (needs the go tool), TestCgroupPlacement and
# TestPauseResumeUpdateEvents (v1 paths), the seccomp tests (need gcc).
VM_RUN_test_integration ?= ^(TestCgroups.*|TestRunEchoAndExitCode|TestLifecycle|TestDeleteForceRunning|TestExec|TestProcessSettings|TestHostnameAndNamespaces|TestTmpcopyup|TestBadInput|TestDuplicateIDAndStoppedStart|TestHooks|TestSpecAndFeatures|TestPreserveFds|TestNoRuntimeFdsReachContainer|TestRuntimeBinaryNotWritableFromContainer|TestMountDestinationSymlinkStaysInRoot|TestDevSymlinkTricksRefused|TestUserNamespaceExecAndJoin|TestFrontFastPath|TestFrontHooksHandOff|TestInitsAgree|TestCInitErrors|TestExecInitsAgree|TestPasswdFIFO|TestFrontCreate.*|TestCExec.*)$$
# Seconds before the VM is killed and the target fails.
VM_TIMEOUT ?= 900

.PHONY: test-cgroupv2
test-cgroupv2: build
	VM_TIMEOUT=$(VM_TIMEOUT) VM_RUN_test_integration='$(VM_RUN_test_integration)' \
		test/vm/run.sh $(VM_TEST_PKGS)
