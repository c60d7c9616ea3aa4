#!/bin/sh
# The metadata rules a local file system applies to an unprivileged caller, where gnulib's tests are silent: set-ID
# bits cleared by chgrp, by a truncating open, by write and by truncate (kept without group execute), which chown
# and chgrp a user may do, utimens' two permission rules, creating through a group, set-group-ID directories, ctime.
# Tier 3 runs it in a host directory and in the guest on a share of another (with :setuid, so that set-ID bits
# exist there at all) and compares the two outputs line for line. POSIX sh with busybox or coreutils tools.
#   metadata.sh setup   as root, in an empty directory
#   metadata.sh user    then as uid 1000 with groups 1000 and 1001, in the same directory
set -u
umask 022
export TZ=UTC
if [ "${1:-}" = setup ]; then
  : >other; chown 0:1001 other; chmod 0664 other        # another user's file, writable through group 1001
  mkdir grp; chown 0:1001 grp; chmod 0770 grp           # a directory only group 1001 may write
  mkdir sgid; chown 0:1001 sgid; chmod 02777 sgid       # a set-group-ID directory of group 1001
  exit 0
fi
show() { stat -c "$1 %a %u:%g" "$1"; }
try() { # WHAT COMMAND...: "WHAT: ok" or "WHAT: refused"
  w=$1; shift
  if "$@" 2>/dev/null; then echo "$w: ok"; else echo "$w: refused"; fi
}
: >f1; chmod 6755 f1; show f1
try "chgrp to a supplementary group" chgrp 1001 f1; show f1
: >f2; chmod 2745 f2; try "chgrp, set-group-ID without group execute" chgrp 1001 f2; show f2
: >f3; chmod 4755 f3; : >f3; show f3
echo data >f4; chmod 6755 f4; echo more >>f4; show f4
echo data >f5; chmod 4755 f5; try "truncate" truncate -s 1 f5; show f5
try "chown to another user" chown 1001 f1
try "chgrp to a group not held" chgrp 1002 f1
try "chown to oneself" chown 1000:1000 f2
: >f6; c1=$(stat -c %Z f6); sleep 1; chown 1000:1000 f6; c2=$(stat -c %Z f6)
[ "$c2" -gt "$c1" ] && echo "chown with the same ids updates ctime" || echo "chown with the same ids keeps ctime"
try "touch another user's file writable through a group (now)" touch other
try "touch another user's file with an explicit time" touch -d "2001-02-03 04:05:06" other
try "touch own file with an explicit time" touch -d "2001-02-03 04:05:06" f6; stat -c "f6 mtime %Y" f6
try "read through a group" cat other
try "create in a directory writable through a group" sh -c ': >grp/x'; show grp/x
try "mkdir there" mkdir grp/d; show grp/d
try "rename there" mv grp/x grp/y
try "remove there" rm grp/y
mkdir sgid/d; show sgid/d
: >sgid/f; show sgid/f
try "chmod g+s in a set-group-ID directory of a group held" chmod 2755 sgid/f; show sgid/f
try "chmod u+s on another user's file" chmod 4664 other; show other
