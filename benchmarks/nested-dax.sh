#!/usr/bin/env bash
# virtio-fs with and without a DAX window, in one libkrunfw guest, in the same run. Needs hardware virtualization,
# so here it runs INSIDE L1:
#
#   ./jkrun-nested -- benchmarks/nested-dax.sh          (SIZE_MIB=64 ROUNDS=3 TOUCHES=20000 by default)
#
# One share of a host directory holding a SIZE_MIB file is attached twice: once with a DAX window (mounted with
# -o dax) and once without (plain FUSE). Workloads, each on both mounts, ROUNDS times, the guest's page cache dropped
# before each run: read-heavy (cat of the whole file) and mmap-heavy (python3: TOUCHES 4 KiB reads at pseudo-random
# offsets of an mmap of the file). Prints milliseconds per run (median) and the DAX/FUSE ratios. Under the nested
# harness everything runs under TCG: absolute times are inflated, only the ratios of one run mean anything.
set -u
cd "$(dirname "$0")/.." || exit 1
export JKRUN_NO_BUILD=1
SIZE_MIB=${SIZE_MIB:-64}
ROUNDS=${ROUNDS:-3}
TOUCHES=${TOUCHES:-20000}
[ -e /dev/kvm ] || { echo "nested-dax: no /dev/kvm (run it through ./jkrun-nested)" >&2; exit 2; }
grep -qwE 'vmx|svm' /proc/cpuinfo || { echo "nested-dax: no vmx/svm here: libkrunfw cannot boot (use ./jkrun-nested)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "nested-dax: python3 is missing (the guest runs the host's)" >&2; exit 2; }
mkdir -p .jkrun; dir=$(mktemp -d "$PWD/.jkrun/dax.XXXXXX")
trap 'rm -rf "$dir"' EXIT
head -c "$((SIZE_MIB << 20))" /dev/urandom > "$dir/data.bin"

guest=$(cat <<GUEST
set -e
mkdir -p /tmp/dax /tmp/fuse
mount -t virtiofs dax /tmp/dax -o dax
mount -t virtiofs fuse /tmp/fuse
ms() { echo \$((\$(date +%s%N) / 1000000)); }
for round in \$(seq $ROUNDS); do
  for m in dax fuse; do
    sync; echo 3 > /proc/sys/vm/drop_caches
    t0=\$(ms); cat /tmp/\$m/data.bin > /dev/null; t1=\$(ms)
    echo "RUN read \$m \$((t1 - t0))"
    sync; echo 3 > /proc/sys/vm/drop_caches
    t0=\$(ms)
    python3 -c "
import mmap
f = open('/tmp/\$m/data.bin', 'rb'); m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
n = len(m) // 4096; x = 12345; s = 0
for i in range($TOUCHES):
    x = (x * 1103515245 + 12345) % 2147483648
    s += m[(x % n) * 4096]
print(s % 7)" > /dev/null
    t1=\$(ms)
    echo "RUN mmap \$m \$((t1 - t0))"
  done
done
GUEST
)
out=$(./jkrun run --memory 1024 --fs "dax=$dir:dax=256M" --fs "fuse=$dir" -- /bin/sh -c "$guest" 2>"$dir/err")
st=$?
[ $st = 0 ] || { echo "nested-dax: the guest failed (status $st):" >&2; echo "$out" >&2; tail -n 20 "$dir/err" >&2; exit 1; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo "== nested-dax: ${SIZE_MIB} MiB file, $ROUNDS rounds, page cache dropped before each run; median ms per run"
printf '%-16s %10s %10s %10s\n' workload "DAX ms" "FUSE ms" DAX/FUSE
for w in read mmap; do
  d=$(echo "$out" | awk -v w=$w '$1 == "RUN" && $2 == w && $3 == "dax" { print $4 }' | median)
  f=$(echo "$out" | awk -v w=$w '$1 == "RUN" && $2 == w && $3 == "fuse" { print $4 }' | median)
  label=$([ $w = read ] && echo "read (cat)" || echo "mmap ($TOUCHES x 4K)")
  printf '%-16s %10s %10s %10s\n' "$label" "$d" "$f" "$(awk -v a="$d" -v b="$f" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
done
