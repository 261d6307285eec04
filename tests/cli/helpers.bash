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
