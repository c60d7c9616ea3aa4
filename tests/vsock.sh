#!/usr/bin/env bash
# Tier 3, vsock: the libkrunfw guest's own AF_VSOCK sockets (the host's socat, seen through the guest's root) to
# jkrun's unix-socket bridges (--vsock PORT=PATH[:listen]), in both directions; many connections at once with
# checksums. Called by tests/full-boot.sh with a scratch directory and the jk wrapper's environment; prints
# PASS/FAIL lines. Needs socat on the host (run-tests installs it).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
d=${1:?usage: tests/vsock.sh SCRATCH_DIR}
mkdir -p "$d"
# The sockets live on the local /tmp: under ./jkrun-nested the checkout is a 9p mount, where a unix socket's file
# does not lead to its listener.
s=$(mktemp -d); trap 'rm -rf "$s"' EXIT
SUITE=vsock
. tests/suite-lib.sh
if ! command -v socat >/dev/null; then fail "socat is not installed"; exit 0; fi

# 1. guest -> host: the guest connects to CID 2 port 5000, bridged to a unix echo server on the host.
rm -f "$s/echo.sock"
socat -t 600 UNIX-LISTEN:"$s/echo.sock",fork,backlog=128 EXEC:cat >/dev/null 2>&1 & echo_pid=$!
for _ in $(seq 50); do [ -S "$s/echo.sock" ] && break; sleep 0.1; done
jkr run --vsock 5000="$s/echo.sock" -- /bin/sh -c 'echo hello-over-vsock | socat -t 5 - VSOCK-CONNECT:2:5000' \
  >"$d/out" 2>"$d/err1"; st=$?
[ "$st" = 0 ] && [ "$(cat "$d/out")" = hello-over-vsock ]
check "guest connects to a host unix socket (echo)" $? "status $st: $(head -c 400 "$d/out") $(tail -n 5 "$d/err1")"

# 2. 50 connections at once, 2 MiB each, checksummed: 25 upload (the host answers each with the SHA-256 of what it
#    received), 25 download a host file (the guest hashes each). No echo: socat writes to a stream with blocking
#    writes, so an echo larger than the buffers on its way (the guest's 256 KiB receive buffer, the host sockets) can
#    deadlock in socat itself whatever the transport. A guest connect gives up after 2 s (the kernel's vsock
#    connect timeout); 50 at once under the nested emulator can take longer, so socat retries a connect that failed
#    (nothing was sent on it), up to 20 times. Every socat here has -t 600: socat's default 0.5 s after one side's end cut replies
#    short under the emulator (the host's EXEC child was killed before it had written everything).
rm -f "$s/up.sock" "$s/down.sock"
head -c 2097152 /dev/urandom >"$s/blob"; down_sum=$(sha256sum <"$s/blob" | cut -d' ' -f1)
socat -t 600 UNIX-LISTEN:"$s/up.sock",fork,backlog=128 EXEC:sha256sum >/dev/null 2>&1 & up_pid=$!
socat -t 600 -U UNIX-LISTEN:"$s/down.sock",fork,backlog=128 OPEN:"$s/blob",rdonly >/dev/null 2>&1 & down_pid=$!
for _ in $(seq 50); do [ -S "$s/up.sock" ] && [ -S "$s/down.sock" ] && break; sleep 0.1; done
JK_TIMEOUT=900 jkr run --memory 512 --vsock 5000="$s/up.sock" --vsock 5002="$s/down.sock" -- /bin/sh -c '
  cd /tmp; head -c 2097152 /dev/urandom > up; up_sum=$(sha256sum < up | cut -d" " -f1); i=0
  while [ $i -lt 50 ]; do
    if [ $((i % 2)) = 0 ]; then
      (socat -t 600 - VSOCK-CONNECT:2:5000,retry=20,interval=1 < up > r.$i) &
    else
      (socat -t 600 -u VSOCK-CONNECT:2:5002,retry=20,interval=1 - | sha256sum > r.$i) &
    fi
    i=$((i+1))
  done
  wait; bad=0; i=0
  while [ $i -lt 50 ]; do
    if [ $((i % 2)) = 0 ]; then want=$up_sum; else want='"$down_sum"'; fi
    got=$(cut -d" " -f1 < r.$i)
    [ "$got" = "$want" ] || { bad=$((bad+1)); echo "connection $i: want $want, got ${got:-nothing}"; }
    i=$((i+1))
  done
  echo "mismatched $bad"' >"$d/out" 2>"$d/err2"; st=$?
[ "$st" = 0 ] && grep -qx 'mismatched 0' "$d/out"
check "50 concurrent connections, 2 MiB each up or down, checksums match" $? \
  "status $st: $(head -c 400 "$d/out") $(tail -n 5 "$d/err2")"
kill "$up_pid" "$down_pid" 2>/dev/null; wait "$up_pid" "$down_pid" 2>/dev/null
kill "$echo_pid" 2>/dev/null; wait "$echo_pid" 2>/dev/null

# 3. host -> guest: jkrun listens on a unix socket; the host connects before the guest listens (the device must
#    hold the connection and retry, not stall or drop it); data goes both ways, each side half-closing after
#    sending (socat's way). No SYSTEM/EXEC child: that shares the socket between two socat processes.
rm -f "$s/in.sock"
( for _ in $(seq 600); do [ -S "$s/in.sock" ] && break; sleep 0.1; done
  echo ping | socat -t 60 - UNIX-CONNECT:"$s/in.sock" >"$d/host-got" 2>"$d/host-err" ) & client=$!
jkr run --vsock 5001="$s/in.sock":listen -- /bin/sh -c \
  'sleep 2; echo pong | socat -t 60 -T 90 VSOCK-LISTEN:5001 - > /tmp/got; echo "guest got $(cat /tmp/got)"' \
  >"$d/out" 2>"$d/err3"; st=$?
wait "$client"
[ "$st" = 0 ] && [ "$(cat "$d/host-got")" = pong ] && grep -qx 'guest got ping' "$d/out"
check "host connects through a listening bridge before the guest listens; data both ways" $? \
  "status $st: host got '$(cat "$d/host-got")', $(cat "$d/out") $(cat "$d/host-err") $(tail -n 5 "$d/err3")"
[ ! -e "$s/in.sock" ]; check "the listening bridge's socket is removed when the VM stops" $?

# 4. a port nobody mapped is refused in the guest.
jkr run --vsock 5000="$s/echo.sock" -- /bin/sh -c 'echo x | socat -t 5 - VSOCK-CONNECT:2:5999; echo "status $?"' \
  >"$d/out" 2>"$d/err4"; st=$?
grep -q 'status [1-9]' "$d/out"; check "an unmapped port is refused" $? "$(cat "$d/out") $(tail -n 5 "$d/err4")"
