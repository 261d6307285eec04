#!/usr/bin/env bats
# envpin run --detach and the commands that manage detached containers
# (ps, logs, attach, stop, rm), native engine, busybox image: the record in
# the store, the supervisor that outlives the terminal, exit statuses, and
# nothing left behind (bundle, runc state, mounts, processes).

load helpers
bats_require_minimum_version 1.5.0

setup_file() {
	native_setup_file ep485 DT || return 0
	cat >"$DT/m.json" <<-JSON
	{ "envpin": 1, "name": "detach", "source_date_epoch": 1767225600,
	  "base": { "rootfs": "base.tar", "sha256": "$(sha256sum "$DT/base.tar" | cut -d' ' -f1)" },
	  "config": { "cmd": [ "sh" ] } }
	JSON
	ENVPIN_STORE="$DT/store" "${ENVPIN:-$TOP/envpin}" build -q -f "$DT/m.json" >"$DT/digest"
}
teardown_file() {
	[ -z "${DT:-}" ] && return 0
	[ ! -d "$DT/dockerd" ] || "$TOP/tests/fixtures/dockerd.sh" stop "$DT/dockerd" || true
	rm -rf "$DT"
}

setup() {
	[ "$(id -u)" = 0 ] || skip "the native engine needs root"
	command -v runc >/dev/null || skip "runc is not installed"
	common_setup
	cp -a "$DT/store" "$T/store"
	export ENVPIN_HOST_ROOT="$T/nohost"
	D=$(tail -1 "$DT/digest")
	mkdir -p "$T/ws" && cd "$T/ws"
}
teardown() {
	# stop whatever a failed test left running
	local n
	for n in $("$ENVPIN" ps --all --json 2>/dev/null | jq -r '.[].name'); do
		"$ENVPIN" rm -f "$n" >/dev/null 2>&1 || true
	done
	common_teardown
}

# status NAME: the container's status in ps --all --json
status_of() { envpin ps --all --json | jq -r --arg n "$1" '.[] | select(.name == $n) | .status'; }

# wait_status NAME STATUS [SECONDS]
wait_status() {
	local i
	for ((i = 0; i < ${3:-10} * 10; i++)); do
		[ "$(status_of "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	echo "$1 is $(status_of "$1"), not $2" >&2
	return 1
}

# wait_log NAME ERE [SECONDS]: until the log of NAME has a line matching ERE
wait_log() {
	local i
	for ((i = 0; i < ${3:-10} * 10; i++)); do
		envpin logs "$1" 2>/dev/null | grep -E "$2" >/dev/null && return 0
		sleep 0.1
	done
	echo "no line /$2/ in the log of $1" >&2
	return 1
}

# at_log_end PID LOG: PID has LOG open with its offset at LOG's end (attach
# seeks there, then reads with pread)
at_log_end() {
	local fd want size
	want=$(readlink -f "$2")
	size=$(stat -c %s "$2")
	for fd in /proc/"$1"/fd/*; do
		[ "$(readlink "$fd" 2>/dev/null)" = "$want" ] || continue
		[ "$(sed -n 's/^pos:[[:space:]]*//p' "/proc/$1/fdinfo/${fd##*/}" 2>/dev/null)" = "$size" ] && return 0
	done
	return 1
}

# nothing of a run is left in the store, in the mount table, in runc's state
assert_no_run_left() {
	[ -z "$(ls -A "$ENVPIN_STORE/run" | grep -v '^runc$')" ]
	[ -z "$(ls -A "$ENVPIN_STORE/run/runc")" ]
	if grep "$ENVPIN_STORE" /proc/self/mountinfo; then echo "mounts of the store are left"; false; fi
}

@test "run -d: prints the name, ps shows it running, logs and logs -f, stop, ps --all, rm" {
	run envpin run -d --gpus none "$D" -- sh -c 'echo started; i=0; while :; do echo tick $i; i=$((i + 1)); sleep 0.2; done'
	[ "$status" -eq 0 ]
	N=$output
	[[ "$N" =~ ^envpin-[0-9a-f]{12}$ ]]
	run envpin ps
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == NAME*STATUS* ]]
	[[ "${lines[1]}" == "$N "*"Up "* ]]
	[ "$(envpin ps --json | jq -r '.[0].status')" = running ]
	[ "$(envpin ps --json | jq -r '.[0].engine')" = native ]
	[ "$(envpin ps --json | jq -r '.[0].digest')" = "$D" ]
	wait_log "$N" '^tick 3$'
	run envpin logs "$N"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = started ]
	[ "${lines[1]}" = "tick 0" ]
	# logs -f follows until the container ends: stop it from the side
	"$ENVPIN" logs -f "$N" >"$T/follow" &
	F=$!
	# it has printed what was there, so it follows when the container ends
	for ((i = 0; i < 100; i++)); do grep -q '^tick 3$' "$T/follow" && break; sleep 0.1; done
	run envpin stop -t 1 "$N"
	[ "$status" -eq 0 ]
	[ "$output" = "$N" ]
	wait "$F"
	grep -q '^tick 3$' "$T/follow"
	# sh as process 1 ignores SIGTERM: SIGKILL after the timeout
	[ "$(status_of "$N")" = exited ]
	[ "$(envpin ps --all --json | jq '.[0].exit_code')" = 137 ]
	run envpin ps
	[ "${#lines[@]}" -eq 1 ]
	run envpin ps --all
	[[ "${lines[1]}" == "$N "*"Exited (137)"* ]]
	assert_no_run_left
	run envpin rm "$N"
	[ "$status" -eq 0 ]
	[ ! -e "$ENVPIN_STORE/containers/$N" ]
	[ "$(envpin ps --all --json)" = "[]" ]
}

@test "run -d: the exit status is recorded; a process 1 that handles SIGTERM stops at once" {
	run envpin run -d --name three --gpus none "$D" -- sh -c 'echo bye; exit 3'
	[ "$status" -eq 0 ]
	[ "$output" = three ]
	wait_status three exited
	[ "$(envpin ps --all --json | jq '.[] | select(.name == "three") | .exit_code')" = 3 ]
	[ "$(envpin logs three)" = bye ]
	run envpin run -d --name three --gpus none "$D" -- true
	[ "$status" -eq 125 ]
	[[ "$output" == *"a container named 'three' exists"* ]]
	# the container says when its trap is set: a file in the workspace
	envpin run -d --name term --gpus none "$D" -- sh -c 'trap "echo got TERM; exit 0" TERM; touch trap-set; while :; do sleep 0.1; done'
	wait_status term running
	for ((i = 0; i < 100; i++)); do [ -e trap-set ] && break; sleep 0.1; done
	[ -e trap-set ]
	# at once: long before the SIGKILL that -t 30 would send
	start=$(date +%s%N)
	envpin stop -t 30 term
	[ $((($(date +%s%N) - start) / 1000000)) -lt 15000 ]
	[ "$(status_of term)" = exited ]
	[ "$(envpin ps --all --json | jq '.[] | select(.name == "term") | .exit_code')" = 0 ]
	[ "$(envpin logs term)" = "got TERM" ]
	assert_no_run_left
}

@test "run -d: the container outlives the terminal session that started it" {
	# a session of its own, as a terminal's shell is; then hang it up and kill it
	setsid bash -c "'$ENVPIN' run -d --name survivor --gpus none '$D' -- sleep 300 >'$T/name'; sleep 300" &
	S=$!
	for ((i = 0; i < 100; i++)); do [ -s "$T/name" ] && break; sleep 0.1; done
	[ "$(cat "$T/name")" = survivor ]
	sid=$(ps -o sid= -p "$S" | tr -d ' ')
	kill -HUP -- "-$sid" 2>/dev/null || true
	kill -KILL -- "-$sid" 2>/dev/null || true
	sleep 0.5
	[ "$(status_of survivor)" = running ]
	# the supervisor is in another session
	pid=$(jq -r .pid "$ENVPIN_STORE/containers/survivor/state.json")
	[ "$(ps -o sid= -p "$pid" | tr -d ' ')" != "$sid" ]
	run envpin rm survivor
	[ "$status" -eq 2 ]
	[[ "$output" == *"is running"* ]]
	run envpin rm -f survivor
	[ "$status" -eq 0 ]
	[ ! -e "$ENVPIN_STORE/containers/survivor" ]
	assert_no_run_left
}

@test "attach follows a running container's output from now on; a killed supervisor shows as dead" {
	# "early" is in the log before attach starts; the container goes on
	# (the file go in the workspace) once attach sits at the log's end
	envpin run -d --name att --gpus none "$D" -- sh -c 'echo early; while [ ! -e go ]; do sleep 0.1; done; echo late-1; echo late-2; sleep 1; exit 4'
	wait_log att '^early$'
	"$ENVPIN" attach att >"$T/attach.out" 2>&1 &
	A=$!
	for ((i = 0; i < 100; i++)); do at_log_end "$A" "$ENVPIN_STORE/containers/att/log" && break; sleep 0.1; done
	at_log_end "$A" "$ENVPIN_STORE/containers/att/log"
	touch go
	status=0
	wait "$A" || status=$?
	output=$(cat "$T/attach.out")
	[ "$status" -eq 0 ]
	[[ "$output" != *early* ]]
	[[ "$output" == *"late-1"*"late-2"* ]]
	[ "$(status_of att)" = exited ]
	run envpin attach att
	[ "$status" -eq 1 ]
	[[ "$output" == *"not running"* ]]
	envpin run -d --name victim --gpus none "$D" -- sleep 300
	wait_status victim running
	pid=$(jq -r .pid "$ENVPIN_STORE/containers/victim/state.json")
	kill -KILL "$pid"
	wait_status victim dead
	# the watchdog cleans up after the dead supervisor
	for ((i = 0; i < 100; i++)); do [ -z "$(ls -A "$ENVPIN_STORE/run" | grep -v '^runc$')" ] && break; sleep 0.1; done
	assert_no_run_left
	run envpin ps --all
	[[ "$output" == *"victim"*"Dead"* ]]
}

@test "ps/logs/stop/rm: --help, unknown names, bad options" {
	for c in ps logs attach stop rm; do
		run envpin "$c" --help
		[ "$status" -eq 0 ]
		[[ "$output" == "usage: envpin $c"* ]]
	done
	run envpin logs nosuch
	[ "$status" -eq 2 ]
	[[ "$output" == *"no container named 'nosuch'"* ]]
	run envpin stop ../etc
	[ "$status" -eq 2 ]
	run envpin stop -t x nosuch
	[ "$status" -eq 2 ]
	run envpin ps extra
	[ "$status" -eq 2 ]
	[ "$(envpin ps --all --json)" = "[]" ]
}

@test "run -d --engine docker: recorded, ps asks docker, logs, stop, rm removes docker's container" {
	command -v docker >/dev/null || skip "docker is not installed"
	"$TOP/tests/fixtures/dockerd.sh" start "$DT/dockerd" >/dev/null || skip "dockerd does not start here"
	. "$DT/dockerd/env"
	export DOCKER_HOST DOCKER_API_VERSION
	run envpin run -d --engine docker --gpus none "$D" -- sh -c 'echo hello-docker; sleep 300'
	[ "$status" -eq 0 ]
	N=$output
	[ "$(envpin ps --json | jq -r '.[0].engine + " " + .[0].status')" = "docker running" ]
	[ "$(docker inspect --format '{{.State.Running}}' "$N")" = true ]
	for ((i = 0; i < 50; i++)); do [ -n "$(envpin logs "$N")" ] && break; sleep 0.1; done
	[ "$(envpin logs "$N")" = hello-docker ]
	run envpin stop -t 1 "$N"
	[ "$status" -eq 0 ]
	[ "$(envpin ps --all --json | jq -r '.[0].status')" = exited ]
	[ "$(envpin ps --all --json | jq '.[0].exit_code')" = 137 ]
	run envpin rm "$N"
	[ "$status" -eq 0 ]
	[ -z "$(docker ps -aq)" ]
	[ "$(envpin ps --all --json)" = "[]" ]
}
