#!/bin/busybox sh
# PID 1 of the cgroup v2 test VM: mount the usual filesystems and a unified
# cgroup2 hierarchy, run every test binary under /tests, print one result
# line with the nonce from the kernel command line, and power off.
# The initramfs is rootfs, which pivot_root(2) refuses to leave (EINVAL),
# so container runtimes cannot run on it: first move everything to a tmpfs
# and make that the root (as a distribution's initramfs switches to the
# real root). switch_root frees the initramfs copy.
if [ "$$" = 1 ] && [ ! -e /.capsa-switched ]; then
	/bin/busybox mkdir -p /newroot
	/bin/busybox mount -t tmpfs -o mode=0755 tmpfs /newroot
	for d in /*; do
		[ "$d" = /newroot ] || /bin/busybox cp -a "$d" /newroot/
	done
	/bin/busybox touch /newroot/.capsa-switched
	exec /bin/busybox switch_root /newroot /init
fi
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /tmp /run
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
ip link set lo up 2>/dev/null
# Modules the runtime's integration tests need; brd gives the io tests a
# block device (/dev/ram0).
for m in overlay veth llc stp bridge; do
	[ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko
done
[ -f /lib/modules/brd.ko ] && insmod /lib/modules/brd.ko rd_nr=1 rd_size=65536

nonce=$(sed -n 's/.*capsa\.nonce=\([A-Za-z0-9]*\).*/\1/p' /proc/cmdline)
run=$(sed -n 's/.*capsa\.run=\([^ ]*\).*/\1/p' /proc/cmdline)
gotimeout=$(sed -n "s/.*capsa\.timeout=\([^ ]*\).*/\1/p" /proc/cmdline)
echo "capsa-vm: kernel $(uname -r), cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
[ -x /bin/capsa-runtime ] && export CAPSA_BIN=/bin
status=PASS
for t in /tests/*/*.test; do
	[ -x "$t" ] || continue
	echo "capsa-vm: running $t"
	cd "$(dirname "$t")"
	# capsa.run (VM_RUN) applies to every binary; else the package's own
	# filter (VM_RUN_<pkg>), if run.sh wrote one.
	filter=$run
	[ -z "$filter" ] && [ -f run.regexp ] && filter=$(cat run.regexp)
	start=$(cut -d. -f1 /proc/uptime)
	if [ -n "$filter" ]; then
		"$t" -test.v -test.count=1 -test.timeout=${gotimeout:-20m} -test.run "$filter"
	else
		"$t" -test.v -test.count=1 -test.timeout=${gotimeout:-20m}
	fi
	rc=$?
	echo "capsa-vm: $t exit $rc after $(( $(cut -d. -f1 /proc/uptime) - start ))s"
	[ $rc -eq 0 ] || status=FAIL
done
sync
echo "CAPSA-VM-RESULT-$nonce: $status"
poweroff -f
