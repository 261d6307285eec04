# Shared set-up for the bats CLI tests.  Every test gets a private temp dir
# ($T) and store ($ENVPIN_STORE); $ENVPIN is the binary under test.
: "${ENVPIN:=$TOP/envpin}"

common_setup() {
	T=$(mktemp -d "${BATS_TMPDIR:-/tmp}/envpin-test.XXXXXX")
	export ENVPIN_STORE="$T/store"
	export ENVPIN_PROGRESS=0
	cd "$T" || return 1
}

common_teardown() {
	cd / && rm -rf "$T"
}

envpin() {
	"$ENVPIN" "$@"
}

# native_setup_file TAG VAR: the start of setup_file for tests of the native
# engine: exports FIX, and VAR as a fresh /tmp/TAG.XXXXXX holding base.tar (a
# busybox rootfs).  Returns 1 (nothing made) without root or runc; the tests
# then skip one by one.
native_setup_file() {
	export FIX="$TOP/tests/fixtures"
	[ "$(id -u)" = 0 ] || return 1
	command -v runc >/dev/null || return 1
	local dir
	dir=$(mktemp -d "/tmp/$1.XXXXXX") || return 1
	export "$2=$dir"
	"$FIX/busybox-rootfs.sh" "$dir/base.tar"
}

# tree_state DIR: a listing of every path with its type, size and content hash,
# so that "unchanged byte for byte" can be asserted.
tree_state() {
	(cd "$1" 2>/dev/null && find . -path ./lock -prune -o -path ./index.lock -prune -o -printf '%y %s %p\n' | sort &&
		find . -type f ! -name lock ! -name index.lock -print0 | sort -z | xargs -0r sha256sum)
}

# a small deterministic payload
make_payload() {
	local d=$1
	mkdir -p "$d/sub/deeper"
	printf '#!/bin/sh\necho "hello from payload: $GREETING"\n' >"$d/run.sh"
	chmod 755 "$d/run.sh"
	printf 'data\n' >"$d/sub/a.txt"
	printf 'more\n' >"$d/sub/deeper/b.txt"
	ln -s ../run.sh "$d/sub/link"
	ln "$d/sub/a.txt" "$d/sub/hard.txt"
}

# Processes.  Tests share the machine with other test runs, so they never look
# processes up by name across the host (pgrep -f): only in the tree of a pid
# they started.

# descendants PID: the pids of PID's children, grandchildren, ..., one a line.
descendants() {
	ps -e -o pid=,ppid= | awk -v root="$1" '
		{ kids[$2] = kids[$2] " " $1 }
		END {
			n = split(kids[root], q, " ")
			for (i = 1; i <= n; i++) {
				print q[i]
				m = split(kids[q[i]], c, " ")
				for (j = 1; j <= m; j++) q[++n] = c[j]
			}
		}'
}

# tree_pid PID CMDLINE: the pid of the process under PID whose command line
# (arguments joined by spaces) is CMDLINE; fails when there is none.
tree_pid() {
	local q
	for q in $(descendants "$1"); do
		if [ "$(tr '\0' ' ' <"/proc/$q/cmdline" 2>/dev/null)" = "$2 " ]; then
			echo "$q"
			return 0
		fi
	done
	return 1
}

# wait_tree_pid PID CMDLINE [SECONDS]: waits (default 10 s) until tree_pid
# finds it; prints its pid.
wait_tree_pid() {
	local i
	for ((i = 0; i < ${3:-10} * 20; i++)); do
		tree_pid "$1" "$2" && return 0
		kill -0 "$1" 2>/dev/null || break
		sleep 0.05
	done
	echo "no '$2' under pid $1" >&2
	return 1
}

# proc_ids PID...: "pid:starttime" for each live process, so that a later
# procs_gone is not fooled by a reused pid.
proc_ids() {
	local q st
	for q in "$@"; do
		st=$(sed 's/.*) //' "/proc/$q/stat" 2>/dev/null | cut -d' ' -f20)
		if [ -n "$st" ]; then echo "$q:$st"; fi
	done
}

# procs_gone [SECONDS] ID...: waits (bounded) until none of the proc_ids
# processes exists any more (a zombie counts as gone); fails naming those left.
procs_gone() {
	local secs=$1 i id left
	shift
	for ((i = 0; i <= secs * 20; i++)); do
		left=""
		for id in "$@"; do
			local q=${id%%:*} st=${id#*:} now
			now=$(sed 's/.*) //' "/proc/$q/stat" 2>/dev/null) || continue
			[ "$(echo "$now" | cut -d' ' -f20)" = "$st" ] || continue
			[ "${now%% *}" = Z ] && continue
			left="$left $q($(tr '\0' ' ' <"/proc/$q/cmdline" 2>/dev/null))"
		done
		[ -z "$left" ] && return 0
		sleep 0.05
	done
	echo "still running:$left" >&2
	return 1
}

# signal_taken PID SIG: waits (bounded, 10 s) until PID has no SIG pending,
# i.e. its handler has taken the last one sent: two signals of one kind sent
# back to back would otherwise merge into one.
signal_taken() {
	local n bit i pnd shd
	n=$(kill -l "$2") || return 1
	bit=$((1 << (n - 1)))
	for ((i = 0; i < 200; i++)); do
		pnd=$(sed -n 's/^SigPnd:\s*//p' "/proc/$1/status" 2>/dev/null) || return 0
		shd=$(sed -n 's/^ShdPnd:\s*//p' "/proc/$1/status" 2>/dev/null) || return 0
		[ -n "$shd" ] || return 0
		((0x$pnd & bit || 0x$shd & bit)) || return 0
		sleep 0.05
	done
	echo "pid $1 did not take SIG$2" >&2
	return 1
}
