#!/usr/bin/env bats
# envpin verify --rebuild: rebuild-and-compare in one command, telling
# "same bytes" from "same content" from "different content".

load helpers

setup() {
	common_setup
	make_payload "$T/w/payload"
	cat >"$T/w/m.json" <<-'JSON'
	{ "envpin": 1, "name": "rb", "source_date_epoch": 1767225600, "base": "scratch",
	  "layers": [ { "copy": [ { "src": "payload/sub/", "dest": "/data/" } ] },
	              { "copy": [ { "src": "payload/run.sh", "dest": "/bin/run.sh" } ] } ] }
	JSON
	D=$("$ENVPIN" build -q -f "$T/w/m.json")
}
teardown() { common_teardown; }

@test "an unchanged manifest and lock rebuild to identical bytes" {
	run envpin verify "$D" --rebuild -f "$T/w/m.json"
	[ "$status" -eq 0 ]
	[[ "$output" == *"IDENTICAL (same bytes)"* ]]
	run envpin verify "$D" --rebuild -f "$T/w/m.json" --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r .rebuild.verdict)" = identical ]
	[ "$(echo "$output" | jq -r .rebuild.rebuilt.digest)" = "$D" ]
	# the rebuild leaves nothing behind and does not touch the lock
	[ -z "$(ls -A "$ENVPIN_STORE/tmp")" ]
	[ "$(jq -r .image.digest "$T/w/m.lock.json")" = "$D" ]
}

@test "an image compressed otherwise is the same content with other bytes, and says why" {
	Z=$("$ENVPIN" build -q -f "$T/w/m.json" --compress zstd --tag rb-zstd)
	# put the lock back to gzip so the rebuild compresses as the lock says
	"$ENVPIN" build -q -f "$T/w/m.json" --compress gzip >/dev/null
	run envpin verify "$Z" --rebuild -f "$T/w/m.json" --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r .rebuild.verdict)" = same-content ]
	[ "$(echo "$output" | jq -r .rebuild.rebuilt.compressor.name)" = gzip ]
	[ "$(echo "$output" | jq '[.rebuild.layers[] | select(.same_content and (.same_bytes | not))] | length')" = 2 ]
	run envpin verify "$Z" --rebuild -f "$T/w/m.json"
	[[ "$output" == *"SAME CONTENT, DIFFERENT BYTES"* ]]
	[[ "$output" == *"libdeflate"* ]]
}

@test "a changed source is different content: the first layer and the path are named, exit 1" {
	printf 'tampered\n' >"$T/w/payload/sub/deeper/b.txt"
	run envpin verify "$D" --rebuild -f "$T/w/m.json"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"DIFFERENT"* ]]
	[[ "$output" == *"layer 1 is the first"* ]]
	[[ "$output" == *"data/deeper/b.txt"* ]]
	run envpin verify "$D" --rebuild -f "$T/w/m.json" --json
	[ "$status" -eq 1 ]
	[ "$(echo "$output" | jq .rebuild.first_different_layer)" = 0 ]
	[ "$(echo "$output" | jq -r '.rebuild.paths[0].path')" = data/deeper/b.txt ]
	[ "$(echo "$output" | jq -r '.rebuild.layers[1].same_bytes')" = true ]
}

@test "a changed config field is named" {
	jq '.config = {"env": {"X": "1"}}' "$T/w/m.json" >"$T/w/m2.json"
	cp "$T/w/m.lock.json" "$T/w/m2.lock.json"
	run envpin verify "$D" --rebuild -f "$T/w/m2.json" --json
	[ "$status" -eq 1 ]
	[ "$(echo "$output" | jq -r '.rebuild.config_fields | join(",")')" = Env ]
	[ "$(echo "$output" | jq .rebuild.first_different_layer)" = null ]
}
