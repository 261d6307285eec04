#!/bin/sh
# Installs every build and test dependency from Debian 12 packages.
# Idempotent: does nothing when all are present.  Needs root.
set -eu
# The package lists are scripts/deps.d/*.txt (one name per line, # comments).
PKGS=$(cat "$(dirname "$0")"/deps.d/*.txt | sed 's/#.*//' | tr -s ' \n' ' ')

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
# PyPI packages (deps.d/pypi.list, pinned) with Debian's pip, after apt
pypi() {
	list="$(dirname "$0")/deps.d/pypi.list"
	[ -f "$list" ] || return 0
	want=$(sed 's/#.*//' "$list" | tr -s ' \n' ' ')
	[ -n "${want# }" ] || return 0
	# shellcheck disable=SC2086
	if /usr/bin/python3 -m pip show -q $(echo $want | sed 's/==[^ ]*//g') >/dev/null 2>&1; then
		return 0
	fi
	[ "$(id -u)" = 0 ] || { echo "deps: missing PyPI:$want (run 'make deps' as root)" >&2; return 3; }
	echo "deps: pip installing:$want"
	# shellcheck disable=SC2086
	/usr/bin/python3 -m pip install -q --break-system-packages $want
}
if [ -z "$missing" ]; then
	echo "deps: all packages present"
	pypi
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing:$missing" >&2
	echo "deps: run 'make deps' as root to install them" >&2
	exit 3
fi
echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
pypi
echo "deps: done"
