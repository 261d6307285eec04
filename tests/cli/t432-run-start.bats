#!/usr/bin/env bats
# envpin run's start latency work (docs/run.md, "Start latency"): the
# ENVPIN_TRACE_START marks, the STATIC_DEPS=1 link, and the
# watchdog's no-op cgroup move that takes runc's RCU wait off its path.

load helpers
bats_require_minimum_version 1.5.0

setup_file() {
	native_setup_file ep432 RUNT || return 0
	cat >"$RUNT/m.json" <<-JSON
	{ "envpin": 1, "name": "starttest", "source_date_epoch": 1767225600,
	  "base": { "rootfs": "base.tar", "sha256": "$(sha256sum "$RUNT/base.tar" | cut -d' ' -f1)" },
	  "config": { "cmd": [ "/bin/true" ] } }
	JSON
	export RUN_STORE="$RUNT/store"
	ENVPIN_STORE=$RUN_STORE "${ENVPIN:-$TOP/envpin}" build -q -f "$RUNT/m.json" >"$RUNT/digest"
}
teardown_file() { [ -z "${RUNT:-}" ] || rm -rf "$RUNT"; }

setup() {
	common_setup
	mkdir -p "$T/ws" && cd "$T/ws"
}
teardown() { common_teardown; }

native() {
	[ "$(id -u)" = 0 ] || skip "the native engine needs root"
	command -v runc >/dev/null || skip "runc is not installed"
	export ENVPIN_STORE=$RUN_STORE ENVPIN_HOST_ROOT="$T/nohost"
	D=$(cat "$RUNT/digest")
}

@test "start: ENVPIN_TRACE_START marks the phases on stderr; stdout stays the container's" {
	native
	ENVPIN_TRACE_START=$EPOCHREALTIME run --separate-stderr envpin run "$D" -- echo hi
	[ "$status" -eq 0 ]
	[ "$output" = hi ]
	# in order, each once, with a time from the shell's $EPOCHREALTIME
	marks=$(printf '%s\n' "$stderr" | sed -n 's/^envpin: trace  *[0-9.]* ms  *+[0-9.]*  //p')
	[ "$(printf '%s\n' "$marks" | grep -c .)" -ge 10 ]
	want='main store-open mount-namespace overlay-mounted watchdog-forked config.json-written runc-spawned runc-exited cleanup-done exit'
	[ "$(printf '%s\n' "$marks" | tr ' ' - | grep -x -F -f <(tr ' ' '\n' <<<"$want") | paste -sd' ')" = "$want" ]
	[[ "$stderr" == *"envpin: trace: "*" ms of CPU before main"* ]]
	# off by default: nothing on stderr
	run --separate-stderr envpin run "$D" -- echo hi
	[ "$status" -eq 0 ]
	[ "$output" = hi ]
	[ -z "$stderr" ]
}

@test "start: envpin links its libraries shared by default; STATIC_DEPS=1 links jansson, zstd, zlib, libcrypto, libdeflate and libyaml statically" {
	command -v readelf >/dev/null || skip "readelf missing"
	# the default: Debian's security updates of these libraries apply without a rebuild
	run readelf -d "$ENVPIN"
	[ "$status" -eq 0 ]
	[[ "$output" == *"[libcrypto.so"* ]]
	# the static link of the same objects (make envpin-static)
	run make -s -C "$TOP" envpin-static
	[ "$status" -eq 0 ]
	st=$TOP/${lines[${#lines[@]}-1]}
	[ -x "$st" ]
	run readelf -d "$st"
	[ "$status" -eq 0 ]
	[[ "$output" == *"NEEDED"*"libc.so"* ]]
	for l in libjansson libzstd libz.so libcrypto libdeflate libyaml; do
		if [[ "$output" == *"[$l"* ]]; then echo "$l is linked dynamically"; false; fi
	done
	# the dlopen'ed libraries still find their own shared copies
	run "$st" version
	[ "$status" -eq 0 ]
	[[ "$output" == *"openssl OpenSSL 3"* ]]
	[[ "$output" == *"libcurl 7"* ]]
}

@test "start: the watchdog moves itself into its own cgroup2 (a no-op) before runc's cgroup writes" {
	native
	command -v strace >/dev/null || skip "strace missing"
	cg=$(sed -n 's/^0:://p' /proc/self/cgroup)
	[ -n "$cg" ] || skip "no cgroup2 hierarchy"
	[ "$cg" != / ] || cg=
	if [ -d /sys/fs/cgroup/unified ]; then want=/sys/fs/cgroup/unified$cg/cgroup.procs; else want=/sys/fs/cgroup$cg/cgroup.procs; fi
	[ -w "$want" ] || skip "'$want' is not writable here"
	# (LeakSanitizer refuses to run under ptrace)
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
		run strace -f -qq -e trace=openat,execve -o "$T/st" "$ENVPIN" run "$D" -- true
	[ "$status" -eq 0 ]
	# the first cgroup.procs opened for writing is the caller's own, and
	# by a process that is not runc
	first=$(grep -m1 'cgroup.procs.*O_WRONLY' "$T/st")
	[[ "$first" == *"\"$want\""* ]]
	pid=${first%% *}
	run grep -E "^$pid +execve" "$T/st"
	[ "$status" -ne 0 ]
}
