#!/usr/bin/env bash
# Compiles tests/ApiE2E.java against the built jars (when it is newer than its class) and runs it.
#   tests/api-e2e.sh SCRATCH_DIR     (the directory must be one the guest can share: not under /tmp in the harness)
#   tests/api-e2e.sh --compile       only compile (./run-tests does it before entering the slow nested host)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
jar=$(ls cli/target/jkrun-cli-*.jar | head -n1)
cp="$jar:cli/target/lib/*"
out=.jkrun/api-e2e
if [ ! -f "$out/ApiE2E.class" ] || [ tests/ApiE2E.java -nt "$out/ApiE2E.class" ] || [ "$jar" -nt "$out/ApiE2E.class" ]; then
  mkdir -p "$out"
  javac -d "$out" -cp "$cp" tests/ApiE2E.java
fi
# the static workload of the virtual-root case (served from memory in a root without a host directory)
if [ ! -x "$out/virtual-root-agent" ] || [ tests/virtual-root-agent.c -nt "$out/virtual-root-agent" ]; then
  mkdir -p "$out"
  gcc -O2 -Wall -Wextra -static -o "$out/virtual-root-agent" tests/virtual-root-agent.c
fi
[ "${1:-}" = --compile ] && exit 0
# shellcheck disable=SC2086
exec java ${JKRUN_JAVA_OPTS:-} -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$out:$cp" ApiE2E "$@"
