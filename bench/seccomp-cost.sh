#!/bin/bash
# bench/seccomp-cost.sh [N]: what the seccomp profile costs `runc run` per
# start.  envpin's own config.json (from `envpin run --keep`) on a flattened
# busybox rootfs, command `true`, with: no seccomp; the deny-list envpin used
# before the allow-list; the allow-list (x86_64, x86, x32: what envpin
# writes); the allow-list for x86_64+x86 and for x86_64 alone.  runc builds
# the BPF filter with libseccomp on every start, so the cost grows with the
# rules times the architectures.  Interleaved rounds, medians of wall time.
# Needs root and jq.  N rounds (default 21).
set -euo pipefail
export LC_ALL=C
N=${1:-21}
top=$(cd "$(dirname "$0")/.." && pwd)
ENVPIN=${ENVPIN:-$top/envpin}
FIX=$top/tests/fixtures
[ "$(id -u)" = 0 ] || { echo "seccomp-cost: needs root" >&2; exit 77; }
command -v runc >/dev/null || { echo "seccomp-cost: runc missing" >&2; exit 77; }

W=$(mktemp -d /tmp/epsc.XXXXXX)
trap 'rm -rf "$W"' EXIT
export ENVPIN_STORE=$W/store ENVPIN_PROGRESS=0 ENVPIN_HOST_ROOT=$W/nohost
"$FIX/busybox-rootfs.sh" "$W/base.tar"
printf '{"envpin":1,"name":"bench","source_date_epoch":1767225600,"base":{"rootfs":"base.tar","sha256":"%s"},"config":{"cmd":["/bin/true"]}}\n' \
	"$(sha256sum "$W/base.tar" | cut -d' ' -f1)" >"$W/m.json"
D=$("$ENVPIN" build -q -f "$W/m.json")
(cd "$W" && "$ENVPIN" run --keep --name kept --gpus none --no-workspace "$D" -- true)
B=$W/bundle
mkdir -p "$B/rootfs" && tar -C "$B/rootfs" -xf "$W/base.tar" && mkdir -p "$B/rootfs/"{dev,proc,sys}
base=$(jq '.root.path = "rootfs" | .mounts |= map(select(.type != "bind"))' "$ENVPIN_STORE/run/kept/config.json")
deny='["acct","add_key","bpf","clock_adjtime","clock_settime","delete_module","finit_module",
 "fsconfig","fsmount","fsopen","fspick","init_module","io_uring_enter","io_uring_register",
 "io_uring_setup","ioperm","iopl","kexec_file_load","kexec_load","keyctl","lookup_dcookie","mount",
 "mount_setattr","move_mount","name_to_handle_at","nfsservctl","open_by_handle_at","open_tree",
 "perf_event_open","pivot_root","quotactl","quotactl_fd","reboot","request_key","setns",
 "settimeofday","swapoff","swapon","syslog","umount2","unshare","uselib","userfaultfd","ustat",
 "vm86","vm86old","_sysctl","sysfs"]'
jq 'del(.linux.seccomp)' <<<"$base" >"$W/none.json"
jq --argjson d "$deny" '.linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW",
	architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
	syscalls: ([{names: $d, action: "SCMP_ACT_ERRNO", errnoRet: 1},
		{names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: 38}] +
		([131072, 33554432, 67108864, 134217728, 268435456, 536870912, 1073741824] |
		 map({names: ["clone"], action: "SCMP_ACT_ERRNO", errnoRet: 1,
		      args: [{index: 0, value: ., valueTwo: ., op: "SCMP_CMP_MASKED_EQ"}]})))}' \
	<<<"$base" >"$W/denylist.json"
cp /dev/stdin "$W/allowlist.json" <<<"$base"
jq '.linux.seccomp.architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]' <<<"$base" >"$W/allow-x64-x86.json"
jq '.linux.seccomp.architectures = ["SCMP_ARCH_X86_64"]' <<<"$base" >"$W/allow-x64.json"

kinds="none denylist allowlist allow-x64-x86 allow-x64"
declare -A T
for i in $(seq "$N"); do
	for k in $kinds; do
		cp "$W/$k.json" "$B/config.json"
		s=$(date +%s%N)
		runc --root "$W/state" run --bundle "$B" "b$i$k" >/dev/null 2>&1 </dev/null
		e=$(date +%s%N)
		T[$k]+="$(((e - s) / 1000)) "
	done
done
echo "runc run, envpin's spec, busybox 'true', $N interleaved rounds, median wall ms:"
for k in $kinds; do
	printf '  %-14s %6.1f\n' "$k" "$(printf '%s\n' ${T[$k]} | sort -n |
		awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)] / 1000}')"
done
