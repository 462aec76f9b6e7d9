#!/usr/bin/env bash
# Install the Debian packages Berth needs on this host, only those missing.
#   postgresql    server binaries for local clusters (tests, Postgres add-on)
#   postgresql-client  psql, which `heroku pg:psql` runs (tests of the Heroku CLI's data commands)
#   redis-server  one process per Redis add-on (Redis add-on, tests)
#   default-jre-headless, maven  the Kafka add-on's broker, fetched from Maven Central
#   npm           installs the official Heroku CLI the tests run against Berth
#   golang-go     builds the published OSB client the broker's tests drive (scripts/build-osb-client.sh),
#                 unless a Go toolchain is already there (on PATH or in /usr/local/go)
#   chromium      the headless browser the end-to-end page tests drive (playwright, no download)
#   bubblewrap    the sandbox builds and dynos run in (berth/supervise/sandbox.py)
#   pigz          compresses slugs on every core (berth/platform/slugs.py; gzip in-process without it)
#   mmdebstrap    builds the stack, the sandbox's Debian root filesystem (scripts/build-stack.sh)
#   nginx-light   the router in front of web dynos (berth/platform/router/)
#   git           `git http-backend` serves each app's repository (berth/platform/git/)
#   docker.io     dockerd for the Swarm test harness's "machines" (tests/cluster/) and the stack/app
#                 images (berth/platform/dynos/images.py); never started as a system service: the harness
#                 starts its own daemons, one per network namespace
#   docker-registry  the image registry those daemons push to and pull from (no outside registry here)
#   iproute2      `ip netns`/veth/bridge for the harness's machines
#   busybox-static  the harness's tiny test image (a static binary imported as an image, no registry needed)
#   wrk         HTTP load generator, only with --bench
# Idempotent and silent when everything is present. Debian's postgresql
# package may create and start a "main" cluster on port 5432; Berth never
# uses it and leaves it alone.
set -euo pipefail

usage() { echo "usage: $0 [--bench]" >&2; }

bench=0
for arg in "$@"; do
    case "$arg" in
        --bench) bench=1 ;;
        -h | --help) usage; exit 0 ;;
        *) usage; exit 2 ;;
    esac
done

have_initdb() {
    # Debian keeps the real server tools per version, off PATH.
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

missing=()
have_initdb || missing+=(postgresql)
command -v psql >/dev/null || missing+=(postgresql-client)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v java >/dev/null || missing+=(default-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v npm >/dev/null || missing+=(npm)
command -v go >/dev/null || [[ -x /usr/local/go/bin/go ]] || missing+=(golang-go)
command -v chromium >/dev/null || missing+=(chromium fonts-liberation)
command -v bwrap >/dev/null || missing+=(bubblewrap)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v pigz >/dev/null || missing+=(pigz)
[[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null || missing+=(nginx-light)
[[ -x "$(git --exec-path 2>/dev/null)/git-http-backend" ]] || missing+=(git)
# The machine image may ship a docker client of its own in /usr/local/bin: look for Debian's daemon.
[[ -x /usr/sbin/dockerd ]] || missing+=(docker.io)
command -v docker-registry >/dev/null || [[ -x /usr/bin/docker-registry ]] || missing+=(docker-registry)
command -v ip >/dev/null || missing+=(iproute2)
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || missing+=(busybox-static)
if ((bench)) && ! command -v wrk >/dev/null; then
    missing+=(wrk)
fi
((${#missing[@]} == 0)) && exit 0

as_root=()
if ((EUID != 0)); then
    command -v sudo >/dev/null || { echo "need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    as_root=(sudo)
fi

echo "installing system packages: ${missing[*]}" >&2
# docker.io, containerd and docker-registry start system services from their maintainer scripts
# (a dockerd as root on every interface, a registry on :5000). Berth's harness starts its own daemons,
# so forbid service starts during the install (policy-rc.d exit 101, invoke-rc.d's documented way)
# unless the machine already forbids them, and put things back afterwards.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e "$policy" ]]; then
    "${as_root[@]}" sh -c "printf '#!/bin/sh\n# Berth: no service starts during install-system-packages.sh\nexit 101\n' > $policy && chmod 755 $policy"
    made_policy=1
fi
cleanup_policy() { if ((made_policy)); then "${as_root[@]}" rm -f "$policy"; fi; }
trap cleanup_policy EXIT
# env rather than export: sudo drops most of the caller's environment.
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Where systemd runs, also keep the services from starting at the next boot.
if [[ -d /run/systemd/system ]]; then
    for unit in docker.service docker.socket containerd.service docker-registry.service; do
        "${as_root[@]}" systemctl disable --now "$unit" >/dev/null 2>&1 || true
    done
fi

if [[ " ${missing[*]} " == *" postgresql "* ]] && ! have_initdb; then
    echo "postgresql installed but no /usr/lib/postgresql/*/bin/initdb found" >&2
    exit 1
fi
