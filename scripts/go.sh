#!/bin/sh
# Runs the Go toolchain go.mod asks for. On a machine without Go, Debian's
# golang-go is installed first; when a Go is too old to switch toolchains by
# itself (before 1.21), the wanted toolchain is fetched as the
# golang.org/toolchain module through the configured module proxy.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
want=$(sed -n 's/^go \([0-9.]*\)$/go\1/p' "$here/go.mod")
PATH=$PATH:/usr/local/go/bin
go=$(command -v go || true)
if [ -z "$go" ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >&2
	go=$(command -v go)
fi
case $("$go" env GOVERSION) in
go1.[0-9] | go1.[0-9].* | go1.1[0-9] | go1.1[0-9].* | go1.20 | go1.20.*)
	tc="golang.org/toolchain@v0.0.1-$want.linux-$("$go" env GOARCH)"
	dir=$(cd /tmp && "$go" mod download -json "$tc" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	find "$dir/bin" "$dir/pkg/tool" -type f -exec chmod +x {} +
	go=$dir/bin/go
	;;
esac
exec "$go" "$@"
