#!/usr/bin/env bats
# envpin run, native engine (runc + overlayfs bundle in the store): workspace,
# payload, env, exit status, error statuses, image-config hygiene, and no
# leftovers (mounts, bundles, runc state, processes) after exit or a kill.

load helpers
bats_require_minimum_version 1.5.0

setup_file() {
	native_setup_file ep430 RUNT || return 0
	mkdir -p "$RUNT/payload"
	printf '#!/bin/sh\necho "payload says $GREETING"\nexit ${1:-0}\n' >"$RUNT/payload/run.sh"
	chmod 755 "$RUNT/payload/run.sh"
	cat >"$RUNT/m.json" <<-JSON
	{ "envpin": 1, "name": "runtest", "source_date_epoch": 1767225600,
	  "base": { "rootfs": "base.tar", "sha256": "$(sha256sum "$RUNT/base.tar" | cut -d' ' -f1)" },
	  "layers": [ { "copy": [ { "src": "payload/", "dest": "/opt/p/" } ] } ],
	  "config": { "env": { "GREETING": "hello-from-manifest" }, "cmd": [ "/opt/p/run.sh" ] } }
	JSON
	export RUN_STORE="$RUNT/store"
	ENVPIN_STORE=$RUN_STORE "${ENVPIN:-$TOP/envpin}" build -q -f "$RUNT/m.json" >"$RUNT/digest"
}
teardown_file() { [ -z "${RUNT:-}" ] || rm -rf "$RUNT"; }

setup() {
	[ "$(id -u)" = 0 ] || skip "the native engine needs root"
	command -v runc >/dev/null || skip "runc is not installed"
	common_setup
	export ENVPIN_STORE=$RUN_STORE ENVPIN_HOST_ROOT="$T/nohost"
	D=$(cat "$RUNT/digest")
	mkdir -p "$T/ws" && cd "$T/ws"
}
teardown() { common_teardown; }

# (background runs call $ENVPIN itself: the envpin function would put a
# subshell between $! and envpin)
# nothing of a run is left: no bundle, no runc state, no mount, and none of
# the processes a background run had ($TREE: proc_ids recorded by the test)
assert_clean() {
	[ -z "$(ls -A "$ENVPIN_STORE/run" | grep -v '^runc$')" ]
	[ -z "$(ls -A "$ENVPIN_STORE/run/runc")" ]
	no_mounts
	procs_gone 5 ${TREE:-}
}

no_mounts() {
	if grep "$ENVPIN_STORE" /proc/self/mountinfo; then echo "mounts of the store are left"; false; fi
}

# start_bg CMD...: envpin run CMD... in the background; sets P (its pid).
start_bg() {
	"$ENVPIN" run "$D" -- "$@" &
	P=$!
}

@test "run: payload, manifest env, workspace both ways, exit status 0" {
	echo from-host >infile
	run envpin run --gpus none "$D"
	[ "$status" -eq 0 ]
	[ "$output" = "payload says hello-from-manifest" ]
	run envpin run "$D" -- sh -c 'pwd; cat infile; echo from-container >outfile'
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = /workspace ]
	[ "${lines[1]}" = from-host ]
	[ "$(cat outfile)" = from-container ]
	assert_clean
}

@test "run: exit code 7 comes back as 7; -e, -w, --user, -v" {
	run envpin run "$D" -- /opt/p/run.sh 7
	[ "$status" -eq 7 ]
	mkdir -p "$T/data" && echo vol >"$T/data/f"
	run envpin run -e GREETING=over -e EXTRA=1 -w /tmp --user nobody -v "$T/data:/data:ro" "$D" -- \
		sh -c 'echo $GREETING $EXTRA; pwd; id -u; cat /data/f; touch /data/g 2>/dev/null || echo ro'
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "over 1" ]
	[ "${lines[1]}" = /tmp ]
	[ "${lines[2]}" = 65534 ]
	[ "${lines[3]}" = vol ]
	[ "${lines[4]}" = ro ]
	assert_clean
}

@test "run: envpin's own failures are 125, 126, 127" {
	run -127 envpin run "$D" -- /no/such/cmd
	[ "$status" -eq 127 ]
	run -126 envpin run "$D" -- /etc/passwd
	[ "$status" -eq 126 ]
	run envpin run sha256:0000000000000000000000000000000000000000000000000000000000000000
	[ "$status" -eq 125 ]
	run envpin run -p 8080:80 "$D"
	[ "$status" -eq 125 ]
	[[ "$output" == *"host network"* ]]
	run envpin run -w /proc/self/fd/3 "$D" -- true
	[ "$status" -eq 125 ]
	[[ "$output" == *"inside /proc"* ]]
	run envpin run --name 'bad/name' "$D" -- true
	[ "$status" -eq 125 ]
	assert_clean
}

@test "run: secure defaults: no-new-privileges, docker caps, seccomp, masked /proc, rlimit <= hard" {
	run envpin run "$D" -- sh -c 'grep -E "^(NoNewPrivs|Seccomp|CapBnd):" /proc/self/status;
		echo nofile=$(ulimit -n); echo masked=$(cat /proc/timer_list /proc/keys 2>/dev/null | wc -c);
		touch /proc/sys/kernel/x 2>/dev/null || echo rofs'
	[ "$status" -eq 0 ]
	[[ "$output" == *"NoNewPrivs:	1"* ]]
	[[ "$output" == *"Seccomp:	2"* ]]
	[[ "$output" == *"CapBnd:	00000000a80425fb"* ]]
	[[ "$output" == *"masked=0"* ]]
	[[ "$output" == *rofs* ]]
	local n=$(printf '%s\n' "$output" | sed -n 's/^nofile=//p')
	[ "$n" -le "$(ulimit -Hn)" ]
	# unshare (user namespaces) and keyctl are refused by the seccomp deny-list
	run envpin run "$D" -- sh -c 'cat /proc/self/status >/dev/null; echo ok'
	[ "$output" = ok ]
}

@test "run: a container killed with SIGKILL leaves nothing" {
	start_bg sleep 61
	local c
	c=$(wait_tree_pid "$P" 'sleep 61')
	TREE=$(proc_ids "$P" $(descendants "$P"))
	kill -9 "$c"
	local st=0
	wait "$P" || st=$?
	[ "$st" -eq 137 ]
	assert_clean
}

@test "run: SIGKILL of envpin itself: the watchdog kills the container and cleans up" {
	start_bg sleep 61
	wait_tree_pid "$P" 'sleep 61'
	TREE=$(proc_ids $(descendants "$P"))
	[ -n "$TREE" ]
	kill -9 "$P"
	wait "$P" || true
	# the watchdog (in TREE) kills the container, removes the bundle, exits
	procs_gone 10 $TREE
	assert_clean
}

@test "run: SIGTERM is forwarded; a third one kills a process 1 that ignores it" {
	# the container says when its trap is set: a file in the workspace
	start_bg sh -c 'trap "exit 3" TERM; touch trap-set; sleep 60 & wait'
	local i
	for ((i = 0; i < 200; i++)); do [ -e trap-set ] && break; sleep 0.05; done
	[ -e trap-set ]
	kill -TERM "$P"
	local st=0
	wait "$P" || st=$?
	[ "$st" -eq 3 ]
	start_bg sleep 61
	wait_tree_pid "$P" 'sleep 61'
	TREE=$(proc_ids "$P" $(descendants "$P"))
	# each signal is taken by envpin's handler before the next is sent
	kill -TERM "$P"
	signal_taken "$P" TERM
	kill -TERM "$P"
	signal_taken "$P" TERM
	kill -INT "$P"
	st=0
	wait "$P" || st=$?
	[ "$st" -eq 137 ]
	assert_clean
}

@test "run: a TTY when stdin is a terminal" {
	command -v script >/dev/null || skip "script (bsdutils) is not installed"
	run script -qec "$ENVPIN run $D -- sh -c 'test -t 0 && echo TTY-YES; exit 5'" /dev/null
	[ "$status" -eq 5 ]
	[[ "$output" == *TTY-YES* ]]
	run envpin run "$D" -- sh -c 'test -t 0 && echo TTY-YES || echo no-tty' </dev/null
	[ "$output" = no-tty ]
}

@test "run: image symlinks at /dev, /etc/hosts or the workdir never reach the host" {
	mkdir -p "$T/evil/etc" "$T/evil/proc"
	ln -s /tmp "$T/evil/dev"
	ln -s /etc/shadow "$T/evil/etc/hosts"
	cat >"$T/m2.json" <<-JSON
	{ "envpin": 1, "name": "evil", "source_date_epoch": 1767225600,
	  "base": { "rootfs": "$RUNT/base.tar", "sha256": "$(sha256sum "$RUNT/base.tar" | cut -d' ' -f1)" },
	  "layers": [ { "copy": [ { "src": "evil/", "dest": "/" } ] } ],
	  "config": { "workdir": "/proc/self/fd/7", "cmd": [ "/bin/sh", "-c", "ls -ld /dev; head -c 30 /etc/hosts" ] } }
	JSON
	run envpin build -q -f "$T/m2.json"
	[ "$status" -eq 0 ] || skip "the manifest refuses a /proc workdir: $output"
	local E=$output
	local before=$(ls -la /tmp | md5sum)
	run envpin run --no-workspace "$E"
	[ "$status" -eq 125 ]
	[[ "$output" == *"inside /proc"* ]]
	run envpin run "$E"
	[ "$status" -eq 0 ]
	[[ "$output" == d* ]]
	[[ "$output" != *root:* ]]
	assert_clean
}

@test "run: --keep keeps the bundle; it is not swept as stale" {
	run envpin run --keep --name kept1 "$D" -- true
	[ "$status" -eq 0 ]
	[ -f "$ENVPIN_STORE/run/kept1/config.json" ]
	jq -e '.process.noNewPrivileges == true and .root.path == "rootfs"' "$ENVPIN_STORE/run/kept1/config.json"
	run envpin run "$D" -- true
	[ -d "$ENVPIN_STORE/run/kept1" ]
	no_mounts
	rm -rf "$ENVPIN_STORE/run/kept1"
}

@test "gc removes unpacked layers no image has, and keeps those of its images" {
	run envpin run "$D" -- true
	[ "$status" -eq 0 ]
	n_before=$(ls -d "$ENVPIN_STORE"/rootfs/*/ | wc -l)
	[ "$n_before" -ge 2 ]
	stale="$ENVPIN_STORE/rootfs/$(printf '%064d' 0)"
	mkdir -p "$stale/usr/bin" && head -c 100000 /dev/urandom >"$stale/usr/bin/old"
	run envpin gc
	echo "$output"
	[ "$status" -eq 0 ]
	[ ! -e "$stale" ]
	[ "$(ls -d "$ENVPIN_STORE"/rootfs/*/ | wc -l)" = "$n_before" ]
	[[ "$output" != "freed 0 B" ]]
	run envpin run "$D" -- true
	[ "$status" -eq 0 ]
}
