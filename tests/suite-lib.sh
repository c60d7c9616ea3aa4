# Shared by the tier-3 sub-suites tests/vsock.sh and tests/tsi.sh: source it after setting SUITE (the PASS/FAIL
# prefix). Run from the repository root.
pass() { echo "PASS $SUITE: $1"; }
fail() { echo "FAIL $SUITE: $1"; [ -n "${2:-}" ] && printf '  %s\n' "$2"; }
check() { if [ "$2" = 0 ]; then pass "$1"; else fail "$1" "${3:-}"; fi; }
# ./jkrun under a deadline; a run whose JVM crashed or whose guest triple-faulted or reset with no panic line is run once more with a RETRY line
# (QEMU's emulation under ./jkrun-nested has rare faults of its own, nested/README.md: an L2 guest of a tsi.sh run
# once triple-faulted at the reset vector mid-run; a fault of jkrun's own fails the second time too).
# Output is kept apart per attempt, then passed on; stdin is not replayed (none of these runs reads it).
jkr() {
  local st o e
  o=$(mktemp); e=$(mktemp)
  timeout -k 30 "${JK_TIMEOUT:-300}" ./jkrun "$@" >"$o" 2>"$e"; st=$?
  if [ "$st" = 134 ] || { [ "$st" != 0 ] && grep -q -e 'CRASH: triple fault' -e 'REBOOT: guest reset the machine' "$e"; }; then
    echo "RETRY $SUITE: the JVM aborted or the guest triple-faulted or reset (status $st); ./jkrun $1 ran once more" >"$e.note"
    timeout -k 30 "${JK_TIMEOUT:-300}" ./jkrun "$@" >"$o" 2>"$e"; st=$?
    cat "$e.note" >>"$e"; rm -f "$e.note"
  fi
  cat "$o"; cat "$e" >&2; rm -f "$o" "$e"
  return "$st"
}
