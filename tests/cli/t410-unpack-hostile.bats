#!/usr/bin/env bats
# envpin unpack against the hostile-layer corpus (tests/data/hostile/make.py):
# each case is contained (unpack succeeds, the expected tree is inside the
# root) or refused (exit 2, or 1 for a diff_id mismatch, with the message
# naming the entry, and nothing left behind).  For every case the sentinel
# directory beside the root, the root's parent and the host's /etc/passwd are
# unchanged.

load helpers

setup() { common_setup; }
teardown() { common_teardown; }

# The sentinel: files, a dir, a link, modes to notice a chmod.
make_sentinel() {
	mkdir -p "$1/sub"
	printf 'victim\n' >"$1/victim"
	chmod 0640 "$1/victim"
	printf 'secret\n' >"$1/sub/secret"
	ln -s victim "$1/lnk"
}

sentinel_state() {
	(cd "$1" && find . -printf '%y %m %U:%G %n %s %p %l\n' | sort && find . -type f -print0 | sort -z | xargs -0r sha256sum)
}

passwd_state() { stat -c '%i %h %a %u %g %s %Y' /etc/passwd; sha256sum /etc/passwd; }

# run_corpus: runs every case; prints one line per case; fails listing the bad ones.
run_corpus() {
	local out="$T/corpus" w="$T/w" sent="$T/w/sentinel"
	mkdir -p "$w"
	make_sentinel "$sent"
	python3 "$TOP/tests/data/hostile/make.py" corpus "$out" --sentinel "$sent"
	local before pw n=0 bad=() name expect rc msg args doc got err
	before=$(sentinel_state "$sent")
	pw=$(passwd_state)
	while IFS='|' read -r name expect rc msg args doc; do
		n=$((n + 1))
		local root="$w/root-$name"
		# shellcheck disable=SC2086
		err=$("$ENVPIN" unpack "$out/$name" "$root" $args 2>&1 >/dev/null)
		got=$?
		local why=""
		if [ "$got" != "$rc" ]; then
			why="exit $got, want $rc ($err)"
		elif [ "$expect" = refused ] && [[ "$err" != *"$msg"* ]]; then
			why="message '$err' lacks '$msg'"
		elif [ "$expect" = refused ] && [ -e "$root" ]; then
			why="refused but left $root"
		elif [ "$expect" = contained ] && ! python3 "$TOP/tests/data/hostile/make.py" check "$out" "$name" "$root"; then
			why="a check inside the root failed"
		elif [ "$(sentinel_state "$sent")" != "$before" ]; then
			why="THE SENTINEL CHANGED"
		elif [ "$(passwd_state)" != "$pw" ]; then
			why="/etc/passwd CHANGED"
		elif [ "$(cd "$w" && ls -A | grep -v "^root-$name\$" | tr '\n' ' ')" != "sentinel " ]; then
			why="something was created beside the root: $(ls -A "$w" | tr '\n' ' ')"
		fi
		echo "$name: $expect${why:+ -- FAIL: $why}"
		[ -z "$why" ] || bad+=("$name")
		rm -rf "$root"
	done <"$out/cases.tsv"
	echo "$n cases, ${#bad[@]} failed: ${bad[*]}"
	[ "$n" -ge 40 ] && [ ${#bad[@]} -eq 0 ]
}

@test "unpack: every hostile layer is contained or refused naming the entry (openat2)" {
	run run_corpus
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "unpack: the corpus also holds without openat2 (O_NOFOLLOW walk)" {
	export ENVPIN_UNPACK_NO_OPENAT2=1
	run run_corpus
	echo "$output"
	# Without openat2 symlinked parents are refused rather than followed, so
	# the cases that write through an in-root symlink are refused instead of
	# contained: only safety is compared here.
	[[ "$output" != *"SENTINEL CHANGED"* ]]
	[[ "$output" != *"passwd CHANGED"* ]]
	[[ "$output" != *"created beside the root"* ]]
	[[ "$output" != *"refused but left"* ]]
}
