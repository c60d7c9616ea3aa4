# Shared by the tier-3 sub-suites tests/vsock.sh and tests/tsi.sh: source it after setting SUITE (the PASS/FAIL
# prefix). Run from the repository root.
pass() { echo "PASS $SUITE: $1"; }
# Every line of the detail indented: full-boot.sh's tally passes on only indented lines after a FAIL.
fail() { echo "FAIL $SUITE: $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/  /'; }
check() { if [ "$2" = 0 ]; then pass "$1"; else fail "$1" "${3:-}"; fi; }
# ./jkrun under a deadline; a run whose JVM crashed or whose guest triple-faulted or reset with no panic line is run
# again with a RETRY line, three attempts in all (QEMU's emulation under ./jkrun-nested has rare faults of its own,
# nested/README.md: an L2 guest of a tsi.sh run once triple-faulted at the reset vector mid-run; a fault of jkrun's
# own fails every attempt). Output is kept apart per attempt, then passed on; stdin is not replayed (none of these
# runs reads it).
jkr() {
  local st o e a notes=""
  o=$(mktemp); e=$(mktemp)
  for a in 1 2 3; do
    timeout -k 30 "${JK_TIMEOUT:-300}" ./jkrun "$@" >"$o" 2>"$e"; st=$?
    [ "$a" != 3 ] || break
    [ "$st" = 134 ] || { [ "$st" != 0 ] && grep -q -e 'CRASH: triple fault' -e 'REBOOT: guest reset the machine' "$e"; } || break
    notes="${notes}RETRY $SUITE: the JVM aborted or the guest triple-faulted or reset (status $st); ./jkrun $1 ran again
"
  done
  printf '%s' "$notes" >>"$e"
  cat "$o"; cat "$e" >&2; rm -f "$o" "$e"
  return "$st"
}
