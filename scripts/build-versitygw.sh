#!/usr/bin/env bash
# Build the S3 server the tests store slugs and sources in: versitygw (posix backend), installed with
# `go install` from the Go module proxy at a pinned version. The binary goes to
# .cache/versitygw/<version>/ (outside git), with the Go module and build caches beside it. The first
# build takes minutes; afterwards this does nothing. Needs Go >= 1.24 (/usr/local/go or on PATH).
# Usage: scripts/build-versitygw.sh [--print-path]   (--print-path: print the binary's path on stdout)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="v1.8.0"
CACHE="$ROOT/.cache/versitygw"
DEST="$CACHE/$VERSION"
BINARY="$DEST/versitygw"
print_path=0
case "${1:-}" in
    --print-path) print_path=1 ;;
    "") ;;
    *) echo "usage: $0 [--print-path]" >&2; exit 2 ;;
esac

build() {
    local go=""
    # Prefer /usr/local/go: Debian's golang-go is too old for versitygw's go.mod.
    [[ ! -x /usr/local/go/bin/go ]] || go=/usr/local/go/bin/go
    [[ -n "$go" ]] || go="$(command -v go || true)"
    [[ -n "$go" ]] || { echo "build-versitygw: Go is not installed (make setup)" >&2; exit 1; }
    mkdir -p "$CACHE"
    TMP="$(mktemp -d "$DEST.tmp.XXXXXX")"
    trap 'rm -rf "$TMP"' EXIT
    # GOTOOLCHAIN=local: build with this Go, never fetch another; -modcacherw: `rm -rf .cache` works.
    env GOPATH="$CACHE/gopath" GOCACHE="$CACHE/gocache" GOBIN="$TMP" GOFLAGS="-modcacherw" \
        GOTOOLCHAIN=local CGO_ENABLED=0 "$go" install -trimpath \
        "github.com/versity/versitygw/cmd/versitygw@$VERSION" >&2
    touch "$TMP/.complete"
    chmod -R a+rX "$TMP"
    rm -rf "$DEST"
    mv "$TMP" "$DEST"
    trap - EXIT
    echo "build-versitygw: versitygw $VERSION in $BINARY" >&2
}

[[ -x "$BINARY" && -e "$DEST/.complete" ]] || build
if ((print_path)); then
    echo "$BINARY"
fi
