#!/usr/bin/env bash
# Tier 3: the libkrunfw kernel on real KVM with hardware (or nested) virtualization, through ./jkrun.
# Prints "N passed, M failed" last. Runs where /proc/cpuinfo has vmx or svm: directly, or inside ./jkrun-nested
# (which shares this checkout at the same path; scratch files live under it, as L1 has its own /tmp).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
passed=0; failed=0
work="$root/.jkrun/tier3"
rm -rf "$work"; mkdir -p "$work"
exec 3>&1 # the suite's own stdout, for RETRY notes while a case's output is redirected
# ./jkrun under a watchdog. A run that hangs (JK_TIMEOUT s) is asked where its vCPUs are (SIGUSR1: on stderr), then
# for its threads (SIGQUIT: the JVM prints them, with CPU time each, on stdout), then killed. A run that hung or
# whose JVM crashed is run again (up to $attempts times in all), and the suite prints a RETRY line saying why: QEMU
# 7.2's emulation under ./jkrun-nested has rare faults of its own (nested/README.md), and a hang or JVM crash of
# jkrun's own fails every attempt. The first attempt's output is kept in $work/retry-N.{out,err}.
retry_note() { # OUT ERR TEXT: counts a retry (in a file: jk may run in a pipeline's subshell), keeps OUT and ERR
  local n=$(( $(cat "$work/retries" 2>/dev/null || echo 0) + 1 ))
  echo "$n" >"$work/retries"; cp "$1" "$work/retry-$n.out"; cp "$2" "$work/retry-$n.err"
  echo "RETRY $3"
}
fault_in() { # FILE...: whether a sub-suite's output shows a hung VM (ApiE2E's dump), a crashed JVM, or a libkrun child
  # whose guest triple-faulted or reset (krun_start_enter logs that; an early death of the emulator's, see below)
  grep -qs -e 'ApiE2E: VM hung' -e 'A fatal error has been detected by the Java Runtime' \
    -e 'krun_start_enter: the VM stopped: CRASH: triple fault' "$@"
}
attempts=3 # a run hit by one of the emulator's faults gets up to two more tries, each with a RETRY line
jk() {
  local a st why in="$work/jk.in"
  if [ -t 0 ]; then : >"$in"; else cat >"$in"; fi # stdin kept for a second attempt
  for a in $(seq "$attempts"); do
    sh -c 'echo $$ >"$0"; exec ./jkrun "$@"' "$work/jk.pid" "$@" <"$in" >"$work/jk.out" 2>"$work/jk.err" &
    local pid=$! t=0
    while kill -0 "$pid" 2>/dev/null && [ "$t" -lt "${JK_TIMEOUT:-240}" ]; do sleep 1; t=$((t+1)); done
    if kill -0 "$pid" 2>/dev/null; then
      kill -USR1 "$pid"; sleep 3; kill -QUIT "$pid"; sleep 3; kill -KILL "$pid" 2>/dev/null; { wait "$pid"; } 2>/dev/null; st=124
    else
      wait "$pid"; st=$?
    fi
    why=
    [ "$st" = 124 ] && why="hung after ${JK_TIMEOUT:-240} s; $(grep -h 'jkrun: vCPU' "$work/jk.err" | head -n 1)"
    fault_in "$work/jk.out" "$work/jk.err" && \
      why="the JVM crashed: $(grep -h -m1 -A1 'Problematic frame' "$work/jk.out" "$work/jk.err" | tail -n 1)"
    # the emulator's early-boot faults (nested/README.md): a triple fault or a reset with no panic line, before the
    # command printed anything
    [ -z "$why" ] && [ ! -s "$work/jk.out" ] && grep -qs -e 'VM stopped: CRASH: triple fault' \
      -e 'VM stopped: REBOOT: guest reset the machine' "$work/jk.err" && \
      why="the guest $(grep -h -m1 -o -e 'CRASH: triple fault.*' -e 'REBOOT: guest reset.*' "$work/jk.err") before its command printed anything"
    # the same fault under `jkrun boot`, whose stdout is the kernel's log: the vCPU at the reset vector (RIP 0xfff0)
    # with no panic line before it (a panic ends in jkrun's "kernel panic" stop, not there); one CI saw it at 2.2 s
    [ -z "$why" ] && grep -qsE 'VM stopped: CRASH: triple fault.* at RIP 0xfff0([^0-9a-f]|$)' "$work/jk.err" && \
      ! grep -qs 'Kernel panic' "$work/jk.out" && \
      why="the guest triple-faulted at the reset vector with no kernel panic: $(grep -h -m1 -o 'CRASH: triple fault.*' "$work/jk.err")"
    # L1's KVM failing to emulate an instruction of L2's user space (RIP below the kernel half, above the low
    # addresses of boot code), before or after the command printed: these guests' user code touches no device
    # memory, so no exit of jkrun's asks for that emulation (nested/README.md)
    [ -z "$why" ] && \
      grep -qsE 'KVM internal error \(suberror 1: emulation failure\) on vCPU [0-9]+ at RIP 0x[0-7]?[0-9a-f]{6,11}([^0-9a-f]|$)' "$work/jk.err" && \
      why="L1's KVM failed to emulate an instruction of the guest's user space: $(grep -h -m1 -o 'KVM internal error.*' "$work/jk.err")"
    [ -n "$why" ] && [ "$a" != "$attempts" ] && retry_note "$work/jk.out" "$work/jk.err" "./jkrun $*: $why" >&3
    # a hang's whole SIGUSR1 report (each virtio transport's rings, the split irqchip's IOAPIC pins, every vCPU),
    # indented so that the suite's log keeps it, on every attempt: what the guest waited for, if it was jkrun's
    [ "$st" = 124 ] && grep -h '^jkrun: ' "$work/jk.err" | head -n 120 | sed 's/^/  /' >&3
    [ -z "$why" ] || [ "$a" = "$attempts" ] && break
  done
  cat "$work/jk.out"; cat "$work/jk.err" >&2
  return "$st"
}

check() { # name, status of the condition, details shown on failure
  if [ "$2" = 0 ]; then passed=$((passed+1)); echo "PASS $1"
  else failed=$((failed+1)); echo "FAIL $1"; [ -n "${3:-}" ] && printf '  %s\n' "$3"; fi
}
tally() { # counts the PASS/FAIL lines of a sub-suite read from stdin, echoing them and their detail lines
  local line
  while IFS= read -r line; do
    case "$line" in
      "PASS "*) passed=$((passed+1)); echo "$line" ;;
      "FAIL "*) failed=$((failed+1)); echo "$line" ;;
      "  "*|"RETRY "*) echo "$line" ;;
    esac
  done
}
# JKRUN_TIER3_ONLY="run disk": only those sections (boot run terminal disk api hostile vsock tsi net devices posix); run-tests runs them in
# groups, each in a fresh nested host, so that the emulator wedging L1 costs one group, not the suite.
want() { [ -z "${JKRUN_TIER3_ONLY:-}" ] || [[ " $JKRUN_TIER3_ONLY " == *" $1 "* ]]; }
hung=0
out() {
  if grep -q '^Full thread dump' "$work/out" 2>/dev/null; then # kept whole; the threads' first lines shown here
    hung=$((hung+1)); cp "$work/out" "$work/hang-$hung.txt"
    echo "hung: thread dump in $work/hang-$hung.txt; threads with CPU time:"
    grep -E '^"' "$work/out" | grep -v -E '"(C[12] CompilerThread|GC|VM |Signal|Finalizer|Reference|Common-Cleaner|Notification|Service|Attach)' | head -n 40
  else
    cat "$work/out" 2>/dev/null | head -c 2000; echo
  fi
  cat "$work/err" 2>/dev/null | tail -n 20
}

# 1. boot: the banner reaches hvc0; the kernel panics for lack of a root and resets; jkrun reports the panic.
if want boot; then
JK_TIMEOUT=560 jk boot --timeout 500 >"$work/out" 2>"$work/err"; st=$?
grep -q 'Linux version 6.12' "$work/out"; check "boot: 'Linux version 6.12' on hvc0" $? "$(out)"
grep -q 'VM stopped: CRASH: kernel panic: ' "$work/err" && [ "$st" = 0 ]; check "boot: the kernel's panic (no root) is reported as CRASH with its message, status 0 (was $st)" $? "$(out)"
fi

# 2. run: exit status and stdout.
if want run; then
jk run -- /bin/sh -c 'echo hello from the guest; exit 42' >"$work/out" 2>"$work/err"; st=$?
[ "$st" = 42 ]; check "run: exit status 42 (was $st)" $? "$(out)"
grep -qx 'hello from the guest' "$work/out"; check "run: stdout carried" $? "$(out)"

# 3. stdin through cat, stdout and stderr separate.
echo piped-input | jk run -- /bin/sh -c 'cat; echo to-stderr >&2' >"$work/out" 2>"$work/err"; st=$?
[ "$st" = 0 ] && [ "$(cat "$work/out")" = piped-input ]; check "run: stdin through cat to stdout" $? "$(out)"
grep -qx 'to-stderr' "$work/err" && ! grep -q to-stderr "$work/out"; check "run: stderr separate" $? "$(out)"

# 4. missing and non-executable commands.
jk run -- /no/such/command >"$work/out" 2>"$work/err"; st=$?
[ "$st" = 127 ]; check "run: command not found -> 127 (was $st)" $? "$(out)"
printf '#!/bin/sh\necho should not run\n' > "$work/notexec"; chmod 0644 "$work/notexec"
# Through a share: the checkout may live under /tmp, which the guest covers with its own tmpfs.
jk run --fs t="$work" -- /mnt/t/notexec >"$work/out" 2>"$work/err"; st=$?
[ "$st" = 126 ]; check "run: not executable -> 126 (was $st)" $? "$(out)"

# 5. the default root is the host's / read-only; tmpfs on /tmp.
marker="/jkrun-tier3-$$"
jk run -- /bin/sh -c "echo x > $marker" >"$work/out" 2>"$work/err"; st=$?
[ "$st" != 0 ] && [ ! -e "$marker" ]; check "run: read-only root refuses writes (status $st)" $? "$(out)"
jk run -- /bin/sh -c 'echo scratch > /tmp/f && cat /tmp/f' >"$work/out" 2>"$work/err"; st=$?
[ "$st" = 0 ] && grep -qx scratch "$work/out"; check "run: /tmp is writable on a read-only root" $? "$(out)"

# 6. a share written and read; environment and working directory.
mkdir -p "$work/share"; echo from-host > "$work/share/in.txt"
jk run --fs data="$work/share" --env GREETING=hi --workdir /mnt/data -- \
  /bin/sh -c 'cat in.txt; echo "$GREETING"; pwd; echo guest-wrote > out.txt; sync' >"$work/out" 2>"$work/err"; st=$?
[ "$st" = 0 ] && [ "$(cat "$work/out")" = "$(printf 'from-host\nhi\n/mnt/data')" ]; check "run: share read, env, workdir" $? "$(out)"
[ "$(cat "$work/share/out.txt" 2>/dev/null)" = guest-wrote ]; check "run: file written to a share is on the host after exit" $? "$(out)"

# 6a-mq. virtio-fs with two request queues and two vCPUs: each CPU writes and reads back 40 files in a share at once
#     (Linux 6.11+ maps CPUs onto request queues); all 80 land on the host, and the device's debug log shows both
#     request queues serving.
mkdir -p "$work/mq"
JKRUN_JAVA_OPTS="${JKRUN_JAVA_OPTS:--XX:+UseSerialGC -Xshare:auto} -Dorg.slf4j.simpleLogger.log.dev.jkrun.devices.virtio.fs.VirtioFs=debug" \
  jk run --cpus 2 --fs-queues 2 --fs mq="$work/mq" -- /bin/sh -c 'for c in 0 1; do taskset -c $c /bin/sh -c "i=0; while [ \$i -lt 40 ]; do
    echo $c-\$i > /mnt/mq/f$c-\$i; cat /mnt/mq/f$c-\$i > /dev/null || exit 1; i=\$((i+1)); done" & done; wait; sync; ls /mnt/mq | wc -l' \
  >"$work/out" 2>"$work/err"; st=$?
[ "$st" = 0 ] && [ "$(tr -d ' ' < "$work/out")" = 80 ] && [ "$(ls "$work/mq" | wc -l)" = 80 ] && [ "$(cat "$work/mq/f1-39")" = 1-39 ]
check "run: --fs-queues 2: 80 files written from two vCPUs at once reach the host" $? "$(out)"
grep -q 'virtio-fs\[mq\] request queue 1 of 2 serves' "$work/err" && grep -q 'virtio-fs\[mq\] request queue 2 of 2 serves' "$work/err"
check "run: --fs-queues 2: the guest uses both request queues" $? "$(out; grep 'request queue' "$work/err")"

# 6a. virtio-rng, attached to every VM as libkrun does: the guest's hw_random core picks virtio_rng, /dev/hwrng reads
#     host entropy (64 bytes, not zeros); --no-rng leaves it out.
jk run -- /bin/sh -c 'cat /sys/class/misc/hw_random/rng_available; head -c 64 /dev/hwrng | od -An -tx1 | head -2; head -c 64 /dev/hwrng | wc -c' \
  >"$work/out" 2>"$work/err"; st=$?
[ "$st" = 0 ] && head -n 1 "$work/out" | grep -q '^virtio_rng'; check "run: virtio-rng is the guest's hw_random (rng_available)" $? "$(out)"
[ "$(sed -n 2,3p "$work/out" | grep -c -E '^( [0-9a-f]{2}){16}$')" = 2 ] && sed -n 2,3p "$work/out" | grep -q -v -E '^( 00){16}$' \
  && [ "$(tail -n 1 "$work/out" | tr -d ' ')" = 64 ]; check "run: /dev/hwrng reads 64 bytes of host entropy" $? "$(out)"
jk run --no-rng -- /bin/sh -c 'cat /sys/class/misc/hw_random/rng_available' >"$work/out" 2>"$work/err"; st=$?
[ "$st" = 0 ] && ! grep -q virtio_rng "$work/out"; check "run: --no-rng leaves virtio-rng out" $? "$(out)"

# 6a'. virtio-balloon, attached to every VM as libkrun does: the guest's virtio_balloon driver binds it and negotiates
#     free page reporting (sysfs features: one character per bit, bit 0 first; bit 5 is PAGE_REPORTING);
#     --no-balloon leaves it out.
jk run -- /bin/sh -c 'for d in /sys/bus/virtio/devices/*; do if [ "$(cat "$d/device")" = 0x0005 ]; then
  basename "$(readlink "$d/driver")"; cat "$d/features"; fi; done' >"$work/out" 2>"$work/err"; st=$?
[ "$st" = 0 ] && [ "$(head -n 1 "$work/out")" = virtio_balloon ] && [ "$(sed -n 2p "$work/out" | cut -c6)" = 1 ]
check "run: virtio_balloon bound with free page reporting negotiated" $? "$(out)"
jk run --no-balloon -- /bin/sh -c 'cat /sys/bus/virtio/devices/*/device' >"$work/out" 2>"$work/err"; st=$?
[ "$st" = 0 ] && ! grep -q 0x0005 "$work/out"; check "run: --no-balloon leaves virtio-balloon out" $? "$(out)"

# 6b-topology. CPU topology from CPUID as Linux builds it: 4 vCPUs are 4 cores of one package; with
#     --hyperthreading vCPUs 2k and 2k+1 are the two threads of core k (sibling lists), as libkrun's ht_enabled.
topo='for c in 0 1 2 3; do echo "cpu$c $(cat /sys/devices/system/cpu/cpu$c/topology/thread_siblings_list) $(cat /sys/devices/system/cpu/cpu$c/topology/core_id)"; done'
jk run --cpus 4 -- /bin/sh -c "$topo" >"$work/out" 2>"$work/err"; st=$?
[ "$st" = 0 ] && [ "$(cat "$work/out")" = "$(printf 'cpu0 0 0\ncpu1 1 1\ncpu2 2 2\ncpu3 3 3')" ]
check "run: 4 vCPUs are 4 single-thread cores (siblings, core ids)" $? "$(out)"
jk run --cpus 4 --hyperthreading -- /bin/sh -c "$topo" >"$work/out" 2>"$work/err"; st=$?
[ "$st" = 0 ] && [ "$(cat "$work/out")" = "$(printf 'cpu0 0-1 0\ncpu1 0-1 0\ncpu2 2-3 1\ncpu3 2-3 1')" ]
check "run: --hyperthreading pairs vCPUs into 2-thread cores" $? "$(out)"

# 6b-nested. nested virtualization: with --nested-virt the guest's own KVM (libkrunfw has it built in) gets a
#     /dev/kvm it can use where this host's KVM allows nesting; nested/kvmprobe (built by nested/test-harness.sh)
#     asks it for its API version.
probe="$PWD/nested/target/kvmprobe"
if grep -qsx -e 1 -e Y /sys/module/kvm_amd/parameters/nested /sys/module/kvm_intel/parameters/nested && [ -x "$probe" ]; then
  # Through a share: the checkout may live under /tmp, which the guest covers with its own tmpfs.
  jk run --nested-virt --fs probe="$(dirname "$probe")" -- /bin/sh -c "test -c /dev/kvm && echo has-dev-kvm; /mnt/probe/kvmprobe api" \
    >"$work/out" 2>"$work/err"; st=$?
  [ "$st" = 0 ] && grep -qx has-dev-kvm "$work/out" && grep -qx 'KVM_API_VERSION 12' "$work/out"
  check "run: --nested-virt gives the guest a working /dev/kvm" $? "$(out)"
  jk run -- /bin/sh -c 'test -c /dev/kvm && echo has-dev-kvm; grep -c -w -E "vmx|svm" /proc/cpuinfo' >"$work/out" 2>"$work/err"; st=$?
  ! grep -qx has-dev-kvm "$work/out" && grep -qx 0 "$work/out"; check "run: without --nested-virt no vmx/svm and no /dev/kvm" $? "$(out)"
else
  echo "skip - run: nested virtualization (this host's KVM does not allow nesting, or $probe was not built)"
fi
fi

# 6b. the terminal path (tests/terminal.sh, under util-linux `script`): size at start, SIGWINCH, Ctrl-C -> 130.
#    Like jk, the sub-suite runs again (up to $attempts times) when one of its JVMs hung or crashed (the emulator's faults).
if want terminal; then
tests/terminal.sh "$work/term" >"$work/term.out" 2>&1
for a in $(seq 2 "$attempts"); do
  fault_in "$work/term"/*.log || break
  f=$(grep -ls -e 'A fatal error has been detected by the Java Runtime' "$work/term"/*.log | head -n 1)
  retry_note "$work/term.out" "${f:-$work/term.out}" "terminal suite: $(grep -h -m1 -A1 'Problematic frame' "$work/term"/*.log | tail -n 1 | tr -d '\r')"
  tests/terminal.sh "$work/term" >"$work/term.out" 2>&1
done
tally < "$work/term.out"
fi

# 7. disks: raw written and read through /dev/vda, serial from GET_ID, read-only refused, qcow2 checked by qemu-img.
if want disk; then
img="$work/disk.raw"; head -c 16M /dev/zero > "$img"; printf 'host-sector0' | dd of="$img" conv=notrunc 2>/dev/null
jk run --disk data1="$img" -- /bin/sh -c \
  'cat /sys/block/vda/serial; echo; head -c 12 /dev/vda; echo; printf guest-wrote | dd of=/dev/vda bs=512 seek=8 conv=notrunc,fsync 2>/dev/null' \
  >"$work/out" 2>"$work/err"; st=$?
[ "$st" = 0 ] && [ "$(sed -n 1p "$work/out")" = data1 ] && [ "$(sed -n 2p "$work/out")" = host-sector0 ]
check "disk: serial and data read through /dev/vda" $? "$(out)"
[ "$(dd if="$img" bs=512 skip=8 count=1 2>/dev/null | head -c 11)" = guest-wrote ]; check "disk: data written by the guest is in the image" $? "$(out)"
sum=$(sha256sum < "$img")
jk run --disk ro1="$img":ro -- /bin/sh -c 'printf x | dd of=/dev/vda conv=notrunc,fsync 2>&1' >"$work/out" 2>"$work/err"; st=$?
[ "$st" != 0 ] && [ "$(sha256sum < "$img")" = "$sum" ]; check "disk: read-only disk refuses writes, image unchanged (status $st)" $? "$(out)"
if command -v qemu-img >/dev/null; then
  q="$work/disk.qcow2"; qemu-img create -q -f qcow2 "$q" 64M
  jk run --disk q1="$q":qcow2 -- /bin/sh -c \
    'i=0; while [ $i -lt 8 ]; do printf "block-$i" | dd of=/dev/vda bs=65536 seek=$((i*13)) conv=notrunc 2>/dev/null; i=$((i+1)); done; sync; dd if=/dev/vda bs=65536 skip=91 count=1 2>/dev/null | head -c 7' \
    >"$work/out" 2>"$work/err"; st=$?
  [ "$st" = 0 ] && [ "$(cat "$work/out")" = block-7 ]; check "disk: qcow2 written and read by the guest" $? "$(out)"
  qemu-img check -q "$q"; check "disk: qemu-img check is clean on the guest-written qcow2" $? "$(qemu-img check "$q" 2>&1 | tail -3)"
fi
if command -v mkfs.ext4 >/dev/null && [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; then
  r="$work/rootfs"; mkdir -p "$r/bin" "$r/proc" "$r/sys" "$r/dev" "$r/tmp"; cp /bin/busybox "$r/bin/"
  for a in sh cat ls mount; do ln -sf busybox "$r/bin/$a"; done; echo on-the-disk > "$r/block-marker"
  mkfs.ext4 -q -F -d "$r" "$work/root.ext4" 32M
  jk run --disk root="$work/root.ext4" --root-disk /dev/vda:ext4 -- /bin/sh -c 'cat /block-marker; [ -e /init.krun ] || echo no-init' \
    >"$work/out" 2>"$work/err"; st=$?
  [ "$st" = 0 ] && [ "$(cat "$work/out")" = "$(printf 'on-the-disk\nno-init')" ]; check "disk: ext4 root on disk (switch root)" $? "$(out)"
fi
# 7b. a container-style root (--layer): a busybox rootfs as the lower layer under an upper layer that replaces one of
#     its files and whites out another (OCI .wh.); the guest sees the merged view, replaces and deletes lower files
#     (copy-up, whiteouts in the upper layer), and the lower layer is byte for byte unchanged afterwards. (In /data:
#     init writes /etc/resolv.conf into a writable root.)
if [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; then
  lo="$work/layer-lower"; up="$work/layer-upper"; rm -rf "$lo" "$up"
  mkdir -p "$lo/bin" "$lo/proc" "$lo/sys" "$lo/dev" "$lo/tmp" "$lo/etc" "$lo/data" "$up/data"; cp /bin/busybox "$lo/bin/"
  for a in sh cat ls rm echo; do ln -sf busybox "$lo/bin/$a"; done
  echo lower-hostname > "$lo/data/hostname"; echo lower-only > "$lo/data/deleted"; echo lower-motd > "$lo/data/motd"
  echo upper-hostname > "$up/data/hostname"; : > "$up/data/.wh.deleted"
  layer_state() { (cd "$1" && find . -exec stat -c '%n %f %s %Y' {} + | sort && find . -type f -exec sha256sum {} + | sort); }
  lower_before=$(layer_state "$lo")
  jk run --layer "$lo" --layer "$up" -- /bin/sh -c 'cat /data/hostname; [ -e /data/deleted ] || echo deleted-hidden
    echo guest-motd > /data/motd; cat /data/motd; rm /data/hostname; [ -e /data/hostname ] || echo hostname-removed; ls /data' \
    >"$work/out" 2>"$work/err"; st=$?
  [ "$st" = 0 ] && [ "$(cat "$work/out")" = "$(printf 'upper-hostname\ndeleted-hidden\nguest-motd\nhostname-removed\nmotd')" ]
  check "disk: layered root (--layer): the guest sees and changes the merged view" $? "$(out)"
  [ "$(cat "$up/data/motd" 2>/dev/null)" = guest-motd ] && [ -e "$up/data/.wh.hostname" ] && [ ! -e "$up/data/hostname" ] \
    && [ "$(layer_state "$lo")" = "$lower_before" ]
  check "disk: layered root: changes are in the upper layer (copy-up, whiteout), the lower layer is unchanged" $? \
    "$(cd "$work" && ls -laR layer-upper/data layer-lower/data)"
fi
fi

# 8. the embedding API (tests/ApiE2E.java, compiled against the built jars): builder, stop() through init with
#    fsync'd data kept, kill(), a kernel panic as CRASH, three VMs at once in one JVM.
if want api; then
tests/api-e2e.sh "$work/api" >"$work/api.out" 2>"$work/api.err"; st=$?
for a in $(seq 2 "$attempts"); do
  fault_in "$work/api.out" "$work/api.err" || break
  retry_note "$work/api.out" "$work/api.err" "api suite: $(grep -h -m1 -E 'vCPU|Problematic frame|the VM stopped: CRASH' -A1 "$work/api.err" "$work/api.out" | head -n 2 | tr '\n' ' ')"
  tests/api-e2e.sh "$work/api" >"$work/api.out" 2>"$work/api.err"; st=$?
done
tally < "$work/api.out"
grep -q '^PASS api: concurrent VM 2' "$work/api.out"; check "api: the suite ran to its end (status $st)" $? "$(tail -n 20 "$work/api.err")"
fi

# 9. a hostile root shell (tests/hostile.sh): MKNOD of devices, FIFOs and device nodes in a share, host fd
#    exhaustion through a share, qcow2 write/discard loops. Its share needs FIFOs and device nodes: a scratch
#    directory on the local /tmp (a tmpfs in L1), not the checkout.
if want hostile; then
hw=$(mktemp -d)
tests/hostile.sh "$hw" >"$work/hostile.out" 2>&1
tally < "$work/hostile.out"
grep -q 'discard loop: qemu-img check' "$work/hostile.out" || ! command -v qemu-img >/dev/null
check "hostile: the suite ran to its end" $? "$(tail -n 20 "$work/hostile.out")"
rm -rf "$hw"
fi

# 10. vsock (tests/vsock.sh): the guest's AF_VSOCK through unix-socket bridges both ways, 50 connections at once.
if want vsock; then
tests/vsock.sh "$work/vsock" >"$work/vsock.out" 2>&1
tally < "$work/vsock.out"
grep -q 'unmapped port' "$work/vsock.out"; check "vsock: the suite ran to its end" $? "$(tail -n 20 "$work/vsock.out")"
fi

# 11. TSI (tests/tsi.sh, in a network namespace it creates): outbound TCP (wget) and UDP to host servers, two VMs'
#     guest servers published on two host ports, an unpublished port unreachable, --net none.
if want tsi; then
tests/tsi.sh "$work/tsi" >"$work/tsi.out" 2>&1
tally < "$work/tsi.out"
grep -q -- '--net none' "$work/tsi.out"; check "tsi: the suite ran to its end" $? "$(tail -n 20 "$work/tsi.out")"
fi

# 11b. virtio-net (tests/net.sh): passt started by jkrun (a DHCP lease, a page from the host), unixgram to socat's tap
#      bridge (ping, TCP both ways), two NICs in one VM; all inside a network namespace of the script's own.
if want net; then
tests/net.sh "$work/net" >"$work/net.out" 2>&1
tally < "$work/net.out"
grep -q 'net: the suite ran to its end' "$work/net.out"; check "net: the suite ran to its end" $? "$(tail -n 20 "$work/net.out")"
fi

# 12. many devices: 40 disks and 8 shares beside the root, the console, vsock, rng and balloon (53 virtio-mmio devices: the 19
#     IOAPIC lines 5-23 shared by 2 or 3 each, level-triggered). The guest finds every disk by its serial, reads the marker
#     the host left at its start and writes its own at sector 8, reads each share's file and writes one back; the
#     host checks every write, and /proc/interrupts must show 19 level-triggered (fasteoi) lines carrying virtio.
#     Then the limits, refused before boot and naming the field: 9 more disks overflow libkrunfw's 2047-byte command
#     line (53 devices fit beside ./jkrun run's own words), 5 more again pass the 64 devices a VM takes.
if want devices; then
many="$work/many"; rm -rf "$many"; mkdir -p "$many"; margs=()
for i in $(seq 0 39); do
  head -c 1M /dev/zero > "$many/disk$i.raw"; printf 'disk-%02d-host' "$i" | dd of="$many/disk$i.raw" conv=notrunc 2>/dev/null
  margs+=(--disk "d$i=$many/disk$i.raw")
done
for i in $(seq 0 7); do mkdir -p "$many/share$i"; echo "share-$i-host" > "$many/share$i/in.txt"; margs+=(--fs "s$i=$many/share$i"); done
# The guest's walk over its disks: "DISK <serial> <first 12 bytes>" each, "$1-wrote-<serial>" written at sector $2,
# then "WROTE <n>".
walk_disks() {
  printf '%s' '
  n=0
  for b in /sys/block/vd*; do
    d=/dev/${b##*/}; id=$(cat "$b/serial")
    echo "DISK $id $(head -c 12 "$d")"
    printf "'"$1"'-wrote-$id" | dd of="$d" bs=512 seek='"$2"' conv=notrunc,fsync 2>/dev/null && n=$((n+1))
  done
  echo "WROTE $n"'
}
JK_TIMEOUT=480 jk run "${margs[@]}" -- /bin/sh -c "$(walk_disks guest 8)"'
  for i in 0 1 2 3 4 5 6 7; do echo "SHARE $i $(cat /mnt/s$i/in.txt)"; echo "guest-wrote-$i" > /mnt/s$i/out.txt; done
  sync
  grep virtio /proc/interrupts | sed "s/^/IRQ /"' >"$work/out" 2>"$work/err"; st=$?
ok=0; for i in $(seq 0 39); do grep -qx "DISK d$i $(printf 'disk-%02d-host' "$i")" "$work/out" || ok=1; done
[ "$st" = 0 ] && [ "$ok" = 0 ] && [ "$(grep -c '^DISK ' "$work/out")" = 40 ]
check "devices: the guest sees all 40 disks, each with its serial and the host's marker (status $st)" $? "$(out)"
ok=0; for i in $(seq 0 39); do
  [ "$(dd if="$many/disk$i.raw" bs=512 skip=8 count=1 2>/dev/null | head -c $((13 + ${#i})))" = "guest-wrote-d$i" ] || ok=1
done
grep -qx 'WROTE 40' "$work/out" && [ "$ok" = 0 ]; check "devices: the guest's write to each of the 40 disks is in its image" $? "$(out)"
ok=0; for i in $(seq 0 7); do
  grep -qx "SHARE $i share-$i-host" "$work/out" && [ "$(cat "$many/share$i/out.txt" 2>/dev/null)" = "guest-wrote-$i" ] || ok=1
done
[ "$ok" = 0 ]; check "devices: all 8 shares read, and written back to the host" $? "$(out)"
[ "$(grep -c '^IRQ ' "$work/out")" = 19 ] && [ "$(grep '^IRQ ' "$work/out" | grep -c fasteoi)" = 19 ] \
  && grep -qE '^IRQ +23:' "$work/out"
check "devices: /proc/interrupts has the 19 virtio lines 5-23, each level-triggered (fasteoi)" $? "$(grep '^IRQ ' "$work/out")"
# The split irqchip (krun_split_irqchip): jkrun's IOAPIC, the LAPICs in KVM, no PIC or PIT. 24 disks and the default
# devices give lines of several devices (level: Remote IRR and the EOI exits) beside lines of one (edge, irqfd
# through the MSI routes).
sargs=(); for i in $(seq 0 23); do sargs+=(--disk "d$i=$many/disk$i.raw"); done
JK_TIMEOUT=480 jk run --split-irqchip --cpus 2 "${sargs[@]}" -- /bin/sh -c "$(walk_disks split 16)"'
  t0=$(cut -d. -f1 /proc/uptime); sleep 2; t1=$(cut -d. -f1 /proc/uptime); echo "SLEPT $((t1 - t0))"
  dmesg | grep -iE "legacy PIC|IO-APIC|clocksource" | sed "s/^/DMESG /"
  grep -E "virtio|LOC:|XT-PIC|timer" /proc/interrupts | sed "s/^/IRQ /"' >"$work/out" 2>"$work/err"; st=$?
ok=0; for i in $(seq 0 23); do
  grep -qx "DISK d$i $(printf 'disk-%02d-host' "$i")" "$work/out" || ok=1
  [ "$(dd if="$many/disk$i.raw" bs=512 skip=16 count=1 2>/dev/null | head -c $((14 + ${#i})))" = "split-wrote-d$i" ] || ok=1
done
[ "$st" = 0 ] && [ "$ok" = 0 ] && grep -qx 'WROTE 24' "$work/out"
check "devices: split irqchip: 24 disks read and written through jkrun's IOAPIC (status $st)" $? "$(out)"
lv=$(grep '^IRQ ' "$work/out" | grep 'virtio' | grep -c 'fasteoi'); ed=$(grep '^IRQ ' "$work/out" | grep -c 'IO-APIC.*edge.*virtio')
[ "$lv" -ge 5 ] && [ "$ed" -ge 5 ] && [ $((lv + ed)) = 19 ] && ! grep -q 'XT-PIC' "$work/out"
check "devices: split irqchip: shared lines level (fasteoi: $lv), own lines edge ($ed), 19 in all, no XT-PIC" $? "$(grep '^IRQ ' "$work/out")"
# (the boot's "Using NULL legacy PIC" may have left dmesg's ring by then: 24 disks log a lot)
# The sleep must end (a dead timer never wakes it) and not early: whole seconds of uptime read 2 or 3 on an idle
# host; under TCG with the host busy the wake-up can come late (one CI saw 4), so up to 8 passes.
! grep -qE '^IRQ +0:' "$work/out" && grep -qE '^SLEPT [2-8]$' "$work/out"
check "devices: split irqchip: no PIT interrupt (IRQ 0), and the LAPIC timer keeps time (sleep 2)" $? "$(grep -E '^(DMESG|SLEPT|IRQ)' "$work/out")"
# The hostile ioapic test guest on hardware KVM (its tier-2 run is on kvm-pvm, which reports a level vector's EOI
# when it injects the interrupt): here the EOI must come from the guest's handler, so a handler that masks the pin
# before its EOI sees exactly one delivery before it unmasks.
JK_TIMEOUT=300 jk guest --split-irqchip --serial --cmdline jkrun.test.timeout_ms=20000 -- guests/target/classes/guests/ioapic \
  >"$work/out" 2>"$work/err"; st=$?
[ "$st" = 0 ] && grep -qx 'IOAPIC ok 11' "$work/out" && grep -qx 'INFO masked_in_service: 1 deliveries before the unmask' "$work/out"
check "devices: split irqchip: the ioapic test guest (Remote IRR, EOIs, masking, 20000 hostile accesses) passes on hardware KVM (status $st)" $? "$(out)"
for i in $(seq 40 48); do margs+=(--disk "x$i=$many/disk$((i - 40)).raw:ro"); done # 53 + 9 = 62 devices
jk run "${margs[@]}" -- /bin/true >"$work/out" 2>"$work/err"; st=$?
[ "$st" = 125 ] && grep -qE 'jkrun: devices: [0-9]+ virtio devices need .* at most 2047 .*: 5[0-9] devices fit' "$work/err"
check "devices: 9 disks more overflow the 2047-byte command line, refused naming the devices (status $st)" $? "$(out)"
for i in $(seq 49 53); do margs+=(--disk "x$i=$many/disk$((i - 40)).raw:ro"); done # and 5 more: 67
jk run "${margs[@]}" -- /bin/true >"$work/out" 2>"$work/err"; st=$?
[ "$st" = 125 ] && grep -qE 'jkrun: devices: 6[5-9] virtio devices .*at most 64 fit in one VM' "$work/err"
check "devices: more than 64 devices are refused naming the limit (status $st)" $? "$(out)"
rm -rf "$many"
fi

# 13. POSIX fidelity of a read-write virtio-fs share: gnulib's tests of the file-system calls (tests/posix/build.sh:
#     ownership, groups, set-ID bits, times, links, renames, ...) run as uid 1000 with groups 1000 and 1001, once in
#     a directory of this host and once in the guest on a share of another (both on this host's own /tmp, not the
#     checkout, which the nested harness reaches over 9p). Every test that passes on the host must pass in the
#     guest, but those tests/posix/known-differences lists with their reason. Then tests/posix/metadata.sh, the rules
#     gnulib does not test (set-ID bits), both sides, compared line for line.
if want posix; then
if [ ! -s .jkrun/posix/tests/tests.list ]; then tests/posix/build.sh >"$work/posix-build.log" 2>&1; fi
if [ -s .jkrun/posix/tests/tests.list ]; then
px=$(mktemp -d /tmp/jkrun-posix.XXXXXX); chmod 755 "$px" # the tests chdir("..") and resolve their cwd
for side in host guest; do
  cp -a .jkrun/posix/tests "$px/$side"; cp tests/posix/run.sh "$px/$side/"; chown -R 1000:1000 "$px/$side"
  mkdir "$px/meta-$side"; cp tests/posix/metadata.sh "$px/meta-$side/"; chown 1000:1000 "$px/meta-$side"
done
as_user() { setpriv --reuid=1000 --regid=1000 --groups=1000,1001 "$@"; }
(cd "$px/host" && as_user sh ./run.sh) >"$work/posix-host.out" 2>&1
(cd "$px/meta-host" && sh ./metadata.sh setup && as_user sh ./metadata.sh user) >"$work/meta-host.out" 2>&1
# one guest for both, on a share that keeps set-ID bits (:setuid), as the host directory does
JK_TIMEOUT=900 jk run --fs p="$px:setuid" -- /bin/sh -c '
  as_user() { setpriv --reuid=1000 --regid=1000 --groups=1000,1001 "$@"; }
  (cd /mnt/p/guest && as_user sh ./run.sh)
  (cd /mnt/p/meta-guest && sh ./metadata.sh setup && as_user sh ./metadata.sh user) >/mnt/p/meta-guest.out 2>&1' \
  >"$work/posix-guest.out" 2>"$work/err"
st=$?
cp "$px/meta-guest.out" "$work/meta-guest.out" 2>/dev/null
hc=$(grep -o 'POSIX pass .*' "$work/posix-host.out"); gc=$(grep -o 'POSIX pass .*' "$work/posix-guest.out")
[ -n "$hc" ] && [ -n "$gc" ]
check "posix: the suite ran on both sides (host: ${hc:-no count}; guest on virtio-fs: ${gc:-no count}, status $st)" $? \
  "$(tail -n 5 "$work/posix-host.out"; tail -n 5 "$work/posix-guest.out"; tail -n 5 "$work/err")"
# tests that did not pass (FAIL or SKIP) in the guest but passed on the host, less the listed known differences
diff=$(grep -oE '^(FAIL|SKIP) [^ :]+' "$work/posix-guest.out" | cut -d' ' -f2 | sort -u | while read -r t; do
  grep -qE "^(FAIL|SKIP) $t[ :]" "$work/posix-host.out" && continue
  grep -qE "^$t " tests/posix/known-differences 2>/dev/null && continue
  echo "$t"
done)
ndiff=$(echo $diff | wc -w)
[ -n "$gc" ] && [ "$ndiff" = 0 ]
check "posix: every test that passes on the host passes in the guest ($ndiff differ)" $? \
  "$(for t in $diff; do grep -E "^(FAIL|SKIP) $t[ :]" "$work/posix-guest.out"; done)"
# tests/posix/metadata.sh: set-ID clearing, who may chown/chgrp/utimens, groups, ctime; the same lines both sides
nmeta=$(wc -l <"$work/meta-host.out")
[ -s "$work/meta-host.out" ] && cmp -s "$work/meta-host.out" "$work/meta-guest.out"
check "posix: set-ID bits, chown/chgrp/utimens permissions, groups and ctime as on the host ($nmeta lines)" $? \
  "$(diff "$work/meta-host.out" "$work/meta-guest.out" 2>&1 | head -n 20)"
rm -rf "$px"
else
check "posix: the suite builds (tests/posix/build.sh)" 1 "$(tail -n 20 "$work/posix-build.log")"
fi
fi

[ -s "$work/retries" ] && echo "($(cat "$work/retries") run(s) retried after a hang or JVM crash; see the RETRY lines)"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
