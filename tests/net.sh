#!/usr/bin/env bash
# Tier 3, virtio-net: the libkrunfw guest's eth0/eth1 through jkrun's backends, all inside a network namespace this
# script creates (unshare --net), so no traffic leaves it:
#   - passt (--net passt, started by jkrun): passt copies its addressing from the namespace's dummy0 (10.88.0.1/24,
#     default route via 10.88.0.254); jkrun's init gets a lease over DHCP before the command, which fetches a page
#     from a server in the namespace through passt's gateway address;
#   - unixgram (--net unixgram=PATH) against a real datagram peer: tests/tap-peer.py bridging a unix datagram socket
#     to a tap device (jktap0, 10.99.0.1/24) in the namespace, as gvproxy's vfkit mode bridges to its stack; the guest (eth1, 10.99.0.2) pings it (ICMP, which TSI cannot
#     carry), fetches a page from it, and the namespace connects to a listener in the guest: TCP both ways;
#   - both NICs in one VM, named eth0 and eth1 in the order given, each with its MAC;
#   - tap (--net tap=NAME) to a tap device with an address in the namespace: ping and 4 MiB each way over TCP; the
#     guest's address and default route are static ones init sets (--ip, --gateway).
# Prints PASS/FAIL lines; needs unshare, ip, socat, passt and python3 on the host (run-tests installs them).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
d=${1:?usage: tests/net.sh SCRATCH_DIR}
mkdir -p "$d"
if [ "${2:-}" != --inside ]; then
  for c in unshare ip socat passt python3; do command -v $c >/dev/null || { echo "FAIL net: $c is not installed"; exit 0; }; done
  exec unshare --net --mount "$0" "$d" --inside
fi
SUITE=net
. tests/suite-lib.sh
{ ip link set lo up && ip link add dummy0 type dummy && ip addr add 10.88.0.1/24 dev dummy0 && ip link set dummy0 up \
  && ip route add default via 10.88.0.254 dev dummy0; } || { fail "cannot set up the test namespace"; exit 0; }
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; [ -z "${sd:-}" ] || rm -rf "$sd"' EXIT

printf '#!/bin/sh\nwhile read -r l && [ "$l" != "$(printf "\\r")" ] && [ -n "$l" ]; do :; done\nprintf "HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\npage-from-$1\\n"\n' >"$d/http.sh"
chmod +x "$d/http.sh"
socat TCP-LISTEN:8080,reuseaddr,fork EXEC:"$d/http.sh passt-side" >/dev/null 2>&1 &
pids+=($!)

# 1. passt: jkrun's init configures eth0 over DHCP before the command (--net passt asks for it); then a page
#    through passt's gateway (passt maps it to the namespace itself).
lease='echo "LEASE $(ip -4 -o addr show eth0 | grep -o "inet [0-9./]*") $(ip route | grep "^default" | cut -d" " -f1-3)"'
jkr run --net passt -- /bin/sh -c "$lease"'
  cat /sys/class/net/eth0/address
  wget -q -t 1 -T 60 -O - http://10.88.0.254:8080/index.txt' >"$d/out1" 2>"$d/err1"; st=$?
grep -qx 'LEASE inet 10.88.0.1/24 default via 10.88.0.254' "$d/out1"
check "passt: init leased 10.88.0.1/24 and the default route via 10.88.0.254 over DHCP before the command" $? "status $st: $(head -c 400 "$d/out1") $(tail -n 8 "$d/err1")"
[ "$st" = 0 ] && grep -qx 'page-from-passt-side' "$d/out1"
check "passt: the guest fetches a page from a server on the host" $? "status $st: $(head -c 400 "$d/out1") $(tail -n 8 "$d/err1")"
grep -qx '5a:94:ef:e4:0c:ee' "$d/out1"; check "passt: eth0 has libkrun's default MAC" $? "$(head -c 400 "$d/out1")"

# 2. unixgram to tests/tap-peer.py's tap bridge, beside passt (eth0, leased by init): two NICs.
sd=$(mktemp -d) # a unix socket cannot be bound on the 9p share that holds $d under ./jkrun-nested
tests/tap-peer.py "$sd/peer.sock" jktap0 >"$d/tap-peer.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$sd/peer.sock" ] && ip link show jktap0 >/dev/null 2>&1 && break; sleep 0.1; done
ip addr add 10.99.0.1/24 dev jktap0 && ip link set jktap0 up || fail "cannot set up the tap peer" "$(cat "$d/tap-peer.log")"
socat TCP-LISTEN:8081,bind=10.99.0.1,reuseaddr,fork EXEC:"$d/http.sh tap-side" >/dev/null 2>&1 &
pids+=($!)
JK_TIMEOUT=400 jkr run --net passt --net unixgram="$sd/peer.sock" --mac 02:4a:4b:00:00:02 -- /bin/sh -c '
  echo "ETH0 $(cat /sys/class/net/eth0/address) ETH1 $(cat /sys/class/net/eth1/address)"
  busybox ip link set eth1 up && busybox ip addr add 10.99.0.2/24 dev eth1
  busybox ping -c 3 -W 10 10.99.0.1 >/tmp/ping 2>&1; echo "PING $?"; tail -n 2 /tmp/ping
  echo "WGET $(wget -q -t 1 -T 60 -O - http://10.99.0.1:8081/index.txt)"
  echo "WGET0 $(wget -q -t 1 -T 60 -O - http://10.88.0.254:8080/index.txt)"
  socat -T 120 TCP-LISTEN:9000,bind=10.99.0.2,reuseaddr SYSTEM:"echo inbound-reached-the-guest" & l=$!
  echo LISTENING; wait $l; echo "SERVED $?"' >"$d/out2" 2>"$d/err2" & vm=$!
got=
deadline=$((SECONDS + 380))
while [ $SECONDS -lt $deadline ] && kill -0 "$vm" 2>/dev/null; do
  # (the guest's output reaches $d/out2 only when the VM ends: jkr keeps it apart per attempt, so just try)
  # -u: this side only reads, so it never half-closes first; the guest's socat then does not end (0.5 s after an
  # EOF) before its SYSTEM child's echo is written, which under nested TCG can take longer than that.
  got=$(socat -T 30 -u TCP:10.99.0.2:9000,connect-timeout=5 - </dev/null 2>/dev/null) && [ -n "$got" ] && break
  sleep 1
done
wait "$vm"; st=$?
grep -qx 'ETH0 5a:94:ef:e4:0c:ee ETH1 02:4a:4b:00:00:02' "$d/out2"
check "two NICs: eth0 (passt) and eth1 (unixgram) in the order given, each with its MAC" $? "status $st: $(head -c 600 "$d/out2") $(tail -n 8 "$d/err2")"
grep -qx 'PING 0' "$d/out2"
check "unixgram: the guest pings the tap peer (ICMP)" $? "$(head -c 600 "$d/out2") $(tail -n 5 "$d/tap-peer.log")"
grep -qx 'WGET page-from-tap-side' "$d/out2"
check "unixgram: the guest fetches a page from the tap side (TCP out)" $? "$(head -c 600 "$d/out2")"
[ "$got" = inbound-reached-the-guest ] && grep -qx 'SERVED 0' "$d/out2"
check "unixgram: the host side connects to a listener in the guest (TCP in)" $? "got '$got': $(head -c 600 "$d/out2")"
grep -qx 'WGET0 page-from-passt-side' "$d/out2" && [ "$st" = 0 ]
check "two NICs: passt's eth0 still carries traffic beside eth1 (status $st)" $? "$(head -c 600 "$d/out2") $(tail -n 8 "$d/err2")"
# 3. tap: a tap device in the namespace (persistent, made here; jkrun attaches with IFF_VNET_HDR) at 10.98.0.1/24,
#    the guest's eth0 at 10.98.0.2 (given by init: --ip, --gateway): ping, and 4 MiB each way over TCP with the
#    offloads on (checksums and segments handled by the host kernel), checked by md5.
ip tuntap add dev jktap1 mode tap && ip addr add 10.98.0.1/24 dev jktap1 && ip link set jktap1 up \
  || fail "cannot create the tap jktap1"
head -c 4194304 /dev/urandom >"$d/blob"
socat TCP-LISTEN:8083,bind=10.98.0.1,reuseaddr,fork SYSTEM:"cat $d/blob" >/dev/null 2>&1 &
pids+=($!)
# What the guest sends lands in $sd (local), not on the nested host's slow 9p share. The receiver answers with the
# byte count once it has the sender's EOF, and the guest waits for that answer: a sender's close() returns while its
# last segments are still in the guest kernel's send buffer, and the VM stopping right after the command (as a power
# cut would) dropped them once (3971624 of 4194304 bytes arrived, the receiver never saw EOF).
socat TCP-LISTEN:8084,bind=10.98.0.1,reuseaddr SYSTEM:"cat >$sd/up; wc -c <$sd/up" >"$sd/up.log" 2>&1 &
up_pid=$!
pids+=($!)
JK_TIMEOUT=400 jkr run --net tap=jktap1 --ip 10.98.0.2/24 --gateway 10.98.0.1 -- /bin/sh -c '
  echo "ADDR $(ip -4 addr show eth0 | grep -o "inet [0-9./]*") $(ip route | grep -o "^default via [0-9.]* dev eth0")"
  busybox ping -c 3 -W 10 10.98.0.1 >/tmp/ping 2>&1; echo "PING $?"
  echo "DOWN $(socat -u TCP:10.98.0.1:8083 - | md5sum | cut -d" " -f1)"
  head -c 4194304 /dev/urandom >/tmp/up; echo "UP $(md5sum </tmp/up | cut -d" " -f1)"
  ack=$(socat -t 120 - TCP:10.98.0.1:8084 </tmp/up); echo "SENT $? ACK $ack"' >"$d/out3" 2>"$d/err3"; st=$?
grep -qx 'ADDR inet 10.98.0.2/24 default via 10.98.0.1 dev eth0' "$d/out3"
check "tap: init gave eth0 its static address and default route (--ip, --gateway)" $? "status $st: $(head -c 600 "$d/out3") $(tail -n 8 "$d/err3")"
grep -qx 'PING 0' "$d/out3"
check "tap: the guest pings the host side of the tap (ICMP)" $? "status $st: $(head -c 600 "$d/out3") $(tail -n 8 "$d/err3")"
grep -qx "DOWN $(md5sum <"$d/blob" | cut -d' ' -f1)" "$d/out3"
check "tap: 4 MiB from the host arrive intact (md5)" $? "$(head -c 600 "$d/out3")"
# The receiving socat ends once it has written all it got: wait for it rather than a fixed second.
for _ in $(seq 60); do kill -0 "$up_pid" 2>/dev/null || break; sleep 1; done
if kill -0 "$up_pid" 2>/dev/null; then up_st="(still running)"; else wait "$up_pid"; up_st=$?; fi
grep -qx 'SENT 0 ACK 4194304' "$d/out3" && grep -qx "UP $(md5sum <"$sd/up" 2>/dev/null | cut -d' ' -f1)" "$d/out3" && [ "$st" = 0 ]
check "tap: 4 MiB from the guest arrive intact (md5, status $st)" $? "$(head -c 600 "$d/out3")
received: $(ls -l "$sd/up" 2>&1), md5 $(md5sum <"$sd/up" 2>/dev/null | cut -d' ' -f1), receiver status $up_st $(tail -n 3 "$sd/up.log")
$(tail -n 8 "$d/err3")"
echo "net: the suite ran to its end"
