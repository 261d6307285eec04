#!/bin/bash
# bench/big-image.sh [IMAGE]: the two slow things a user of a big image
# meets (issue 13): the first `envpin run` (every layer unpacked into
# STORE/rootfs) and `envpin verify` (every blob hashed, every layer inflated
# and hashed against its diff_id).  IMAGE is a tag or digest in
# $ENVPIN_STORE (default: the newest image named pytorch-cuda-2.9, as
# `make reference` builds it).  Peers doing the same work:
#   verify:      sha256sum of every blob and `gzip -dc | sha256sum` of every
#                layer, layers two at a time (what a shell does on 2 cores)
#   first start: `umoci unpack` of the same image (a copy of the store as
#                an OCI layout), when umoci is installed
# The image's layer caches are removed before each first start (other
# images' are kept).  Each envpin figure is wall seconds with user and system
# CPU seconds and the load average before it ran.  Needs root (run's native
# engine).  Env: ENVPIN; BENCH_PEERS=0 skips the peers and umoci (envpin
# only); BENCH_PERF=1 also records each envpin command with perf and prints
# the share of CPU per library (libdeflate: inflate, libcrypto: SHA-256,
# kernel: page cache and I/O), which is where the time goes.  On a shared
# machine run it under `flock -x /work/wt/bench.lock` (docs/verify.md).
set -euo pipefail
export LC_ALL=C
top=$(cd "$(dirname "$0")/.." && pwd)
ENVPIN=${ENVPIN:-$top/envpin}
[ "$(id -u)" = 0 ] || { echo "big-image: needs root" >&2; exit 77; }
: "${ENVPIN_STORE:?big-image: set ENVPIN_STORE to the store that holds the image}"
img=${1:-}
if [ -z "$img" ]; then
	img=$("$ENVPIN" images --json 2>/dev/null | jq -r '[.[] | select(.tag == "pytorch-cuda-2.9")] | last | .digest // empty')
	[ -n "$img" ] || { echo "big-image: no IMAGE given and no pytorch-cuda-2.9 image in $ENVPIN_STORE (make reference)" >&2; exit 77; }
fi
export ENVPIN_PROGRESS=${ENVPIN_PROGRESS:-0}
info=$("$ENVPIN" inspect --json "$img")
digest=$(jq -r .digest <<<"$info")
W=$(mktemp -d "${TMPDIR:-/var/tmp}/ep-bench-big.XXXXXX")
trap 'rm -rf "$W"' EXIT
comp=$(jq '[.layers[].size] | add' <<<"$info")
echo "big-image: $digest, $(jq '.layers | length' <<<"$info") layers, $((comp >> 20)) MiB compressed; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"

secs() { # CMD...: wall seconds of CMD (stdout dropped)
	local s e
	s=$(date +%s%N)
	"$@" >/dev/null
	e=$(date +%s%N)
	echo "scale=2; ($e - $s) / 1000000000" | bc
}
peers=${BENCH_PEERS:-1}
# timed NAME CMD...: wall seconds of CMD into $T_WALL; prints the CPU line and,
# with BENCH_PERF=1, the CPU share per library
timed() {
	local name=$1 load
	shift
	load=$(cut -d' ' -f1 /proc/loadavg)
	if [ "${BENCH_PERF:-0}" = 1 ] && command -v perf >/dev/null; then
		perf record -q -F 499 -g -o "$W/perf.$name" -- /usr/bin/time -f '%e %U %S %M' -o "$W/time" "$@" >/dev/null 2>"$W/err" || { cat "$W/err" >&2; return 1; }
	else
		/usr/bin/time -f '%e %U %S %M' -o "$W/time" "$@" >/dev/null 2>"$W/err" || { cat "$W/err" >&2; return 1; }
	fi
	read -r T_WALL T_USER T_SYS T_RSS <"$W/time"
	printf '  %-30s %7.2f s wall  %6.2f user  %6.2f sys  %4d MB peak RSS  (load %s)\n' "$name" "$T_WALL" "$T_USER" "$T_SYS" $((T_RSS >> 10)) "$load"
	if [ -e "$W/perf.$name" ]; then
		perf report -i "$W/perf.$name" --no-children --sort dso --stdio 2>/dev/null |
			awk '/^ +[0-9.]+%/ && $1+0 >= 0.5 { printf "      %7s  %s\n", $1, $2 }'
	fi
}

# --- verify
timed verify "$ENVPIN" verify "$digest"
v=$T_WALL
peer_layer() { # DIGEST MEDIA_TYPE: blob hash and diff hash, like verify
	local f=$ENVPIN_STORE/blobs/sha256/${1#sha256:}
	case "$2" in
	*gzip) gzip -dc <"$f" | sha256sum >/dev/null ;;
	*zstd) zstd -dcq <"$f" | sha256sum >/dev/null ;;
	*) ;;
	esac
	sha256sum "$f" >/dev/null
}
export -f peer_layer
export ENVPIN_STORE
jq -r '.layers[] | "\(.digest) \(.media_type)"' <<<"$info" >"$W/layers"
if [ "$peers" = 1 ]; then
	p=$(secs xargs -P 2 -L 1 -a "$W/layers" bash -c 'peer_layer "$0" "$1"')
	printf '  verify %7.2f s   peer (sha256sum + gzip -dc | sha256sum, 2 at a time) %7.2f s   ratio %.2f\n' "$v" "$p" "$(echo "scale=4; $v / $p" | bc)"
fi

# --- first start
drop_caches() {
	for d in $(jq -r '.layers[].diff_id | sub("^sha256:"; "")' <<<"$info"); do
		rm -rf "${ENVPIN_STORE:?}/rootfs/$d" "$ENVPIN_STORE/rootfs/$d.lock"
	done
	sync
}
drop_caches
timed "first start (unpack + run)" env ENVPIN_HOST_ROOT="$W/nohost" "$ENVPIN" run --gpus none "$digest" -- true
f=$T_WALL
s=$(secs env ENVPIN_HOST_ROOT="$W/nohost" "$ENVPIN" run --gpus none "$digest" -- true)
printf '  second start %.3f s\n' "$s"
if [ "$peers" = 1 ] && command -v umoci >/dev/null && [ "${BENCH_UMOCI:-1}" = 1 ]; then
	mkdir -p "$W/layout/blobs/sha256"
	for b in "$digest" $(jq -r '.config_digest, .layers[].digest' <<<"$info"); do
		ln "$ENVPIN_STORE/blobs/sha256/${b#sha256:}" "$W/layout/blobs/sha256/" 2>/dev/null ||
			cp "$ENVPIN_STORE/blobs/sha256/${b#sha256:}" "$W/layout/blobs/sha256/"
	done
	echo '{"imageLayoutVersion":"1.0.0"}' >"$W/layout/oci-layout"
	size=$(stat -c %s "$ENVPIN_STORE/blobs/sha256/${digest#sha256:}")
	printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"big"}}]}\n' \
		"$digest" "$size" >"$W/layout/index.json"
	sync
	u=$(secs umoci unpack --image "$W/layout:big" "$W/umoci-out")
	printf '  umoci unpack (same layers)      %7.2f s   ratio first-start/umoci %.2f\n' "$u" "$(echo "scale=4; $f / $u" | bc)"
	rm -rf "$W/umoci-out"
fi
