#!/usr/bin/env bash
# Build the stack (Debian bookworm root filesystem for builds and dynos) with mmdebstrap into
# .cache/stack/bookworm-<hash of its package list> (outside git; BERTH_STACK_DIR overrides), once per
# machine and per package list. Idempotent: does nothing when that stack is there. Atomic: built in a
# temporary directory, renamed into place. See berth/supervise/stack.py and stack-packages.txt.
# Usage: scripts/build-stack.sh   (PYTHON: the interpreter with Berth's requirements, default .venv's)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
command -v mmdebstrap >/dev/null || { echo "build-stack: mmdebstrap is not installed (apt-get install mmdebstrap)" >&2; exit 1; }
cd "$ROOT"
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$PYTHON" -m berth.supervise.stack build
