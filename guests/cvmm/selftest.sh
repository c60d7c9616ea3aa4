#!/bin/sh
# Runs every test guest under cvmm on /dev/kvm and checks its exit status.
#   guests/cvmm/selftest.sh [guest-dir] [cvmm]      (defaults: target/classes/guests, target/cvmm)
cd "$(dirname "$0")/.." || exit 1
G=${1:-target/classes/guests}; V=${2:-target/cvmm}; fails=0
run() { # want-status description -- cvmm args...
    want=$1; shift; desc=$1; shift
    out=$(timeout 30 "$V" "$@" 2>&1); rc=$?
    if [ "$rc" = "$want" ]; then echo "PASS $desc (exit $rc)"; else echo "FAIL $desc: exit $rc, want $want"; fails=$((fails+1)); fi
    echo "$out" | sed 's/^/    /'
}
for c in 1 2 4; do
  run 0 "boot_check cpus=$c" --cpus $c --mem 256 --cmdline "jkrun.test.ram=268435456 jkrun.test.cpus=$c jkrun.test.marker=xyz" "$G/boot_check"
done
run 0 "boot_check 8 GiB" --mem 8192 --cmdline "jkrun.test.ram=8589934592 jkrun.test.cpus=1 jkrun.test.marker=xyz" "$G/boot_check"
for c in 1 2 4; do run 0 "smp cpus=$c" --cpus $c "$G/smp"; done
run 0 "memtop 8 GiB" --mem 8192 "$G/memtop"
run 0 "irq" "$G/irq"
run 0 "exit_status 0" "$G/exit_status"
run 42 "exit_status 42" --cmdline "jkrun.test.status=42" "$G/exit_status"
run 0 "pio_loop 10000" --cmdline "jkrun.test.n=10000" "$G/pio_loop"
run 208 "triple_fault -> SHUTDOWN" "$G/triple_fault"
# kvm-pvm cannot emulate cmpxchg16b: 217 (INTERNAL_ERROR); hardware virtualisation: 0
run "${BAD_INSN_STATUS:-217}" "bad_insn" "$G/bad_insn"
run 1 "console without a device" "$G/console"
out=$( (sleep 0.3; printf 'hello host\n') | timeout 30 "$V" --console "$G/console" 2>&1); rc=$?
if [ $rc = 0 ] && echo "$out" | grep -q '^RX hello host$'; then echo "PASS console with cvmm --console"; else echo "FAIL console: exit $rc"; fails=$((fails+1)); fi
echo "$out" | sed 's/^/    /'
# libkrunfw's kernel: kvm-pvm stops at its first cmpxchg16b (217); hardware / nested: panic -> reset -> 0
K=${JKRUN_KRUNFW:-$HOME/.cache/jkrun/libkrunfw.so.5}
if [ -f "$K" ]; then
  out=$(timeout 120 "$V" --krunfw "$K" --console --mem 512 2>&1); rc=$?
  if [ "$rc" = "${KRUNFW_STATUS:-217}" ]; then echo "PASS krunfw kernel (exit $rc)"; else echo "FAIL krunfw kernel: exit $rc, want ${KRUNFW_STATUS:-217}"; fails=$((fails+1)); fi
  echo "$out" | tail -n 5 | sed 's/^/    /'
fi
for g in spin halt; do
  timeout 2 "$V" "$G/$g" >/dev/null 2>&1; rc=$?
  if [ $rc = 124 ]; then echo "PASS $g never exits (killed by timeout)"; else echo "FAIL $g: exit $rc"; fails=$((fails+1)); fi
done
echo "failures: $fails"
[ $fails = 0 ]
