#!/usr/bin/env bash
# Inside the nested aarch64 host (tests/aarch64.sh starts it): the aarch64 test guests through JUnit, then Debian's
# arm64 kernel booted by ./jkrun run on a virtio-fs root (L1's own arm64 root, read-only) with the initramfs
# tests/aarch64.sh built. One line per case; "N passed, M failed, K skipped" last.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
a64=$root/.jkrun/aarch64
passed=0; failed=0; skipped=0
pass() { echo "PASS $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }

# 1. the test guests (JUnit); its summary line is added to ours
java -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp "$(cat "$a64/test-classpath.full")" dev.jkrun.vmm.testing.RunTestClasses \
  dev.jkrun.vmm.Aarch64GuestTest >"$a64/junit.out" 2>"$a64/junit.err"
grep -E '^(PASS|FAIL|skip)' "$a64/junit.out"
counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$a64/junit.out" | tail -n 1)
if [ -z "$counts" ]; then
  fail "aarch64 test guests: no summary"; tail -n 30 "$a64/junit.out" "$a64/junit.err"
else
  read -r p _ f _ s _ <<<"${counts//,/}"
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  [ "$f" = 0 ] || sed -n '/^Failures/,$p' "$a64/junit.out" | head -n 40
fi

# 2. ./jkrun check on an arm64 host
./jkrun check >"$a64/check.out" 2>&1
if grep -q 'hardware (arm64' "$a64/check.out" && grep -qi 'KVM capabilities' "$a64/check.out"; then
  pass "jkrun check: arm64 KVM with the capabilities jkrun needs"
else fail "jkrun check"; cat "$a64/check.out"; fi

# 3. Linux: Debian's arm64 kernel, jkrun's init on a virtio-fs root
# ./jkrun run with the Debian kernel and the tier's initramfs; stdout/stderr into $a64/jk.{out,err}. panic=-1: a
# kernel that panics resets at once (a stop reason) instead of hanging. A run that hangs (300 s) is asked where its
# vCPUs are (SIGUSR1: on its stderr), killed, and run once more with a RETRY line, as tests/full-boot.sh does for the
# emulator's own faults under the nested host; a hang of jkrun's own fails both attempts.
jk() {
  local st a
  if [ -t 0 ]; then : >"$a64/jk.in"; else cat >"$a64/jk.in"; fi
  for a in 1 2; do
    timeout -s USR1 -k 20 300 ./jkrun run --kernel "$a64/Image" --initramfs "$a64/initramfs.cpio.gz" --memory 512 \
      --cmdline "panic=-1" "$@" <"$a64/jk.in" >"$a64/jk.out" 2>"$a64/jk.err"; st=$?
    if [ "$st" != 124 ] && [ "$st" != 137 ] || [ "$a" = 2 ]; then return "$st"; fi
    echo "RETRY (hung, status $st): $*"; tail -n 5 "$a64/jk.err"
  done
}
show() { echo "--- stdout"; tail -n 20 "$a64/jk.out"; echo "--- stderr"; tail -n 30 "$a64/jk.err"; }
jk -- /bin/sh -c 'exit 42'; st=$?
if [ "$st" = 42 ]; then pass "linux: exit status 42 from /bin/sh (Debian's arm64 kernel)"; else fail "linux: exit status 42 (was $st)"; show; fi
jk -- /bin/sh -c 'echo hello from $(uname -m); echo to-stderr >&2'; st=$?
if [ "$st" = 0 ] && grep -qx 'hello from aarch64' "$a64/jk.out" && grep -qx 'to-stderr' "$a64/jk.err"; then
  pass "linux: stdout and stderr of the command (uname -m: aarch64)"
else fail "linux: stdout/stderr (status $st)"; show; fi
echo "through stdin" | jk -- /bin/cat; st=$?
if [ "$st" = 0 ] && grep -qx 'through stdin' "$a64/jk.out"; then pass "linux: stdin through cat"; else fail "linux: stdin (status $st)"; show; fi
disk=$a64/disk.img
rm -f "$disk"; head -c $((8 << 20)) /dev/zero >"$disk"
jk --disk "data=$disk:raw" -- /bin/sh -c 'printf "written-by-the-guest" | dd of=/dev/vda bs=512 seek=2048 conv=notrunc,fsync 2>/dev/null && dd if=/dev/vda bs=512 skip=2048 count=1 2>/dev/null | head -c 20'; st=$?
if [ "$st" = 0 ] && grep -q 'written-by-the-guest' "$a64/jk.out" && [ "$(dd if="$disk" bs=512 skip=2048 count=1 2>/dev/null | head -c 20)" = written-by-the-guest ]; then
  pass "linux: a raw disk written by the guest (virtio-blk), read back in the guest and on the host"
else fail "linux: raw disk (status $st)"; show; fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
