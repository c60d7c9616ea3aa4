#!/usr/bin/env bash
# fio inside a libkrunfw guest on a virtio-blk disk (raw and qcow2 images) vs the same fio jobs on the image file
# on the VMM's host, in the same run. Needs hardware virtualization, so here it runs INSIDE L1:
#
#   ./jkrun-nested -- benchmarks/nested-fio.sh          (SIZE=64M RUNTIME=10 by default)
#
# Jobs (one fio process each side, stonewalled, libaio, 16 in flight): sequential 1 MiB write and read, random
# 4 KiB write and read. In the guest fio opens /dev/vda with O_DIRECT, so every request crosses virtio-blk; on the
# host it runs on the image file itself (buffered, fsync at the end of writes: the host's page cache is the
# storage the VMM writes into too). Under the nested harness both sides run under TCG: absolute numbers are
# inflated and noisy, only the guest/host ratios mean anything. fio comes from the host (apt-get install fio);
# the guest's root is the host's / read-only, so it runs the same binary.
set -u
cd "$(dirname "$0")/.." || exit 1
export JKRUN_NO_BUILD=1
SIZE=${SIZE:-64M}
RUNTIME=${RUNTIME:-10}
command -v fio >/dev/null || { echo "nested-fio: fio is missing (apt-get install fio)" >&2; exit 2; }
[ -e /dev/kvm ] || { echo "nested-fio: no /dev/kvm (run it through ./jkrun-nested)" >&2; exit 2; }
grep -qwE 'vmx|svm' /proc/cpuinfo || { echo "nested-fio: no vmx/svm here: libkrunfw cannot boot (use ./jkrun-nested)" >&2; exit 2; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/jkrun-fio.XXXXXX")
trap 'rm -rf "$dir"' EXIT

jobs=(--direct_placeholder --ioengine=libaio --iodepth=16 --size="$SIZE" --time_based --runtime="$RUNTIME" --minimal
      --name=seq-write --rw=write --bs=1M --end_fsync=1 --stonewall
      --name=seq-read --rw=read --bs=1M --stonewall
      --name=rand-write --rw=randwrite --bs=4k --end_fsync=1 --stonewall
      --name=rand-read --rw=randread --bs=4k --stonewall)
# fio's terse (v3) lines: field 3 job name, 7 read KiB/s, 8 read IOPS, 48 write KiB/s, 49 write IOPS.
parse() { awk -F';' '$1 == 3 { if ($3 ~ /write/) print $3, $48, $49; else print $3, $7, $8 }'; }

img="$dir/disk.raw"
truncate -s "$SIZE" "$img"
host=$(fio --filename="$img" "${jobs[@]/--direct_placeholder/--direct=0}" 2>"$dir/host.err" | parse)
[ -n "$host" ] || { echo "nested-fio: fio on the host failed:" >&2; cat "$dir/host.err" >&2; exit 1; }

guest_run() { # FORMAT IMAGE: fio in the guest on /dev/vda
  ./jkrun run --memory 512 --disk "d=$2:$1" -- fio --filename=/dev/vda "${jobs[@]/--direct_placeholder/--direct=1}" \
    2>"$dir/guest-$1.err" | parse
}
rm -f "$img"; truncate -s "$SIZE" "$img"
raw=$(guest_run raw "$img")
q="$dir/disk.qcow2"; qemu-img create -q -f qcow2 "$q" "$SIZE"
qcow=$(guest_run qcow2 "$q")
for f in raw qcow2; do
  [ -n "$( [ $f = raw ] && echo "$raw" || echo "$qcow")" ] || { echo "nested-fio: fio in the guest ($f) failed:" >&2; cat "$dir/guest-$f.err" >&2; }
done

echo "== nested-fio: fio $SIZE per job, ${RUNTIME}s each, libaio, iodepth 16; guest O_DIRECT on /dev/vda vs host buffered on the image file"
printf '%-11s %12s %10s %12s %10s %12s %10s %9s %9s\n' job "host KiB/s" IOPS "raw KiB/s" IOPS "qcow2 KiB/s" IOPS raw/host qcow2/host
while read -r name hbw hio; do
  # here-strings, not process substitution: L1 (./jkrun-nested) has no /dev/fd
  read -r _ rbw rio <<<"$(grep "^$name " <<<"$raw" || echo "$name - -")"
  read -r _ qbw qio <<<"$(grep "^$name " <<<"$qcow" || echo "$name - -")"
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9]+$/ && b > 0) printf "%.2f", a/b; else printf "-" }'; }
  printf '%-11s %12s %10s %12s %10s %12s %10s %9s %9s\n' "$name" "$hbw" "$hio" "$rbw" "$rio" "$qbw" "$qio" \
    "$(ratio "$rbw" "$hbw")" "$(ratio "$qbw" "$hbw")"
  echo "RESULT fio_$name host_kibs=$hbw raw_kibs=$rbw qcow2_kibs=$qbw raw_ratio=$(ratio "$rbw" "$hbw") qcow2_ratio=$(ratio "$qbw" "$hbw")" >> "$dir/results"
done <<<"$host"
cat "$dir/results"
if command -v qemu-img >/dev/null; then
  qemu-img check -q "$q" && echo "qemu-img check: the guest-written qcow2 is clean" || echo "qemu-img check: ERRORS in the guest-written qcow2"
fi
