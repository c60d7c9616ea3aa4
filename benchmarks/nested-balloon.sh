#!/usr/bin/env bash
# Free page reporting with libkrunfw's kernel (BalloonRss), meant to run INSIDE L1 (hardware virtualization):
#
#   ./jkrun-nested -- benchmarks/nested-balloon.sh            (BALLOON_ARGS="mib=1024 mem=3072 wait_s=60")
#
# The guest fills 1 GiB of its tmpfs and removes it; the JVM's VmRSS is sampled until the reported pages have come
# back. Prints the timeline and one RESULT line (returned_pct, half_s, ninety_s). Build on the host first
# (mvn -q -o package -DskipTests -pl benchmarks,cli -am; benchmarks/run queue copies benchmarks/target/lib/).
# First run 2026-12-03: 97 % of a 1 GiB fill returned, half in 4.7 s, 90 % in 7.5 s (README.md, virtio-balloon).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
jar=$(ls benchmarks/target/jkrun-benchmarks-*.jar 2>/dev/null | head -n1)
[ -n "$jar" ] && [ -d benchmarks/target/lib ] || { echo "nested-balloon: benchmarks jar or lib/ missing (build on the host)" >&2; exit 2; }
# shellcheck disable=SC2086
exec java ${JKRUN_JAVA_OPTS:--XX:+UseSerialGC -XX:UseAVX=0} -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -cp "$jar:benchmarks/target/lib/*" dev.jkrun.benchmarks.BalloonRss ${BALLOON_ARGS:-}
