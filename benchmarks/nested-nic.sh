#!/usr/bin/env bash
# virtio-net throughput of a libkrunfw guest through each backend, against iperf3 over the VMM host's own loopback
# and against TSI, measured in one run. Needs hardware virtualization, so here it runs INSIDE L1:
#
#   ./jkrun-nested --timeout 1500 -- benchmarks/nested-nic.sh            (T=5 by default; about 6 min)
#   T=3 ./jkrun-nested --env T -- benchmarks/nested-nic.sh
#   BACKENDS="passt tsi" ./jkrun-nested --env BACKENDS -- benchmarks/nested-nic.sh   (some backends only)
#
# Everything runs in a network namespace made here (unshare --net): lo carries 10.77.0.1 (TSI's target, as in
# tests/tsi.sh), dummy0 10.88.0.1/24 with a default route via 10.88.0.254 (what passt copies; the guest reaches the
# namespace at 10.88.0.254), and the tap jktap1 10.98.0.1/24 (the guest is 10.98.0.2). No traffic leaves it.
# One guest boot per backend runs its steps; the host baseline (iperf3 over lo) runs before and after each boot and
# the ratio is against their mean. Rows:
#   <backend> g2h   iperf3 -c HOST -t T: guest -> host          (Kbit/s received)
#   <backend> h2g   iperf3 -c HOST -t T -R: host -> guest
#   <backend> udp64 iperf3 -u -l 64 -b 0 -c HOST -t T: 64-byte datagrams guest -> host (datagrams/s received)
# backends: tap (--net tap=jktap1), passt (--net passt, leased by init), tsi (no NIC).
# Under ./jkrun-nested everything is nested TCG: only the ratios mean anything. iperf3 comes from the host
# (apt-get install iperf3); the guest's root is L1's /, so it runs the same binary.
set -u
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
export JKRUN_NO_BUILD=1
# as run-tests' tier 3: without UseAVX=0 a JVM in L1 can wedge in JIT code (one such run never started its guest)
export JKRUN_JAVA_OPTS=${JKRUN_JAVA_OPTS:-"-XX:+UseSerialGC -Xshare:auto -XX:UseAVX=0"}
T=${T:-5}
if [ "${1:-}" != --inside ]; then
  for c in iperf3 passt unshare ip; do
    command -v $c >/dev/null || { echo "nested-nic: $c is missing (apt-get install iperf3 passt)" >&2; exit 2; }
  done
  grep -qwE 'vmx|svm' /proc/cpuinfo || { echo "nested-nic: no vmx/svm here (use ./jkrun-nested)" >&2; exit 2; }
  exec unshare --net "$0" --inside
fi
ip link set lo up && ip addr add 10.77.0.1/32 dev lo && ip link add dummy0 type dummy && ip addr add 10.88.0.1/24 dev dummy0 \
  && ip link set dummy0 up && ip route add default via 10.88.0.254 dev dummy0 && ip tuntap add dev jktap1 mode tap \
  && ip addr add 10.98.0.1/24 dev jktap1 && ip link set jktap1 up || { echo "nested-nic: cannot set up the namespace" >&2; exit 2; }
SUITE=nested-nic
. tests/suite-lib.sh
out="$root/.jkrun/nested-nic"; rm -rf "$out"; mkdir -p "$out"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
iperf3 -s -B 0.0.0.0 -p 5201 >"$out/server.log" 2>&1 &
pids+=($!)
sleep 0.5

kbits() { awk '/receiver/ { for (i = 1; i < NF; i++) if ($(i + 1) == "Kbits/sec") v = $i } END { if (v != "") print v }'; }
# 64-byte UDP: datagrams/s = received count over the interval, from iperf3 -u's "Lost/Total" on the receiver line
udp_rate() { awk -v t="$T" '/receiver/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\/[0-9]+$/) { split($i, a, "/"); print int((a[2] - a[1]) / t) } }'; }

host_base() { # one baseline triple over lo: g2h h2g udp64
  local g h u
  g=$(iperf3 -f k -c 127.0.0.1 -p 5201 -t "$T" 2>&1 | tee -a "$out/base.log" | kbits)
  h=$(iperf3 -f k -c 127.0.0.1 -p 5201 -t "$T" -R 2>&1 | tee -a "$out/base.log" | kbits)
  u=$(iperf3 -c 127.0.0.1 -p 5201 -t "$T" -u -l 64 -b 0 2>&1 | tee -a "$out/base.log" | udp_rate)
  echo "$g $h $u"
}

guest_steps() { # HOST: the iperf3 commands in the guest, each output between markers
  echo "for m in g2h h2g udp64; do echo \"== \$m\"; case \$m in
    g2h) iperf3 -f k -c $1 -p 5201 -t $T ;; h2g) iperf3 -f k -c $1 -p 5201 -t $T -R ;;
    udp64) iperf3 -c $1 -p 5201 -t $T -u -l 64 -b 0 ;; esac 2>&1; done"
}

printf '%-6s %-6s %14s %14s %8s\n' backend step guest host ratio
for b in ${BACKENDS:-tap passt tsi}; do
  before=$(host_base)
  case $b in
    tap) prep=''; host=10.98.0.1; args=(--net tap=jktap1 --ip 10.98.0.2/24) ;;
    passt) prep=''; host=10.88.0.254; args=(--net passt) ;;
    tsi) prep=''; host=10.77.0.1; args=() ;;
  esac
  JK_TIMEOUT=$((T * 3 * 10 + 300)) jkr run "${args[@]}" -- /bin/sh -c "$prep $(guest_steps $host)" >"$out/$b.out" 2>"$out/$b.err"
  after=$(host_base)
  for i in 1 2 3; do
    step=$(echo g2h h2g udp64 | cut -d' ' -f$i)
    section=$(awk -v m="== $step" '$0 == m { on = 1; next } /^== / { on = 0 } on' "$out/$b.out")
    if [ "$step" = udp64 ]; then g=$(echo "$section" | udp_rate); else g=$(echo "$section" | kbits); fi
    h1=$(echo "$before" | cut -d' ' -f$i); h2=$(echo "$after" | cut -d' ' -f$i)
    hm=$(awk -v a="${h1:-0}" -v b="${h2:-0}" 'BEGIN { print (a + b) / 2 }')
    r=$(awk -v g="${g:-0}" -v h="$hm" 'BEGIN { if (h > 0 && g > 0) printf "%.3f", g / h; else print "n/a" }')
    printf '%-6s %-6s %14s %14s %8s\n' "$b" "$step" "${g:-n/a}" "$hm" "$r"
  done
done
echo "(Kbit/s for g2h/h2g, datagrams/s for udp64; host = iperf3 over the namespace's lo, mean of before and after)"
