#!/usr/bin/env bats
# tests/lint-bats.sh: a `! cmd` line that is not its test's last command never
# fails the test under bats' set -e; the lint rejects it.  (tests/run.sh runs
# the lint over tests/cli/*.bats as a test of its own.)

load helpers

LINT="$TOP/tests/lint-bats.sh"
DATA="$TOP/tests/data/lint"

@test "lint-bats rejects every planted '! cmd' line, by file and line, and only those" {
	run "$LINT" "$DATA/bad.bats"
	[ "$status" -eq 1 ]
	local want got
	want=$(grep -n '^[[:space:]]*! ' "$DATA/bad.bats" | cut -d: -f1 | tr '\n' ' ')
	got=$(printf '%s\n' "$output" | sed -n "s|^$DATA/bad.bats:\([0-9]*\): .*|\1|p" | tr '\n' ' ')
	echo "want: $want" && echo "got:  $got"
	[ "$want" = "$got" ]
	[ "$(printf '%s\n' "$output" | wc -l)" -eq 5 ]
	[[ "$output" == *"is not the last command of its test"* ]]
}

@test "lint-bats accepts a '! cmd' that ends its test, run !, if !, here-documents" {
	run "$LINT" "$DATA/good.bats"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "lint-bats: a planted line in a copy of a real test file is caught" {
	common_setup
	cp "$TOP/tests/cli/t010-build.bats" "$T/x.bats"
	run "$LINT" "$T/x.bats"
	[ "$status" -eq 0 ]
	# plant one after the first '[ "$status" -eq 0 ]' of the file
	local n
	n=$(grep -n '\[ "$status" -eq 0 \]' "$T/x.bats" | head -1 | cut -d: -f1)
	sed -i "${n}a\\	! cmp -s a b" "$T/x.bats"
	run "$LINT" "$T/x.bats"
	[ "$status" -eq 1 ]
	[[ "$output" == "$T/x.bats:$((n + 1)): \`! cmp -s a b\` is not the last command"* ]]
	common_teardown
}

@test "lint-bats: the suite itself is clean; usage errors exit 2" {
	run "$LINT" "$TOP"/tests/cli/*.bats
	[ "$status" -eq 0 ]
	run "$LINT"
	[ "$status" -eq 2 ]
	run "$LINT" /nonexistent.bats
	[ "$status" -eq 2 ]
}
