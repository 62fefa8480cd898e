#!/bin/bash
# Runs Go test packages inside a small VM with a unified cgroup v2
# hierarchy: qemu-system-x86_64 (software emulation, no KVM needed), Debian's
# 6.1 kernel, and an initramfs with busybox and the static test binaries.
#
# usage: test/vm/run.sh PKG...        (e.g. ./runtime/cgroups)
# env:   VM_TIMEOUT (seconds, default 900), VM_RUN (a -test.run filter for
#        every package), VM_RUN_<pkg> (one package's filter, e.g.
#        VM_RUN_test_integration for ./test/integration),
#        VM_CACHE (download cache, default test/vm/.cache),
#        CAPSA_RUNTIME (default bin/capsa-runtime; included when it exists,
#        with capsa-runtime-go and capsa-runtime-nsenter from the same
#        directory)
# Exits 0 only when the guest printed the pass line with this run's nonce.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${VM_CACHE:-$here/.cache}
timeout_s=${VM_TIMEOUT:-900}
runtime_bin=${CAPSA_RUNTIME:-$repo/bin/capsa-runtime}
[ $# -gt 0 ] || { echo "usage: $0 PKG..." >&2; exit 2; }
for tool in qemu-system-x86_64 cpio gzip dpkg-deb apt-get; do
	command -v "$tool" >/dev/null || { echo "vm: $tool missing (make deps)" >&2; exit 2; }
done
[ -x /bin/busybox ] || { echo "vm: /bin/busybox missing (busybox-static)" >&2; exit 2; }

mkdir -p "$cache"
# The kernel: the newest Debian 6.1 image, downloaded once.
deb=$(ls "$cache"/linux-image-6.1.0-*-amd64_*.deb 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$deb" ]; then
	find_pkg() { apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | awk '{print $1}' | sort -V | tail -1; }
	pkg=$(find_pkg)
	if [ -z "$pkg" ]; then
		apt-get update -qq
		pkg=$(find_pkg)
	fi
	[ -n "$pkg" ] || { echo "vm: no linux-image-6.1.0-*-amd64 package in apt" >&2; exit 2; }
	(cd "$cache" && apt-get -o APT::Sandbox::User=root download "$pkg" >/dev/null)
	deb=$(ls "$cache"/linux-image-6.1.0-*-amd64_*.deb | sort -V | tail -1)
fi
kdir="$cache/kernel-$(basename "$deb" .deb)"
if [ ! -f "$kdir/vmlinuz" ]; then
	rm -rf "$kdir.tmp" && mkdir -p "$kdir.tmp"
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$kdir.tmp" --wildcards \
		'./boot/vmlinuz-*' \
		'./lib/modules/*/kernel/fs/overlayfs/overlay.ko' \
		'./lib/modules/*/kernel/drivers/net/veth.ko' \
		'./lib/modules/*/kernel/net/llc/llc.ko' \
		'./lib/modules/*/kernel/net/802/stp.ko' \
		'./lib/modules/*/kernel/net/bridge/bridge.ko' \
		'./lib/modules/*/kernel/drivers/block/brd.ko'
	mkdir -p "$kdir.tmp/mods"
	find "$kdir.tmp/lib" -name '*.ko' -exec mv {} "$kdir.tmp/mods/" \;
	mv "$kdir.tmp"/boot/vmlinuz-* "$kdir.tmp/vmlinuz"
	rm -rf "$kdir.tmp/boot" "$kdir.tmp/lib" "$kdir"
	mv "$kdir.tmp" "$kdir"
fi

work=$(mktemp -d /tmp/capsa-vm.XXXXXX)
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,tests,lib/modules}
cp /bin/busybox "$root/bin/busybox"
cp "$here/init.sh" "$root/init"
chmod +x "$root/init"
cp "$kdir"/mods/*.ko "$root/lib/modules/"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
if [ -x "$runtime_bin" ]; then
	cp "$runtime_bin" "$root/bin/capsa-runtime"
	# The Go runtime the C front hands off to, and its cgo twin, run as
	# the child when a user or time namespace is joined.
	for part in capsa-runtime-go capsa-runtime-nsenter; do
		if [ -x "$(dirname "$runtime_bin")/$part" ]; then
			cp "$(dirname "$runtime_bin")/$part" "$root/bin/$part"
		fi
	done
fi
# The test binaries: static (cgo off), one per package.
for pkg in "$@"; do
	name=$(echo "$pkg" | sed 's|^\./||; s|/|_|g')
	echo "vm: building $pkg"
	mkdir -p "$root/tests/$name"
	(cd "$repo" && CGO_ENABLED=0 go test -c -o "$root/tests/$name/$name.test" "$pkg")
	# Tests run in their package's directory: seed corpora and fixtures.
	if [ -d "$repo/$pkg/testdata" ]; then
		cp -r "$repo/$pkg/testdata" "$root/tests/$name/"
	fi
	# A -test.run filter of its own: VM_RUN_<name> (e.g. VM_RUN_test_integration),
	# where name is the package path with every other character than
	# letters, digits and _ made _. VM_RUN, when set, overrides it.
	var="VM_RUN_$(printf '%s' "$name" | tr -c 'A-Za-z0-9_' '_')"
	if [ -n "${!var:-}" ]; then
		printf '%s\n' "${!var}" > "$root/tests/$name/run.regexp"
		echo "vm: $pkg: -test.run '${!var}'"
	fi
done
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.gz"

nonce=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
# nohz=off: with tickless idle, an idle vCPU under TCG on a loaded host can
# miss its timer wakeups; RCU then stalls and the guest hangs (seen here).
append="console=ttyS0 quiet panic=-1 nohz=off capsa.nonce=$nonce"
[ -n "${VM_RUN:-}" ] && append="$append capsa.run=$VM_RUN"
# go test's own timeout fires well before the VM's, so a hang ends with a
# goroutine dump in the log instead of a silent kill.
append="$append capsa.timeout=${VM_GO_TIMEOUT:-$(( timeout_s > 240 ? timeout_s - 120 : timeout_s / 2 ))s}"
echo "vm: booting $(basename "$deb") (timeout ${timeout_s}s)"
log="$work/serial.log"
set +e
# thread=single: one host thread runs both vCPUs round-robin, so neither
# starves behind the other on a 2-core host that is busy with other work.
timeout --foreground -k 10 "$timeout_s" qemu-system-x86_64 -accel tcg,thread=single -m 1024 -smp 2 \
	-nographic -serial stdio -monitor none -nic none -no-reboot \
	-kernel "$kdir/vmlinuz" -initrd "$work/initrd.gz" -append "$append" </dev/null \
	| perl -pe 's/\r//g; s/\e\[[0-9;?]*[A-Za-z]//g; s/\ec//g; $|=1' | tee "$log"
qrc=${PIPESTATUS[0]}
set -e
if grep -qx "CAPSA-VM-RESULT-$nonce: PASS" "$log"; then
	echo "vm: PASS"
	exit 0
fi
if [ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ]; then
	echo "vm: FAIL: timed out after ${timeout_s}s" >&2
elif grep -qx "CAPSA-VM-RESULT-$nonce: FAIL" "$log"; then
	echo "vm: FAIL: tests failed in the VM" >&2
else
	echo "vm: FAIL: no result line (qemu exit $qrc; kernel panic or crash?)" >&2
fi
exit 1
