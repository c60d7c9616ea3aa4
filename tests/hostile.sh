#!/usr/bin/env bash
# Tier 3, a hostile root shell: a libkrunfw guest whose command attacks virtio-fs and virtio-blk through the real
# kernel, and the host checks that the VMM refused, stayed up and kept its bounds. Prints PASS/FAIL lines.
# Part of tests/full-boot.sh (runs as root, directly or inside ./jkrun-nested).
#   tests/hostile.sh SCRATCH_DIR
# The share lives under SCRATCH_DIR, which must allow FIFOs and device nodes (a tmpfs: not the 9p checkout of L1).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
work=$1; rm -rf "$work"; mkdir -p "$work"
pass() { echo "PASS hostile: $1"; }
fail() { echo "FAIL hostile: $1"; [ -n "${2:-}" ] && printf '  %s\n' "$2" | head -c 3000; echo; }
check() { if [ "$2" = 0 ]; then pass "$1"; else fail "$1" "${3:-}"; fi; }
show() { { tail -n 15 "$work/out"; tail -n 15 "$work/err"; cat "$work/hang"; } 2>/dev/null | tr -d '\r'; }
# A run whose JVM crashed, or whose guest triple-faulted before its command printed anything, is run again (three
# attempts in all) with a RETRY line: QEMU 7.2's emulation under ./jkrun-nested has rare faults of its own
# (nested/README.md); a fault of jkrun's own fails every attempt.
run() {
  local a st why
  for a in 1 2 3; do
    # past the deadline the JVM is first asked for its hang report (SIGUSR1: each virtio transport's rings, every
    # vCPU, on stderr), then killed; show() adds the report to a failed check's details
    rm -f "$work/hang"
    timeout -s USR1 --kill-after=15 "${HOSTILE_TIMEOUT:-600}" ./jkrun run "$@" >"$work/out" 2>"$work/err"; st=$?
    if [ "$st" = 124 ] || [ "$st" = 137 ]; then
      { echo "  hung past ${HOSTILE_TIMEOUT:-600} s; the JVM's report:"; grep -h '^jkrun: ' "$work/err" | head -n 120 | sed 's/^/    /'; } >"$work/hang"
    fi
    why=
    grep -qs 'A fatal error has been detected by the Java Runtime' "$work/out" "$work/err" && \
      why="the JVM crashed: $(grep -h -m1 -A1 'Problematic frame' "$work/out" "$work/err" | tail -n 1)"
    grep -qs 'VM stopped: CRASH: triple fault' "$work/err" && [ ! -s "$work/out" ] && \
      why="the guest triple-faulted before its command printed anything: $(grep -h -m1 'CRASH' "$work/err")"
    [ -n "$why" ] && [ "$a" != 3 ] || break
    echo "RETRY hostile: $why"
  done
  return "$st"
}

# 1. Special files in a share. A stock guest kernel LOOKUPs a name before it CREATEs it and opens an existing FIFO or
#    device node itself (a guest FIFO, the guest's own driver), so it reaches FUSE CREATE of an existing special file
#    only through a LOOKUP/CREATE race; that path (QEMU virtiofsd's CVE-2020-35517 class) is covered against the
#    FUSE server directly (PassthroughFsHostileTest, FuseServerFuzzTest). Here, through the real kernel: the guest
#    cannot make device nodes on the host (MKNOD), FIFOs it makes or finds stay guest-side, and the share keeps
#    serving while guest processes wait on them.
s="$work/share"; mkdir -p "$s"
mkfifo "$s/host-fifo"
mknod "$s/host-null" c 1 3 2>/dev/null || true
run --fs s="$s" -- /bin/sh -c '
  try() { # name, command: runs it with a deadline in the background, prints "name status"
    ( eval "$2" ) >/dev/null 2>&1 & p=$!; i=0
    while kill -0 $p 2>/dev/null && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
    if kill -0 $p 2>/dev/null; then echo "$1 waits"; kill -9 $p; else wait $p; echo "$1 $?"; fi
  }
  try open-host-fifo ": > /mnt/s/host-fifo"
  try mkfifo "mkfifo /mnt/s/guest-fifo"
  sync; echo 2 > /proc/sys/vm/drop_caches
  try open-guest-fifo ": > /mnt/s/guest-fifo"
  try mknod-char "mknod /mnt/s/guest-null c 1 3"
  try mknod-block "mknod /mnt/s/guest-blk b 7 0"
  echo still-serving > /mnt/s/after.txt && cat /mnt/s/after.txt
'; st=$?
o=$(tr -d '\r' < "$work/out")
[ "$st" = 0 ]; check "the guest's shell ran to its end (status $st)" $? "$(show)"
echo "$o" | grep -qx 'mknod-char [1-9][0-9]*' && [ ! -e "$s/guest-null" ]; check "MKNOD of a character device is refused; no node on the host" $? "$(show)"
echo "$o" | grep -qx 'mknod-block [1-9][0-9]*' && [ ! -e "$s/guest-blk" ]; check "MKNOD of a block device is refused; no node on the host" $? "$(show)"
echo "$o" | grep -qx 'mkfifo 0' && [ -p "$s/guest-fifo" ]; check "a guest-made FIFO is a FIFO on the host too (not a device)" $? "$(show)"
echo "$o" | grep -qx 'still-serving' && [ "$(cat "$s/after.txt" 2>/dev/null)" = still-serving ]
check "the share keeps serving while guest writers wait on FIFOs" $? "$(show)"

# 2. Host fd exhaustion: the guest creates and keeps far more files than the share may hold host fds for. The VMM
#    answers with an errno past its cap instead of running the JVM out of descriptors; its fd count stays bounded
#    while the guest holds them, and after the guest drops its caches (FORGET) it can create files again.
#    jkrun runs with RLIMIT_NOFILE 4096, so the share's caps are the same on every host: a quarter of the limit for
#    inodes (1024) and a sixteenth for open handles (256), PassthroughOptions' defaults. Before the caps, the guest
#    ran the JVM into that limit (EMFILE for every VM in it) at about 4000 files.
n=${HOSTILE_FILES:-6000}
m="$work/many"; mkdir -p "$m"
(ulimit -n 4096; export JKRUN_KEEP_NOFILE=1; run --fs m="$m" -- /bin/sh -c "
  mkdir -p /mnt/m/d; i=0; failed=0
  while [ \$i -lt $n ]; do true > /mnt/m/d/f\$i 2>/dev/null || failed=\$((failed+1)); i=\$((i+1)); done
  ls /mnt/m/d > /dev/null 2>&1
  echo failed \$failed
  echo fds-while-held
  sleep 3
  sync; echo 3 > /proc/sys/vm/drop_caches
  true > /mnt/m/after-forget && echo create-after-forget ok
") & jpid=$!
# The jkrun JVM's fd count while the guest holds its files (the newest java process running jkrun's CLI).
peak=0
while kill -0 "$jpid" 2>/dev/null; do
  if grep -q fds-while-held "$work/out" 2>/dev/null; then
    j=$(pgrep -n -f 'dev.jkrun.cli.Main run') && peak=$(ls "/proc/$j/fd" 2>/dev/null | wc -l); break
  fi
  sleep 0.5
done
wait "$jpid"; st=$?
o=$(tr -d '\r' < "$work/out")
[ "$st" = 0 ]; check "fd flood: the VM ran to its end (status $st)" $? "$(show)"
f=$(echo "$o" | sed -n 's/^failed //p')
[ -n "$f" ] && [ "$f" -gt 0 ]; check "fd flood: creations past the share's fd cap fail in the guest ($f of $n)" $? "$(show)"
[ "$peak" -gt 0 ] && [ "$peak" -lt 2048 ]; check "fd flood: the VMM's fd count stayed bounded while the guest held its files ($peak)" $? "$(show)"
echo "$o" | grep -qx 'create-after-forget ok'; check "fd flood: after the guest forgets its inodes, creation works again" $? "$(show)"

# 3. Discard loops on qcow2: write and discard the same 8 MiB again and again. Freed clusters are reused, so the
#    image stays near one round's size, and qemu-img check stays clean.
if command -v qemu-img >/dev/null; then
  q="$work/loop.qcow2"; qemu-img create -q -f qcow2 "$q" 64M
  run --disk q="$q":qcow2 -- /bin/sh -c '
    i=0; while [ $i -lt 20 ]; do
      dd if=/dev/urandom of=/dev/vda bs=1M count=8 conv=fsync 2>/dev/null || exit 3
      blkdiscard -o 0 -l 8388608 /dev/vda || exit 4
      i=$((i+1)); done; echo loops-done'; st=$?
  size=$(stat -c %s "$q")
  [ "$st" = 0 ] && grep -qx loops-done "$work/out"; check "discard loop: 20 rounds of write 8 MiB + discard (status $st)" $? "$(show)"
  [ "$size" -lt $((24 * 1024 * 1024)) ]; check "discard loop: the image stays bounded ($size bytes after 160 MiB written)" $? "$(show)"
  qemu-img check -q "$q"; check "discard loop: qemu-img check is clean" $? "$(qemu-img check "$q" 2>&1 | tail -n 3)"
fi
