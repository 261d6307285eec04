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
if [ -z "$missing" ]; then
	echo "deps: all packages present"
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
echo "deps: done"
