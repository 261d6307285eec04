#!/bin/bash
# bench/run-start.sh [N]: warm start latency of `envpin run IMAGE -- true`
# (native engine: runc + overlayfs bundle) against `runc run` on a prepared
# bundle (flattened busybox rootfs, runc's own spec, same command), `docker run
# --rm --network host` on a private dockerd, and `envpin run --gpus all` with
# the fake driver tree.  Runs are interleaved (one of each per round) and
# the medians reported.  Needs root.  N rounds (default 15), about 1 minute.
# ENVPIN_BASE=/path/to/another/envpin adds it as one more interleaved row
# (before/after comparisons on a busy machine).  GAP=0.1 sleeps that long
# before every timed start: a start after a quiet spell, as from a prompt.
# Without it each start follows the previous one at once, which flatters
# runc: its first cgroup.procs write after ~one RCU grace period of quiet
# waits for a new one (~10 ms here, docs/run.md "Start latency").
set -euo pipefail
export LC_ALL=C
N=${1:-15}
top=$(cd "$(dirname "$0")/.." && pwd)
ENVPIN=${ENVPIN:-$top/envpin}
FIX=$top/tests/fixtures
[ "$(id -u)" = 0 ] || { echo "run-start: needs root" >&2; exit 77; }
command -v runc >/dev/null || { echo "run-start: runc missing" >&2; exit 77; }

W=$(mktemp -d /tmp/eprs.XXXXXX)
cleanup() { [ ! -d "$W/dockerd" ] || "$FIX/dockerd.sh" stop "$W/dockerd" >/dev/null 2>&1 || true; rm -rf "$W"; }
trap cleanup EXIT
export ENVPIN_STORE=$W/store ENVPIN_PROGRESS=0
"$FIX/busybox-rootfs.sh" "$W/base.tar"
printf '{"envpin":1,"name":"bench","source_date_epoch":1767225600,"base":{"rootfs":"base.tar","sha256":"%s"},"config":{"cmd":["/bin/true"]}}\n' \
	"$(sha256sum "$W/base.tar" | cut -d' ' -f1)" >"$W/m.json"
D=$("$ENVPIN" build -q -f "$W/m.json")
mkdir -p "$W/bundle/rootfs" && tar -C "$W/bundle/rootfs" -xf "$W/base.tar"
(cd "$W/bundle" && runc spec && jq '.process.terminal=false | .process.args=["/bin/true"]' config.json >c && mv c config.json)
# the same bundle with envpin's own config.json (seccomp, cgroup and /etc mounts,
# workspace) on a flattened rootfs: what runc alone costs for envpin's spec
ENVPIN_HOST_ROOT=$W/nohost "$ENVPIN" run --keep --name kept --gpus none "$D" -- true
mkdir -p "$W/bundle2/rootfs/workspace" "$W/bundle2/rootfs/dev" "$W/bundle2/rootfs/proc" "$W/bundle2/rootfs/sys"
tar -C "$W/bundle2/rootfs" -xf "$W/base.tar"
touch "$W/bundle2/rootfs/etc/hosts" "$W/bundle2/rootfs/etc/resolv.conf" "$W/bundle2/rootfs/etc/hostname"
cp "$ENVPIN_STORE/run/kept/config.json" "$W/bundle2/" && rm -rf "$ENVPIN_STORE/run/kept"
gpu=0
if "$FIX/fake-nvidia.sh" "$W/host" >/dev/null 2>&1; then gpu=1; fi
docker=0
if command -v dockerd >/dev/null && "$FIX/dockerd.sh" start "$W/dockerd" >/dev/null 2>&1; then
	. "$W/dockerd/env"
	"$ENVPIN" run --engine docker --gpus none "$D" -- true && docker=1
fi
cd "$W"
# warm up: the layer cache, page cache, runc binary
for i in 1 2 3; do
	ENVPIN_HOST_ROOT=$W/nohost "$ENVPIN" run --gpus none "$D" -- true
	runc --root "$W/runc-state" run --bundle "$W/bundle" warm$i >/dev/null
done

# every row is one fork and exec of its program, timed with bash's own
# clock (no `date` or `env` processes in the measured interval)
ms() {
	local s e
	[ -z "${GAP:-}" ] || sleep "$GAP"
	s=$EPOCHREALTIME
	"$@" >/dev/null 2>&1 || echo "run-start: '$*' failed" >&2
	e=$EPOCHREALTIME
	echo $((${e/./} - ${s/./}))
}
nohost() { ENVPIN_HOST_ROOT="$W/nohost" "$@"; }
fakehost() { ENVPIN_HOST_ROOT="$W/host" "$@"; }
: >"$W/envpin" >"$W/runc" >"$W/docker" >"$W/gpu" >"$W/runc2" >"$W/base"
for ((i = 0; i < N; i++)); do
	ms nohost "$ENVPIN" run --gpus none "$D" -- true >>"$W/envpin"
	ms runc --root "$W/runc-state" run --bundle "$W/bundle" r$i >>"$W/runc"
	[ -z "${ENVPIN_BASE:-}" ] || ms nohost "$ENVPIN_BASE" run --gpus none "$D" -- true >>"$W/base"
	ms runc --root "$W/runc-state" run --bundle "$W/bundle2" s$i >>"$W/runc2"
	[ $gpu = 0 ] || ms fakehost "$ENVPIN" run --gpus all "$D" -- true >>"$W/gpu"
	[ $docker = 0 ] || ms docker run --rm --network host "$("$ENVPIN" inspect --json "$D" | jq -r .config_digest)" true >>"$W/docker"
done
med() { sort -n "$1" | awk '{a[NR]=$1} END {if (NR) printf "%.1f", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)/1000; else printf "n/a"}'; }
E=$(med "$W/envpin") R=$(med "$W/runc") R2=$(med "$W/runc2") G=$(med "$W/gpu") K=$(med "$W/docker") B=$(med "$W/base")
echo "run-start: $N interleaved rounds${GAP:+, ${GAP} s idle before each start}, medians (ms), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r), $(runc --version | head -1)"
printf '  envpin run (native, --gpus none)   %8s\n' "$E"
printf '  runc run (prepared bundle)         %8s\n' "$R"
printf '  runc run (envpin'"'"'s config.json)     %8s\n' "$R2"
printf '  envpin run --gpus all (fake tree)  %8s\n' "$G"
printf '  docker run --rm (dockerd 20.10)    %8s\n' "$K"
[ -z "${ENVPIN_BASE:-}" ] || printf '  ENVPIN_BASE run (native)           %8s   base/runc = %s\n' "$B" "$(awk -v b="$B" -v r="$R" 'BEGIN { printf "%.2f", b/r }')"
awk -v e="$E" -v r="$R" -v r2="$R2" -v g="$G" 'BEGIN { printf "  envpin/runc = %.2f (target <= 1.2), envpin/runc-same-config = %.2f; gpu - cpu = %+.1f ms (target <= 20)\n", e/r, e/r2, g-e }'
