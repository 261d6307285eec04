#!/usr/bin/env bats
# Rootless native run (docs/rootless.md): a user made here with useradd (no
# sudo, root dropped with runuser) builds a busybox image into the per-user
# store (~/.local/share/envpin) and runs it with the native engine that
# `auto` picks, in a user namespace: the caller is root inside (or itself
# with --user), the overlay is the kernel's with userxattr (or a copy),
# workspace files are the user's, and with the fake GPU tree the device
# nodes and driver libraries are bind-mounted, the caller's supplementary
# groups kept.

load helpers
bats_require_minimum_version 1.5.0

U800=envpin800
G800=envpin800gpu

setup_file() {
	export FIX="$TOP/tests/fixtures"
	[ "$(id -u)" = 0 ] || return 0
	command -v useradd >/dev/null && command -v runuser >/dev/null || return 0
	export RT=$(mktemp -d /tmp/ep800.XXXXXX)
	chmod 755 "$RT"
	getent group "$G800" >/dev/null || groupadd "$G800"
	id "$U800" >/dev/null 2>&1 || useradd -M -d "$RT/home" -s /bin/sh -G "$G800" "$U800"
	mkdir -p "$RT/home" "$RT/src"
	"$FIX/busybox-rootfs.sh" "$RT/src/base.tar"
	cat >"$RT/src/m.json" <<-JSON
	{ "envpin": 1, "name": "rootless", "source_date_epoch": 1767225600,
	  "base": { "rootfs": "base.tar", "sha256": "$(sha256sum "$RT/src/base.tar" | cut -d' ' -f1)" },
	  "config": { "env": { "GREETING": "hi" }, "cmd": [ "/bin/sh" ] } }
	JSON
	chown -R "$U800:$U800" "$RT/home" "$RT/src"
	"$FIX/fake-nvidia.sh" "$RT/host" >/dev/null 2>&1 || echo fail >"$RT/nofake"
}
teardown_file() {
	# a fuse test killed before its teardown: /dev/fuse gets its mode back
	if [ -s "${RT:-/nonexistent}/fuse-mode" ]; then chmod "$(cat "$RT/fuse-mode")" /dev/fuse; fi
	[ -z "${RT:-}" ] || rm -rf "$RT"
	if id "$U800" >/dev/null 2>&1; then userdel "$U800"; fi
	if getent group "$G800" >/dev/null; then groupdel "$G800"; fi
}

setup() {
	[ "$(id -u)" = 0 ] || skip "needs root to create the user"
	[ -n "${RT:-}" ] || skip "useradd or runuser is missing"
	command -v runc >/dev/null || skip "runc is not installed"
	common_setup
	chmod 755 "$T"
	mkdir "$T/ws"
	chown "$U800:$U800" "$T/ws"
	if [ ! -s "$RT/digest" ]; then
		as_user build -q -f "$RT/src/m.json" >"$RT/digest"
	fi
	D=$(tail -n1 "$RT/digest")
}
teardown() {
	# a failed fuse test: its background run goes (the watchdog cleans up)
	local p
	if [ -n "${FUSE_BG:-}" ] && p=$(pgrep -u "$U800" -x runc); then
		kill -KILL $(ps -o ppid= -p "$p") || true
	fi
	if [ -s "$RT/fuse-mode" ]; then
		chmod "$(cat "$RT/fuse-mode")" /dev/fuse
		rm -f "$RT/fuse-mode"
	fi
	common_teardown
}

# envpin as the user, its store the default one under its HOME
as_user() {
	(cd "${WS:-$T/ws}" && runuser -u "$U800" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		HOME="$RT/home" ENVPIN_PROGRESS=0 ${EXTRA_ENV:-} "$ENVPIN" "$@")
}

@test "rootless: build into ~/.local/share/envpin, run picks native, caller is root inside" {
	[ -f "$RT/home/.local/share/envpin/index.json" ]
	[ "$(stat -c %U "$RT/home/.local/share/envpin")" = "$U800" ]
	run as_user run "$D" -- sh -c 'id -u; cat /proc/self/uid_map; grep " / " /proc/mounts; echo "greet=$GREETING"'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = 0 ]
	# the single mapping: only the caller's uid, as 0
	echo "$output" | grep -Eq "^ *0 +$(id -u "$U800") +1$"
	[[ "$output" == *"overlay / overlay"*userxattr* ]]
	[[ "$output" == *"greet=hi"* ]]
	# nothing of the run is left in the store
	[ -z "$(ls -A "$RT/home/.local/share/envpin/run" | grep -v '^runc$')" ]
}

@test "rootless: the workspace file the container writes is the user's" {
	run as_user run "$D" -- sh -c 'echo data >/workspace/out.txt; mkdir /workspace/d; touch /workspace/d/f'
	[ "$status" -eq 0 ]
	[ "$(stat -c %U:%G "$T/ws/out.txt")" = "$U800:$U800" ]
	[ "$(stat -c %U "$T/ws/d/f")" = "$U800" ]
	[ "$(cat "$T/ws/out.txt")" = data ]
}

@test "rootless: --user UID:GID maps the caller to that id (subuid range for the rest)" {
	grep -q "^$U800:" /etc/subuid || skip "useradd gave the user no subuid range"
	command -v newuidmap >/dev/null || skip "uidmap is not installed"
	run as_user run --user 1234:1234 "$D" -- sh -c 'id -u; id -g; echo x >/workspace/mine'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = 1234 ]
	[ "${lines[1]}" = 1234 ]
	[ "$(stat -c %U "$T/ws/mine")" = "$U800" ]
}

@test "rootless: without a subuid range, --user names the missing range" {
	# only this user's line goes and comes back (other tests may add theirs)
	local line
	line=$(grep "^$U800:" /etc/subuid)
	sed -i "/^$U800:/d" /etc/subuid
	run as_user run --user 1234 "$D" -- true
	grep -q "^$U800:" /etc/subuid || echo "$line" >>/etc/subuid
	echo "$output"
	[ "$status" -eq 125 ]
	[[ "$output" == *"/etc/subuid"* ]]
}

@test "rootless: the flattened copy works where no overlay does" {
	EXTRA_ENV="ENVPIN_ROOTLESS_OVERLAY=copy" run as_user run "$D" -- sh -c 'grep -c " / overlay" /proc/mounts; echo c >/workspace/c'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = 0 ]
	[ "$(stat -c %U "$T/ws/c")" = "$U800" ]
}

@test "rootless gpu: fake /dev/nvidia* and libcuda bind-mounted, group access kept" {
	[ ! -e "$RT/nofake" ] || skip "fake-nvidia.sh could not build the tree"
	# the nodes only the GPU group may open, as many sites set them
	chgrp "$G800" "$RT/host/dev/nvidia0" "$RT/host/dev/nvidiactl"
	chmod 0660 "$RT/host/dev/nvidia0" "$RT/host/dev/nvidiactl"
	# opening a fake node with access gives ENXIO (no driver), without EACCES
	# (one stream inside, so the count stays the last line: stderr and stdout
	# reach the test through different pipes, in no fixed order)
	PROBE='exec 2>&1; stat -c "%F %t:%T" /dev/nvidia0; head -c1 /dev/nvidia0; head -c1 /dev/nvidiactl;
		f=$(readlink -f /usr/lib/x86_64-linux-gnu/libcuda.so.1 2>/dev/null || readlink -f /usr/lib64/libcuda.so.1); echo "cuda:${f##*/}";
		nvidia-smi | grep -o "Driver Version: [0-9.]*"; echo "vis=$NVIDIA_VISIBLE_DEVICES";
		grep -c " /dev/nvidia" /proc/mounts'
	EXTRA_ENV="ENVPIN_HOST_ROOT=$RT/host" run as_user run --gpus all "$D" -- sh -c "$PROBE"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"character special file c3:0"* ]]
	[[ "$output" == *"/dev/nvidia0: No such device or address"* ]]
	[[ "$output" == *"/dev/nvidiactl: No such device or address"* ]]
	[[ "$output" != *"Permission denied"* ]]
	[[ "$output" == *"cuda:libcuda.so.550.54.15"* ]]
	[[ "$output" == *"Driver Version: 550.54.15"* ]]
	[[ "$output" == *"vis=all"* ]]
	# the nodes are bind mounts of the host's (no mknod, no device cgroup)
	[ "${lines[-1]}" -ge 4 ]
	# and without the group, the same run cannot open them
	gpasswd -d "$U800" "$G800" >/dev/null
	EXTRA_ENV="ENVPIN_HOST_ROOT=$RT/host" run as_user run --gpus all "$D" -- sh -c "$PROBE"
	usermod -aG "$G800" "$U800"
	[[ "$output" == *"/dev/nvidia0: Permission denied"* ]]
}

@test "rootless: pull from a loopback registry into the user's store, then run it" {
	command -v docker-registry >/dev/null || skip "docker-registry is not installed"
	local addr
	addr=$("$FIX/registry.sh" start "$T/reg") || skip "the registry fixture did not start"
	# the lab builds the same manifest as root: the same digest (reproducible)
	cp "$RT/src/m.json" "$RT/src/base.tar" "$T/"
	run -0 envpin --store "$T/rootstore" build -q -f "$T/m.json"
	[ "${lines[-1]}" = "$D" ]
	run envpin --store "$T/rootstore" push "$D" "$addr/lab/rootless:v1"
	echo "$output"
	[ "$status" -eq 0 ]
	# a fresh user store: the pull is all the user has
	WS=$T/ws EXTRA_ENV="ENVPIN_STORE=$T/ws/pulled" run as_user pull "$addr/lab/rootless@$D"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(stat -c %U "$T/ws/pulled")" = "$U800" ]
	EXTRA_ENV="ENVPIN_STORE=$T/ws/pulled" run as_user run "$D" -- sh -c 'echo pulled >/workspace/p'
	"$FIX/registry.sh" stop "$T/reg" || true
	[ "$status" -eq 0 ]
	[ "$(stat -c %U "$T/ws/p")" = "$U800" ]
}

# live_fuse: the user's fuse-overlayfs daemons that have not exited (an
# exited one stays a zombie until init reaps it)
live_fuse() {
	ps -u "$U800" -o stat=,comm= | grep -v '^Z' | grep -c fuse-overlayfs || true
}
# gone_within N: waits up to N tenths of a second for the user's runs to be
# gone (no live process of the user, no bundle left in the store's run/)
gone_within() {
	local i
	for ((i = 0; i < $1; i++)); do
		if [ -z "$(ps -u "$U800" -o stat= | grep -v '^Z')" ] &&
			[ -z "$(ls -A "$RT/home/.local/share/envpin/run" | grep -v '^runc$')" ]; then
			return 0
		fi
		sleep 0.1
	done
	ps -u "$U800" -o pid,stat,args
	ls -A "$RT/home/.local/share/envpin/run"
	return 1
}

@test "rootless fuse-overlayfs: whiteouts and opaque dirs of the user's store, writes in the upper dir, nothing left after exit or kill" {
	command -v fuse-overlayfs >/dev/null || skip "fuse-overlayfs is not installed"
	[ -c /dev/fuse ] || skip "no /dev/fuse"
	local store=$RT/home/.local/share/envpin listing kernel
	# layer 2 deletes a file (whiteout) and replaces a directory (opaque);
	# run steps need root, so root builds it and the user's manifest takes
	# it as an OCI base: the user's store unpacks the layers itself
	cat >"$T/m.json" <<-JSON
	{ "envpin": 1, "name": "wh", "source_date_epoch": 1767225600,
	  "base": { "rootfs": "$RT/src/base.tar", "sha256": "$(sha256sum "$RT/src/base.tar" | cut -d' ' -f1)" },
	  "layers": [
	    { "run": [ "sh", "-c", "mkdir -p /opt/d/sub && echo old >/opt/d/old && echo o >/opt/d/sub/x && echo gone >/etc/gone && echo keep >/etc/keep" ] },
	    { "run": [ "sh", "-c", "rm /etc/gone && rm -rf /opt/d && mkdir /opt/d && echo new >/opt/d/new" ] } ],
	  "config": { "cmd": [ "/bin/sh" ] } }
	JSON
	run -0 envpin --store "$T/rootstore" build -q -f "$T/m.json"
	local dw=${lines[-1]}
	chmod -R a+rX "$T/rootstore"
	cat >"$T/ws/u.json" <<-JSON
	{ "envpin": 1, "name": "whu", "source_date_epoch": 1767225600,
	  "base": { "oci": "$T/rootstore", "digest": "$dw" }, "config": { "cmd": [ "/bin/sh" ] } }
	JSON
	run -0 as_user build -q -f "$T/ws/u.json"
	[ "${lines[-1]}" = "$dw" ]

	# /dev/fuse opened to the user for this test (teardown restores it)
	stat -c %a /dev/fuse >"$RT/fuse-mode"
	chmod 0666 /dev/fuse
	listing='ls -a /etc /opt/d; cat /opt/d/new; grep -c "^keep" /etc/keep'
	EXTRA_ENV="ENVPIN_ROOTLESS_OVERLAY=kernel" run -0 as_user run "$dw" -- sh -c "$listing"
	kernel=$output
	# the layers unpacked by the user: the whiteout is a 0/0 char device
	[ -n "$(find "$store/rootfs" -path '*/etc/gone' -type c)" ]
	EXTRA_ENV="ENVPIN_ROOTLESS_OVERLAY=fuse" run as_user run "$dw" -- sh -c \
		"grep ' / ' /proc/mounts; $listing; echo w >/etc/written; echo ws >/workspace/f"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "fuse-overlayfs / fuse.fuse-overlayfs "*nosuid* ]]
	# the same tree as the kernel's overlay: no gone, only new in /opt/d
	[ "${output#*$'\n'}" = "$kernel" ]
	[[ "$output" != *gone* ]]
	[[ "$output" == *$'/opt/d:\n.\n..\nnew\nnew'* ]]
	[ "$(stat -c %U "$T/ws/f")" = "$U800" ]
	gone_within 30
	[ "$(live_fuse)" = 0 ]

	# killed: the watchdog unmounts, the daemon ends with its connection
	FUSE_BG=1
	(EXTRA_ENV="ENVPIN_ROOTLESS_OVERLAY=fuse" as_user run "$dw" -- sh -c \
		'echo w >/etc/written; echo up >/workspace/up; sleep 30' >"$T/bg.out" 2>&1 3>&- &)
	local i
	for ((i = 0; i < 100; i++)); do [ -s "$T/ws/up" ] && break; sleep 0.1; done
	cat "$T/bg.out"
	[ -s "$T/ws/up" ]
	[ "$(live_fuse)" = 1 ]
	# the write is in the bundle's upper dir, not in the store's layers
	ls "$store"/run/*/upper/etc/written
	[ -z "$(find "$store/rootfs" -name written)" ]
	# envpin itself: runc's parent (its watchdog has the same name)
	kill -KILL "$(ps -o ppid= -p "$(pgrep -u "$U800" -x runc)")"
	gone_within 50
	[ "$(live_fuse)" = 0 ]
	# the mounts went with the namespace: none is left anywhere
	[ -z "$(findmnt -rn -t fuse.fuse-overlayfs)" ]

	# not usable: a forced fuse says so and names the ways out
	chmod 0600 /dev/fuse
	EXTRA_ENV="ENVPIN_ROOTLESS_OVERLAY=fuse" run as_user run "$dw" -- true
	echo "$output"
	[ "$status" -eq 125 ]
	[[ "$output" == *"/dev/fuse is not readable and writable by you (mode 0600): chmod 0666 /dev/fuse (as root), or ENVPIN_ROOTLESS_OVERLAY=copy"* ]]
}
