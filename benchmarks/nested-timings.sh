#!/usr/bin/env bash
# Boot timings of jkrun vs cvmm (C) with libkrunfw's kernel, meant to run INSIDE L1:
#
#   ./jkrun-nested -- benchmarks/nested-timings.sh            (N=3 runs each; N=5 ... for more)
#
# Per run it measures, from just before the process is started (bash $EPOCHREALTIME, no fork):
#   first = the first byte on the VMM's stdout (the guest console: hvc0 over virtio-console)
#   exit  = the process has exited (kernel panic -> reboot=k -> outb 0xFE to port 0x64 -> VMM stops)
# for `JKRUN_NO_BUILD=1 ./jkrun boot` and `guests/target/cvmm --krunfw LIB --console --mem 512`,
# and the wall time of `JKRUN_NO_BUILD=1 ./jkrun run -- /bin/true` (cvmm has no virtio-fs, so there
# is no C baseline for that one), then in-JVM start() -> exit status of /bin/true (InJvmRun, median of N after
# a warm-up; its ratio to the process shows JVM start-up). Build on the host first (./jkrun setup; make -C
# guests; mvn -q -o install -DskipTests -pl benchmarks -am && benchmarks/run queue, which copies its lib/).
set -u
cd "$(dirname "$0")/.." || exit 1
N=${N:-3}
LIB=${JKRUN_KRUNFW:-$HOME/.cache/jkrun/libkrunfw.so.5}
CVMM=guests/target/cvmm
TIMEOUT=${TIMEOUT:-600}
export JKRUN_NO_BUILD=1

[ -x "$CVMM" ] || { echo "nested-timings: $CVMM missing (make -C guests on the host)" >&2; exit 2; }
[ -f "$LIB" ] || { echo "nested-timings: $LIB missing (./jkrun setup on the host)" >&2; exit 2; }
[ -e /dev/kvm ] || { echo "nested-timings: no /dev/kvm (run it through ./jkrun-nested)" >&2; exit 2; }

now_us() { local t=${EPOCHREALTIME/[.,]/}; echo $((10#$t)); }

# measure CMD...: sets FIRST_MS (empty if no output), EXIT_MS, RC; stdout is drained, stderr -> $ERRLOG
ERRLOG=$(mktemp)
measure() {
    local t0 t1 t2 c
    FIRST_MS= ; t0=$(now_us)
    coproc VMM { exec timeout "$TIMEOUT" "$@" 2>>"$ERRLOG" </dev/null; }
    local fd=${VMM[0]} pid=$VMM_PID
    if IFS= read -r -d '' -n1 -u "$fd" c; then t1=$(now_us); FIRST_MS=$(( (t1 - t0) / 1000 )); fi
    cat <&"$fd" >/dev/null
    wait "$pid"; RC=$?; [ "$RC" = 0 ] || bad=1
    t2=$(now_us); EXIT_MS=$(( (t2 - t0) / 1000 ))
}

median() { printf '%s\n' "$@" | grep -E '^[0-9]+$' | sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "-"}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9]+$/ && b ~ /^[0-9]+$/ && b > 0) printf "%.2f", a/b; else printf "-" }'; }

declare -a jf je cf ce rt
echo "== nested-timings: NESTED TCG numbers (L1 = QEMU TCG with emulated SVM, L2 = the microVM)."
echo "== Absolute times are inflated 10-100x and noisy; only the jkrun/cvmm ratios mean anything."
echo "== N=$N runs each, alternating; times in ms from process start; kernel: $LIB"
# a run that does not exit 0 is reported and left out of the medians (its stdout may not be the console)
keep() { if [ "$RC" = 0 ]; then echo "$1"; else echo x; fi; }
for ((i = 1; i <= N; i++)); do
    measure ./jkrun boot
    echo "run $i  jkrun boot          first=${FIRST_MS:-none} ms  exit=$EXIT_MS ms  status=$RC"
    jf+=("$(keep "${FIRST_MS:-x}")"); je+=("$(keep "$EXIT_MS")")
    measure "$CVMM" --krunfw "$LIB" --console --mem 512
    echo "run $i  cvmm --krunfw       first=${FIRST_MS:-none} ms  exit=$EXIT_MS ms  status=$RC"
    cf+=("$(keep "${FIRST_MS:-x}")"); ce+=("$(keep "$EXIT_MS")")
    measure ./jkrun run -- /bin/true
    echo "run $i  jkrun run /bin/true                    exit=$EXIT_MS ms  status=$RC"
    rt+=("$(keep "$EXIT_MS")")
done
mjf=$(median "${jf[@]}"); mje=$(median "${je[@]}"); mcf=$(median "${cf[@]}"); mce=$(median "${ce[@]}"); mrt=$(median "${rt[@]}")
echo
printf '%-34s %10s %10s %14s\n' "median (ms)" jkrun cvmm "jkrun/cvmm"
printf '%-34s %10s %10s %14s\n' "boot: start -> first console byte" "$mjf" "$mcf" "$(ratio "$mjf" "$mcf")"
printf '%-34s %10s %10s %14s\n' "boot: start -> exit (reset)" "$mje" "$mce" "$(ratio "$mje" "$mce")"
printf '%-34s %10s %10s %14s\n' "run -- /bin/true: wall" "$mrt" "n/a" "n/a (cvmm has no virtio-fs)"
# In-JVM start() -> exit status of /bin/true (warm JVM, median of N after one warm-up run).
jar=$(ls benchmarks/target/jkrun-benchmarks-*.jar 2>/dev/null | head -n1)
if [ -n "$jar" ] && [ -d benchmarks/target/lib ]; then
    # shellcheck disable=SC2086
    java ${JKRUN_JAVA_OPTS:--XX:+UseSerialGC -XX:UseAVX=0} -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
        -cp "$jar:benchmarks/target/lib/*" dev.jkrun.benchmarks.InJvmRun n="$N" > "$ERRLOG.jvm" 2>>"$ERRLOG" || bad=1
    mjr=$(sed -n 's/^RESULT in_jvm_run_true median_ms=\([0-9]*\).*/\1/p' "$ERRLOG.jvm"); rm -f "$ERRLOG.jvm"
else
    mjr=-; echo "nested-timings: benchmarks jar missing (mvn install -pl benchmarks -am on the host): no in-JVM number" >&2
fi
printf '%-34s %10s %10s %14s\n' "run /bin/true: in-JVM start->exit" "${mjr:--}" "n/a" "$(ratio "${mjr:-x}" "$mrt") of the process"
echo "RESULT jkrun_first_ms=$mjf cvmm_first_ms=$mcf first_ratio=$(ratio "$mjf" "$mcf") jkrun_exit_ms=$mje cvmm_exit_ms=$mce exit_ratio=$(ratio "$mje" "$mce") jkrun_run_true_ms=$mrt in_jvm_run_true_ms=${mjr:--}"
if [ "${bad:-0}" = 1 ]; then
    echo "nested-timings: some run did not exit 0 (left out of the medians; a JVM crash leaves hs_err_pid*.log here); stderr:" >&2
    tail -n 20 "$ERRLOG" >&2
fi
rm -f "$ERRLOG"
[ "${bad:-0}" = 0 ]
