#!/usr/bin/env bats
# envpin rmi and gc (docs/store.md "rmi"): removing images, the blobs and
# layer-cache records only they used, and what killed commands left behind.

load helpers
bats_require_minimum_version 1.5.0

FIX="$TOP/tests/fixtures"

# store_bytes: the bytes the store holds (blobs, cache records, index.json,
# tmp/), its lock files aside
store_bytes() {
	find "$ENVPIN_STORE" -type f ! -name lock ! -name index.lock -printf '%s\n' | awk '{s += $1} END {print s + 0}'
}

# image NAME KIB: a two-layer scratch image of KIB random bytes in NAME/m.json
image() {
	mkdir -p "$T/$1/payload/a" "$T/$1/payload/b"
	head -c "$(($2 * 1024))" /dev/urandom >"$T/$1/payload/a/data"
	printf '%s\n' "$1" >"$T/$1/payload/b/name"
	cat >"$T/$1/m.json" <<-JSON
	{ "envpin": 1, "name": "$1", "source_date_epoch": 1767225600, "base": "scratch",
	  "layers": [ { "copy": [ { "src": "payload/a/", "dest": "/a/" } ] },
	              { "copy": [ { "src": "payload/b/", "dest": "/b/" } ] } ] }
	JSON
}

setup() {
	common_setup
	image keep 64
	KEEP=$("$ENVPIN" build -q -f "$T/keep/m.json" --tag keep)
}
teardown() { common_teardown; }

@test "rmi + gc after killed rebuilds: the store verifies and is back to its size" {
	local s0 big i p st
	s0=$(store_bytes)
	image big 8192
	BIG=$("$ENVPIN" build -q -f "$T/big/m.json" --tag big)
	[ "$(store_bytes)" -gt $((s0 + 8000000)) ]
	# verify --rebuild killed mid-way leaves its private store (the next
	# opener of the store removes the one before: at most one is left).
	# The dir is named by the blob that was seen, not by a glob: its random
	# suffix may end in any letter, and tmp/ also holds its rebuild-X.lock.
	local prev=none m try
	for i in 1 2; do
		# a rebuild that ends before the kill lands (it has ~50 ms left
		# once its blob passes 100 KiB) is not a failure: try again
		for try in 1 2 3 4 5; do
			"$ENVPIN" verify big --rebuild -f "$T/big/m.json" >/dev/null 2>&1 &
			p=$!
			# killed while it writes a layer into its own rebuild store
			m=
			for ((j = 0; j < 1500; j++)); do
				m=$(find "$ENVPIN_STORE/tmp" -path '*/rebuild-*/tmp/txn-*/blob-*' -size +100k \
					-not -path "$ENVPIN_STORE/tmp/$prev/*" 2>/dev/null | head -1)
				[ -n "$m" ] && break
				sleep 0.02
			done
			kill -9 "$p" 2>/dev/null || true
			st=0
			wait "$p" || st=$?
			[ -n "$m" ] && [ "$st" -eq 137 ] && break
			echo "try $try: verify --rebuild ended ($st) before the kill" >&2
		done
		[ -n "$m" ]
		[ "$st" -eq 137 ]
		m=${m#"$ENVPIN_STORE/tmp/"}
		prev=${m%%/*}
	done
	# only the last one is left, beside its lock file
	[ -d "$ENVPIN_STORE/tmp/$prev" ]
	[ "$(cd "$ENVPIN_STORE/tmp" && ls -d rebuild-* | grep -vc '\.lock$')" -eq 1 ]
	[ "$(du -sb "$ENVPIN_STORE/tmp" | cut -f1)" -gt 100000 ]
	# gc removes it and counts its bytes
	run envpin gc --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq .freed_bytes)" -gt 100000 ]
	[ -z "$(ls -A "$ENVPIN_STORE/tmp")" ]
	# rmi: the image, its cached layers and their blobs go
	run envpin rmi big
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"deleted: big $BIG"* ]]
	[[ "$output" == *"freed "*" MB"* ]]
	[ "$(store_bytes)" -eq "$s0" ]
	run /usr/bin/python3 "$FIX/store-check.py" "$ENVPIN_STORE"
	[ "$status" -eq 0 ]
	run envpin verify -q keep
	[ "$status" -eq 0 ]
	run envpin verify -q "$BIG"
	[ "$status" -eq 2 ]
}

@test "gc removes what other killed commands leave: temp files of atomic writes, scratch dirs, partial blobs" {
	local s0
	s0=$(store_bytes)
	# a runc-version cache write, an index write, a vendor scratch dir with
	# its (free) lock, a dead transaction with a partial blob
	printf '{"binary":' >"$ENVPIN_STORE/cache/runc-version.json.tmp.4242"
	printf '{"manifests":' >"$ENVPIN_STORE/index.json.tmp.4243"
	mkdir -p "$ENVPIN_STORE/tmp/scratch-AbC123/tree" "$ENVPIN_STORE/tmp/txn-dead42"
	head -c 50000 /dev/urandom >"$ENVPIN_STORE/tmp/scratch-AbC123/tree/x"
	: >"$ENVPIN_STORE/tmp/scratch-AbC123.lock"
	: >"$ENVPIN_STORE/tmp/scratch-XyZ789.lock"
	: >"$ENVPIN_STORE/tmp/txn-dead42/.lock"
	head -c 30000 /dev/urandom >"$ENVPIN_STORE/tmp/txn-dead42/blob-0"
	# a live one is left alone
	mkdir "$ENVPIN_STORE/tmp/scratch-Live01"
	exec 8>"$ENVPIN_STORE/tmp/scratch-Live01.lock"
	flock -x 8
	run envpin gc --json
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq .freed_bytes)" -ge 80000 ]
	[ -d "$ENVPIN_STORE/tmp/scratch-Live01" ]
	exec 8>&-
	run envpin gc
	[ "$status" -eq 0 ]
	[ -z "$(ls -A "$ENVPIN_STORE/tmp")" ]
	[ "$(store_bytes)" -eq "$s0" ]
	run /usr/bin/python3 "$FIX/store-check.py" "$ENVPIN_STORE"
	[ "$status" -eq 0 ]
}

@test "rmi of a tag or a digest; a layer another image shares stays" {
	# same first layer as keep, other second layer
	mkdir -p "$T/twin"
	cp -a "$T/keep/payload" "$T/twin/"
	printf 'twin\n' >"$T/twin/payload/b/name"
	sed 's/"keep"/"twin"/' "$T/keep/m.json" >"$T/twin/m.json"
	TWIN=$("$ENVPIN" build -q -f "$T/twin/m.json" --tag twin)
	run envpin rmi --json "${TWIN:7:12}"
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r '.removed[0].action')" = deleted ]
	[ "$(echo "$output" | jq -r '.removed[0].digest')" = "$TWIN" ]
	[ "$(echo "$output" | jq .gc)" = true ]
	run envpin verify keep
	[ "$status" -eq 0 ]
	# the image keep still builds from its cache: no layer rewritten
	run envpin build -f "$T/keep/m.json" --tag keep
	[ "$status" -eq 0 ]
	[ "${output##*$'\n'}" = "$KEEP" ]
	run envpin images --json
	[ "$(echo "$output" | jq length)" = 1 ]
}

@test "rmi refuses an image with several tags unless --force, and is all or nothing" {
	# a second index entry for the same image, as another tool may write
	jq -c --arg d "$KEEP" '.manifests += [.manifests[] | select(.digest == $d) |
		.annotations["org.opencontainers.image.ref.name"] = "other"]' \
		"$ENVPIN_STORE/index.json" >"$T/idx" && mv "$T/idx" "$ENVPIN_STORE/index.json"
	cp "$ENVPIN_STORE/index.json" "$T/before.json"
	run envpin rmi "$KEEP"
	[ "$status" -eq 2 ]
	[[ "$output" == *"has 2 tags"*"--force"* ]]
	cmp "$T/before.json" "$ENVPIN_STORE/index.json"
	# an unknown name among good ones: nothing removed
	run envpin rmi other nosuch
	[ "$status" -eq 2 ]
	[[ "$output" == *"no image 'nosuch'"* ]]
	cmp "$T/before.json" "$ENVPIN_STORE/index.json"
	# a tag removes that entry only: the image stays under its other tag
	run envpin rmi other
	[ "$status" -eq 0 ]
	[[ "$output" == *"untagged: other $KEEP"* ]]
	run envpin verify -q keep
	[ "$status" -eq 0 ]
	jq -c --arg d "$KEEP" '.manifests += [.manifests[] | select(.digest == $d) |
		.annotations["org.opencontainers.image.ref.name"] = "other"]' \
		"$ENVPIN_STORE/index.json" >"$T/idx" && mv "$T/idx" "$ENVPIN_STORE/index.json"
	run envpin rmi --force "$KEEP"
	[ "$status" -eq 0 ]
	[ "$(jq '.manifests | length' "$ENVPIN_STORE/index.json")" = 0 ]
	run /usr/bin/python3 "$FIX/store-check.py" "$ENVPIN_STORE"
	[ "$status" -eq 0 ]
	[ -z "$(ls -A "$ENVPIN_STORE/blobs/sha256")" ]
}

@test "rmi while another envpin holds the store removes the image and leaves the blobs to gc" {
	# a shared holder of the store, as a running build is
	exec 9<"$ENVPIN_STORE/lock"
	flock -s 9
	run envpin rmi keep
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"deleted: keep"* ]]
	[[ "$output" == *"blobs left to 'envpin gc'"*"busy"* ]]
	exec 9<&-
	run envpin gc
	[ "$status" -eq 0 ]
	[ -z "$(ls -A "$ENVPIN_STORE/blobs/sha256")" ]
}

@test "rmi: usage" {
	run envpin rmi
	[ "$status" -eq 2 ]
	run envpin rmi --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"--force"* ]]
}
