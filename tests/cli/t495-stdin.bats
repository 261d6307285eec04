#!/usr/bin/env bats
# envpin run and stdin, as docker: without -i (and without a terminal) the
# container's stdin is /dev/null, so a shell `while read` loop around
# `envpin run` keeps its input; -i forwards it; a terminal is interactive.
# Native engine, and docker (a private dockerd) when it starts here.

load helpers
bats_require_minimum_version 1.5.0

setup_file() {
	native_setup_file ep495 IT || return 0
	cat >"$IT/m.json" <<-JSON
	{ "envpin": 1, "name": "stdin", "source_date_epoch": 1767225600,
	  "base": { "rootfs": "base.tar", "sha256": "$(sha256sum "$IT/base.tar" | cut -d' ' -f1)" },
	  "config": { "cmd": [ "sh" ] } }
	JSON
	ENVPIN_STORE="$IT/store" "${ENVPIN:-$TOP/envpin}" build -q -f "$IT/m.json" >"$IT/digest"
}
teardown_file() {
	[ -z "${IT:-}" ] && return 0
	[ ! -d "$IT/dockerd" ] || "$TOP/tests/fixtures/dockerd.sh" stop "$IT/dockerd" || true
	rm -rf "$IT"
}

setup() {
	[ "$(id -u)" = 0 ] || skip "the native engine needs root"
	command -v runc >/dev/null || skip "runc is not installed"
	common_setup
	export ENVPIN_STORE="$IT/store" ENVPIN_HOST_ROOT="$T/nohost"
	D=$(tail -1 "$IT/digest")
	cd "$T"
}
teardown() { common_teardown; }

@test "stdin: a while-read loop around envpin run keeps its input; -i forwards stdin" {
	printf 'one\ntwo\nthree\n' >in
	# the container would swallow the loop's input if it read stdin
	while read -r x; do
		echo "line $x"
		"$ENVPIN" run --gpus none "$D" -- sh -c 'cat; echo "read: $(wc -c </dev/stdin)"' </dev/stdin
	done <in >out
	[ "$(grep -c '^line ' out)" -eq 3 ]
	[ "$(grep -c '^read: 0$' out)" -eq 3 ]
	run envpin run --gpus none "$D" -- sh -c 'cat; echo end' <in
	[ "$output" = end ]
	run envpin run -i --gpus none "$D" -- sh -c 'cat | tr a-z A-Z' <in
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = ONE ]
	[ "${lines[2]}" = THREE ]
	run envpin run --interactive --gpus none "$D" -- sh -c 'read a; read b; echo "$b-$a"' <in
	[ "$output" = two-one ]
}

@test "stdin: a terminal stays interactive without -i; --tty=no without -i gets /dev/null" {
	command -v script >/dev/null || skip "script (bsdutils) is not installed"
	run script -qec "printf 'typed\\n' | $ENVPIN run --tty=yes --gpus none $D -- sh -c 'read x; echo got-\$x'" /dev/null
	[[ "$output" == *got-typed* ]]
	run script -qec "$ENVPIN run --gpus none $D -- sh -c 'test -t 0 && echo TTY-YES'" /dev/null
	[[ "$output" == *TTY-YES* ]]
	run bash -c "printf 'x\\n' | '$ENVPIN' run --tty=no --gpus none '$D' -- sh -c 'cat; echo end'"
	[ "$output" = end ]
	# docker's -ti spelling
	run bash -c "printf 'y\\n' | script -qec \"'$ENVPIN' run -ti --gpus none '$D' -- sh -c 'read v; echo v=\\\$v'\" /dev/null"
	[[ "$output" == *v=* ]]
}

@test "stdin: docker engine, -i or not" {
	command -v docker >/dev/null || skip "docker is not installed"
	if [ ! -e "$IT/dockerd/env" ]; then
		"$TOP/tests/fixtures/dockerd.sh" start "$IT/dockerd" >/dev/null || skip "dockerd does not start here"
	fi
	. "$IT/dockerd/env"
	export DOCKER_HOST DOCKER_API_VERSION
	run bash -c "printf 'hi\\n' | '$ENVPIN' run --engine docker --gpus none '$D' -- sh -c 'cat; echo end'"
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = end ]
	[[ "$output" != *hi* ]]
	run bash -c "printf 'hi\\n' | '$ENVPIN' run -i --engine docker --gpus none '$D' -- sh -c 'cat; echo end'"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = hi ]
	[ "${lines[1]}" = end ]
}
