# nested/contract-checks.sh: the checks every nested host passes, whatever its architecture (sourced by
# test-harness.sh and test-harness-aarch64.sh, which define nrun, check, has_out, T, ROOT, OUT, ERR and RC;
# NAME_PREFIX keeps their scratch files apart).
# the checkout is shared read-write at the same path
TOKEN=tok-$$-$RANDOM
echo "$TOKEN" >"$T/${NAME_PREFIX:-}from-outside.txt"
rm -f "$T/${NAME_PREFIX:-}from-inside.txt"
nrun -- sh -c 'pwd; cat "nested/target/$1from-outside.txt"; echo "inside-$(cat "nested/target/$1from-outside.txt")" > "nested/target/$1from-inside.txt"' sh "${NAME_PREFIX:-}"
check "checkout at the same path inside (cwd $(head -1 "$OUT"))" test "$(head -1 "$OUT")" = "$ROOT"
check "a file written outside is read inside" has_out "$TOKEN"
check "a file written inside appears outside" sh -c "test \"\$(cat '$T/${NAME_PREFIX:-}from-inside.txt' 2>/dev/null)\" = 'inside-$TOKEN'"

# exit status, stdout and stderr come back separately
nrun -- sh -c 'echo out; echo err >&2; exit 42'
check "status 42 comes back" test "$RC" = 42
check "stdout comes back on stdout" sh -c "test \"\$(cat '$OUT')\" = out"
check "stderr comes back on stderr" sh -c "grep -qx err '$ERR' && ! grep -q err '$OUT'"

# failing commands fail outside with the same status
nrun -- false
check "'false' exits 1 outside" test "$RC" = 1
nrun -- /nonexistent/command
check "a missing command exits 127 outside (got $RC)" test "$RC" = 127

# arguments pass through unchanged (spaces, quotes, globs, $, empty, newline)
nrun -- printf '[%s]\n' 'a b' "it's" '$HOME' '*' '' "x
y" '\'
EXPECTED=$(printf '[%s]\n' 'a b' "it's" '$HOME' '*' '' "x
y" '\')
check "arguments arrive unchanged" sh -c "test $RC = 0 && test \"\$(cat '$OUT')\" = \"\$1\"" sh "$EXPECTED"

