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
jk() { timeout 600 ./jkrun "$@"; }

check() { # name, status of the condition, details shown on failure
  if [ "$2" = 0 ]; then passed=$((passed+1)); echo "PASS $1"
  else failed=$((failed+1)); echo "FAIL $1"; [ -n "${3:-}" ] && printf '  %s\n' "$3"; fi
}
out() { cat "$work/out" 2>/dev/null | head -c 2000; echo; cat "$work/err" 2>/dev/null | tail -n 20; }

# 1. boot: the banner reaches hvc0; the kernel panics for lack of a root, resets; the VM stops by that path.
jk boot --timeout 500 >"$work/out" 2>"$work/err"; st=$?
grep -q 'Linux version 6.12' "$work/out"; check "boot: 'Linux version 6.12' on hvc0" $? "$(out)"
grep -q 'VM stopped: REBOOT' "$work/err" && [ "$st" = 0 ]; check "boot: stopped by the reset path, status 0 (was $st)" $? "$(out)"

# 2. run: exit status and stdout.
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
jk run -- "$work/notexec" >"$work/out" 2>"$work/err"; st=$?
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

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
