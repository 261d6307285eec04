#!/bin/bash
# bench/inflate-cpu.sh BLOB [N]: CPU seconds to inflate an envpin gzip layer
# with libdeflate (what envpin uses) and ISA-L (when libisal-dev is
# installed), N runs each (default 3), plus OpenSSL's SHA-256 speed (SHA-NI
# when the CPU has it).  CPU time, so the figures hold on a loaded machine.
set -euo pipefail
blob=${1:?usage: bench/inflate-cpu.sh BLOB [N]}
N=${2:-3}
top=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d /tmp/epinf.XXXXXX)
trap 'rm -rf "$W"' EXIT
isal=()
[ ! -e /usr/include/isa-l/igzip_lib.h ] || isal=(-DHAVE_ISAL -lisal)
cc -O2 -o "$W/inflate-cpu" "$top/bench/inflate-cpu.c" -ldeflate "${isal[@]}"
echo "inflate-cpu: $(basename "$blob"), $(($(stat -c %s "$blob") >> 20)) MiB; sha_ni: $(grep -q sha_ni /proc/cpuinfo && echo yes || echo no); load $(cut -d' ' -f1-3 /proc/loadavg)"
for ((i = 0; i < N; i++)); do "$W/inflate-cpu" "$blob"; done
openssl speed -seconds 2 -bytes 1048576 -evp sha256 2>/dev/null | tail -1 | awk '{printf "sha256 (openssl, 1 MiB blocks) %.0f MB/s\n", $2 / 1000}'
