#!/bin/sh
# Installs the PyPI tools of scripts/deps.d/pypi.req into a virtual
# environment of Debian's python3: $ENVPIN_PYTOOLS (default
# /opt/envpin-pytools).  Idempotent: does nothing when every pinned version
# is there.  The tests find the tools in $ENVPIN_PYTOOLS/bin.
set -eu
REQ="$(dirname "$0")/deps.d/pypi.req"
DIR="${ENVPIN_PYTOOLS:-/opt/envpin-pytools}"
want=$(sed 's/#.*//; s/\[[^]]*\]//' "$REQ" | tr -s ' \n' ' ')
if [ -x "$DIR/bin/pip" ]; then
	have=$("$DIR/bin/pip" freeze 2>/dev/null | tr 'A-Z_' 'a-z-')
	missing=""
	for p in $want; do
		echo "$have" | grep -qx "$(echo "$p" | tr 'A-Z_' 'a-z-')" || missing="$missing $p"
	done
	if [ -z "$missing" ]; then
		echo "pytools: all present in $DIR"
		exit 0
	fi
fi
echo "pytools: installing into $DIR"
/usr/bin/python3 -m venv "$DIR"
"$DIR/bin/pip" install -q -r "$REQ"
echo "pytools: done"
