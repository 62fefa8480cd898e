#!/usr/bin/env bash
# Runs the OCI runtime-tools validation suite (../shared/conformance) against
# capsa-runtime and fails when a program that runc passes on this machine
# fails with capsa-runtime. The list of programs runc passes is derived from
# the committed runc baseline, so the comparison stays honest as it changes.
set -uo pipefail
rt=${1:?usage: conformance.sh RUNTIME}
here=$(cd "$(dirname "$0")/.." && pwd)
suite=${OCI_VALIDATION:-$here/../shared/conformance/oci-validation.sh}
baseline=${OCI_BASELINE:-$here/../shared/conformance/baseline-oci-runc.txt}
out=$(mktemp -d /tmp/capsa-conformance.XXXXXX)
# The suite's bundles live below it, and the user-namespace programs run
# their containers as a mapped host uid that must be able to reach them.
chmod 755 "$out"
# The suite passes no --root: its containers live in capsa-runtime's default
# root, where the runtime also caches compiled seccomp profiles. What this
# run adds there (the cache, the root itself) goes again at the end.
root=/run/capsa-runtime
had_root=$([ -e "$root" ] && echo y)
had_cache=$([ -e "$root/@seccomp" ] && echo y)
cleanup() {
	rm -rf "$out"
	[ -n "$had_cache" ] || rm -rf "$root/@seccomp"
	[ -n "$had_root" ] || rmdir "$root" 2>/dev/null
	return 0
}
trap cleanup EXIT
# The suite's own closing line counts test points of every program; it is
# reworded so that it is not mistaken for this gate's verdict.
"$suite" "$rt" "$out" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped$/oci-validation test points: \1 ok, \2 not ok, \3 skipped/' | tee "$out/log"

# Programs that runc passes cleanly (no failures) in the baseline.
runc_pass=$(awk '$1 ~ /^[a-z_]+$/ && NF >= 5 && $3 == 0 && $5 ~ /^rc=0/ {print $1}' "$baseline")
# Programs the cgroups/seccomp issues finish; see docs/conformance.md.
expected_fail=${CONFORMANCE_EXPECTED_FAIL:-}
fail=0
for p in $runc_pass; do
	row=$(awk -v p="$p" '$1 == p' "$out/summary.txt")
	[ -n "$row" ] || continue
	read -r _ pass nfail skip status _ <<<"$row"
	if [ "$nfail" != 0 ] || [[ $status != rc=0* ]]; then
		if grep -qw "$p" <<<"$expected_fail"; then
			echo "conformance: $p fails (expected until its issue is done): $row"
		else
			echo "conformance: REGRESSION against runc: $row"
			fail=1
		fi
	fi
done
echo "conformance gate: $( [ $fail = 0 ] && echo PASS || echo FAIL ) (every program runc passes here must pass)"
exit $fail
