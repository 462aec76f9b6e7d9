#!/usr/bin/env bash
# Build the published Open Service Broker client the tests drive Berth's broker with: the Kubernetes
# service catalog's Go library, sigs.k8s.io/go-open-service-broker-client/v2, fetched from the Go
# module proxy at the versions tests/osb/goclient/go.sum pins, behind the small driver there
# (tests/osb/goclient/main.go). The binary goes to .cache/osb-client/<hash of the driver's files>/
# (outside git), with the Go module and build caches beside it, so a changed driver is rebuilt and
# `make clean` removes everything. Idempotent: does nothing when that binary is there.
# Usage: scripts/build-osb-client.sh [--print-path]   (--print-path: print the binary's path on stdout)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/tests/osb/goclient"
CACHE="$ROOT/.cache/osb-client"
print_path=0
case "${1:-}" in
    --print-path) print_path=1 ;;
    "") ;;
    *) echo "usage: $0 [--print-path]" >&2; exit 2 ;;
esac

KEY="$(cd "$SRC" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-16)"
DEST="$CACHE/$KEY"
BINARY="$DEST/osb-driver"

build() {
    local go
    go="$(command -v go || true)"
    [[ -n "$go" ]] || [[ ! -x /usr/local/go/bin/go ]] || go=/usr/local/go/bin/go
    [[ -n "$go" ]] || { echo "build-osb-client: Go is not installed (make setup, or apt-get install golang-go)" >&2; exit 1; }
    mkdir -p "$CACHE"
    TMP="$(mktemp -d "$DEST.tmp.XXXXXX")"
    trap 'rm -rf "$TMP"' EXIT
    # -mod=readonly: go.sum must already pin every module (nothing is resolved afresh);
    # GOTOOLCHAIN=local: build with this Go, never fetch another; -modcacherw: `rm -rf .cache` works.
    (cd "$SRC" && env GOPATH="$CACHE/gopath" GOCACHE="$CACHE/gocache" GOFLAGS="-mod=readonly -modcacherw" \
        GOTOOLCHAIN=local CGO_ENABLED=0 "$go" build -trimpath -o "$TMP/osb-driver" .) >&2
    touch "$TMP/.complete"
    chmod -R a+rX "$TMP"
    rm -rf "$DEST"
    mv "$TMP" "$DEST"
    trap - EXIT
    echo "build-osb-client: sigs.k8s.io/go-open-service-broker-client/v2 driver in $BINARY" >&2
}

[[ -x "$BINARY" && -e "$DEST/.complete" ]] || build
if ((print_path)); then
    echo "$BINARY"
fi
