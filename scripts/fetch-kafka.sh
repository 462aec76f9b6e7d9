#!/usr/bin/env bash
# Fetch the Apache Kafka broker (KRaft) and its runtime jars from Maven Central into
# .cache/kafka/<version>/libs (outside git), for berth.addons.kafka.broker to run with
# `java -cp 'libs/*' kafka.Kafka`. Idempotent: does nothing when the jars are already there.
# Usage: scripts/fetch-kafka.sh [DEST_DIR]   (default .cache/kafka/<version>/libs)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
POM="$ROOT/berth/addons/kafka/pom.xml"
VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")"
DEST="${1:-$ROOT/.cache/kafka/$VERSION/libs}"

# The broker runs as its own unprivileged account (berth-kafka): the jars must be readable by others
# (public software, no secret). A cache fetched before that rule is opened up here.
if ls "$DEST"/kafka_2.13-"$VERSION".jar >/dev/null 2>&1 && [ -e "$DEST/.complete" ]; then
    chmod -R a+rX "$DEST"
    exit 0
fi
for tool in mvn java; do
    if ! command -v "$tool" >/dev/null; then
        echo "fetch-kafka: $tool is not installed (apt-get install maven openjdk-17-jre-headless)" >&2
        exit 1
    fi
done
# Copy into a fresh sibling directory, then move it into place: an interrupted fetch never
# leaves a half-filled libs/ that looks complete.
mkdir -p "$(dirname "$DEST")"
TMP="$(mktemp -d "$DEST.tmp.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$TMP"
touch "$TMP/.complete"
chmod -R a+rX "$TMP"  # mktemp made it 0700
rm -rf "$DEST"
mv "$TMP" "$DEST"
trap - EXIT
echo "fetch-kafka: Apache Kafka $VERSION in $DEST ($(ls "$DEST" | wc -l) jars)"
