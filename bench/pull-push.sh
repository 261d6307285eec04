#!/bin/bash
# bench/pull-push.sh: push and pull of a ~300 MB image (3 layers of 100 MB,
# incompressible, stored uncompressed so that no compressor is measured)
# against a loopback docker-registry: envpin push/pull against skopeo copy
# (oci: <-> docker://), interleaved, N runs each.  Every run gets a fresh
# registry (and, for pulls, a fresh destination) so that neither tool can skip
# blobs it pushed before.  Prints medians, the ratio envpin/skopeo, and peak
# RSS (/usr/bin/time -f %M).
#   N=3 SIZE_MB=100 bench/pull-push.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
ENVPIN=${ENVPIN:-$top/envpin}
N=${N:-3}
SIZE_MB=${SIZE_MB:-100}
FIX=$top/tests/fixtures
W=$(mktemp -d /tmp/epbench.XXXXXX)
REG=""
cleanup() {
	[ -n "$REG" ] && "$FIX/registry.sh" stop "$REG" >/dev/null 2>&1
	rm -rf "$W"
}
trap cleanup EXIT

for t in skopeo docker-registry /usr/bin/time; do
	command -v "$t" >/dev/null || { echo "pull-push: '$t' not installed; skipped"; exit 0; }
done

mkdir -p "$W/ctx"
for i in 1 2 3; do
	mkdir -p "$W/ctx/l$i"
	head -c $((SIZE_MB << 20)) /dev/urandom >"$W/ctx/l$i/data.bin"
done
cat >"$W/ctx/m.json" <<JSON
{ "envpin": 1, "name": "bench", "source_date_epoch": 1767225600, "base": "scratch",
  "layers": [ { "copy": [ { "src": "l1/", "dest": "/l1/" } ] },
              { "copy": [ { "src": "l2/", "dest": "/l2/" } ] },
              { "copy": [ { "src": "l3/", "dest": "/l3/" } ] } ] }
JSON
export ENVPIN_STORE="$W/store" ENVPIN_PROGRESS=0
D=$("$ENVPIN" build -q --compress none -f "$W/ctx/m.json" -o "$W/oci" --tag bench)
TOTAL=$(du -sb "$W/oci/blobs" | cut -f1)
echo "image $D: $((TOTAL >> 20)) MiB in $W/oci"

fresh_registry() {
	[ -n "$REG" ] && "$FIX/registry.sh" stop "$REG" >/dev/null
	REG="$W/reg"
	ADDR=$("$FIX/registry.sh" start "$REG")
}

# measure NAME CMD...: appends "seconds rss_kb" to $W/NAME
measure() {
	local name=$1
	shift
	/usr/bin/time -f "%e %M" -o "$W/time.out" "$@" >/dev/null 2>"$W/err.out" || {
		echo "pull-push: '$*' failed:" >&2
		cat "$W/err.out" >&2
		exit 1
	}
	cat "$W/time.out" >>"$W/$name"
}

# skopeo keeps a blob-info cache of where blobs were seen; keep it private and empty
export HOME="$W/home" XDG_DATA_HOME="$W/home/data"
mkdir -p "$HOME"

for i in $(seq "$N"); do
	fresh_registry
	measure envpin-push "$ENVPIN" push "$D" "$ADDR/bench/e:1"
	measure skopeo-push skopeo copy -q --dest-tls-verify=false "oci:$W/oci:bench" "docker://$ADDR/bench/s:1"
	rm -rf "$W/pstore" "$W/pout"
	measure envpin-pull env ENVPIN_STORE="$W/pstore" "$ENVPIN" pull "$ADDR/bench/s:1"
	measure skopeo-pull skopeo copy -q --src-tls-verify=false "docker://$ADDR/bench/e:1" "oci:$W/pout:x"
	[ "$(skopeo inspect --tls-verify=false --raw "docker://$ADDR/bench/e:1" | sha256sum | cut -c1-64)" = "${D#sha256:}" ] ||
		{ echo "pull-push: the registry does not hold envpin's digest" >&2; exit 1; }
done

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
printf '%-6s %-8s %10s %10s %12s\n' op tool median_s MB/s peak_rss_MB
for op in push pull; do
	for tool in envpin skopeo; do
		m=$(cut -d' ' -f1 "$W/$tool-$op" | median)
		rss=$(cut -d' ' -f2 "$W/$tool-$op" | sort -n | tail -1)
		printf '%-6s %-8s %10s %10.0f %12.1f\n' "$op" "$tool" "$m" \
			"$(awk -v b="$TOTAL" -v s="$m" 'BEGIN{print (s>0)? b/1048576/s : 0}')" "$(awk -v k="$rss" 'BEGIN{print k/1024}')"
		eval "${tool}_${op}=$m"
	done
	awk -v e="$(eval echo \$envpin_$op)" -v s="$(eval echo \$skopeo_$op)" -v op="$op" \
		'BEGIN{printf "%s ratio envpin/skopeo: %.2f (target <= 0.70)\n", op, e/s}'
done
echo "N=$N, image $((TOTAL >> 20)) MiB, $(nproc) CPUs"
