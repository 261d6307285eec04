#!/usr/bin/env bats
# Isolation of the native engine, seen from inside the container (docs/run.md,
# "Isolation"): seccomp allow-list, no_new_privs, Docker's capabilities,
# masked and read-only /proc paths, no host fd; and the runc version rule
# (CVE-2024-21626).  A static probe (tests/fixtures/syscall-probe.c) tries
# the syscalls busybox cannot reach.

load helpers
bats_require_minimum_version 1.5.0

setup_file() {
	native_setup_file ep450 RUNT || return 0
	mkdir -p "$RUNT/payload"
	if cc -static -O2 -o "$RUNT/payload/syscall-probe" "$FIX/syscall-probe.c" 2>"$RUNT/cc.err"; then
		: >"$RUNT/have-probe"
	else
		printf '#!/bin/sh\nexit 0\n' >"$RUNT/payload/syscall-probe"
		chmod 755 "$RUNT/payload/syscall-probe"
	fi
	cat >"$RUNT/m.json" <<-JSON
	{ "envpin": 1, "name": "isolation", "source_date_epoch": 1767225600,
	  "base": { "rootfs": "base.tar", "sha256": "$(sha256sum "$RUNT/base.tar" | cut -d' ' -f1)" },
	  "layers": [ { "copy": [ { "src": "payload/", "dest": "/opt/p/" } ] } ],
	  "config": { "cmd": [ "sh" ] } }
	JSON
	export RUN_STORE="$RUNT/store"
	ENVPIN_STORE=$RUN_STORE "${ENVPIN:-$TOP/envpin}" build -q -f "$RUNT/m.json" >"$RUNT/digest"
	# a runc on PATH that reports what it was given, then runs the real one
	export REAL_RUNC=$(command -v runc)
	mkdir -p "$RUNT/fakebin"
	cat >"$RUNT/fakebin/runc" <<-'SH'
	#!/bin/sh
	if [ "$1" = --version ] && [ -n "$FAKE_RUNC_VERSION" ]; then
		printf '%b' "$FAKE_RUNC_VERSION"
		exit 0
	fi
	[ -z "$RUNC_FD_LOG" ] || ls /proc/self/fd >>"$RUNC_FD_LOG"
	[ -z "$RUNC_ENV_LOG" ] || env >>"$RUNC_ENV_LOG"
	exec "$REAL_RUNC" "$@"
	SH
	chmod 755 "$RUNT/fakebin/runc"
}
teardown_file() { [ -z "${RUNT:-}" ] || rm -rf "$RUNT"; }

setup() {
	[ "$(id -u)" = 0 ] || skip "the native engine needs root"
	command -v runc >/dev/null || skip "runc is not installed"
	common_setup
	export ENVPIN_STORE=$RUN_STORE ENVPIN_HOST_ROOT="$T/nohost"
	unset ENVPIN_ALLOW_OLD_RUNC FAKE_RUNC_VERSION RUNC_FD_LOG RUNC_ENV_LOG
	D=$(cat "$RUNT/digest")
	mkdir -p "$T/ws" && cd "$T/ws"
}
teardown() { common_teardown; }

field() { printf '%s\n' "$output" | sed -n "s/^$1:[[:space:]]*//p"; }

@test "inside: seccomp filter, no_new_privs, Docker's capabilities, nothing inheritable" {
	run envpin run "$D" -- cat /proc/self/status
	[ "$status" -eq 0 ]
	[ "$(field Seccomp)" = 2 ]
	[ "$(field NoNewPrivs)" = 1 ]
	[ "$(field CapEff)" = 00000000a80425fb ]
	[ "$(field CapPrm)" = 00000000a80425fb ]
	[ "$(field CapBnd)" = 00000000a80425fb ]
	[ "$(field CapInh)" = 0000000000000000 ]
	[ "$(field CapAmb)" = 0000000000000000 ]
	# a user other than root keeps nothing effective
	run envpin run --user nobody "$D" -- cat /proc/self/status
	[ "$status" -eq 0 ]
	[ "$(field CapEff)" = 0000000000000000 ]
	[ "$(field NoNewPrivs)" = 1 ]
}

@test "inside: only fds 0, 1, 2 (and the listing's own), whatever envpin inherited" {
	# fds 5 and 7 are open in envpin (no close-on-exec): they must not arrive
	run envpin run "$D" -- ls /proc/self/fd 5</dev/null 7>"$T/leak"
	[ "$status" -eq 0 ]
	[ "$(echo $output)" = "0 1 2 3" ]
}

@test "runc is started with fds 0, 1, 2 only" {
	export PATH="$RUNT/fakebin:$PATH" RUNC_FD_LOG="$T/fds"
	run envpin run "$D" -- true 5</dev/null 7>"$T/leak"
	[ "$status" -eq 0 ]
	# one line per runc start (run; maybe delete): ls's own fd is 3
	[ -s "$T/fds" ]
	[ "$(sort -u "$T/fds" | tr '\n' ' ')" = "0 1 2 3 " ]
	# nor socket-activation variables, with which runc would pass fds from 3 on
	export RUNC_ENV_LOG="$T/env"
	LISTEN_FDS=1 LISTEN_PID=1 LISTEN_FDNAMES=x run envpin run "$D" -- sh -c 'echo ${LISTEN_FDS:-none}'
	[ "$status" -eq 0 ]
	[ "$output" = none ]
	grep -q '^PATH=' "$T/env"
	run grep '^LISTEN_' "$T/env"
	[ "$status" -eq 1 ]
}

# mounted DIR in mountinfo text $output, with options matching ERE $2
mounted() {
	printf '%s\n' "$output" | awk -v p="$1" -v o="$2" '$5 == p && $6 ~ o { f = 1 } END { exit !f }' ||
		{ echo "$1: no mount with options /$2/ inside the container"; return 1; }
}

@test "inside: masked and read-only /proc and /sys paths (those this kernel has)" {
	run envpin run "$D" -- cat /proc/self/mountinfo
	[ "$status" -eq 0 ]
	local p n=0
	for p in /proc/bus /proc/fs /proc/irq /proc/sys /proc/sysrq-trigger; do
		[ -e "$p" ] || continue
		mounted "$p" '^ro(,|$)'
		n=$((n + 1))
	done
	[ "$n" -ge 3 ]
	n=0
	for p in /proc/asound /proc/acpi /proc/kcore /proc/keys /proc/latency_stats /proc/timer_list \
		/proc/timer_stats /proc/sched_debug /proc/scsi /sys/firmware /sys/devices/virtual/powercap; do
		[ -e "$p" ] || continue
		mounted "$p" .
		n=$((n + 1))
	done
	[ "$n" -ge 3 ]
}

@test "inside: writes to /proc/sys and /proc/sysrq-trigger, mount and unshare are refused" {
	run envpin run "$D" -- sh -c '
		for f in /proc/keys /proc/timer_list /proc/sched_debug; do
			echo "$f $(cat $f 2>/dev/null | wc -c)"; done
		echo "firmware $(ls -A /sys/firmware 2>/dev/null | wc -l)"
		if [ -e /proc/sysrq-trigger ]; then
			echo h >/proc/sysrq-trigger 2>/dev/null && echo sysrq-written || echo sysrq-refused
		else
			echo sysrq-refused
		fi
		echo 1 >/proc/sys/kernel/sysrq 2>/dev/null && echo sys-written || echo sys-refused
		busybox mount -t tmpfs none /tmp 2>&1; echo "mount $?"
		busybox unshare -U true 2>&1; echo "unshare $?"
		busybox unshare -m true 2>&1; echo "unshare-m $?"'
	[ "$status" -eq 0 ]
	[[ "$output" == *"/proc/keys 0"* ]]
	[[ "$output" == *"/proc/timer_list 0"* ]]
	[[ "$output" == *"/proc/sched_debug 0"* ]]
	[[ "$output" == *"firmware 0"* ]]
	[[ "$output" == *sysrq-refused* ]]
	[[ "$output" == *sys-refused* ]]
	[[ "$output" == *"mount: permission denied"* ]]
	[[ "$output" == *"mount 1"* ]]
	[[ "$output" == *"unshare(0x10000000): Operation not permitted"* ]]
	[[ "$output" == *"unshare 1"* ]]
	[[ "$output" == *"unshare(0x20000): Operation not permitted"* ]]
	run grep -c " $T/ws/tmp " /proc/self/mountinfo
	[ "$output" = 0 ]
}

@test "inside: ordinary work works (sh, ls, cat, pipes, /tmp and /workspace writes, chroot)" {
	echo from-host >in
	run envpin run "$D" -- sh -c 'ls / >/dev/null && cat in | wc -c && echo a >/tmp/f && cat /tmp/f &&
		echo out >/workspace/out && (sleep 0 &) && wait && chroot / true && echo done'
	[ "$status" -eq 0 ]
	[ "$(echo $output)" = "10 a done" ]
	[ "$(cat out)" = out ]
}

@test "inside: the seccomp allow-list refuses what Docker's refuses; clone3 and unknown calls get ENOSYS; i386 and x32 syscalls are killed" {
	[ -e "$RUNT/have-probe" ] || skip "no static libc to build the probe: $(cat "$RUNT/cc.err")"
	run envpin run "$D" -- /opt/p/syscall-probe
	[ "$status" -eq 0 ]
	local want="keyctl EPERM
add_key EPERM
unshare-user EPERM
unshare-mount EPERM
mount EPERM
socket-vsock EPERM
personality-exec EPERM
io_uring_setup EPERM
userfaultfd EPERM
perf_event_open EPERM
bpf EPERM
get_mempolicy EPERM
name_to_handle_at EPERM
clone-newuser EPERM
clone3 ENOSYS
nosuch-1000 ENOSYS
abi-i386 SIGSYS
abi-x32 SIGSYS
fork ok
socket-inet ok
personality-query ok
getrandom ok
chroot ok"
	diff <(echo "$want") <(echo "$output")
}

@test "inside: a real program (Debian's /usr/bin/python3 from the host, through its ld.so): threads, subprocesses, sockets" {
	local py=$(readlink -f /usr/bin/python3 || true) ld=$(readlink -f /lib64/ld-linux-x86-64.so.2 || true)
	[ -x "$py" ] && [ -x "$ld" ] || skip "no /usr/bin/python3 or x86_64 ld.so on the host"
	[[ "$py" == /usr/* && "$ld" == /usr/* ]] || skip "python3 or ld.so outside /usr"
	local libdir=$(dirname "$ld")
	run envpin run -v /usr:/hostusr:ro -e PYTHONHOME=/hostusr "$D" -- "/hostusr${ld#/usr}" \
		--library-path "/hostusr${libdir#/usr}" "/hostusr${py#/usr}" -c '
import os, socket, subprocess, threading, multiprocessing
t = threading.Thread(target=lambda: None); t.start(); t.join()
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.close()
print(subprocess.run(["/bin/echo", "sub"], capture_output=True, text=True).stdout.strip())
with multiprocessing.Pool(2) as p: print(sum(p.map(abs, [-1, -2])))
print(len(os.urandom(8)))'
	[ "$status" -eq 0 ]
	[ "$(echo $output)" = "sub 3 8" ]
}

@test "runc without the CVE-2024-21626 fix is refused, unless ENVPIN_ALLOW_OLD_RUNC=1" {
	export PATH="$RUNT/fakebin:$PATH"
	# the version is cached by the binary's identity: a fresh store
	export ENVPIN_STORE="$T/store2"
	cp -a "$RUN_STORE" "$ENVPIN_STORE"
	rm -f "$ENVPIN_STORE/cache/runc-version.json"
	export FAKE_RUNC_VERSION='runc version 1.1.11\ncommit: v1.1.11-0-g4bccb38c\nspec: 1.0.2-dev\n'
	run envpin run "$D" -- echo ran
	[ "$status" -eq 125 ]
	[[ "$output" == *"runc 1.1.11 (commit v1.1.11-0-g4bccb38c) lacks the fix for CVE-2024-21626"* ]]
	[[ "$output" == *"upgrade runc"* ]]
	[[ "$output" != *ran* ]]
	ENVPIN_ALLOW_OLD_RUNC=1 run envpin run "$D" -- echo ran
	[ "$status" -eq 0 ]
	[ "$output" = ran ]
	# Debian 12's build without the backport, then with it
	rm -f "$ENVPIN_STORE/cache/runc-version.json"
	export FAKE_RUNC_VERSION='runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1\n'
	run envpin run "$D" -- echo ran
	[ "$status" -eq 125 ]
	[[ "$output" == *"runc 1.1.5+ds1 (commit 1.1.5+ds1-1) lacks the fix"* ]]
	rm -f "$ENVPIN_STORE/cache/runc-version.json"
	export FAKE_RUNC_VERSION='runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\n'
	run envpin run "$D" -- echo ran
	[ "$status" -eq 0 ]
	[ "$output" = ran ]
	jq -r .output "$ENVPIN_STORE/cache/runc-version.json" | grep -qx 'commit: 1.1.5+ds1-1+deb12u1'
}

@test "the runc version is read once and cached by the binary's identity" {
	export PATH="$RUNT/fakebin:$PATH" ENVPIN_STORE="$T/store2"
	cp -a "$RUN_STORE" "$ENVPIN_STORE"
	rm -f "$ENVPIN_STORE/cache/runc-version.json"
	export FAKE_RUNC_VERSION='runc version 1.1.12\ncommit: v1.1.12-0-g51d5e946\n'
	run envpin run "$D" -- true
	[ "$status" -eq 0 ]
	jq -r .output "$ENVPIN_STORE/cache/runc-version.json" | grep -qx 'runc version 1.1.12'
	[[ "$(jq -r .binary "$ENVPIN_STORE/cache/runc-version.json")" == "$RUNT/fakebin/runc "* ]]
	# the same binary: not asked again
	export FAKE_RUNC_VERSION='runc version 1.0.0-rc93\ncommit: v1.0.0-rc93\n'
	run envpin run "$D" -- true
	[ "$status" -eq 0 ]
	# a changed binary (times, size or inode): asked again
	touch -d '2001-01-01' "$RUNT/fakebin/runc"
	run envpin run "$D" -- true
	[ "$status" -eq 125 ]
	[[ "$output" == *"runc 1.0.0-rc93"* ]]
}

@test "check records runc's version in the certificate, and refuses an unfixed runc with exit 3" {
	# the busybox image has no self-check: the checks fail, the certificate is still written
	run envpin check "$D" -o "$T/cert.json"
	[ "$status" -eq 1 ]
	[ "$(jq -r .run.runtime.name "$T/cert.json")" = runc ]
	[ "$(jq -r .run.runtime.version "$T/cert.json")" = "$(runc --version | sed -n 's/^runc version //p')" ]
	[ "$(jq -r .run.runtime.commit "$T/cert.json")" = "$(runc --version | sed -n 's/^commit: //p')" ]
	[ "$(jq -r .run.runtime.cve_2024_21626_fixed "$T/cert.json")" = true ]
	export PATH="$RUNT/fakebin:$PATH"
	export FAKE_RUNC_VERSION='runc version 1.1.11\ncommit: v1.1.11-0-g4bccb38c\n'
	run envpin check "$D" -o "$T/cert2.json"
	[ "$status" -eq 3 ]
	[[ "$output" == *"runc 1.1.11 (commit v1.1.11-0-g4bccb38c) lacks the fix for CVE-2024-21626"* ]]
	[[ "$output" != *"running the self-check"* ]]
	[ ! -e "$T/cert2.json" ]
}
