#!/usr/bin/env bash
# Tier 3, TSI: the libkrunfw guest's ordinary TCP/UDP sockets reach host services and are reached through --port,
# with no NIC. Everything runs in a network namespace this script creates (unshare --net), whose lo carries the
# "host" address 10.77.0.1: the guest's inner connect to it finds no route and falls back to TSI, and jkrun (in the
# namespace) connects to it there. No traffic leaves the namespace. A mount namespace (unshare --mount) lets the
# script put its own /etc/resolv.conf (naming a dnsmasq at 10.77.0.1) in front of the host's, for the name
# resolution case. Prints PASS/FAIL lines; needs unshare, ip, socat and dnsmasq on the host (run-tests installs
# socat and dnsmasq-base).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
d=${1:?usage: tests/tsi.sh SCRATCH_DIR}
mkdir -p "$d"
if [ "${2:-}" != --inside ]; then
  for c in unshare ip socat dnsmasq; do command -v $c >/dev/null || { echo "FAIL tsi: $c is not installed"; exit 0; }; done
  exec unshare --net --mount "$0" "$d" --inside
fi
SUITE=tsi
. tests/suite-lib.sh
ip link set lo up && ip addr add 10.77.0.1/32 dev lo || { fail "cannot set up the test namespace"; exit 0; }
pids=()
trap 'kill "${pids[@]}" 2>/dev/null' EXIT

# The servers' scripts are files: socat's address parser takes quotes and backslashes of its own.
printf '#!/bin/sh\nwhile read -r l && [ "$l" != "$(printf "\\r")" ] && [ -n "$l" ]; do :; done\nprintf "HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\npage-from-the-host\\n"\n' >"$d/http.sh"
printf '#!/bin/sh\nread -r q\necho "answer-to-$q"\n' >"$d/udp.sh"
chmod +x "$d/http.sh" "$d/udp.sh"

# 1. outbound TCP: an HTTP client in the guest fetches a page from a server on the host.
socat TCP-LISTEN:8080,bind=10.77.0.1,reuseaddr,fork EXEC:"$d/http.sh" >/dev/null 2>&1 &
pids+=($!)
sleep 0.5
jkr run -- /bin/sh -c 'wget -q -t 1 -T 60 -O - http://10.77.0.1:8080/index.txt' \
  >"$d/out1" 2>"$d/err1"; st=$?
[ "$st" = 0 ] && grep -qx 'page-from-the-host' "$d/out1"
check "outbound TCP: the guest fetches a page from a host server (wget)" $? \
  "status $st: $(head -c 300 "$d/out1") $(tail -n 8 "$d/err1")"

# 2. outbound UDP: a DNS-style request and its reply.
socat UDP-RECVFROM:5353,bind=10.77.0.1,fork EXEC:"$d/udp.sh" >/dev/null 2>&1 &
pids+=($!)
sleep 0.5
jkr run -- /bin/sh -c 'echo query1 | socat -t 10 - UDP:10.77.0.1:5353' >"$d/out2" 2>"$d/err2"; st=$?
[ "$st" = 0 ] && grep -qx 'answer-to-query1' "$d/out2"
check "outbound UDP: request and reply" $? "status $st: $(head -c 300 "$d/out2") $(tail -n 8 "$d/err2")"

# 3. inbound: two VMs, each a server on guest port 80 published on host ports 18081 and 18082, and one on a port of
#    its own (18083, 18084); vm1 also serves the unpublished port 81. vm2 adds --port all (libkrun's NULL port map):
#    its 18084 is published on the same host port, its loopback-bound 18085 is not. The host reaches each on 80's
#    mapping and vm2 on 18084, none on 81, 18083 or 18085. A share carries the "done" flag.
mkdir -p "$d/ctl"; rm -f "$d/ctl/done"
guest_servers='[ "$1" = vm1 ] && socat TCP-LISTEN:81,fork SYSTEM:"echo unpublished" &
  [ "$1" = vm2 ] && socat TCP-LISTEN:18085,bind=127.0.0.1,fork SYSTEM:"echo guest-loopback" &
  socat TCP-LISTEN:80,fork SYSTEM:"echo hello-from-$1" & socat TCP-LISTEN:$2,fork SYSTEM:"echo own-port-$1" &
  i=0; while [ ! -e /mnt/ctl/done ] && [ $i -lt 600 ]; do sleep 0.5; i=$((i+1)); done; echo served'
jkr run --fs ctl="$d/ctl" --port 18081:80 -- /bin/sh -c "$guest_servers" sh vm1 18083 >"$d/out3a" 2>"$d/err3a" & vm1=$!
jkr run --fs ctl="$d/ctl" --port 18082:80 --port all -- /bin/sh -c "$guest_servers" sh vm2 18084 >"$d/out3b" 2>"$d/err3b" & vm2=$!
got1=; got2=; got_all=
# -T 30: an answer can take seconds in the nested emulator; a shorter wait closed the client first and the guest's
# echo then failed writing ("echo: I/O error") while the next client tried again.
deadline=$((SECONDS + 270))
while [ $SECONDS -lt $deadline ]; do
  [ -z "$got1" ] && got1=$(socat -T 30 -u TCP:127.0.0.1:18081 - </dev/null 2>/dev/null)
  [ -z "$got2" ] && got2=$(socat -T 30 -u TCP:127.0.0.1:18082 - </dev/null 2>/dev/null)
  [ -z "$got_all" ] && got_all=$(socat -T 30 -u TCP:127.0.0.1:18084 - </dev/null 2>/dev/null)
  [ -n "$got1" ] && [ -n "$got2" ] && [ -n "$got_all" ] && break
  sleep 1
done
unpub=$(socat -T 5 -u TCP:127.0.0.1:81 - </dev/null 2>&1); unpub_st=$?
own1=$(socat -T 5 -u TCP:127.0.0.1:18083 - </dev/null 2>&1); own1_st=$?
lo2=$(socat -T 5 -u TCP:127.0.0.1:18085 - </dev/null 2>&1); lo2_st=$?
touch "$d/ctl/done"
wait "$vm1"; st1=$?; wait "$vm2"; st2=$?
[ "$got1" = hello-from-vm1 ] && [ "$got2" = hello-from-vm2 ]
check "inbound: two VMs' guest port 80 on host ports 18081 and 18082" $? \
  "got '$got1' '$got2'; vm1 $st1: $(tail -n 5 "$d/err3a"); vm2 $st2: $(tail -n 5 "$d/err3b")"
[ "$unpub_st" != 0 ] && [ "$unpub" != unpublished ]
check "inbound: an unpublished guest port is not reachable from the host" $? "got '$unpub' (status $unpub_st)"
[ "$got_all" = own-port-vm2 ] && [ "$own1_st" != 0 ] && [ "$own1" != own-port-vm1 ]
check "inbound: --port all publishes vm2's 18084 on host port 18084, not vm1's 18083" $? \
  "got '$got_all'; 18083: '$own1' (status $own1_st); vm2: $(tail -n 5 "$d/err3b")"
[ "$lo2_st" != 0 ] && [ "$lo2" != guest-loopback ]
check "inbound: with --port all a guest's loopback listener stays inside" $? "got '$lo2' (status $lo2_st)"
[ "$st1" = 0 ] && [ "$st2" = 0 ] && grep -qx served "$d/out3a" && grep -qx served "$d/out3b"
check "inbound: both VMs ran to their end" $? "vm1 $st1 $(cat "$d/out3a"); vm2 $st2 $(cat "$d/out3b")"

# 4. the guest's TSI interface and no networking with --net none.
jkr run -- /bin/sh -c 'cat /proc/cmdline; grep -c 203.0.113.1 /proc/net/fib_trie' >"$d/out4" 2>"$d/err4"; st=$?
[ "$st" = 0 ] && grep -qw tsi_hijack "$d/out4" && [ "$(tail -n 1 "$d/out4")" -ge 1 ] 2>/dev/null
check "dummy0 has 203.0.113.1 and the kernel hijacks sockets" $? "status $st: $(cat "$d/out4") $(tail -n 5 "$d/err4")"
jkr run --net none -- /bin/sh -c 'wget -q -t 1 -T 5 -O - http://10.77.0.1:8080/ && echo reached || echo unreachable' \
  >"$d/out5" 2>"$d/err5"; st=$?
grep -qx unreachable "$d/out5"; check "--net none: the host server is unreachable" $? "status $st: $(cat "$d/out5")"

# 5. name resolution in an unmodified root: the guest's root is the host's, whose /etc/resolv.conf here (this mount
#    namespace's) names a DNS server in the test namespace; the guest's glibc resolver reaches it over UDP through
#    TSI, then fetches a page by that name.
printf 'nameserver 10.77.0.1\n' >"$d/resolv.conf"
if mount --bind "$d/resolv.conf" /etc/resolv.conf; then
  dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces --listen-address=10.77.0.1 --port=53 \
    --user=root --pid-file= --address=/svc.jkrun.test/10.77.0.1 >"$d/dnsmasq.log" 2>&1 &
  pids+=($!)
  sleep 0.5
  jkr run -- /bin/sh -c 'getent hosts svc.jkrun.test; wget -q -t 1 -T 60 -O - http://svc.jkrun.test:8080/index.txt' \
    >"$d/out6" 2>"$d/err6"; st=$?
  [ "$st" = 0 ] && grep -q '^10\.77\.0\.1 *svc\.jkrun\.test' "$d/out6" && grep -qx 'page-from-the-host' "$d/out6"
  check "DNS: the guest resolves a name through the host's resolver and fetches the page by name" $? \
    "status $st: $(head -c 300 "$d/out6") $(tail -n 8 "$d/err6") $(tail -n 3 "$d/dnsmasq.log")"
else
  fail "DNS: cannot bind-mount a resolv.conf in the test's mount namespace"
fi
