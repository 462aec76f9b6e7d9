#!/usr/bin/env bash
# Install the official Heroku CLI (npm package `heroku`) into .cache/heroku-cli/<version> (outside
# git), for the tests that check Berth against it. Idempotent: does nothing when it is there.
# Usage: scripts/install-heroku-cli.sh   (prints nothing when already installed)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="11.10.0"  # the version the outside review used; keep in step with tests/heroku_cli.py
DEST="$ROOT/.cache/heroku-cli/$VERSION"

[ -x "$DEST/node_modules/.bin/heroku" ] && [ -e "$DEST/.complete" ] && exit 0
command -v npm >/dev/null || { echo "install-heroku-cli: npm is not installed (apt-get install npm)" >&2; exit 1; }
mkdir -p "$(dirname "$DEST")"
TMP="$(mktemp -d "$DEST.tmp.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
# --ignore-scripts: nothing the CLI needs builds native code, and no package script runs here.
npm install --silent --no-audit --no-fund --ignore-scripts --prefix "$TMP" "heroku@$VERSION" >/dev/null
touch "$TMP/.complete"
rm -rf "$DEST"
mv "$TMP" "$DEST"
trap - EXIT
echo "install-heroku-cli: heroku $VERSION in $DEST"
