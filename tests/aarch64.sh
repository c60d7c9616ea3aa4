#!/usr/bin/env bash
# The aarch64 tier: jkrun's aarch64 platform on a real arm64 KVM, inside the nested aarch64 host
# (./jkrun-nested --arch aarch64: QEMU TCG with EL2, Debian's arm64 kernel and JDK). Run on the x86_64 host:
#   tests/aarch64.sh            builds (unless JKRUN_NO_BUILD=1), then runs tests/aarch64-in-l1.sh in L1:
#                               the aarch64 test guests (JUnit: Aarch64GuestTest), then full Linux boots of Debian's
#                               arm64 kernel through ./jkrun run with an initramfs built here
# Prints one line per test and "N passed, M failed, K skipped" last; exits non-zero when a test failed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
say() { echo "tests/aarch64.sh: $*" >&2; }

command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || { say "aarch64-linux-gnu-gcc is missing (apt-get install gcc-aarch64-linux-gnu)"; exit 1; }
mkdir -p "$root/.jkrun/aarch64"
if [ "${JKRUN_NO_BUILD:-}" != 1 ]; then
  say "building (mvn install -DskipTests)"
  mvn -B -q -o -DskipTests install >"$root/.jkrun/aarch64-build.log" 2>&1 \
    || mvn -B -q -DskipTests install >"$root/.jkrun/aarch64-build.log" 2>&1 \
    || { tail -n 30 "$root/.jkrun/aarch64-build.log" >&2; exit 1; }
  touch "$root/.jkrun/build-stamp"
fi
[ -f guests/target/classes/guests-aarch64/exit_status ] || { say "the aarch64 test guests were not built"; exit 1; }
[ -f init/target/classes/dev/jkrun/init/init-aarch64.krun ] || { say "the aarch64 init was not built"; exit 1; }
# The test classpath: this checkout's classes and module jars, and the third-party jars of the local Maven repository
# ($HOME is shared into L1). jkrun's own jars are taken from this checkout's target/ directories, never from the
# local repository, which another checkout on the same machine may have installed.
cpfile="$root/.jkrun/aarch64/test-classpath"
mvn -B -q -o dependency:build-classpath -pl vmm -Dmdep.includeScope=test -Dmdep.outputFile="$cpfile" >/dev/null 2>&1 \
  || mvn -B -q dependency:build-classpath -pl vmm -Dmdep.includeScope=test -Dmdep.outputFile="$cpfile" >/dev/null
own=$(tr ':' '\n' <"$cpfile" | sed -E "s#^.*/dev/jkrun/jkrun-([a-z0-9_-]+)/[^/]+/(jkrun-[^/]+\\.jar)\$#$root/\\1/target/\\2#" | paste -sd:)
for j in $(echo "$own" | tr ':' '\n' | grep "^$root/"); do
  [ -f "$j" ] || { say "$j is missing (build this checkout first: mvn install -DskipTests)"; exit 1; }
done
echo "$root/vmm/target/test-classes:$root/vmm/target/classes:$own" >"$cpfile.full"

# The guest kernel: the nested host's own (Debian's arm64 Image), and an initramfs that loads the virtio modules
# (from the same package) and hands over to jkrun's init on the virtio-fs root. The nested host's set-up makes both
# (a run of `true` does it once).
./jkrun-nested --arch aarch64 --timeout 600 -- true
cache=${XDG_CACHE_HOME:-$HOME/.cache}/jkrun/nested-aarch64
read -r a64_root a64_kernel <"$cache/current"
kdir=$cache/$a64_kernel
[ -f "$kdir/guest-modules.order" ] || { say "$kdir has no guest-modules.order (nested/aarch64.sh's A64_GUEST_MODULES)"; exit 1; }
work=$root/.jkrun/aarch64/initramfs
rm -rf "$work"; mkdir -p "$work/bin" "$work/modules"
cp "$cache/$a64_root/bin/busybox" "$work/bin/busybox"
cp "$kdir"/guest-modules/*.ko "$work/modules/"
cp "$kdir/guest-modules.order" "$work/modules.order"
cat >"$work/init" <<'EOF_INIT'
#!/bin/busybox sh
# The initramfs of jkrun's aarch64 tier: the virtio modules Debian's kernel has as modules, then the virtio-fs root
# (tag /dev/root), then jkrun's init there.
/bin/busybox mkdir -p /proc /dev /newroot
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec 2>/dev/kmsg   # what fails below lands in the kernel's log (jkrun --log-level debug shows it with earlycon)
/bin/busybox mount -t proc proc /proc
for m in $(/bin/busybox cat /modules.order); do
  /bin/busybox insmod "/modules/$m.ko" || echo "initramfs: insmod $m failed" >/dev/kmsg
done
/bin/busybox mount -t virtiofs /dev/root /newroot || { echo "initramfs: cannot mount the root share" >/dev/kmsg; /bin/busybox poweroff -f; }
/bin/busybox umount /proc
exec /bin/busybox switch_root /newroot /init.krun   # /dev stays (stderr is on /dev/kmsg); init.krun mounts its own
EOF_INIT
chmod 755 "$work/init"
(cd "$work" && find . -mindepth 1 | LC_ALL=C sort | /bin/busybox cpio -o -H newc -R 0:0 2>/dev/null | gzip -n -6) \
  >"$root/.jkrun/aarch64/initramfs.cpio.gz"
ln -sf "$kdir/vmlinuz" "$root/.jkrun/aarch64/Image"   # the checkout is shared into L1; the cache ($HOME) too

# about 2.5 minutes here (2026-12-06): the deadline bounds what a wedged L1 costs CI's 90 minutes
exec ./jkrun-nested --arch aarch64 --timeout "${JKRUN_AARCH64_TIMEOUT:-600}" -- \
  env JKRUN_NO_BUILD=1 bash tests/aarch64-in-l1.sh
