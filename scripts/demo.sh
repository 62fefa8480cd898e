#!/bin/sh
# Builds a busybox bundle from Debian's busybox-static and runs it with
# capsa-runtime: the quick start's "it works" check.
set -eu
rt=${1:?usage: demo.sh CAPSA_RUNTIME}
dir=$(mktemp -d /tmp/capsa-demo.XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/rootfs/bin" "$dir/rootfs/etc" "$dir/rootfs/proc" "$dir/rootfs/dev" "$dir/rootfs/sys" "$dir/rootfs/tmp"
cp /bin/busybox "$dir/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$dir/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$dir/rootfs/etc/passwd"
cd "$dir"
"$rt" spec
sed -i 's/"terminal": true/"terminal": false/' config.json
sed -i 's/^\t\t\t"sh"$/\t\t\t"sh", "-c", "echo Hello from a capsa container: $(hostname), pid $$, $(id)"/' config.json
"$rt" --root "$dir/state" run "demo-$$"
