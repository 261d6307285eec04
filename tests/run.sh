#!/bin/bash
# Runs envpin's tests and prints one summary line "N passed, N failed, N skipped".
#   tests/run.sh [unit] [cli] [PATTERN...]
# Unit tests are cmocka programs in $UNIT_DIR printing TAP; CLI tests are
# bats files tests/cli/*.bats.  A PATTERN selects CLI files by substring.
# The cli group also runs tests/lint-bats.sh over every bats file (one test).
# Env: ENVPIN (binary under test), UNIT_DIR, TEST_TMPDIR (default: mktemp).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
: "${ENVPIN:=$top/envpin}"
: "${UNIT_DIR:=$top/build/rel/tests/unit}"
export ENVPIN TOP="$top"

groups=""
patterns=()
for a in "$@"; do
	case "$a" in
	unit | cli) groups="$groups $a" ;;
	*) patterns+=("$a") ;;
	esac
done
[ -n "$groups" ] || groups="unit cli"
[ ${#patterns[@]} -gt 0 ] && [[ "$groups" != *cli* ]] && groups="$groups cli"

pass=0 fail=0 skip=0
failed_names=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# count_tap NAME: reads TAP from $log, updates counters.
count_tap() {
	local name=$1 line
	while IFS= read -r line; do
		case "$line" in
		"not ok"*)
			if [[ "$line" =~ \#\ *[Tt][Oo][Dd][Oo] ]]; then skip=$((skip + 1)); else
				fail=$((fail + 1)); failed_names+=("$name: ${line#not ok }")
			fi ;;
		"ok"*)
			if [[ "$line" =~ \#\ *[Ss][Kk][Ii][Pp] ]]; then skip=$((skip + 1)); else pass=$((pass + 1)); fi ;;
		esac
	done <"$log"
}

for g in $groups; do
	if [ "$g" = unit ]; then
		for t in "$UNIT_DIR"/test_*; do
			[ -x "$t" ] || continue
			[[ "$t" == *.d || "$t" == *.o ]] && continue
			name=$(basename "$t")
			echo "# unit: $name"
			CMOCKA_MESSAGE_OUTPUT=TAP "$t" >"$log" 2>&1
			rc=$?
			sed 's/^/    /' "$log"
			count_tap "$name"
			if [ $rc -ne 0 ] && ! grep -q '^not ok' "$log"; then
				fail=$((fail + 1)); failed_names+=("$name: exited $rc")
			fi
		done
	fi
	if [ "$g" = cli ]; then
		# the lint is one test: every `! cmd` in a bats body must be its last command
		echo "# lint: lint-bats.sh tests/cli/*.bats"
		if "$here/lint-bats.sh" "$here"/cli/*.bats >"$log" 2>&1; then
			pass=$((pass + 1))
		else
			sed 's/^/    /' "$log"
			fail=$((fail + 1)); failed_names+=("lint-bats: a '! cmd' line that cannot fail its test")
		fi
		for t in "$here"/cli/*.bats; do
			[ -f "$t" ] || continue
			name=$(basename "$t")
			if [ ${#patterns[@]} -gt 0 ]; then
				m=0
				for p in "${patterns[@]}"; do [[ "$name" == *"$p"* ]] && m=1; done
				[ $m = 1 ] || continue
			fi
			echo "# cli: $name"
			start=$(date +%s)
			bats --tap "$t" >"$log" 2>&1
			rc=$?
			sed 's/^/    /' "$log"
			echo "#   ($(($(date +%s) - start)) s)"
			count_tap "$name"
			if [ $rc -ne 0 ] && ! grep -q '^not ok' "$log"; then
				fail=$((fail + 1)); failed_names+=("$name: bats exited $rc")
			fi
		done
	fi
done

if [ ${#failed_names[@]} -gt 0 ]; then
	echo "# failures:"
	for f in "${failed_names[@]}"; do echo "#   $f"; done
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] && [ $((pass + skip)) -gt 0 ]
