#!/bin/bash
# bench/run.sh: runs every benchmark bench/*.sh (not this file) in name order;
# each prints its own summary.  Exits non-zero if any failed.  `make bench` runs this.
set -u
here=$(cd "$(dirname "$0")" && pwd)
rc=0
for b in "$here"/*.sh; do
	[ "$(basename "$b")" = run.sh ] && continue
	echo "== $(basename "$b")"
	"$b" || { echo "== $(basename "$b") failed" >&2; rc=1; }
done
exit $rc
