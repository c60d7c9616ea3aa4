#!/bin/sh
# Runs the POSIX suite built by tests/posix/build.sh in the current directory, where its programs were copied, as
# whoever runs it, the way `make check` runs it (srcdir=., scripts through sh). POSIX sh (busybox's ash will do): it
# runs in libkrunfw guests too. Prints one line per test that did not pass and a total:
#   POSIX pass N fail N skip N
export EXEEXT= srcdir=. MAKE=make
p=0; f=0; s=0
while read -r t; do
  case "$t" in
    *.sh) sh "./$t" </dev/null >"$t.out" 2>&1 ;;
    *) "./$t" </dev/null >"$t.out" 2>&1 ;;
  esac
  rc=$?
  if [ $rc = 0 ]; then p=$((p+1)); rm -f "$t.out"
  elif [ $rc = 77 ]; then s=$((s+1)); echo "SKIP $t: $(tail -n 1 "$t.out")"
  else f=$((f+1)); echo "FAIL $t (status $rc): $(tail -n 2 "$t.out" | tr '\n' ' ' | cut -c1-300)"
  fi
done <tests.list
echo "POSIX pass $p fail $f skip $s"
