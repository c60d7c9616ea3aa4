# nested/aarch64.sh: the aarch64 L1 of ../jkrun-nested (`./jkrun-nested --arch aarch64 ...`). Sourced by it, not run
# on its own; it uses jkrun-nested's die, say, apt_install, apt_download, need_space and its variables (CACHE, SUDO,
# APT_UPDATED, MEM, CPUS, RW, RUN, VIRTFS). See nested/README.md, section "aarch64".
#
# L1 is qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -cpu max,pauth-impdef=on under TCG: the guest
# kernel boots at EL2 and its (built-in) KVM runs in VHE mode, so L1's /dev/kvm is an arm64 KVM. This host is
# x86_64, so L1 cannot use the host's root: a Debian arm64 root is assembled in the cache from .deb packages that
# are downloaded (their hashes checked against the gpgv-verified InRelease of each suite) and unpacked with
# `dpkg-deb --fsys-tarfile | tar -x`, never installed; no `dpkg --add-architecture`, no apt state of the host's is
# touched. Dependencies are resolved here (Depends + Pre-Depends, newest version over the suites, the first
# alternative that exists, A64_SKIP left out). That root is served to L1 read-only over virtio-9p.
#
# Defines a64_setup (under the set-up lock: QEMU, kernel, root, initramfs; sets QEMU KDIR INITRD A64_ROOT, and
# A64_ENV for the job's environment) and a64_qemu_args (sets QEMU_ARGS for a run).

A64_GEN=1   # bump when the root's or the initramfs's layout changes
A64_SUITE=bookworm   # the package names below are bookworm's (openjdk-17, linux-image-arm64)
A64_ARCH=arm64
# Modules L1 loads (with their dependencies); kvm is built into Debian's arm64 kernel. A change here extracts the
# kernel package again.
A64_MODULES="virtio_pci virtio_console 9pnet_virtio 9p dummy tun"
# Modules jkrun's own aarch64 guests (L2) load from their initramfs (tests/aarch64.sh): kept apart in the kernel's
# cache directory as guest-modules/ and guest-modules.order, in load order.
A64_GUEST_MODULES="virtio_mmio virtio_console virtio_blk virtio_net fuse virtiofs"
A64_WANTED="$A64_MODULES | guest: $A64_GUEST_MODULES"
# What the root holds (with their Depends/Pre-Depends, minus A64_SKIP). A change here assembles the root again.
# /bin/sh is dash, as on the host: busybox's ash would run its own applets (date, ls, ...) in place of coreutils'.
A64_PACKAGES="busybox-static bash dash coreutils grep sed findutils openjdk-17-jre-headless"
# Maintainer-script machinery, data and config packages a root that is never "installed" does without.
A64_SKIP="dpkg debconf adduser base-files base-passwd debianutils init-system-helpers perl-base util-linux
 util-linux-extra ca-certificates ca-certificates-java java-common openssl fontconfig-config fonts-dejavu-core
 libasound2-data readline-common sensible-utils"
# what a root was made from (in root-<hash>.packages): a change here resolves the packages again
A64_STAMP="gen=$A64_GEN packages=$A64_PACKAGES skip=$(echo $A64_SKIP)"
A64_JAVA_HOME=/usr/lib/jvm/java-17-openjdk-$A64_ARCH
A64_PATH=$A64_JAVA_HOME/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
A64_KEYRING=${JKRUN_NESTED_DEBIAN_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}

# ------------------------------------------------------------------ downloads
# a64_mirrors: the Debian mirror and security mirror the host's apt uses (JKRUN_NESTED_DEBIAN_MIRROR and
# JKRUN_NESTED_DEBIAN_SECURITY override them), else deb.debian.org.
a64_mirrors() {
  local uris
  uris=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
         | grep -v '^[[:space:]]*#' | grep -oE 'https?://[^][ ]+' | sed 's:/*$::')
  A64_MIRROR=${JKRUN_NESTED_DEBIAN_MIRROR:-$(grep -E '/debian$' <<<"$uris" | head -1)}
  A64_SECURITY=${JKRUN_NESTED_DEBIAN_SECURITY:-$(grep -E '/debian-security$' <<<"$uris" | head -1)}
  A64_MIRROR=${A64_MIRROR:-http://deb.debian.org/debian}
  A64_SECURITY=${A64_SECURITY:-http://deb.debian.org/debian-security}
}

# a64_fetch DIR URL NAME [URL NAME]...: download into DIR (apt's own downloader, so apt's proxy settings apply; curl
# or wget for what it could not fetch). Hashes are checked by the callers.
a64_fetch() {
  local dir=$1 i args=() opts=()
  shift
  [[ $(id -u) == 0 ]] && opts=(-o APT::Sandbox::User=root)
  for ((i = 1; i < $#; i += 2)); do args+=("${!i}"); local j=$((i + 1)); args+=("$dir/${!j}"); done
  if [[ -x /usr/lib/apt/apt-helper ]]; then
    /usr/lib/apt/apt-helper "${opts[@]}" download-file "${args[@]}" >>"$CACHE/apt.log" 2>&1
  fi
  for ((i = 1; i < $#; i += 2)); do
    local j=$((i + 1))
    [[ -s $dir/${!j} ]] && continue
    if command -v curl >/dev/null; then
      curl -fsSL --retry 2 -o "$dir/${!j}" "${!i}" >>"$CACHE/apt.log" 2>&1 || { echo "curl failed: ${!i}" >>"$CACHE/apt.log"; return 1; }
    elif command -v wget >/dev/null; then
      wget -q -O "$dir/${!j}" "${!i}" >>"$CACHE/apt.log" 2>&1 || { echo "wget failed: ${!i}" >>"$CACHE/apt.log"; return 1; }
    else
      echo "cannot download ${!i}" >>"$CACHE/apt.log"; return 1
    fi
  done
}

# a64_indexes DIR: the arm64 Packages of SUITE, SUITE-updates and SUITE-security into DIR/<suite>.Packages, each
# checked against its suite's InRelease (gpgv with the Debian archive keyring; Codename and Valid-Until checked as apt
# does); DIR/suites lists "<base URL> <file>" in that order.
a64_indexes() {
  local dir=$1 suite base rel line sum size vu
  : >"$dir/suites"
  for suite in "$A64_SUITE" "$A64_SUITE-updates" "$A64_SUITE-security"; do
    base=$A64_MIRROR
    [[ $suite == *-security ]] && base=$A64_SECURITY
    a64_fetch "$dir" "$base/dists/$suite/InRelease" "$suite.InRelease" \
      || die "cannot download $base/dists/$suite/InRelease (see $CACHE/apt.log)"
    gpgv -q --keyring "$A64_KEYRING" --output "$dir/$suite.Release" "$dir/$suite.InRelease" >>"$CACHE/apt.log" 2>&1 \
      || die "$suite's InRelease from $base does not verify against $A64_KEYRING (see $CACHE/apt.log)"
    rel=$dir/$suite.Release
    grep -qx "Codename: $suite" "$rel" || die "$base/dists/$suite/InRelease is not for $suite"
    vu=$(sed -n 's/^Valid-Until: //p' "$rel")
    if [[ -n $vu ]] && (( $(date -d "$vu" +%s 2>/dev/null || echo 0) < $(date +%s) )); then
      die "$base/dists/$suite/InRelease expired ($vu): the mirror is stale"
    fi
    line=$(awk -v f="main/binary-$A64_ARCH/Packages.xz" '$3 == f && length($1) == 64 {print $1, $2; exit}' "$rel")
    [[ -n $line ]] || die "$suite has no main/binary-$A64_ARCH/Packages.xz"
    read -r sum size <<<"$line"
    a64_fetch "$dir" "$base/dists/$suite/main/binary-$A64_ARCH/Packages.xz" "$suite.Packages.xz" \
      || die "cannot download $suite's Packages.xz (see $CACHE/apt.log)"
    [[ $(sha256sum <"$dir/$suite.Packages.xz" | cut -d' ' -f1) == "$sum" ]] \
      || die "$suite's Packages.xz does not match its InRelease (SHA256)"
    xz -dc "$dir/$suite.Packages.xz" >"$dir/$suite.Packages" || die "cannot unpack $suite's Packages.xz (no space?)"
    rm -f "$dir/$suite.Packages.xz"
    echo "$base $suite.Packages" >>"$dir/suites"
  done
}

# The resolver. Input: Packages files, each preceded by base=<its base URL>. Output lines:
#   K <package> <version> <url> <sha256> <size>   the kernel package that linux-image-<arch> depends on
#   P <package> <version> <url> <sha256> <size>   each package of the root
#   U <dependency> <of>                            a dependency no package satisfies (reported, not fatal)
# Versions: the newest over all suites (dpkg --compare-versions); alternatives: the first already chosen, skipped, a
# real package, or a provided one, in that order; version constraints are not checked (one release, one archive).
read -r -d '' A64_RESOLVER <<'EOF_AWK'
BEGIN { RS = ""; FS = "\n" }
{
  p = v = d = pv = fn = sha = sz = ""
  for (i = 1; i <= NF; i++) {
    f = $i
    if (f ~ /^Package: /) p = substr(f, 10)
    else if (f ~ /^Version: /) v = substr(f, 10)
    else if (f ~ /^(Pre-)?Depends: /) { sub(/^[^:]*: /, "", f); d = d (d == "" ? "" : ", ") f }
    else if (f ~ /^Provides: /) pv = substr(f, 11)
    else if (f ~ /^Filename: /) fn = substr(f, 11)
    else if (f ~ /^SHA256: /) sha = substr(f, 9)
    else if (f ~ /^Size: /) sz = substr(f, 7)
  }
  if (p == "" || fn == "") next
  c = ++NC[p]; VER[p, c] = v; URL[p, c] = base "/" fn; SHA[p, c] = sha; SZ[p, c] = sz
  gsub(/ *\([^)]*\)/, "", d); gsub(/:any/, "", d); DEP[p, c] = d
  gsub(/ *\([^)]*\)/, "", pv); k = split(pv, P, ", *")
  for (i = 1; i <= k; i++) if (P[i] != "" && !(P[i] in PROV)) PROV[P[i]] = p
}
function vq(s) { gsub(/'/, "", s); return "'" s "'" }
function best(p,   b, i) {
  if (p in BEST) return BEST[p]
  b = 1
  for (i = 2; i <= NC[p]; i++)
    if (system("dpkg --compare-versions " vq(VER[p, i]) " gt " vq(VER[p, b])) == 0) b = i
  return BEST[p] = b
}
function emit(tag, p,   b) { b = best(p); print tag, p, VER[p, b], URL[p, b], SHA[p, b], SZ[p, b] }
END {
  n = split(skip, S, "[ \n]+"); for (i = 1; i <= n; i++) if (S[i] != "") SK[S[i]] = 1
  # the kernel
  meta = "linux-image-" arch
  if (NC[meta] == 0) { print "U " meta " kernel"; exit 0 }
  k = split(DEP[meta, best(meta)], A, ", *")
  for (i = 1; i <= k; i++) if (A[i] ~ /^linux-image-[0-9]/ && NC[A[i]] > 0) { emit("K", A[i]); break }
  # the root
  qn = split(want, Q, " ")
  for (qi = 1; qi <= qn; qi++) {
    x = Q[qi]
    if (x in DONE) continue
    DONE[x] = 1
    if (NC[x] == 0) { print "U " x " (wanted)"; continue }
    emit("P", x)
    k = split(DEP[x, best(x)], A, ", *")
    for (i = 1; i <= k; i++) {
      if (A[i] == "") continue
      na = split(A[i], ALT, " *\\| *"); pick = ""
      for (j = 1; j <= na; j++) if ((ALT[j] in DONE) || (ALT[j] in SK)) { pick = ALT[j]; break }
      if (pick == "") for (j = 1; j <= na; j++) if (NC[ALT[j]] > 0) { pick = ALT[j]; break }
      if (pick == "") for (j = 1; j <= na; j++) if (ALT[j] in PROV) { pick = PROV[ALT[j]]; break }
      if (pick == "") { print "U " A[i] " " x; continue }
      if (!(pick in SK) && !(pick in DONE)) Q[++qn] = pick
    }
  }
}
EOF_AWK

# a64_check_debs DIR MANIFEST: each P package of MANIFEST is in DIR as <package>.deb, with its SHA256
a64_check_debs() {
  local tag p v url sha size
  while read -r tag p v url sha size; do
    [[ $tag == P ]] || continue
    [[ -f $1/$p.deb ]] || { echo "$p.deb: not downloaded" >>"$CACHE/apt.log"; return 1; }
    [[ $(sha256sum <"$1/$p.deb" | cut -d' ' -f1) == "$sha" ]] || { echo "$p: SHA256 mismatch" >>"$CACHE/apt.log"; return 1; }
  done <"$2"
}

# ------------------------------------------------------------------ kernel
# a64_kernel KPKG URL SHA256: $CACHE/<kpkg>_<version>/ with Image (vmlinuz), config, kver and the modules L1 loads
a64_kernel() {
  local kpkg=$1 url=$2 sha=$3 tmp kver m
  need_space 500
  say "downloading $kpkg for aarch64 (first run; extracted into $CACHE) ..."
  tmp=$(mktemp -d "$CACHE/dl.XXXXXX") || die "no space: cannot create a temporary directory in $CACHE"
  chmod 755 "$tmp"
  a64_fetch "$tmp" "$url" "$kpkg.deb" || { rm -rf "$tmp"; die "no kernel: cannot download $url (see $CACHE/apt.log)"; }
  [[ $(sha256sum <"$tmp/$kpkg.deb" | cut -d' ' -f1) == "$sha" ]] || { rm -rf "$tmp"; die "no kernel: $kpkg.deb does not match its SHA256"; }
  dpkg-deb -x "$tmp/$kpkg.deb" "$tmp/x" || { rm -rf "$tmp"; die "no kernel: cannot extract $kpkg (no space?)"; }
  kver=$(ls "$tmp/x/lib/modules" | head -1)
  [[ -n $kver && -f $tmp/x/boot/vmlinuz-$kver ]] || { rm -rf "$tmp"; die "no kernel: $kpkg holds no vmlinuz"; }
  rm -rf "$KDIR"; mkdir -p "$KDIR/modules"
  cp "$tmp/x/boot/vmlinuz-$kver" "$KDIR/vmlinuz.tmp"   # arm64: an Image (Debian's signed one is not compressed)
  cp "$tmp/x/boot/config-$kver" "$KDIR/config"
  echo "$kver" >"$KDIR/kver"
  # Only the modules L1 needs, with their dependencies from each .ko's modinfo depends= ('-' read as '_').
  local -A KO=() SEEN=()
  local ORDER=() f b
  while IFS= read -r f; do b=${f##*/}; b=${b%.ko}; KO[${b//-/_}]=$f; done < <(find "$tmp/x/lib/modules/$kver" -name '*.ko')
  a64_add_mod() {
    local m=${1//-/_} dep deps
    [[ -n ${SEEN[$m]:-} ]] && return 0
    SEEN[$m]=1
    if [[ -z ${KO[$m]:-} ]]; then
      grep -q "/$1.ko\$\|/${m}.ko\$" "$tmp/x/lib/modules/$kver/modules.builtin" 2>/dev/null || say "note: module $m not found in $kpkg"
      return 0
    fi
    deps=$(tr '\0' '\n' <"${KO[$m]}" | grep -a -m1 '^depends=' | cut -d= -f2)
    for dep in ${deps//,/ }; do a64_add_mod "$dep"; done
    cp "${KO[$m]}" "$KDIR/modules/$m.ko"
    ORDER+=("$m")
  }
  for m in $A64_MODULES; do a64_add_mod "$m"; done
  printf '%s\n' "${ORDER[@]}" >"$KDIR/modules.order"
  # the same for the guests' modules, into guest-modules/
  local l1_order=("${ORDER[@]}")
  ORDER=(); SEEN=()
  mkdir -p "$KDIR/guest-modules"
  for m in $A64_GUEST_MODULES; do a64_add_mod "$m"; done
  for m in "${ORDER[@]}"; do mv "$KDIR/modules/$m.ko" "$KDIR/guest-modules/$m.ko" 2>/dev/null || true; done
  for m in "${l1_order[@]}"; do [[ -f $KDIR/modules/$m.ko ]] || cp "$KDIR/guest-modules/$m.ko" "$KDIR/modules/$m.ko"; done
  printf '%s\n' "${ORDER[@]}" >"$KDIR/guest-modules.order"
  printf '%s' "$A64_WANTED" >"$KDIR/modules.wanted"
  mv "$KDIR/vmlinuz.tmp" "$KDIR/vmlinuz"
  rm -rf "$tmp"
}

# ------------------------------------------------------------------ root
# a64_root MANIFEST DEST: download the P packages of MANIFEST, unpack them into a merged-/usr tree, add what
# maintainer scripts would have (/etc/passwd, /usr/bin/java, busybox's applets where no package has that command),
# then move it to DEST
a64_root() {
  local manifest=$1 dest=$2 tmp args=() tag p v url sha size r n=0
  need_space 900
  tmp=$(mktemp -d "$CACHE/root.XXXXXX") || die "no space: cannot create a temporary directory in $CACHE"
  chmod 755 "$tmp"
  mkdir -p "$tmp/debs"
  chmod 755 "$tmp/debs"
  while read -r tag p v url sha size; do
    [[ $tag == P ]] || continue
    args+=("$url" "$p.deb"); n=$((n + 1))
  done <"$manifest"
  say "downloading $n arm64 packages for L1's root (first run) ..."
  a64_fetch "$tmp/debs" "${args[@]}" && a64_check_debs "$tmp/debs" "$manifest" \
    || { rm -rf "$tmp"; die "cannot download the arm64 packages (see $CACHE/apt.log)"; }
  r=$tmp/root
  mkdir -p "$r"/usr/{bin,sbin,lib} "$r"/{etc,proc,sys,dev,tmp,run,root,home,mnt,var/tmp}
  ln -s usr/bin "$r/bin"; ln -s usr/sbin "$r/sbin"; ln -s usr/lib "$r/lib"
  chmod 1777 "$r/tmp" "$r/var/tmp"; chmod 700 "$r/root"
  while read -r tag p v url sha size; do
    [[ $tag == P ]] || continue
    dpkg-deb --fsys-tarfile "$tmp/debs/$p.deb" \
      | tar -x -C "$r" --keep-directory-symlink --no-same-owner \
            --exclude='./usr/share/doc/*' --exclude='./usr/share/man/*' --exclude='./usr/share/info/*' \
            --exclude='./usr/share/locale/*' --exclude='./usr/share/lintian/*' \
      || { rm -rf "$tmp"; die "cannot unpack $p (no space?)"; }
  done <"$manifest"
  rm -rf "$tmp/debs"
  [[ -x $r/usr/bin/busybox && -x $r$A64_JAVA_HOME/bin/java && -x $r/usr/bin/bash && -x $r/usr/bin/dash ]] \
    || { rm -rf "$tmp"; die "the arm64 root lacks busybox, bash, dash or java after unpacking"; }
  # busybox's applets, for commands no package provides (the host's busybox-static, same Debian, lists them)
  local a
  while read -r a; do
    [[ $a == */* ]] || continue
    a=${a#/}; a=usr/${a#usr/}
    [[ -e $r/$a || -L $r/$a ]] || ln -s /usr/bin/busybox "$r/$a"
  done < <("$A64_HOST_BB" --list-full 2>/dev/null)
  ln -sfn dash "$r/usr/bin/sh"
  for a in "$r$A64_JAVA_HOME"/bin/*; do
    [[ -e $r/usr/bin/${a##*/} ]] || ln -s "${a#"$r"}" "$r/usr/bin/${a##*/}"
  done
  printf 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
  printf 'passwd: files\ngroup: files\nhosts: files\n' >"$r/etc/nsswitch.conf"
  printf '127.0.0.1 localhost jkrun-l1\n::1 localhost ip6-localhost ip6-loopback\n' >"$r/etc/hosts"
  echo jkrun-l1 >"$r/etc/hostname"
  printf '/bin/sh\n/bin/bash\n' >"$r/etc/shells"
  cp "$manifest" "$r/etc/jkrun-packages"
  mv "$r" "$dest.tmp" && mv "$dest.tmp" "$dest" || { rm -rf "$tmp" "$dest.tmp"; die "cannot move the root into $dest"; }
  rm -rf "$tmp"
}

# ------------------------------------------------------------------ set-up
# /init of L1 (busybox ash). As on x86: the "jkrunjob" share carries job.sh and mounts. stdout/stderr go to two
# virtio-serial ports ("jkrun.out", "jkrun.err"; not ttys, so 8-bit clean), the console is the PL011 (ttyAMA0).
read -r -d '' A64_INIT <<'EOF_INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
log() { echo "jkrun-init: $*" >/dev/ttyAMA0; }
ERRDEV=/dev/ttyAMA0
fail() { log "$*"; [ "$ERRDEV" = /dev/ttyAMA0 ] || echo "$*" >"$ERRDEV"; echo 125 >/job/status 2>/dev/null; sync; poweroff -f; }
log "up $(cut -d' ' -f1 /proc/uptime) s"
for m in $(cat /modules.order); do
  insmod /modules/$m.ko 2>/dev/null || log "insmod $m failed"
done
# the ports appear once the host has told the driver about them
OUTDEV= ; i=0
while [ $i -lt 100 ]; do
  for p in /sys/class/virtio-ports/vport*; do
    [ -e "$p/name" ] || continue
    case $(cat "$p/name") in
      jkrun.out) OUTDEV=/dev/${p##*/} ;;
      jkrun.err) ERRDEV=/dev/${p##*/} ;;
    esac
  done
  [ -n "$OUTDEV" ] && [ "$ERRDEV" != /dev/ttyAMA0 ] && [ -c "$OUTDEV" ] && [ -c "$ERRDEV" ] && break
  OUTDEV= ; ERRDEV=/dev/ttyAMA0
  i=$((i + 1)); sleep 0.1
done
O9P=trans=virtio,version=9p2000.L,msize=512000
mkdir -p /job /newroot
mount -t 9p -o $O9P jkrunjob /job || fail "jkrun-nested: L1 cannot mount the job share"
[ -n "$OUTDEV" ] || fail "jkrun-nested: L1 has no virtio-serial ports jkrun.out/jkrun.err"
# the arm64 root, read-only (page cache on: it does not change during a run)
mount -t 9p -o $O9P,ro,cache=loose hostroot /newroot || fail "jkrun-nested: L1 cannot mount its root"
mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp
mount -t tmpfs -o mode=755 tmpfs /newroot/run 2>/dev/null
while read -r tag path; do
  [ -n "$tag" ] || continue
  mkdir -p "/newroot$path" 2>/dev/null
  mount -t 9p -o $O9P,cache=mmap "$tag" "/newroot$path" || fail "jkrun-nested: L1 cannot mount $path read-write"
done </job/mounts
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs devtmpfs /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm 2>/dev/null
mount -t devpts devpts /newroot/dev/pts 2>/dev/null
mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm
cp /job/job.sh /newroot/tmp/.jkrun-job.sh
log "running job at $(cut -d' ' -f1 /proc/uptime) s"
# a mount namespace of its own with the root moved onto / (as on x86: a chrooted process may not create user namespaces)
unshare -m /bin/sh -c 'cd /newroot && mount --move . / && exec chroot . /usr/bin/env -i /bin/sh /tmp/.jkrun-job.sh' \
  </dev/null >"$OUTDEV" 2>"$ERRDEV"
rc=$?
# a write to a virtio-serial port has reached QEMU (and its file) by the time it returns: nothing to drain
log "job exited with status $rc at $(cut -d' ' -f1 /proc/uptime) s"
echo "JKRUN-STATUS $rc" >/dev/ttyAMA0
echo "$rc" >/job/status
sync
poweroff -f
EOF_INIT

# a64_host_busybox: a busybox the host can run (for cpio and for the list of applets), from the host's apt
a64_host_busybox() {
  A64_HOST_BB=$CACHE/host/busybox   # named busybox: it picks its applet by the name it is run as
  [[ -x $A64_HOST_BB ]] && return 0
  mkdir -p "$CACHE/host" || die "cannot create $CACHE/host"
  need_space 20
  local tmp
  tmp=$(mktemp -d "$CACHE/dl.XXXXXX") || die "no space: cannot create a temporary directory in $CACHE"
  chmod 755 "$tmp"
  apt_download "$tmp" busybox-static || { rm -rf "$tmp"; die "cannot download the host's busybox-static (see $CACHE/apt.log)"; }
  dpkg-deb -x "$tmp"/busybox-static_*.deb "$tmp/x" && cp "$tmp/x/bin/busybox" "$A64_HOST_BB.tmp" \
    && mv "$A64_HOST_BB.tmp" "$A64_HOST_BB" || { rm -rf "$tmp"; die "cannot extract the host's busybox-static"; }
  rm -rf "$tmp"
}

a64_setup() {
  QEMU=${JKRUN_NESTED_AARCH64_QEMU:-qemu-system-aarch64}
  if ! command -v "$QEMU" >/dev/null; then
    command -v apt-get >/dev/null || die "no $QEMU and no apt-get to install qemu-system-arm"
    apt_install qemu-system-arm
    command -v "$QEMU" >/dev/null || die "qemu-system-arm installed but $QEMU not found"
  fi
  local tool
  for tool in gzip xz sha256sum dpkg-deb dpkg tar gpgv awk tail date; do
    command -v $tool >/dev/null || die "required tool '$tool' not found"
  done

  if command -v flock >/dev/null; then
    exec 9>"$CACHE/.setup.lock" && flock 9
    # what an interrupted set-up left (only set-up makes these, and it holds the lock)
    rm -rf "$CACHE"/dl.?????? "$CACHE"/idx.?????? "$CACHE"/root.?????? "$CACHE"/ir.?????? "$CACHE"/root-*.tmp
  fi
  a64_host_busybox

  # $CACHE/current: "<root dir> <kernel dir>" of the last set-up; used as is unless JKRUN_NESTED_REFRESH=1
  local cur_root= cur_k= tmp tag p v url sha size key kline b f
  if [[ -s $CACHE/current && ${JKRUN_NESTED_REFRESH:-0} != 1 ]]; then
    read -r cur_root cur_k <"$CACHE/current"
    [[ -n $cur_root && -f $CACHE/$cur_root/etc/jkrun-packages && -n $cur_k && -f $CACHE/$cur_k/vmlinuz \
       && -f $CACHE/$cur_k/modules.order && $(cat "$CACHE/$cur_k/modules.wanted" 2>/dev/null) == "$A64_WANTED" \
       && $(cat "$CACHE/$cur_root.packages" 2>/dev/null) == "$A64_STAMP" ]] || cur_root=
  fi
  if [[ -z $cur_root ]]; then
    a64_mirrors
    need_space 200
    tmp=$(mktemp -d "$CACHE/idx.XXXXXX") || die "no space: cannot create a temporary directory in $CACHE"
    chmod 755 "$tmp"
    say "fetching the $A64_SUITE $A64_ARCH package lists from $A64_MIRROR and $A64_SECURITY ..."
    a64_indexes "$tmp"
    local files=()
    while read -r b f; do files+=("base=$b" "$tmp/$f"); done <"$tmp/suites"
    awk -v want="$A64_PACKAGES" -v skip="$A64_SKIP" -v arch="$A64_ARCH" "$A64_RESOLVER" "${files[@]}" \
      >"$tmp/manifest" 2>>"$CACHE/apt.log" || { rm -rf "$tmp"; die "cannot resolve the arm64 packages (see $CACHE/apt.log)"; }
    rm -f "$tmp"/*.Packages
    if grep -q '^U ' "$tmp/manifest"; then
      grep '^U ' "$tmp/manifest" | sed 's/^U /unresolved dependency: /' >>"$CACHE/apt.log"
      grep -q '^U .* (wanted)$\|^U linux-image' "$tmp/manifest" \
        && { rm -rf "$tmp"; die "no $A64_ARCH package for: $(awk '/^U .*(wanted)$|^U linux-image/ {print $2}' "$tmp/manifest" | tr '\n' ' ')"; }
    fi
    kline=$(grep '^K ' "$tmp/manifest") || { rm -rf "$tmp"; die "no kernel: linux-image-$A64_ARCH names no linux-image package"; }
    read -r tag p v url sha size <<<"$kline"
    cur_k=${p}_$v
    KDIR=$CACHE/$cur_k
    if [[ ! -f $KDIR/vmlinuz || ! -f $KDIR/modules.order || $(cat "$KDIR/modules.wanted" 2>/dev/null) != "$A64_WANTED" ]]; then
      a64_kernel "$p" "$url" "$sha"
    fi
    key=$( { echo "gen=$A64_GEN"; awk '$1 == "P" {print $2, $3, $5}' "$tmp/manifest" | LC_ALL=C sort; } | sha256sum | cut -c1-16)
    cur_root=root-$key
    if [[ ! -f $CACHE/$cur_root/etc/jkrun-packages ]]; then
      rm -rf "${CACHE:?}/$cur_root"
      a64_root "$tmp/manifest" "$CACHE/$cur_root"
    fi
    echo "$A64_STAMP" >"$CACHE/$cur_root.packages.tmp" && mv "$CACHE/$cur_root.packages.tmp" "$CACHE/$cur_root.packages"
    rm -rf "$tmp"
    echo "$cur_root $cur_k" >"$CACHE/current.tmp.$$" && mv "$CACHE/current.tmp.$$" "$CACHE/current"
  fi
  KDIR=$CACHE/$cur_k
  A64_ROOT=$CACHE/$cur_root
  # a run holds its root's lock shared until it ends; an old root is removed only when no run holds it
  exec 8>>"$CACHE/$cur_root.lock"
  command -v flock >/dev/null && flock -s 8
  local d
  for d in "$CACHE"/root-*; do
    [[ -d $d && ${d##*/} != "$cur_root" && ${d##*/} != *.* ]] || continue
    if command -v flock >/dev/null && (exec 7>>"$d.lock" && flock -n -x 7); then
      rm -rf "$d" "$d.lock" "$d.packages"
    fi
  done

  # the initramfs: busybox (the root's), /init and the modules
  KVER=$(<"$KDIR/kver")
  local bb=$A64_ROOT/usr/bin/busybox
  key=$( { echo "gen=$A64_GEN kver=$KVER"; cat "$KDIR/modules.order"; sha256sum <"$bb"; printf '%s' "$A64_INIT"; } \
         | sha256sum | cut -c1-16)
  INITRD=$CACHE/initramfs-$KVER-$key.cpio.gz
  if [[ ! -s $INITRD ]]; then
    need_space 50
    tmp=$(mktemp -d "$CACHE/ir.XXXXXX") || die "no space: cannot create a temporary directory in $CACHE"
    (
      set -e
      cd "$tmp"
      mkdir -p bin dev proc sys modules
      cp "$bb" bin/busybox
      cp "$KDIR"/modules/*.ko modules/
      cp "$KDIR/modules.order" modules.order
      printf '%s\n' "$A64_INIT" >init
      chmod 755 init bin/busybox
      find . -mindepth 1 | LC_ALL=C sort | "$A64_HOST_BB" cpio -o -H newc -R 0:0 2>/dev/null | gzip -n -6 >"$INITRD.tmp"
    ) || { rm -rf "$tmp" "$INITRD.tmp"; die "cannot build the initramfs (no space?)"; }
    mv "$INITRD.tmp" "$INITRD"
    rm -rf "$tmp"
    for f in "$CACHE"/initramfs-*.cpio.gz; do [[ $f == "$INITRD" ]] || rm -f "$f"; done
  fi
  exec 9>&-   # set-up done: release the lock (the root's shared lock, fd 8, stays until the run ends)

  ROOT_SHARE=$A64_ROOT
  # the job's environment: L1's own JAVA_HOME and PATH instead of the caller's
  A64_ENV=("JAVA_HOME=$A64_JAVA_HOME" "PATH=$A64_PATH")
}

# a64_qemu_args: QEMU_ARGS for this run (after jkrun-nested has filled RW, RUN and VIRTFS)
a64_qemu_args() {
  local d
  # mount points of the read-write shares: the root is read-only inside L1, so they are made here, in the cache
  for d in "${RW[@]}"; do mkdir -p "$ROOT_SHARE$d" 2>/dev/null; done
  # -cpu max: Armv8.x+ with VHE, SVE, MTE off; pauth-impdef=on swaps the QARMA pointer-authentication hash (slow to
  # emulate: the kernel boots 4x slower with it) for QEMU's own. JKRUN_NESTED_AARCH64_CPU overrides (e.g. cortex-a72:
  # no VHE, so L1's KVM runs nVHE).
  local cpu=${JKRUN_NESTED_AARCH64_CPU:-max,pauth-impdef=on}
  local tcg=${JKRUN_NESTED_TCG_THREAD:-multi}
  [[ $tcg == single || $tcg == multi ]] || die "JKRUN_NESTED_TCG_THREAD must be single or multi"
  QEMU_ARGS=(
    -accel tcg,thread="$tcg" -machine virt,virtualization=on,gic-version=3 -cpu "$cpu" -m "$MEM" -smp "$CPUS"
    -nodefaults -display none -no-reboot -monitor none
    -kernel "$KDIR/vmlinuz" -initrd "$INITRD"
    -append "console=ttyAMA0 quiet loglevel=5 panic=-1 rdinit=/init${JKRUN_NESTED_AARCH64_APPEND:+ $JKRUN_NESTED_AARCH64_APPEND}"
    -serial "file:$RUN/console.log"
    -device virtio-serial-pci,id=jkser
    -chardev "file,id=jkout,path=$(qesc "$RUN/out")" -device virtserialport,bus=jkser.0,chardev=jkout,name=jkrun.out
    -chardev "file,id=jkerr,path=$(qesc "$RUN/err")" -device virtserialport,bus=jkser.0,chardev=jkerr,name=jkrun.err
    "${VIRTFS[@]}"
  )
}
