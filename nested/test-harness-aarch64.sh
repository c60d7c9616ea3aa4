#!/usr/bin/env bash
# Tests for ./jkrun-nested --arch aarch64 (the arm64 L1: qemu-system-aarch64 -M virt,virtualization=on under TCG,
# with an arm64 Debian root from the cache). Prints one line per check, the measured timings, and a final
# "N passed, M failed"; exits non-zero on failure. Each check boots L1 once (~4-6 s on 2 cores, after the first
# set-up); the timeout check takes ~30 s (JKRUN_NESTED_TEST_TIMEOUT_S overrides the 30).
# The KVM probe (nested/kvmprobe-aarch64.c) is cross-built with aarch64-linux-gnu-gcc -static into nested/target/;
# gcc-aarch64-linux-gnu is installed with apt when missing and this runs as root (or with sudo).
set -u -o pipefail
HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(dirname -- "$HERE")
NESTED=$ROOT/jkrun-nested
T=$HERE/target
mkdir -p "$T"
cd "$ROOT" || exit 1

PASS=0
FAIL=0
ok()  { PASS=$((PASS + 1)); echo "ok   - $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $*"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }

OUT=$T/a64-out.txt
ERR=$T/a64-err.txt
RC=0
SECS=0
# nrun1 ARGS...: run jkrun-nested --arch aarch64 once, capture stdout/stderr separately, status, seconds
nrun1() {
  local t0 t1
  t0=$(date +%s.%N)
  "$NESTED" --arch aarch64 "$@" >"$OUT" 2>"$ERR" </dev/null
  RC=$?
  t1=$(date +%s.%N)
  SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
}
# nrun ARGS...: nrun1 under a short timeout, booting L1 again (at most three times in all) when it ends in 124 or
# 125, as nested/test-harness.sh does: a wedge of QEMU's emulation is not the harness's fault. A check that passes
# its own --timeout, or that expects 125, runs once (nrun1).
nrun() {
  local attempt
  if [[ ${1-} == --timeout ]]; then nrun1 "$@"; return; fi
  for attempt in 1 2 3; do
    nrun1 --timeout "${JKRUN_NESTED_CHECK_TIMEOUT_S:-300}" "$@"
    [[ $RC == 124 || $RC == 125 ]] || return 0
    echo "    (attempt $attempt: L1 ended with status $RC after ${SECS} s: $(tail -1 "$ERR"))"
  done
}
show() { sed 's/^/    | /' "$OUT"; sed 's/^/    ! /' "$ERR"; }
has_out() { grep -qF -- "$1" "$OUT"; }

# 0. usage errors are immediate and exit 2
nrun1
check "usage error without a command exits 2" test "$RC" = 2
"$NESTED" --arch sparc -- true >/dev/null 2>&1
check "an unknown --arch exits 2" test "$?" = 2

# 1. set-up (first run: downloads and assembles the root) and a trivial command
nrun -- true
SETUP=$SECS
check "L1 boots and 'true' exits 0 (${SETUP} s, set-up included if it was the first run)" test "$RC" = 0
[[ $RC == 0 ]] || show
nrun -- true
BOOT=$SECS
check "a second 'true' (cached set-up) exits 0 (round trip ${BOOT} s)" test "$RC" = 0

# 2. L1 is arm64 at EL2 with KVM; the probe's checks on L1's /dev/kvm
PROBE=$T/kvmprobe-aarch64
if ! command -v aarch64-linux-gnu-gcc >/dev/null && { [[ $(id -u) == 0 ]] || sudo -n true 2>/dev/null; }; then
  echo "    (installing gcc-aarch64-linux-gnu to cross-build the probe)"
  SUDO=(); [[ $(id -u) == 0 ]] || SUDO=(sudo -n)
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
    >"$T/a64-apt.log" 2>&1 \
    || { "${SUDO[@]}" apt-get update -q >>"$T/a64-apt.log" 2>&1
         DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
           >>"$T/a64-apt.log" 2>&1; }
fi
rm -f "$PROBE"
if ! aarch64-linux-gnu-gcc -static -O2 -Wall -Wextra -o "$PROBE" "$HERE/kvmprobe-aarch64.c" 2>"$T/a64-gcc.log"; then
  echo "    (aarch64-linux-gnu-gcc failed: $(head -3 "$T/a64-gcc.log"))"
fi
check "the probe cross-builds (aarch64-linux-gnu-gcc -static)" test -x "$PROBE"
nrun -- sh -c 'echo "ARCH $(uname -m)"; dmesg | grep -q "CPU(s) started at EL2" && echo EL2_YES
               dmesg | grep -q "kvm.*VHE mode initialized successfully" && echo KVM_VHE
               test -c /dev/kvm && echo DEVKVM_YES
               s=$(date +%s%N); "$1" all; rc=$?; e=$(date +%s%N); echo "PROBE_MS $(( (e - s) / 1000000 ))"; exit $rc' sh "$PROBE"
PROBE_RC=$RC
check "L1 is aarch64 and its CPUs started at EL2" sh -c "grep -qx 'ARCH aarch64' '$OUT' && grep -q EL2_YES '$OUT'"
check "L1's KVM initialised in VHE mode" has_out KVM_VHE
check "/dev/kvm exists in L1 and KVM_GET_API_VERSION is 12" sh -c "grep -q DEVKVM_YES '$OUT' && grep -q '^KVM_API_VERSION 12$' '$OUT'"
check "KVM caps: ONE_REG, ARM_PSCI_0_2, IOEVENTFD, IRQFD, DEVICE_CTRL present ($(grep -o 'IPA limit [0-9]* bits' "$OUT"))" has_out "ok caps:"
check "an L2 guest's store of 42 to 0x10000000 gives KVM_EXIT_MMIO (is_write, data 42)" has_out "ok mmio 1: "
check "PSCI SYSTEM_OFF by hvc #0 gives KVM_EXIT_SYSTEM_EVENT SHUTDOWN ($(awk '/^PREFERRED_TARGET/ {print "target", $2, $3}' "$OUT"))" has_out "ok psci: "
check "in-kernel GICv3 + ITS created, initialised, and the guest runs with it" sh -c "grep -q '^ok gic: ' '$OUT' && grep -q '^ok mmio 1 with GICv3' '$OUT'"
check "1000 MMIO exits, then the shutdown" sh -c "grep -q '^ok mmio 1000: ' '$OUT' && grep -q '^MMIO_EXITS 1000 OTHER_EXITS 0 SHUTDOWN 1$' '$OUT'"
check "the probe exits 0 with no FAIL line (status $PROBE_RC)" sh -c "test $PROBE_RC = 0 && ! grep -q '^FAIL' '$OUT'"
MMIO_US=$(awk '/^MMIO_TOTAL_US/ {print $4}' "$OUT")
PROBE_S=$(awk '/^PROBE_MS/ {printf "%.2f", $2 / 1000}' "$OUT")
[[ $PROBE_RC == 0 ]] || show

# 3-6. the checkout shared at the same path, status, stdout/stderr, failing commands, arguments
NAME_PREFIX=a64- . "$HERE/contract-checks.sh"

# 7. 1 MiB of binary stdout arrives byte for byte (virtio-serial port, not a tty; nothing lost at power-off)
head -c 1048576 /dev/urandom >"$T/a64-rand.bin"
nrun -- cat nested/target/a64-rand.bin
BIN_S=$SECS
check "1 MiB of binary stdout arrives unchanged (${BIN_S} s round trip)" sh -c "test $RC = 0 && cmp -s '$OUT' '$T/a64-rand.bin'"

# 8. environment: HOME/CI pass through, JAVA_HOME and PATH are L1's own, others do not pass
EXP_ENV="CI=${CI-unset} JAVA_HOME=/usr/lib/jvm/java-17-openjdk-arm64 HOME=$HOME SECRETX=unset"
export SECRETX=1
JAVA_HOME=/host/jdk nrun -- sh -c 'echo "CI=${CI-unset} JAVA_HOME=${JAVA_HOME-unset} HOME=$HOME SECRETX=${SECRETX-unset}"; echo "$PATH"'
unset SECRETX
check "caller's CI/HOME pass, JAVA_HOME is L1's, other variables do not ($(head -1 "$OUT"))" test "$(head -1 "$OUT")" = "$EXP_ENV"
check "PATH is L1's own, the arm64 JDK's bin first ($(sed -n 2p "$OUT"))" \
  sh -c "sed -n 2p '$OUT' | grep -q '^/usr/lib/jvm/java-17-openjdk-arm64/bin:.*/usr/bin'"

# 9. java runs inside L1 (the arm64 JDK), and bash and busybox's applets are found
nrun -- sh -c 's=$(date +%s%N); java -version; e=$(date +%s%N); echo "JAVA_MS $(( (e - s) / 1000000 ))"
               java -XshowSettings:properties -version 2>&1 | grep -E "^ +os.arch ="; bash -c "echo BASH \$BASH_VERSION"; ps >/dev/null && echo PS_YES'
JAVA_S=$(awk '/^JAVA_MS/ {printf "%.1f", $2 / 1000}' "$OUT")
check "java -version runs inside L1 (${JAVA_S} s inside)" sh -c "test $RC = 0 && grep -q 'openjdk version \"17' '$ERR'"
check "java is the arm64 JDK (os.arch aarch64)" grep -q 'os.arch = aarch64' "$OUT"
check "bash and busybox applets (ps) are on PATH" sh -c "grep -q '^BASH 5' '$OUT' && grep -q PS_YES '$OUT'"
[[ $RC == 0 ]] || show

# 10. a broken L1 gives 125 and a clear line: a QEMU that fails, a kernel with no init (panics), a bad share
JKRUN_NESTED_AARCH64_QEMU=false nrun1 -- true
check "a QEMU that fails: status 125 (got $RC)" test "$RC" = 125
check "... with one line saying L1 stopped ($(head -1 "$ERR"))" grep -q '^jkrun-nested: L1 stopped without reporting a status (qemu exit 1)' "$ERR"
JKRUN_NESTED_AARCH64_APPEND=rdinit=/nonexistent nrun1 --timeout 120 -- true
check "an L1 kernel that panics (no init): status 125 in ${SECS} s (got $RC)" \
  sh -c "test $RC = 125 && awk -v s=$SECS 'BEGIN {exit !(s < 60)}'"
check "... with one line saying L1 stopped or panicked ($(head -1 "$ERR"))" \
  grep -qE '^jkrun-nested: L1 (stopped without reporting a status|locked up or panicked)' "$ERR"
SPACE=$(mktemp -d "${TMPDIR:-/tmp}/jkrun-a64.XXXXXX")   # outside the checkout and $HOME, so it is shared on its own
mkdir -p "$SPACE/a b"
nrun1 --rw "$SPACE/a b" -- true
check "a read-write share with a space: status 125 and one line (got $RC)" \
  sh -c "test $RC = 125 && test \$(wc -l <'$ERR') = 1 && grep -q 'cannot share a path with spaces' '$ERR'"
rm -rf "$SPACE"

# 11. a hung command is killed at the timeout with one clear line and status 124
TO=${JKRUN_NESTED_TEST_TIMEOUT_S:-30}
nrun --timeout "$TO" -- sleep 100000
check "hung command killed at --timeout $TO: status 124 (got $RC after ${SECS} s)" test "$RC" = 124
check "timeout message" grep -qx "jkrun-nested: command timed out after $TO s" "$ERR"
check "killed near the timeout (${SECS} s)" awk -v s="$SECS" -v t="$TO" 'BEGIN {exit !(s >= t && s < t + 15)}'

echo "timings: first run ${SETUP} s; L1 round trip for 'true' ${BOOT} s; probe ${PROBE_S:-?} s (MMIO exit ${MMIO_US:-?} us); java -version in L1 ${JAVA_S:-?} s; 1 MiB stdout ${BIN_S} s"
echo "$PASS passed, $FAIL failed"
((FAIL == 0))
