#!/usr/bin/env bash
# Networking of a libkrunfw guest, TSI and virtio-vsock, against the same traffic over the VMM host's own loopback
# and unix sockets, measured in one run. Needs hardware virtualization, so here it runs INSIDE L1:
#
#   ./jkrun-nested --timeout 1500 -- benchmarks/nested-net.sh     (T=5 CONNS=200 MIB=64 by default; about 5 min)
#   T=3 MIB=16 ./jkrun-nested --env T --env MIB -- benchmarks/nested-net.sh   (./jkrun-nested passes only --env names)
#
# Everything runs in a network namespace made here (unshare --net) whose lo also carries 10.77.0.1, as in
# tests/tsi.sh: the guest's connect to 10.77.0.1 finds no route inside the guest and goes out through TSI, and jkrun
# (in the namespace) connects to it on the VMM's host. No traffic leaves the namespace. One guest boot runs every
# guest-side measurement, in steps; each step's host-side baseline runs just before and just after it (the guest
# waits for a flag file on its share), and the ratio is against the mean of the two (both printed, with the ratio
# to each, so drift of a shared machine shows). iperf3's own output, both sides', is kept in .jkrun/nested-net/.
#
#   step      guest (through the VM)                                   host baseline (the VMM's host, L1)
#   tsi_g2h   iperf3 -c 10.77.0.1 -t T: guest -> host through TSI      iperf3 -c 10.77.0.1 over loopback
#   tsi_rev   iperf3 -c 10.77.0.1 -t T -R: the host's server sends     iperf3 -R over loopback
#   conn      CONNS sequential connect+close by bash's /dev/tcp in one process to a perl accept-and-close server on
#             10.77.0.1, through TSI                                    the same loop on the host
#   vsock_g2h MIB MiB of zeros by socat to VSOCK-CONNECT:2:5000, bridged (--vsock 5000=PATH) to a host socat whose
#             wc -c answers the count (timed until the answer)         socat to the same server over a unix socket
#   vsock_h2g socat -u VSOCK-CONNECT:2:5001 | wc -c, bridged to a host socat running head -c MIB MiB  the same, unix
#   tsi_pub   iperf3 -s in the guest, published with --port 15201:5201; iperf3 -c 127.0.0.1 -p 15201 -t T on the
#             host: host -> guest                                      iperf3 -c 10.77.0.1 over loopback
#
# Under ./jkrun-nested everything is nested TCG: L1's CPU is emulated, so absolute figures are inflated and noisy and
# only the ratios mean anything. iperf3, socat and perl come from the host (apt-get install iperf3 socat); the
# guest's root is L1's /, so it runs the same binaries. Exits 1 when some figure could not be measured.
set -u
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
export JKRUN_NO_BUILD=1
T=${T:-5}
CONNS=${CONNS:-200}
MIB=${MIB:-64}
HOST_IP=10.77.0.1
STEPS="tsi_g2h tsi_rev conn vsock_g2h vsock_h2g tsi_pub"
if [ "${1:-}" != --inside ]; then
  for c in iperf3 socat perl unshare ip; do
    command -v $c >/dev/null || { echo "nested-net: $c is missing (apt-get install iperf3 socat)" >&2; exit 2; }
  done
  [ -e /dev/kvm ] || { echo "nested-net: no /dev/kvm (run it through ./jkrun-nested)" >&2; exit 2; }
  grep -qwE 'vmx|svm' /proc/cpuinfo || { echo "nested-net: no vmx/svm here: libkrunfw cannot boot (use ./jkrun-nested)" >&2; exit 2; }
  exec unshare --net "$0" --inside
fi
ip link set lo up && ip addr add "$HOST_IP/32" dev lo || { echo "nested-net: cannot set up the namespace" >&2; exit 2; }

SUITE=nested-net
. tests/suite-lib.sh                       # jkr: ./jkrun under a deadline, once more if the JVM aborted
# Sockets on L1's local /tmp (the checkout is 9p, where a unix socket's file does not lead to its listener); the
# guest's share (its script, the step flags, iperf3's logs) under the checkout, as tests/tsi.sh's.
s=$(mktemp -d)
ctl="$root/.jkrun/nested-net"; rm -rf "$ctl"; mkdir -p "$ctl"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$s"' EXIT

now_us() { local t=${EPOCHREALTIME/[.,]/}; echo $((10#$t)); }
# iperf3 -f k: the receiver's Kbits/sec (the receiver's own count of what arrived).
kbits() { awk '/receiver/ { for (i = 1; i < NF; i++) if ($(i + 1) == "Kbits/sec") v = $i } END { if (v != "") print v }'; }
num() { [[ ${1:-} =~ ^[0-9.]+$ ]]; }
ratio() { if num "$1" && num "$2"; then awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else printf "-" }'; else printf -; fi; }
mean() { awk -v a="$1" -v b="$2" 'BEGIN { n = 0; s = 0; if (a ~ /^[0-9.]+$/) { s += a; n++ } if (b ~ /^[0-9.]+$/) { s += b; n++ }
                                          if (n) printf "%.1f", s / n; else printf "-" }'; }
# MiB/s from bytes and microseconds; per second from a count and microseconds.
mibs() { awk -v b="$1" -v us="$2" 'BEGIN { if (b > 0 && us > 0) printf "%.2f", b / 1048576 / (us / 1e6); else printf "-" }'; }
rate() { awk -v n="$1" -v us="$2" 'BEGIN { if (n > 0 && us > 0) printf "%.1f", n / (us / 1e6); else printf "-" }'; }

# The host's servers, alive for the whole run. Scripts are files: socat's address parser takes quotes of its own.
bytes=$((MIB << 20))
printf '#!/bin/sh\nexec wc -c\n' >"$s/count.sh"
printf '#!/bin/sh\nexec head -c %s /dev/zero\n' "$bytes" >"$s/source.sh"
printf 'use IO::Socket::INET; my $s = IO::Socket::INET->new(LocalAddr => "%s:7777", Listen => 128, ReuseAddr => 1)\n  or die "listen: $!";\nwhile (my $c = $s->accept) { close $c }\n' \
  "$HOST_IP" >"$s/accept.pl"
chmod +x "$s/count.sh" "$s/source.sh"
iperf3 -s -B "$HOST_IP" -p 5201 >"$s/iperf3-server.log" 2>&1 & pids+=($!)
socat UNIX-LISTEN:"$s/sink.sock",fork,backlog=16 EXEC:"$s/count.sh" >/dev/null 2>&1 & pids+=($!)
socat UNIX-LISTEN:"$s/src.sock",fork,backlog=16 EXEC:"$s/source.sh" >/dev/null 2>&1 & pids+=($!)
perl "$s/accept.pl" 2>"$s/accept.err" & pids+=($!)
for _ in $(seq 100); do [ -S "$s/sink.sock" ] && [ -S "$s/src.sock" ] && break; sleep 0.1; done
sleep 1

# ---- the host's side --------------------------------------------------------------------------------------------
# conn_loop N HOST: N sequential connect+close in this shell; prints "ok us".
conn_loop() {
  local i ok=0 t0 t1
  t0=$(now_us)
  for ((i = 0; i < $1; i++)); do
    if { exec 3<>"/dev/tcp/$2/7777"; } 2>/dev/null; then exec 3>&-; ok=$((ok + 1)); fi
  done
  t1=$(now_us)
  echo "$ok $((t1 - t0))"
}
# host STEP WHEN: the host baseline of STEP; prints its figure (Kbit/s, connections/s, MiB/s) or nothing.
host() {
  local t0 t1 got ok us
  case $1 in
    tsi_g2h|tsi_pub) iperf3 -c "$HOST_IP" -p 5201 -t "$T" -f k 2>&1 | tee "$ctl/host-$1-$2.txt" | kbits ;;
    tsi_rev) iperf3 -c "$HOST_IP" -p 5201 -t "$T" -f k -R 2>&1 | tee "$ctl/host-$1-$2.txt" | kbits ;;
    conn)
      read -r ok us <<<"$(conn_loop "$CONNS" "$HOST_IP")"
      [ "$ok" = "$CONNS" ] || echo "nested-net: host connections ($2): $ok of $CONNS connected" >&2
      rate "$ok" "$us" ;;
    vsock_g2h)
      t0=$(now_us); got=$(head -c "$bytes" /dev/zero | socat -t 120 -b 65536 - UNIX-CONNECT:"$s/sink.sock" 2>/dev/null)
      t1=$(now_us)
      [ "$got" = "$bytes" ] || { echo "nested-net: unix socket to the host sink ($2): it counted '$got' bytes" >&2; got=0; }
      mibs "$got" $((t1 - t0)) ;;
    vsock_h2g)
      t0=$(now_us); got=$(socat -u -b 65536 UNIX-CONNECT:"$s/src.sock" - 2>/dev/null | wc -c); t1=$(now_us)
      [ "$got" = "$bytes" ] || { echo "nested-net: unix socket from the host source ($2): $got bytes arrived" >&2; got=0; }
      mibs "$got" $((t1 - t0)) ;;
  esac
}

# ---- the guest: each step waits for go-STEP, says want-STEP before and done-STEP after ----------------------------
cat >"$ctl/guest.sh" <<'EOF'
#!/bin/bash
# In the guest: T CONNS BYTES HOST_IP. Prints "G step value..." lines; iperf3's own output goes to /mnt/ctl.
T=$1 CONNS=$2 BYTES=$3 HOST_IP=$4
now_us() { local t=${EPOCHREALTIME/[.,]/}; echo $((10#$t)); }
kbits() { awk '/receiver/ { for (i = 1; i < NF; i++) if ($(i + 1) == "Kbits/sec") v = $i } END { if (v != "") print v }'; }
step() { # STEP: waits (up to 20 min) until the host has measured its baseline
  touch "/mnt/ctl/want-$1"
  for ((w = 0; w < 1200; w++)); do [ -e "/mnt/ctl/go-$1" ] && return 0; sleep 1; done
  echo "G $1 no-go"; return 1
}
done_() { touch "/mnt/ctl/done-$1"; }
step tsi_g2h && { echo "G tsi_g2h $(timeout 300 iperf3 -c "$HOST_IP" -p 5201 -t "$T" -f k 2>&1 | tee /mnt/ctl/tsi_g2h.txt | kbits)"; done_ tsi_g2h; }
step tsi_rev && { echo "G tsi_rev $(timeout 300 iperf3 -c "$HOST_IP" -p 5201 -t "$T" -f k -R 2>&1 | tee /mnt/ctl/tsi_rev.txt | kbits)"; done_ tsi_rev; }
if step conn; then
  ok=0; t0=$(now_us)
  for ((i = 0; i < CONNS; i++)); do
    if { exec 3<>"/dev/tcp/$HOST_IP/7777"; } 2>/dev/null; then exec 3>&-; ok=$((ok + 1)); fi
  done
  t1=$(now_us); echo "G conn $ok $((t1 - t0))"; done_ conn
fi
if step vsock_g2h; then
  t0=$(now_us); got=$(head -c "$BYTES" /dev/zero | timeout 600 socat -t 120 -b 65536 - VSOCK-CONNECT:2:5000 2>/mnt/ctl/vsock_g2h.err)
  t1=$(now_us); echo "G vsock_g2h ${got:-0} $((t1 - t0))"; done_ vsock_g2h
fi
if step vsock_h2g; then
  t0=$(now_us); got=$(timeout 600 socat -u -b 65536 VSOCK-CONNECT:2:5001 - 2>/mnt/ctl/vsock_h2g.err | wc -c)
  t1=$(now_us); echo "G vsock_h2g ${got:-0} $((t1 - t0))"; done_ vsock_h2g
fi
if step tsi_pub; then # a server the host reaches through --port 15201:5201 (one test, then it exits)
  timeout 300 iperf3 -s -4 -1 -p 5201 -f k >/mnt/ctl/tsi_pub.txt 2>&1 & srv=$!
  sleep 2; touch /mnt/ctl/ready-tsi_pub
  wait "$srv"; echo "G tsi_pub_server_status $?"; done_ tsi_pub
fi
EOF
echo "== nested-net: NESTED TCG numbers (L1 = QEMU TCG with emulated SVM, L2 = the microVM). Absolute figures are"
echo "== inflated and noisy; only the guest/host ratios mean anything. iperf3 -t $T, $CONNS connections, $MIB MiB."
echo "guest: booting (./jkrun run --vsock 5000=sink 5001=source --port 15201:5201; TSI on)"
t0=$(now_us)
JK_TIMEOUT=1200 jkr run --memory 512 --fs ctl="$ctl" --vsock 5000="$s/sink.sock" --vsock 5001="$s/src.sock" \
  --port 15201:5201 -- /bin/bash /mnt/ctl/guest.sh "$T" "$CONNS" "$bytes" "$HOST_IP" >"$s/guest.out" 2>"$s/guest.err" &
vm=$!
pids+=($vm)
# await FILE: until it exists (the guest wrote it) or the VM is gone; whether it exists.
await() { while [ ! -e "$1" ]; do kill -0 "$vm" 2>/dev/null || { [ -e "$1" ]; return; }; sleep 0.5; done; }
declare -A before after
pub=
for st in $STEPS; do
  await "$ctl/want-$st" || { echo "nested-net: the guest stopped before step $st" >&2; break; }
  [ "$st" = tsi_g2h ] && echo "guest: up after $(( ($(now_us) - t0) / 1000000 )) s"
  before[$st]=$(host "$st" before)
  touch "$ctl/go-$st"
  if [ "$st" = tsi_pub ] && await "$ctl/ready-tsi_pub"; then
    for _ in 1 2 3; do   # the guest's listen may take a moment to be published
      pub=$(iperf3 -c 127.0.0.1 -p 15201 -4 -t "$T" -f k 2>&1 | tee "$ctl/host-to-published.txt" | kbits)
      [ -n "$pub" ] && break; sleep 2
    done
  fi
  await "$ctl/done-$st" || { echo "nested-net: the guest stopped during step $st" >&2; break; }
  after[$st]=$(host "$st" after)
  echo "step $st: host before ${before[$st]:--}, after ${after[$st]:--}"
done
wait "$vm"; vst=$?
echo "guest: exited with status $vst after $(( ($(now_us) - t0) / 1000000 )) s"
grep '^RETRY' "$s/guest.err" || true

# ---- report -----------------------------------------------------------------------------------------------------
g() { sed -n "s/^G $1 //p" "$s/guest.out" | tail -n 1; }
declare -A guest
guest[tsi_g2h]=$(g tsi_g2h); guest[tsi_rev]=$(g tsi_rev); guest[tsi_pub]=$pub
read -r gc_ok gc_us <<<"$(g conn)"
[ "${gc_ok:-0}" = "$CONNS" ] || echo "nested-net: guest connections: ${gc_ok:-none} of $CONNS connected" >&2
guest[conn]=$(rate "${gc_ok:-0}" "${gc_us:-0}")
for st in vsock_g2h vsock_h2g; do
  read -r b us <<<"$(g $st)"
  [ "${b:-}" = "$bytes" ] || { echo "nested-net: $st: '${b:-}' of $bytes bytes arrived" >&2; b=0; }
  guest[$st]=$(mibs "$b" "${us:-0}")
done
label() {
  case $1 in
    tsi_g2h) echo "TSI guest->host iperf3 (Kbit/s)" ;;   tsi_rev) echo "TSI host->guest iperf3 -R (Kbit/s)" ;;
    tsi_pub) echo "TSI host->guest --port iperf3 (Kbit/s)" ;; conn) echo "TSI connect+close (conn/s)" ;;
    vsock_g2h) echo "vsock guest->host socat (MiB/s)" ;;   vsock_h2g) echo "vsock host->guest socat (MiB/s)" ;;
  esac
}
echo
printf '%-40s %12s %12s %12s %7s %14s\n' "measure" "guest" "host before" "host after" "ratio" "before..after"
bad=0
results=()
for st in $STEPS; do
  gv=${guest[$st]:-} b=${before[$st]:-} a=${after[$st]:-}
  m=$(mean "$b" "$a"); r=$(ratio "$gv" "$m")
  printf '%-40s %12s %12s %12s %7s %14s\n' "$(label "$st")" "${gv:--}" "${b:--}" "${a:--}" "$r" \
    "$(ratio "$gv" "$b")..$(ratio "$gv" "$a")"
  unit=$(label "$st"); unit=${unit##*(}; unit=${unit%)}
  results+=("RESULT net_$st guest=${gv:--} host_before=${b:--} host_after=${a:--} ratio=$r unit=$unit")
  num "$gv" && num "$m" || { echo "nested-net: NOT MEASURED: $st (guest '${gv:-}', host '$b' / '$a')" >&2; bad=1; }
done
echo "(guest = through the VM; host = the same on L1's loopback / unix sockets just before and after the guest's step;"
echo " ratio = guest / mean of the two; before..after = guest / each: a wide range means the machine's speed drifted)"
printf '%s\n' "${results[@]}"
if [ "$vst" != 0 ] || [ "$bad" = 1 ]; then
  echo "nested-net: guest status $vst; its stderr (tail):" >&2; tail -n 20 "$s/guest.err" >&2
  grep -h 'no-go\|status' "$s/guest.out" >&2
  for f in tsi_g2h.txt tsi_rev.txt tsi_pub.txt host-to-published.txt vsock_g2h.err vsock_h2g.err; do
    [ -s "$ctl/$f" ] && { echo "--- $f:" >&2; tail -n 8 "$ctl/$f" >&2; }
  done
fi
[ "$bad" = 0 ]
