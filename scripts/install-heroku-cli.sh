#!/usr/bin/env bash
# Install the official Heroku CLI (npm package `heroku`) into .cache/heroku-cli/<version> (outside
# git), for the tests that check Berth against it, and the `heroku-builds` plugin (`heroku builds`,
# builds:info, builds:output, builds:cache:purge) into .cache/heroku-cli/<version>-plugins, a data
# directory laid out by the CLI's own `heroku plugins:install`: run the CLI with
# HEROKU_DATA_DIR=<that directory> to have the plugin. Idempotent: does nothing when both are there.
# Usage: scripts/install-heroku-cli.sh   (prints nothing when already installed)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="11.10.0"  # the version the outside review used; keep in step with tests/heroku_cli.py
DEST="$ROOT/.cache/heroku-cli/$VERSION"
PLUGINS="$DEST-plugins"
# heroku-builds is a pre-oclif (v5) plugin: the CLI loads it through @oclif/plugin-legacy.
BUILDS_PLUGIN="heroku-builds@0.0.29"
LEGACY_PLUGIN="@oclif/plugin-legacy@2.1.0"

install_cli() {
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
}

install_plugins() {
  TMP="$(mktemp -d "$PLUGINS.tmp.XXXXXX")"
  trap 'rm -rf "$TMP"' EXIT
  # The CLI installs into its data directory; its home and cache are throwaway (no telemetry, no prompts).
  local cli_env=(env HEROKU_DATA_DIR="$TMP/data" HOME="$TMP/home" XDG_CACHE_HOME="$TMP/home/.cache"
                 XDG_CONFIG_HOME="$TMP/home/.config" HEROKU_SKIP_NEW_VERSION_CHECK=1 DISABLE_TELEMETRY=true
                 HEROKU_DISABLE_TELEMETRY=true CI=true)
  for plugin in "$LEGACY_PLUGIN" "$BUILDS_PLUGIN"; do
    "${cli_env[@]}" "$DEST/node_modules/.bin/heroku" plugins:install "$plugin" >"$TMP/install.log" 2>&1 || {
      cat "$TMP/install.log" >&2; echo "install-heroku-cli: heroku plugins:install $plugin failed" >&2; exit 1; }
  done
  # @oclif/plugin-legacy 2.1.0 (the newest) predates @oclif/core 4, which this CLI runs, in two places,
  # adapted here and nowhere else: core 4 asks a plugin for getCommandIDs() (plugin-legacy answers
  # getCommandIds(), so `heroku builds` is "not found"), and wants a command's arguments as an object
  # of Args (plugin-legacy gives an array, so `heroku builds:info ID` fails "arg.parse is not a function").
  local legacy="$TMP/data/node_modules/@oclif/plugin-legacy/lib/index.js"
  local ids='^    async getCommandIds() {$'
  local super_ids='(await super\.getCommandIds())'
  local args='^        V5\.args = (c\.args || \[\])\.map((a) => (Object\.assign(Object\.assign({}, a), { required: a\.required !== false && !a\.optional })));$'
  grep -q "$ids" "$legacy" && grep -q "$super_ids" "$legacy" && grep -q "$args" "$legacy" || {
    echo "install-heroku-cli: $LEGACY_PLUGIN is not the code this script adapts; check $legacy" >&2; exit 1; }
  sed -i -e "s/$ids/    async getCommandIDs() { return this.getCommandIds(); }\n    async getCommandIds() {/" \
         -e "s/$super_ids/(await super.getCommandIDs())/" \
         -e "s/$args/        V5.args = Object.fromEntries((c.args || []).map((a) => [a.name, core_1.Args.string(Object.assign(Object.assign({}, a), { required: a.required !== false \&\& !a.optional }))]));/" \
         "$legacy"
  "${cli_env[@]}" "$DEST/node_modules/.bin/heroku" builds:info --help >/dev/null 2>"$TMP/check.log" || {
    cat "$TMP/check.log" >&2; echo "install-heroku-cli: the CLI does not load $BUILDS_PLUGIN" >&2; exit 1; }
  rm -rf "$TMP/home" "$TMP/install.log" "$TMP/check.log"
  touch "$TMP/.complete"
  rm -rf "$PLUGINS"
  mv "$TMP" "$PLUGINS"
  trap - EXIT
  echo "install-heroku-cli: $BUILDS_PLUGIN (with $LEGACY_PLUGIN) in $PLUGINS/data"
}

[ -x "$DEST/node_modules/.bin/heroku" ] && [ -e "$DEST/.complete" ] || install_cli
[ -e "$PLUGINS/.complete" ] || install_plugins
