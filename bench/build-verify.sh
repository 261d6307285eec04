#!/bin/bash
# bench/build-verify.sh — envpin against its peers on the same work:
#   build:  the busybox base + ~200 MB of real shared libraries in one copy layer,
#           `envpin build` vs `buildah bud --timestamp 0` + `buildah push oci:`
#           (both gzip, both cold: a fresh store / fresh buildah storage each run)
#   verify: `envpin verify` vs the plain shell pipeline (bench/lib/oci-verify.sh:
#           sha256sum of every blob, gzip -dc | sha256sum of every layer)
#   no-op:  `envpin build` again on a store that has the image
#   big:    (BENCH_BIG=1) peak RSS of envpin build and verify with a 2 GiB layer
# Runs are interleaved (A B A B ...) so that load from other users of the machine
# hits both sides alike; medians and ratios envpin/peer are printed.
# Env: ENVPIN (binary), BENCH_N (runs, 5), BENCH_LIBS_MB (200), BENCH_BIG (0),
#      BENCH_BIG_MB (2048), BENCH_TMP (work dir, lower case, default /tmp/envpin-bench.PID), BENCH_KEEP=1
#      keeps it, BENCH_BUILDAH_DRIVER (overlay, vfs if overlay fails).
# Raw figures go to bench/out/build-verify.tsv, the summary to stdout and
# bench/out/build-verify.txt.
set -euo pipefail
export LC_ALL=C TZ=UTC

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
fix="$top/tests/fixtures"
: "${ENVPIN:=$top/envpin}"
N=${BENCH_N:-5}
LIBS_MB=${BENCH_LIBS_MB:-200}
BIG_MB=${BENCH_BIG_MB:-2048}
W=${BENCH_TMP:-/tmp/envpin-bench.$$}
out="$top/bench/out"
TIME=/usr/bin/time

die() {
	echo "bench: $*" >&2
	exit 3
}

# buildah names an image pulled from oci:PATH after PATH, and image names are lower case
[[ "$W" != *[A-Z]* ]] || die "BENCH_TMP '$W' must be lower case (buildah derives an image name from it)"
[ -x "$TIME" ] || die "GNU time missing at $TIME (package 'time')"
for c in buildah jq umoci sha256sum gzip openssl; do
	command -v "$c" >/dev/null || die "'$c' not installed (make deps)"
done
[ "$(id -u)" = 0 ] || die "buildah here needs root"

mkdir -p "$out" "$W"
W=$(cd "$W" && pwd)
cleanup() {
	[ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$W"
}
trap cleanup EXIT
tsv="$out/build-verify.tsv"
printf 'what\trun\tseconds\tmax_rss_kb\n' >"$tsv"
log="$W/log"

# timed NAME RUN CMD...: runs CMD under GNU time, appends a row to the TSV
timed() {
	local name=$1 run=$2
	shift 2
	if ! "$TIME" -o "$W/time" -f '%e %M' "$@" >"$log" 2>"$log.err"; then
		echo "bench: $name failed:" >&2
		tail -n 20 "$log" "$log.err" >&2
		return 1
	fi
	read -r secs rss <"$W/time"
	printf '%s\t%s\t%s\t%s\n' "$name" "$run" "$secs" "$rss" >>"$tsv"
}

median() { # median NAME [column]: median of the TSV's column (3 = seconds) for NAME
	awk -F'\t' -v n="$1" -v c="${2:-3}" '$1 == n { print $c }' "$tsv" | sort -n |
		awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f\n", a / b }'
}

# --- inputs -----------------------------------------------------------------
echo "bench: preparing inputs in $W" >&2
ctx="$W/ctx"
mkdir -p "$ctx/libs"
"$fix/busybox-rootfs.sh" "$ctx/bb.tar"
"$fix/oci-from-rootfs.sh" "$ctx/bb.tar" "$W/base" bb >/dev/null

# The library set: regular *.so* files directly in the multiarch dir, of at
# most 40 MB each (else libLLVM alone is the whole set), in byte order of their
# names, until LIBS_MB is reached: some hundred files, as a real layer has.  The list and its hash
# go in the output so figures from two machines are comparable only if equal.
libdir=/usr/lib/x86_64-linux-gnu
find "$libdir" -maxdepth 1 -type f -name '*.so*' -printf '%f\t%s\n' | sort >"$W/all-libs"
awk -F'\t' -v lim=$((LIBS_MB * 1000 * 1000)) 's < lim && $2 <= 40000000 { print $1; s += $2 }' "$W/all-libs" >"$W/libs.list"
while read -r f; do cp "$libdir/$f" "$ctx/libs/"; done <"$W/libs.list"
libs_n=$(wc -l <"$W/libs.list")
libs_bytes=$(du -sb "$ctx/libs" | cut -f1)
libs_hash=$(sha256sum <"$W/libs.list" | cut -c1-16)
[ "$libs_bytes" -ge $((LIBS_MB * 900 * 1000)) ] ||
	die "only $((libs_bytes / 1000000)) MB of libraries in $libdir; install e.g. libllvm15"
cp "$W/libs.list" "$out/build-verify.libs"

bb_sha=$(sha256sum <"$ctx/bb.tar" | cut -c1-64)
cat >"$ctx/manifest.json" <<EOF
{
  "envpin": 1,
  "name": "bench-libs",
  "source_date_epoch": 0,
  "base": { "rootfs": "bb.tar", "sha256": "$bb_sha" },
  "layers": [ { "copy": [ { "src": "libs/", "dest": "/opt/libs/" } ] } ],
  "config": { "env": { "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" },
              "cmd": [ "/bin/sh" ] }
}
EOF
cat >"$ctx/Dockerfile" <<EOF
FROM oci:$W/base:bb
COPY libs/ /opt/libs/
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["/bin/sh"]
EOF

# --- buildah: storage driver and flags ----------------------------------------
# --isolation chroot: no RUN here; on this machine chroot, oci (runc) and rootless
#   all run a RUN step as root, and chroot needs the fewest moving parts.
# --timestamp 0: created times and file mtimes in the new layer set to the epoch.
# --root/--runroot: private storage, so each run is cold and no system store is touched.
buildah_build() { # buildah_build STORAGE_DIR OCI_OUT
	local s=$1 o=$2
	buildah --root "$s/root" --runroot "$s/run" --storage-driver "$BDRIVER" \
		bud --timestamp 0 --isolation chroot -q -t localhost/envpin-bench/libs:1 -f "$ctx/Dockerfile" "$ctx" &&
		buildah --root "$s/root" --runroot "$s/run" --storage-driver "$BDRIVER" \
			push -q localhost/envpin-bench/libs:1 "oci:$o:libs"
}
export -f buildah_build
export ctx

BDRIVER=${BENCH_BUILDAH_DRIVER:-}
if [ -z "$BDRIVER" ]; then
	BDRIVER=overlay
	mkdir -p "$W/probe/ctx"
	printf 'FROM oci:%s/base:bb\nCOPY x /x\n' "$W" >"$W/probe/ctx/Dockerfile"
	echo x >"$W/probe/ctx/x"
	if ! buildah --root "$W/probe/root" --runroot "$W/probe/run" --storage-driver overlay \
		bud --timestamp 0 --isolation chroot -q -f "$W/probe/ctx/Dockerfile" "$W/probe/ctx" >"$log" 2>&1; then
		echo "bench: buildah with overlay failed, using vfs: $(tail -n 1 "$log")" >&2
		BDRIVER=vfs
	fi
	rm -rf "$W/probe"
fi
export BDRIVER

# --- envpin: does it build yet? -----------------------------------------------
have_envpin=0
envpin_note=""
if [ ! -x "$ENVPIN" ]; then
	envpin_note="no envpin binary at '$ENVPIN'"
elif ! "$ENVPIN" --store "$W/probe-store" build -f "$ctx/manifest.json" --compress gzip >"$log" 2>"$log.err"; then
	envpin_note="envpin build failed: $( (cat "$log" "$log.err" | grep -v '^[[:space:]]*$' || echo 'no message') | tail -n 1)"
elif ! tail -n 1 "$log" | grep -Eq '^sha256:[0-9a-f]{64}$'; then
	envpin_note="envpin build did not print a digest as its last line"
else
	have_envpin=1
fi
rm -rf "$W/probe-store"
[ $have_envpin = 1 ] || echo "bench: $envpin_note; reporting the peer numbers only" >&2

# --- interleaved runs -----------------------------------------------------------
e_digests="" b_digests=""
for ((i = 1; i <= N; i++)); do
	echo "bench: run $i/$N" >&2
	if [ $have_envpin = 1 ]; then
		rm -rf "$W/es" "$W/eo"
		timed envpin-build "$i" "$ENVPIN" --store "$W/es" build -f "$ctx/manifest.json" \
			--compress gzip -o "$W/eo" --tag bench
		e_digest=$(tail -n 1 "$log")
		e_digests="$e_digests $e_digest"
	fi
	rm -rf "$W/bs" "$W/bo"
	# shellcheck disable=SC2016
	timed buildah-build "$i" bash -c 'buildah_build "$1" "$2"' _ "$W/bs" "$W/bo"
	b_digests="$b_digests $(jq -r '.manifests[0].digest' "$W/bo/index.json")"
	rm -rf "$W/bs"
	# both verifiers check the same image: envpin's when there is one
	if [ $have_envpin = 1 ]; then
		timed envpin-verify "$i" "$ENVPIN" --store "$W/es" verify "$e_digest"
		timed shell-verify "$i" "$here/lib/oci-verify.sh" "$W/eo"
	else
		timed shell-verify "$i" "$here/lib/oci-verify.sh" "$W/bo"
	fi
done
if [ $have_envpin = 1 ]; then
	for ((i = 1; i <= N; i++)); do
		timed envpin-noop "$i" "$ENVPIN" --store "$W/es" build -f "$ctx/manifest.json" --compress gzip -o "$W/eo" --tag bench
	done
fi
image_bytes=$(du -sb "$W/bo/blobs" | cut -f1)

# --- the big layer ------------------------------------------------------------------
big=""
if [ "${BENCH_BIG:-0}" = 1 ]; then
	if [ $have_envpin = 1 ]; then
		echo "bench: generating $BIG_MB MiB of deterministic data" >&2
		mkdir -p "$W/big/data"
		cp "$ctx/bb.tar" "$W/big/"
		# AES-CTR of zeros under a fixed key: incompressible, the same bytes everywhere
		head -c $((BIG_MB * 1024 * 1024)) /dev/zero |
			openssl enc -aes-256-ctr -nosalt -K "$(printf '%064d' 0)" -iv "$(printf '%032d' 0)" >"$W/big/data/blob.bin"
		sed -e 's|"libs/"|"data/"|' -e 's|/opt/libs/|/opt/data/|' "$ctx/manifest.json" >"$W/big/manifest.json"
		timed big-envpin-build 1 "$ENVPIN" --store "$W/bigs" build -f "$W/big/manifest.json" --compress gzip
		big_digest=$(tail -n 1 "$log")
		timed big-envpin-verify 1 "$ENVPIN" --store "$W/bigs" verify "$big_digest"
		rm -rf "$W/big" "$W/bigs"
		big=1
	else
		big="skipped: $envpin_note"
	fi
fi

# --- report ------------------------------------------------------------------------------
uniq_count() { # uniq_count "D1 D2 ...": how many, how many distinct
	local all
	all=$(tr ' ' '\n' <<<"$1" | grep -v '^$' || true)
	printf '%s runs, %s distinct' "$(grep -c . <<<"$all")" "$(sort -u <<<"$all" | grep -c .)"
}
{
	echo "envpin bench: build-verify ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cpus, N=$N)"
	echo "  input: busybox base + $libs_n libraries from $libdir, $((libs_bytes / 1000000)) MB (list hash $libs_hash)"
	echo "  peer:  $(buildah --version), storage $BDRIVER; image $((image_bytes / 1000000)) MB of blobs (gzip)"
	echo "  buildah digests: $(uniq_count "$b_digests")"
	[ $have_envpin = 1 ] && echo "  envpin digests:  $(uniq_count "$e_digests")"
	printf '  %-26s %10s %10s %8s\n' "median seconds" envpin peer ratio
	eb=$(median envpin-build) bb=$(median buildah-build) ev=$(median envpin-verify) sv=$(median shell-verify)
	printf '  %-26s %10s %10s %8s\n' "build (cold)" "$eb" "$bb" "$(ratio "$eb" "$bb")"
	printf '  %-26s %10s %10s %8s\n' "verify" "$ev" "$sv" "$(ratio "$ev" "$sv")"
	printf '  %-26s %10s\n' "no-op rebuild" "$(median envpin-noop)"
	printf '  %-26s %10s %10s\n' "peak RSS MB build" "$(awk -v k="$(median envpin-build 4)" 'BEGIN { if (k == "-") print "-"; else printf "%.0f", k / 1024 }')" \
		"$(awk -v k="$(median buildah-build 4)" 'BEGIN { printf "%.0f", k / 1024 }')"
	if [ "$big" = 1 ]; then
		printf '  %s MiB layer: build %s s, %s MB peak RSS; verify %s s, %s MB peak RSS\n' "$BIG_MB" \
			"$(median big-envpin-build)" "$(($(median big-envpin-build 4) / 1024))" \
			"$(median big-envpin-verify)" "$(($(median big-envpin-verify 4) / 1024))"
	elif [ -n "$big" ]; then
		echo "  $BIG_MB MiB layer: $big"
	fi
	[ $have_envpin = 1 ] || echo "  envpin: $envpin_note"
	echo "  (peak RSS of buildah-build is bash's or buildah's, whichever was larger; raw: $tsv)"
} | tee "$out/build-verify.txt"
