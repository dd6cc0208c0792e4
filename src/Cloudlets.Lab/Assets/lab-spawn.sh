#!/bin/sh
# Starts a lab process detached from the caller (its own session, stdin from /dev/null, stdout and
# stderr appended to LOG_FILE) and prints its pid, so the lab can record and later end exactly it:
#   lab-spawn.sh LOG_FILE PROGRAM [ARGUMENT]...
# PROGRAM is an absolute path that execs the rest (setsid, then ip netns exec): the pid printed is the
# final program's once the execs are done (the lab waits for that and checks it).
set -eu

fail() {
  echo "lab-spawn.sh: $*" >&2
  exit 2
}

[ "$#" -ge 2 ] || fail "usage: lab-spawn.sh LOG_FILE PROGRAM [ARGUMENT]..."
log=$1
shift
case "$log" in
  /*) ;;
  *) fail "LOG_FILE must be absolute" ;;
esac
case "$log" in
  *[!A-Za-z0-9/._-]* | *..*) fail "LOG_FILE has characters outside [A-Za-z0-9/._-] or '..'" ;;
esac
case "$1" in
  /*) ;;
  *) fail "PROGRAM must be an absolute path" ;;
esac
"$@" </dev/null >>"$log" 2>&1 &
echo "$!"
