#!/usr/bin/env bash
# Builds the POSIX file-system conformance suite of tier 3 (tests/posix/run.sh): gnulib's own unit tests of the
# file-system calls (chown, lchown, fchownat, utimens, utimensat, futimens, rename, renameat, link, linkat, symlink,
# mkdir, rmdir, unlink and everything they pull in: stat, open, truncate, ...), from Debian's gnulib package, into
# .jkrun/posix/tests: the test programs, their scripts, and `tests.list`, one test per line as `make check` would
# run it. Nothing is run here. Cached: rebuilt only when this script changes.
#   tests/posix/build.sh        (needs root for apt-get when gnulib, autoconf or automake are missing)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out="$root/.jkrun/posix"
stamp="$out/built-by"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(sha256sum <"$0")" ] && [ -s "$out/tests/tests.list" ]; then
  exit 0
fi
need=()
command -v gnulib-tool >/dev/null 2>&1 || need+=(gnulib)
command -v autoconf >/dev/null 2>&1 || need+=(autoconf)
command -v automake >/dev/null 2>&1 || need+=(automake)
command -v make >/dev/null 2>&1 || need+=(make)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || { echo "posix suite: install ${need[*]}" >&2; exit 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
rm -rf "$out"; mkdir -p "$out"
src="$out/src"
# --without-privileged-tests: the suite runs as a plain user with two groups (run.sh), as the issue's cases need.
gnulib-tool --create-testdir --dir="$src" --single-configure --without-privileged-tests \
  chown lchown fchownat utimens utimensat futimens rename renameat link linkat symlink mkdir rmdir unlink \
  >"$out/gnulib-tool.log" 2>&1
(cd "$src" && ./configure -q >"$out/configure.log" 2>&1 && make -j"$(nproc)" >"$out/make.log" 2>&1 \
  && make -C gltests -j"$(nproc)" check TESTS= >"$out/make-check.log" 2>&1)
# What `make check` would run, and how: scripts through sh with srcdir set, programs directly.
t="$out/tests"; mkdir -p "$t"
tests=$(make -s -C "$src/gltests" -f Makefile -f - print-tests <<'EOF'
print-tests: ; @echo $(TESTS)
EOF
)
for x in $tests; do echo "$x"; done >"$t/tests.list"
# the programs (the scripts run some that are not tests themselves) and scripts, and what the scripts source
for f in "$src"/gltests/test-* "$src/gltests/init.sh"; do
  case "$f" in *.o|*.c|*.h|*.in|*.trs|*.log) continue ;; esac
  [ -f "$f" ] && cp -p "$f" "$t/"
done
sha256sum <"$0" >"$stamp"
echo "posix suite: $(wc -l <"$t/tests.list") tests in $t" >&2
