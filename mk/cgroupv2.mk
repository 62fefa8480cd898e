# cgroup v2 tests in a VM (issue 3): the host CI runs cgroup v1 (hybrid), so
# the cgroups package's v2 code is tested in qemu with a unified hierarchy.
# See docs/cgroups.md.
APT_PACKAGES += qemu-system-x86 cpio
TEST_TARGETS += test-cgroupv2

# Go packages whose tests run inside the VM. The runtime's integration tests
# can be added (./test/integration); bin/capsa-runtime is put in the VM
# when it exists, so build first for them.
VM_TEST_PKGS ?= ./runtime/cgroups
# Seconds before the VM is killed and the target fails.
VM_TIMEOUT ?= 900

.PHONY: test-cgroupv2
test-cgroupv2:
	VM_TIMEOUT=$(VM_TIMEOUT) test/vm/run.sh $(VM_TEST_PKGS)
