#!/usr/bin/env bats
# Engine auto as a user without root and without access to the Docker
# socket (a user made with useradd, no sudo): envpin must not pick docker
# (whose raw error and a failed 'docker load' were all such a user got), it
# takes podman when there is one, and otherwise names the ways out.  Fake
# docker and podman on PATH record whether they were called.

load helpers
bats_require_minimum_version 1.5.0

USER460=envpin460

setup_file() {
	export FIX="$TOP/tests/fixtures"
	[ "$(id -u)" = 0 ] || return 0
	command -v useradd >/dev/null && command -v runuser >/dev/null || return 0
	id "$USER460" >/dev/null 2>&1 || useradd -M -d /nonexistent -s /bin/sh "$USER460"
	export ET=$(mktemp -d /tmp/ep460.XXXXXX)
	chmod 755 "$ET"
	"$FIX/busybox-rootfs.sh" "$ET/base.tar"
	cat >"$ET/m.json" <<-JSON
	{ "envpin": 1, "name": "enginetest", "source_date_epoch": 1767225600,
	  "base": { "rootfs": "base.tar", "sha256": "$(sha256sum "$ET/base.tar" | cut -d' ' -f1)" } }
	JSON
	ENVPIN_STORE="$ET/store" "${ENVPIN:-$TOP/envpin}" build -q -f "$ET/m.json" >"$ET/digest"
	chown -R "$USER460" "$ET/store"
}
teardown_file() {
	[ -z "${ET:-}" ] || rm -rf "$ET"
	if id "$USER460" >/dev/null 2>&1; then userdel "$USER460"; fi
}

setup() {
	[ "$(id -u)" = 0 ] || skip "needs root to create the user"
	[ -n "${ET:-}" ] || skip "useradd or runuser is missing"
	common_setup
	chmod 755 "$T"
	D=$(cat "$ET/digest")
	mkdir -p "$T/bin"
	# a Docker socket only root may use
	python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/docker.sock"
	chmod 600 "$T/docker.sock"
	printf '#!/bin/sh\necho "fake docker $*" >>%s/calls\nexit 99\n' "$T" >"$T/bin/docker"
	chmod 755 "$T/bin/docker"
	: >"$T/calls"
	chown "$USER460" "$T/calls"
}
teardown() { common_teardown; }

# envpin as the unprivileged user, with only the fake engines on PATH
as_user() {
	runuser -u "$USER460" -- env -i PATH="$T/bin" ENVPIN_STORE="$ET/store" \
		DOCKER_HOST="unix://$T/docker.sock" ENVPIN_HOST_ROOT="$T/nohost" "$ENVPIN" "$@"
}

@test "engine auto without access to the Docker socket: no docker, the ways out named" {
	cd "$T"
	run as_user run "$D" -- true
	echo "$output"
	[ "$status" -eq 125 ]
	[[ "$output" == *"cannot reach the Docker daemon at '$T/docker.sock': Permission denied"* ]]
	[[ "$output" == *"as root for the native engine"* ]]
	[[ "$output" == *"'docker' group"* ]]
	[[ "$output" == *"podman"* ]]
	[[ "$output" != *"docker load"* ]]
	[ ! -s "$T/calls" ]
	# --engine docker says the same instead of docker's raw error
	run as_user run --engine docker "$D" -- true
	echo "$output"
	[ "$status" -eq 125 ]
	[[ "$output" == *"cannot reach the Docker daemon"*"'docker' group"* ]]
	[ ! -s "$T/calls" ]
}

@test "engine auto without access to the Docker socket takes podman when it is there" {
	cd "$T"
	printf '#!/bin/sh\necho "fake podman $*" >>%s/calls\nexit 0\n' "$T" >"$T/bin/podman"
	chmod 755 "$T/bin/podman"
	run as_user run "$D" -- true
	echo "$output"
	[ "$status" -eq 0 ]
	grep -q '^fake podman run ' "$T/calls"
	run ! grep -q 'fake docker' "$T/calls"
}

@test "engine auto with access to the socket still takes docker" {
	cd "$T"
	chown "$USER460" "$T/docker.sock"
	run as_user run "$D" -- true
	echo "$output"
	grep -q '^fake docker image inspect ' "$T/calls"
}
