#!/usr/bin/env bats
# envpin doctor (docs/rootless.md): one line per precondition with its fix,
# as a user made here with useradd.  Each removed precondition is named:
# the user's subuid entry, user namespaces (user.max_user_namespaces=0, in a
# namespace of the test's own: tests/fixtures/userns-off.py), the GPU group's access to /dev/nvidia*, nvidia_uvm, a
# CDI spec left from an older driver (fake trees under ENVPIN_HOST_ROOT).
# A failed rootless start prints the failed preconditions too.

load helpers
bats_require_minimum_version 1.5.0

U810=envpin810

setup_file() {
	export FIX="$TOP/tests/fixtures"
	[ "$(id -u)" = 0 ] || return 0
	command -v useradd >/dev/null && command -v runuser >/dev/null || return 0
	export DT=$(mktemp -d /tmp/ep810.XXXXXX)
	chmod 755 "$DT"
	id "$U810" >/dev/null 2>&1 || useradd -M -d "$DT/home" -s /bin/sh "$U810"
	mkdir -p "$DT/home"
	"$FIX/busybox-rootfs.sh" "$DT/home/base.tar"
	printf '{ "envpin": 1, "name": "doc", "source_date_epoch": 1767225600, "base": { "rootfs": "base.tar", "sha256": "%s" } }' \
		"$(sha256sum "$DT/home/base.tar" | cut -d' ' -f1)" >"$DT/home/m.json"
	chown -R "$U810" "$DT/home"
	(cd "$DT/home" && runuser -u "$U810" -- env -i PATH=/usr/bin:/bin HOME="$DT/home" "${ENVPIN:-$TOP/envpin}" build -q -f m.json) >"$DT/digest"
	"$FIX/fake-nvidia.sh" "$DT/gpu" --cdi >/dev/null 2>&1 || echo fail >"$DT/nofake"
	"$FIX/fake-nvidia.sh" "$DT/nouvm" --no-uvm >/dev/null 2>&1 || echo fail >"$DT/nofake"
}
teardown_file() {
	[ -z "${DT:-}" ] && return 0
	rm -rf "$DT"
	if id "$U810" >/dev/null 2>&1; then userdel "$U810"; fi
}

setup() {
	[ "$(id -u)" = 0 ] || skip "needs root to create the user"
	[ -n "${DT:-}" ] || skip "useradd or runuser is missing"
	common_setup
	chmod 755 "$T"
}
teardown() { common_teardown; }

as_user() {
	(cd "$DT/home" && runuser -u "$U810" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		HOME="$DT/home" ENVPIN_PROGRESS=0 ${EXTRA_ENV:-} "$ENVPIN" "$@")
}

@test "doctor: every line named, --json for scripts, exit 0 on a machine that can run" {
	EXTRA_ENV="ENVPIN_HOST_ROOT=$T/none" run as_user doctor
	echo "$output"
	[ "$status" -eq 0 ]
	for n in userns subuid subgid uidmap overlay runtime nvidia-driver store; do
		[[ "$output" == *" $n "* ]]
	done
	[[ "$output" == *"ok    overlay       kernel overlayfs in a user namespace (userxattr) works"* ]]
	[[ "$output" == *"CVE-2024-21626 fixed"* ]]
	EXTRA_ENV="ENVPIN_HOST_ROOT=$T/none" run as_user doctor --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r .result)" != fail ]
	[ "$(echo "$output" | jq -r '.checks[] | select(.name == "userns") | .status')" = ok ]
	[ "$(echo "$output" | jq -r '.checks[] | select(.name == "nvidia-driver") | .status')" = skip ]
	run envpin doctor --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"apparmor_restrict_unprivileged_userns"* ]]
}

@test "doctor: a deleted subuid entry is named, with the usermod fix" {
	grep -q "^$U810:" /etc/subuid || skip "useradd gave the user no subuid range"
	# only this user's line goes and comes back (other tests may add theirs)
	local line
	line=$(grep "^$U810:" /etc/subuid)
	sed -i "/^$U810:/d" /etc/subuid
	run as_user doctor --json --quick
	grep -q "^$U810:" /etc/subuid || echo "$line" >>/etc/subuid
	echo "$output"
	[ "$(echo "$output" | jq -r '.checks[] | select(.name == "subuid") | .status')" = warn ]
	[ "$(echo "$output" | jq -r '.checks[] | select(.name == "subgid") | .status')" = ok ]
	[[ "$(echo "$output" | jq -r '.checks[] | select(.name == "subuid") | .fix')" == "usermod --add-subuids"*"$U810"* ]]
}

# The host's sysctl needs CAP_SYS_RESOURCE, which this machine's root lacks:
# userns-off.py sets user.max_user_namespaces=0 in a namespace of its own
# (ids mapped to themselves) and runs envpin there as the user; the kernel
# refuses every user namespace below it, exactly as on such a host.
as_user_nons() {
	(cd "$DT/home" && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$DT/home" ENVPIN_PROGRESS=0 \
		/usr/bin/python3 "$FIX/userns-off.py" "$(id -u "$U810")" "$ENVPIN" "$@")
}

@test "doctor: user namespaces off (user.max_user_namespaces=0) is a failure naming the sysctl; a rootless start says so" {
	run as_user_nons doctor --quick
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"fail  userns        user.max_user_namespaces is 0"* ]]
	[[ "$output" == *"fix: sysctl -w user.max_user_namespaces="* ]]
	run as_user_nons run --engine native "$(cat "$DT/digest")" -- true
	echo "$output"
	[ "$status" -eq 125 ]
	[[ "$output" == *"unshare a user namespace"*"user.max_user_namespaces"* ]]
	[[ "$output" == *"envpin doctor: FAIL userns: user.max_user_namespaces is 0"*"; fix: sysctl -w user.max_user_namespaces="* ]]
	# auto: not podman either (rootless podman needs user namespaces too);
	# the student gets the same named precondition
	run as_user_nons run "$(cat "$DT/digest")" -- true
	echo "$output"
	[ "$status" -eq 125 ]
	[[ "$output" != *"podman load"* ]]
	[[ "$output" == *"user namespaces are disabled"* || "$output" == *"unshare a user namespace"* ]]
	[[ "$output" == *"envpin doctor: FAIL userns: user.max_user_namespaces is 0"* ]]
	# and outside that namespace the same run starts
	run as_user run --engine native "$(cat "$DT/digest")" -- true
	[ "$status" -eq 0 ]
}

@test "doctor gpu: devices the user's groups cannot open, with the group to join" {
	[ ! -e "$DT/nofake" ] || skip "fake-nvidia.sh could not build the trees"
	EXTRA_ENV="ENVPIN_HOST_ROOT=$DT/gpu" run as_user doctor --quick
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ok    nvidia-driver NVIDIA driver 550.54.15"* ]]
	[[ "$output" == *"ok    devices"* ]]
	[[ "$output" == *"ok    nvidia-uvm"* ]]
	[[ "$output" == *"ok    cdi           CDI spec"*"matches driver 550.54.15"* ]]
	chgrp video "$DT/gpu/dev/nvidia1"
	chmod 0660 "$DT/gpu/dev/nvidia1"
	EXTRA_ENV="ENVPIN_HOST_ROOT=$DT/gpu" run as_user doctor --quick
	chmod 0666 "$DT/gpu/dev/nvidia1"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"fail  devices       not readable and writable by you: $DT/gpu/dev/nvidia1 (mode 0660, group video)"* ]]
	[[ "$output" == *"fix: usermod -aG video $U810"* ]]
}

@test "doctor gpu: nvidia_uvm missing, and a CDI spec older than the loaded driver" {
	[ ! -e "$DT/nofake" ] || skip "fake-nvidia.sh could not build the trees"
	EXTRA_ENV="ENVPIN_HOST_ROOT=$DT/nouvm" run as_user doctor --quick
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"fail  nvidia-uvm"* ]]
	[[ "$output" == *"modprobe nvidia_uvm"* ]]
	# the driver was updated, the CDI spec was not regenerated
	cp -a "$DT/gpu" "$T/upd"
	sed -i 's/550\.54\.15/555.42.02/' "$T/upd/proc/driver/nvidia/version"
	EXTRA_ENV="ENVPIN_HOST_ROOT=$T/upd" run as_user doctor --quick
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"fail  cdi           CDI spec"*"is stale: it names no library of the loaded driver 555.42.02"* ]]
	[[ "$output" == *"nvidia-ctk cdi generate"* ]]
}
