#!/usr/bin/env bash
# Tier 3: the libkrunfw kernel boots on real KVM with hardware (or nested) virtualization. Prints a summary line
# "N passed, M failed". Runs where /proc/cpuinfo has vmx or svm (directly, or inside ./jkrun-nested).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
passed=0; failed=0
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

check() { # name, condition-result
  if [ "$2" = 0 ]; then passed=$((passed+1)); echo "PASS $1"; else failed=$((failed+1)); echo "FAIL $1"; fi
}

# boot: the kernel prints its banner on hvc0, panics for lack of a root, resets; the VM stops by the reset path.
timeout 900 ./jkrun boot --timeout 800 >"$out/boot.out" 2>"$out/boot.err"; st=$?
grep -q 'Linux version 6.12' "$out/boot.out"; check "boot: banner 'Linux version 6.12' on hvc0" $?
grep -q 'VM stopped: REBOOT' "$out/boot.err"; check "boot: VM stopped by the reset path" $?
[ "$st" = 0 ]; check "boot: status 0 (was $st)" $?
if [ "$failed" != 0 ]; then tail -n 20 "$out/boot.out" "$out/boot.err"; fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
