#!/usr/bin/env bash
# Tier 3, the terminal path of `jkrun run`: under a pseudo-terminal (util-linux `script`), the guest console takes
# the terminal's size, follows a resize (SIGWINCH), and Ctrl-C reaches the guest's command. Prints PASS/FAIL lines.
# Part of tests/full-boot.sh. `timeout --foreground`: plain timeout moves the command into its own process group, off the terminal's
# foreground, where the JVM's first tcsetattr (raw mode) stops it with SIGTTOU -- a hang with no output.
#   tests/terminal.sh SCRATCH_DIR
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
work=$1; mkdir -p "$work"
command -v script >/dev/null || { echo "FAIL terminal: util-linux 'script' is missing"; exit 1; }
until_seen() { # file, text, seconds
  for _ in $(seq 1 $(( $3 * 10 ))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1
}

# 1. size at start and after a resize. A background job on the same terminal resizes it once the guest printed its
#    first size; the terminal's foreground group (the JVM) gets SIGWINCH and passes the size on.
log="$work/tty-size.log"; rm -f "$log"
script -qefc "stty rows 33 cols 111; ( until grep -q 'size1 [0-9]' '$log' 2>/dev/null; do sleep 0.2; done; stty rows 44 cols 122 </dev/tty ) & \
  timeout --foreground 600 ./jkrun run -- /bin/sh -c 'echo size1 \$(stty size); sleep 8; echo size2 \$(stty size)'" "$log" </dev/null >/dev/null 2>&1
st=$?
if grep -q 'size1 33 111' "$log"; then echo "PASS terminal: the guest console starts with the terminal's size (33x111)"; else
  echo "FAIL terminal: the guest console starts with the terminal's size (status $st)"; tr -d '\r' < "$log" | tail -n 5 | sed 's/^/  /'; fi
if grep -q 'size2 44 122' "$log"; then echo "PASS terminal: a resize (SIGWINCH) reaches the guest (44x122)"; else
  echo "FAIL terminal: a resize (SIGWINCH) reaches the guest (status $st)"; tr -d '\r' < "$log" | tail -n 5 | sed 's/^/  /'; fi

# 2. Ctrl-C typed on the terminal interrupts the guest's command: status 130. The guest's shell reports the SIGINT
#    itself, so a ^C that the host's terminal turned into a SIGINT for jkrun (no raw mode) cannot pass.
# The FIFO lives in ${TMPDIR:-/tmp}: the checkout may be a 9p share (./jkrun-nested), where mkfifo fails.
log="$work/tty-intr.log"; fifo=$(mktemp -u "${TMPDIR:-/tmp}/jkrun-tty.XXXXXX"); rm -f "$log"; mkfifo "$fifo"
script -qefc "timeout --foreground 600 ./jkrun run -- /bin/sh -c 'trap \"echo guest-got-sigint; exit 130\" INT; echo ready; sleep 300 & wait'" \
  "$log" <"$fifo" >/dev/null 2>&1 &
pid=$!
exec 3>"$fifo"
if until_seen "$log" ready 500; then sleep 1; printf '\003' >&3; fi
wait "$pid"; st=$?
exec 3>&-
rm -f "$fifo"
if [ "$st" = 130 ] && grep -q guest-got-sigint "$log"; then echo "PASS terminal: Ctrl-C reaches the guest's command (status 130)"; else
  echo "FAIL terminal: Ctrl-C reaches the guest's command (status $st, want 130)"; tr -d '\r' < "$log" | tail -n 5 | sed 's/^/  /'; fi
