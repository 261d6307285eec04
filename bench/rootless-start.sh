#!/bin/bash
# bench/rootless-start.sh [N]: warm start latency of a rootless
# `envpin run IMAGE -- true` (a user made here: envpin's user namespace,
# overlayfs with userxattr, runc) against the same run as root, a rootless
# run on the flattened copy (ENVPIN_ROOTLESS_OVERLAY=copy: what a kernel
# without overlay-in-userns gives), and `runc run` alone on a prepared
# bundle (as root, and rootless: `runc spec --rootless` run by the user).
# Interleaved rounds, medians and ratios.  Then what a student sees where
# user namespaces are disabled (tests/fixtures/userns-off.py).  Needs root
# (useradd).  N rounds (default 15), about half a minute.  FUSE=1 adds a
# rootless run on fuse-overlayfs (ENVPIN_ROOTLESS_OVERLAY=fuse), with
# /dev/fuse opened to everyone (chmod 0666) for the bench and its mode
# restored at the end.
set -euo pipefail
export LC_ALL=C
N=${1:-15}
top=$(cd "$(dirname "$0")/.." && pwd)
ENVPIN=${ENVPIN:-$top/envpin}
FIX=$top/tests/fixtures
U=envpinbench
[ "$(id -u)" = 0 ] || { echo "rootless-start: needs root (useradd)" >&2; exit 77; }
command -v runc >/dev/null || { echo "rootless-start: runc missing" >&2; exit 77; }

W=$(mktemp -d /tmp/eprl.XXXXXX)
chmod 755 "$W"
FUSE=${FUSE:-0}
fuse_mode=
cleanup() {
	if [ -n "$fuse_mode" ]; then chmod "$fuse_mode" /dev/fuse; fi
	rm -rf "$W"
	if id "$U" >/dev/null 2>&1; then userdel "$U"; fi
}
trap cleanup EXIT
id "$U" >/dev/null 2>&1 || useradd -M -d "$W/home" -s /bin/sh "$U"
mkdir -p "$W/home" "$W/root"
"$FIX/busybox-rootfs.sh" "$W/home/base.tar"
printf '{"envpin":1,"name":"bench","source_date_epoch":1767225600,"base":{"rootfs":"base.tar","sha256":"%s"},"config":{"cmd":["/bin/true"]}}\n' \
	"$(sha256sum "$W/home/base.tar" | cut -d' ' -f1)" >"$W/home/m.json"
chown -R "$U" "$W/home"
as_user() { runuser -u "$U" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$W/home" ENVPIN_PROGRESS=0 ENVPIN_HOST_ROOT="$W/nohost" "$@"; }
D=$(cd "$W" && as_user "$ENVPIN" build -q -f "$W/home/m.json" | tail -n1)
ENVPIN_STORE="$W/root/store" "$ENVPIN" build -q -f "$W/home/m.json" >/dev/null
# runc alone, on a flattened busybox with runc's own spec: root, and rootless
mkdir -p "$W/bundle/rootfs" && tar -C "$W/bundle/rootfs" -xf "$W/home/base.tar"
(cd "$W/bundle" && runc spec && jq '.process.terminal=false | .process.args=["/bin/true"]' config.json >c && mv c config.json)
mkdir -p "$W/ubundle/rootfs" && tar -C "$W/ubundle/rootfs" -xf "$W/home/base.tar"
(cd "$W/ubundle" && runc spec --rootless && jq --argjson u "$(id -u "$U")" --argjson g "$(id -g "$U")" \
	'.process.terminal=false | .process.args=["/bin/true"] | .linux.uidMappings=[{containerID:0,hostID:$u,size:1}] | .linux.gidMappings=[{containerID:0,hostID:$g,size:1}]' \
	config.json >c && mv c config.json)
chown -R "$U" "$W/ubundle"
if [ "$FUSE" = 1 ]; then
	fuse_mode=$(stat -c %a /dev/fuse)
	chmod 0666 /dev/fuse
fi
cd "$W/home"
for i in 1 2 3; do # warm up: layer caches, page cache
	as_user "$ENVPIN" run "$D" -- true
	ENVPIN_STORE="$W/root/store" ENVPIN_HOST_ROOT="$W/nohost" "$ENVPIN" run --gpus none "$D" -- true
done

ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 || echo "rootless-start: '$*' failed" >&2; e=$(date +%s%N); echo $(((e - s) / 1000)); }
: >"$W/rl" >"$W/root.t" >"$W/copy" >"$W/fuse" >"$W/runc" >"$W/urunc"
for ((i = 0; i < N; i++)); do
	ms as_user "$ENVPIN" run "$D" -- true >>"$W/rl"
	ms env ENVPIN_STORE="$W/root/store" ENVPIN_HOST_ROOT="$W/nohost" "$ENVPIN" run --gpus none "$D" -- true >>"$W/root.t"
	ms as_user env ENVPIN_ROOTLESS_OVERLAY=copy "$ENVPIN" run "$D" -- true >>"$W/copy"
	if [ "$FUSE" = 1 ]; then
		ms as_user env ENVPIN_ROOTLESS_OVERLAY=fuse "$ENVPIN" run "$D" -- true >>"$W/fuse"
	fi
	ms runc --root "$W/runc-state" run --bundle "$W/bundle" r$i >>"$W/runc"
	ms as_user runc --root "$W/home/runc-state" run --bundle "$W/ubundle" u$i >>"$W/urunc"
done
med() { sort -n "$1" | awk '{a[NR]=$1} END {if (NR) printf "%.1f", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)/1000; else printf "n/a"}'; }
rl=$(med "$W/rl") root=$(med "$W/root.t") copy=$(med "$W/copy") fuse=$(med "$W/fuse") runc=$(med "$W/runc") urunc=$(med "$W/urunc")
ratio() { echo "scale=2; $1 / $2" | bc; }
echo "rootless-start: $N rounds, medians (ms); $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '  %-52s %7s ms\n' "envpin run, rootless (userns + overlay userxattr)" "$rl" \
	"envpin run, root (overlayfs, cgroups)" "$root" \
	"envpin run, rootless, flattened copy per run" "$copy" \
	"envpin run, rootless, fuse-overlayfs (FUSE=1)" "$fuse" \
	"runc run alone, root (runc spec)" "$runc" \
	"runc run alone, rootless (runc spec --rootless)" "$urunc"
echo "  ratios: rootless/root $(ratio "$rl" "$root"); rootless/runc-rootless $(ratio "$rl" "$urunc"); root/runc $(ratio "$root" "$runc"); copy/overlay $(ratio "$copy" "$rl")"
echo
echo "what a student sees where user namespaces are disabled (user.max_user_namespaces=0):"
cd "$W/home"
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$W/home" /usr/bin/python3 "$FIX/userns-off.py" "$(id -u "$U")" \
	"$ENVPIN" run --engine native "$D" -- true 2>&1 | sed 's/^/  | /' || true
