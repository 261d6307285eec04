#!/bin/bash
# bench/unpack.sh - envpin unpack against umoci unpack of the same image.
#   bench/unpack.sh            ~300 MB image (one copy layer of mixed files)
#   BENCH_BIG=1 bench/unpack.sh  a 2 GB layer (one big file + many small ones)
# Prints wall time and peak RSS (/usr/bin/time -f %M) of each, and the ratio.
# Targets (issue 4): envpin <= 0.3x umoci's time; peak RSS < 256 MB.
set -euo pipefail
export LC_ALL=C
top=$(cd "$(dirname "$0")/.." && pwd)
envpin=${ENVPIN:-$top/envpin}
command -v umoci >/dev/null || { echo "bench/unpack: umoci not installed" >&2; exit 77; }
[ -x /usr/bin/time ] || { echo "bench/unpack: /usr/bin/time missing" >&2; exit 77; }
w=$(mktemp -d "${TMPDIR:-/var/tmp}/ep-bench-unpack.XXXXXX")
trap 'rm -rf "$w"' EXIT
export ENVPIN_STORE="$w/store" ENVPIN_PROGRESS=0
cd "$w"

big=${BENCH_BIG:-0}
python3 - "$big" <<'PY'
import os, random, sys
big = sys.argv[1] == "1"
r = random.Random(42)
os.makedirs("payload", exist_ok=True)
# Half incompressible, half text-like: about what a Python/CUDA tree is.
nfiles, fsize = (4000, 100_000) if not big else (4000, 100_000)
for i in range(nfiles):
    d = "payload/d%03d" % (i // 100)
    os.makedirs(d, exist_ok=True)
    with open("%s/f%05d" % (d, i), "wb") as f:
        if i % 2:
            f.write(r.randbytes(fsize))
        else:
            f.write((("line %d of file %d: " % (i, i)) * 4 + "\n").encode() * (fsize // 60))
if big:  # one 1.6 GB file, half random
    with open("payload/big.bin", "wb") as f:
        for k in range(1600):
            f.write(r.randbytes(1 << 20) if k % 2 else b"\0" * (1 << 20))
PY
sync
cat >m.json <<'JSON'
{"envpin": 1, "name": "bench", "source_date_epoch": 1767225600, "base": "scratch",
 "layers": [ {"copy": [ {"src": "payload/", "dest": "/data/"} ]} ], "config": {}}
JSON
"$envpin" build -f m.json --tag bench >/dev/null
rm -rf payload
layer=$(du -sb store/blobs | cut -f1)
echo "image: $((layer >> 20)) MiB compressed (gzip, envpin's default)"

measure() { # NAME CMD...: prints "NAME wall_s rss_kb"
	local name=$1; shift
	sync
	/usr/bin/time -f "%e %M" -o "$w/t.$name" "$@" >/dev/null 2>&1
	read -r wall rss <"$w/t.$name"
	echo "$name $wall $rss"
}
read -r _ ew er < <(measure envpin "$envpin" unpack bench out-envpin)
cp -a store layout
read -r _ uw ur < <(measure umoci umoci unpack --image layout:bench out-umoci)
python3 "$top/tests/data/hostile/make.py" list out-envpin >a.txt
python3 "$top/tests/data/hostile/make.py" list out-umoci/rootfs >b.txt
same=yes; cmp -s a.txt b.txt || same=NO
printf 'envpin unpack: %6.2f s  peak RSS %4d MB\n' "$ew" $((er / 1024))
printf 'umoci unpack:  %6.2f s  peak RSS %4d MB\n' "$uw" $((ur / 1024))
python3 -c "print('ratio envpin/umoci: %.2fx (target <= 0.3x); same tree: $same' % ($ew / $uw))"
