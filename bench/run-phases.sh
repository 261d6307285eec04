#!/bin/bash
# bench/run-phases.sh [N]: where the milliseconds of a warm `envpin run
# IMAGE -- true` go (native engine, busybox image), without strace.
#
# envpin's side: ENVPIN_TRACE_START=$EPOCHREALTIME (taken by this shell just
# before the fork and exec) makes envpin print timestamps of its phases on
# stderr (lib/trace.h); the first row is exec + dynamic loader (+ the
# shell's fork), the last one the time from envpin's last mark to this
# shell seeing the exit (the exit itself: the private mount namespace goes
# away with it).
#
# runc's side: the same config.json (envpin --keep) run by runc alone, on
# a flattened rootfs in the host mount namespace, the same in a private
# mount namespace (as envpin runs it), on a freshly mounted overlay of the
# store's layer (what every `envpin run` gets), and on that overlay a
# second time.  Rounds are interleaved, medians of N (default 15).
# Needs root, runc, python3.
set -euo pipefail
export LC_ALL=C
N=${1:-15}
top=$(cd "$(dirname "$0")/.." && pwd)
ENVPIN=${ENVPIN:-$top/envpin}
FIX=$top/tests/fixtures
[ "$(id -u)" = 0 ] || { echo "run-phases: needs root" >&2; exit 77; }
command -v runc >/dev/null || { echo "run-phases: runc missing" >&2; exit 77; }
W=$(mktemp -d /tmp/eprp.XXXXXX)
cleanup() { umount -R "$W/ns" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
export ENVPIN_STORE=$W/store ENVPIN_PROGRESS=0 ENVPIN_HOST_ROOT=$W/nohost
"$FIX/busybox-rootfs.sh" "$W/base.tar"
printf '{"envpin":1,"name":"bench","source_date_epoch":1767225600,"base":{"rootfs":"base.tar","sha256":"%s"},"config":{"cmd":["/bin/true"]}}\n' \
	"$(sha256sum "$W/base.tar" | cut -d' ' -f1)" >"$W/m.json"
D=$("$ENVPIN" build -q -f "$W/m.json")
cd "$W"
for i in 1 2 3; do "$ENVPIN" run --gpus none "$D" -- true; done

# envpin's phases
: >"$W/marks"
for ((i = 0; i < N; i++)); do
	s=$EPOCHREALTIME
	ENVPIN_TRACE_START=$s "$ENVPIN" run --gpus none "$D" -- true 2>"$W/one"
	e=$EPOCHREALTIME
	awk -v s="$s" -v e="$e" -v r="$i" '
		/^envpin: trace: .* CPU before main/ { printf "%d\tCPU before main (not wall)\t%s\n", r, $3; next }
		/^envpin: trace / { d = $5; sub(/^\+/, "", d); t = $3; $1 = $2 = $3 = $4 = $5 = ""; sub(/^ +/, "");
			printf "%d\t%s\t%s\n", r, ($0 == "main" ? "exec, loader, to main" : $0), d }
		END { printf "%d\texit (to the shell seeing it)\t%.3f\n%d\ttotal\t%.3f\n", r, (e - s) * 1000 - t, r, (e - s) * 1000 }' \
		"$W/one" >>"$W/marks"
done

# runc alone on envpin's config.json
"$ENVPIN" run --keep --name kept --gpus none "$D" -- true
L=$(ls -d "$ENVPIN_STORE"/rootfs/*/ | head -1)
mkdir -p "$W/flat/rootfs"
tar -C "$W/flat/rootfs" -xf "$W/base.tar"
cp "$ENVPIN_STORE/run/kept/config.json" "$W/flat/"
rm -rf "$ENVPIN_STORE/run/kept"
targets() {
	mkdir -p "$1/dev" "$1/proc" "$1/sys" "$1/workspace"
	touch "$1/etc/hosts" "$1/etc/resolv.conf" "$1/etc/hostname"
}
targets "$W/flat/rootfs"
mkdir -p "$W/ns"
cat >"$W/runc-rows.sh" <<'EOF'
set -eu
W=$1 N=$2 L=$3
ms() { local s=$EPOCHREALTIME; "$@" >/dev/null 2>&1 || echo "run-phases: '$*' failed" >&2; awk -v s="$s" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.3f\n", (e - s) * 1000 }'; }
for ((i = 0; i < N; i++)); do
	if [ "$4" = host ]; then
		printf '%d\trunc: flat rootfs, host mount ns\t%s\n' "$i" "$(ms runc --root "$W/rs" run --bundle "$W/flat" h$i)"
		continue
	fi
	printf '%d\trunc: flat rootfs, private mount ns\t%s\n' "$i" "$(ms runc --root "$W/rs" run --bundle "$W/flat" p$i)"
	b=$W/ns/b$i
	mkdir -p "$b/rootfs" "$b/u" "$b/w"
	cp "$W/flat/config.json" "$b/"
	mount -t overlay overlay -o "lowerdir=$L,upperdir=$b/u,workdir=$b/w,volatile" "$b/rootfs"
	mkdir -p "$b/rootfs/dev" "$b/rootfs/proc" "$b/rootfs/sys" "$b/rootfs/workspace"
	touch "$b/rootfs/etc/hosts" "$b/rootfs/etc/resolv.conf" "$b/rootfs/etc/hostname"
	printf '%d\trunc: fresh overlay, private mount ns\t%s\n' "$i" "$(ms runc --root "$W/rs" run --bundle "$b" o$i)"
	printf '%d\trunc: same overlay, second run\t%s\n' "$i" "$(ms runc --root "$W/rs" run --bundle "$b" q$i)"
	umount "$b/rootfs"
	rm -rf "$b"
done
EOF
bash "$W/runc-rows.sh" "$W" "$N" "$L" host >>"$W/marks"
unshare -m --propagation private bash "$W/runc-rows.sh" "$W" "$N" "$L" private >>"$W/marks"

echo "run-phases: $N runs, medians (ms), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(runc --version | head -1)"
python3 - "$W/marks" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    _, name, v = line.rstrip("\n").split("\t")
    rows.setdefault(name, []).append(float(v))
for name, v in rows.items():
    if name.startswith("runc:") and not any(k.startswith("runc:") for k in list(rows)[:list(rows).index(name)]):
        print("  runc alone, envpin's config.json:")
    print("  %-42s %8.2f" % (name, statistics.median(v)))
PY
