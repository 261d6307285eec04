#!/usr/bin/env bats
# envpin run --gpus with a fake driver tree (tests/fixtures/fake-nvidia.sh)
# under ENVPIN_HOST_ROOT, on the native engine and on a real Docker Engine
# (tests/fixtures/dockerd.sh): the same devices, libraries, SONAME links,
# nvidia-smi and NVIDIA_* env; with --gpus none, none of it.

load helpers

setup_file() {
	export FIX="$TOP/tests/fixtures"
	[ "$(id -u)" = 0 ] || return 0
	export GT=$(mktemp -d /tmp/ep440.XXXXXX)
	"$FIX/busybox-rootfs.sh" "$GT/base.tar"
	cat >"$GT/m.json" <<-JSON
	{ "envpin": 1, "name": "gputest", "source_date_epoch": 1767225600,
	  "base": { "rootfs": "base.tar", "sha256": "$(sha256sum "$GT/base.tar" | cut -d' ' -f1)" },
	  "config": { "env": { "GREETING": "hi" }, "cmd": [ "/bin/sh" ] } }
	JSON
	export GPU_STORE="$GT/store"
	ENVPIN_STORE=$GPU_STORE "${ENVPIN:-$TOP/envpin}" build -q -f "$GT/m.json" >"$GT/digest"
	"$FIX/fake-nvidia.sh" "$GT/host" >/dev/null 2>&1 || echo fail >"$GT/nofake"
}
teardown_file() {
	[ -z "${GT:-}" ] && return 0
	[ ! -d "$GT/dockerd" ] || "$FIX/dockerd.sh" stop "$GT/dockerd"
	rm -rf "$GT"
}

setup() {
	[ "$(id -u)" = 0 ] || skip "needs root (mknod for the fake tree, runc)"
	[ ! -e "$GT/nofake" ] || skip "fake-nvidia.sh could not build the tree"
	common_setup
	export ENVPIN_STORE=$GPU_STORE ENVPIN_HOST_ROOT="$GT/host"
	D=$(cat "$GT/digest")
}
teardown() { common_teardown; }

# what the container sees, one fact a line
PROBE='stat -c "%F %t:%T" /dev/nvidia0 2>&1; for d in /usr/lib/x86_64-linux-gnu /usr/lib64; do
	[ -e $d/libcuda.so.1 ] && { f=$(readlink -f $d/libcuda.so.1); [ -f "$f" ] && echo "cuda:${f##*/}"; }; done;
	command -v nvidia-smi >/dev/null && nvidia-smi | grep -o "Driver Version: [0-9.]*";
	echo "vis=$NVIDIA_VISIBLE_DEVICES"; echo "greet=$GREETING"'

check_gpu() {
	[ "$status" -eq 0 ]
	[[ "$output" == *"character special file c3:0"* ]]     # 195:0 in hex
	[[ "$output" == *"cuda:libcuda.so."* ]]
	[[ "$output" == *"Driver Version: 550.54.15"* ]]
	[[ "$output" == *"vis=all"* ]]
	[[ "$output" == *"greet=hi"* ]]
}
check_none() {
	[ "$status" -eq 0 ]
	[[ "$output" == *"No such file"* ]]
	[[ "$output" != *cuda:* ]]
	[[ "$output" != *"Driver Version"* ]]
	[[ "$output" == *"vis="$'\n'* || "$output" == *"vis=" ]]
}

@test "gpu native: /dev/nvidia0 195:0, libcuda and its SONAME link, nvidia-smi, NVIDIA_* env" {
	command -v runc >/dev/null || skip "runc is not installed"
	run envpin run --engine native --gpus all "$D" -- sh -c "$PROBE"
	echo "$output"
	check_gpu
	# the real (patched) link: libcuda.so.1 -> libcuda.so.VERSION, inside the container
	run envpin run --engine native "$D" -- sh -c 'for f in /usr/lib64/libcuda.so.1 /usr/lib/x86_64-linux-gnu/libcuda.so.1; do [ -L $f ] && readlink $f; done; true'
	[[ "$output" == *"libcuda.so.550.54.15"* ]]
	run envpin run --engine native --gpus none "$D" -- sh -c "$PROBE"
	echo "$output"
	check_none
	[ -z "$(ls -A "$ENVPIN_STORE/run" | grep -v '^runc$')" ]
}

@test "gpu docker: the real Docker Engine gets the same devices, mounts and env" {
	command -v dockerd >/dev/null || skip "docker.io is not installed"
	if [ ! -S "$GT/dockerd/docker.sock" ]; then
		"$FIX/dockerd.sh" start "$GT/dockerd" >/dev/null || skip "dockerd does not start here"
	fi
	. "$GT/dockerd/env"
	run envpin run --engine docker --gpus all "$D" -- sh -c "$PROBE"
	echo "$output"
	check_gpu
	# loaded under the config digest (Docker's image ID)
	cfg=$(envpin inspect --json "$D" | jq -r .config_digest)
	docker image inspect "$cfg" >/dev/null
	run envpin run --engine docker --gpus none "$D" -- sh -c "$PROBE"
	echo "$output"
	check_none
	run envpin run --engine docker "$D" -- sh -c 'exit 7'
	[ "$status" -eq 7 ]
	[ -z "$(docker ps -aq)" ]
}
