#!/usr/bin/env bats
# Build stages (docs/manifest.md "stages"): built like an image, never
# stored or shipped as one; a copy item "from" a stage takes a path of the
# stage's final rootfs.

load helpers

setup() {
	common_setup
	[ "$(id -u)" = 0 ] || skip "run steps need root (runc, overlayfs)"
	command -v runc >/dev/null || skip "runc is not installed"
	"$TOP/tests/fixtures/busybox-rootfs.sh" "$T/base.tar"
	BASE_SHA=$(sha256sum "$T/base.tar" | cut -d' ' -f1)
	mkdir -p "$T/src"
	printf 'the source\n' >"$T/src/main.txt"
}
teardown() { common_teardown; }

# manifest FILE STAGES LAYERS: the busybox base; STAGES starts at line 7.
manifest() {
	printf '{\n  "envpin": 1,\n  "source_date_epoch": 1767225600,\n  "base": { "rootfs": "base.tar", "sha256": "%s" },\n  "name": "t",\n  "stages": {\n%s\n  },\n  "layers": [\n%s\n  ]\n}\n' \
		"$BASE_SHA" "$2" "$3" >"$1"
}

BB='"base": { "rootfs": "base.tar", "sha256": "'

two_stage() {
	manifest "$T/m.json" "    \"build\": { $BB$BASE_SHA\" },
      \"layers\": [ { \"run\": [ \"sh\", \"-c\", \"mkdir -p /out/opt/app /junk && cat /src/main.txt > /out/opt/app/data && echo '#!/bin/sh' > /out/opt/app/run && chmod 755 /out/opt/app/run && echo junk > /junk/j\" ],
                      \"mounts\": [ { \"src\": \"src/\", \"dest\": \"/src\" } ] } ] }" \
		'    { "copy": [ { "from": "build", "src": "/out/opt/app/", "dest": "/opt/app/" } ] }'
}

@test "stages: the final image holds only what was copied from the stage" {
	two_stage
	run "$ENVPIN" build -f "$T/m.json"
	[ "$status" -eq 0 ]
	d=${lines[-1]}
	# base + the copy; nothing of the stage's own layers
	[ "$("$ENVPIN" inspect "$d" --json | jq '.layers | length')" = 2 ]
	run "$ENVPIN" unpack "$d" "$T/out"
	[ "$status" -eq 0 ]
	[ "$(cat "$T/out/opt/app/data")" = "the source" ]
	[ -x "$T/out/opt/app/run" ]
	[ ! -e "$T/out/junk" ]
	[ ! -e "$T/out/out" ]
	[ ! -e "$T/out/src" ]
	# the stage is not an image of the store
	[ "$(jq '.manifests | length' "$ENVPIN_STORE/index.json")" = 1 ]
	# the lock records the stage's inputs, its run step's output included
	[ "$(jq -r '.stages.build.inputs.layers[0].kind' "$T/m.lock.json")" = run ]
	[[ "$(jq -r '.stages.build.inputs.layers[0].diff_id' "$T/m.lock.json")" =~ ^sha256: ]]
	[ "$(jq -r '.inputs.layers[0].from[0].stage' "$T/m.lock.json")" = build ]
	# rebuilt --locked in a fresh store: the same image
	run "$ENVPIN" --store "$T/s2" build -f "$T/m.json" --locked
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = "$d" ]
	# a changed source changes the stage's output, and --locked says where
	printf 'changed\n' >"$T/src/main.txt"
	run "$ENVPIN" --store "$T/s3" build -f "$T/m.json" --locked
	[ "$status" -eq 2 ]
	[[ "$output" == *"m.json:8: stages.build.layers[0] run differs from the lock"* ]]
}

@test "stages: built once, in the order first needed; an unused stage is not built" {
	manifest "$T/m.json" "    \"unused\": { $BB$BASE_SHA\" },
      \"layers\": [ { \"run\": [ \"false\" ] } ] },
    \"b\": { $BB$BASE_SHA\" },
      \"layers\": [ { \"copy\": [ { \"from\": \"a\", \"src\": \"/a.txt\", \"dest\": \"/from-a.txt\" } ] },
                  { \"run\": [ \"sh\", \"-c\", \"cat /from-a.txt /from-a.txt > /b.txt\" ] } ] },
    \"a\": { $BB$BASE_SHA\" },
      \"layers\": [ { \"run\": [ \"sh\", \"-c\", \"echo A > /a.txt\" ] } ] }" \
		'    { "copy": [ { "from": "b", "src": "/b.txt", "dest": "/b.txt" },
                { "from": "a", "src": "/a.txt", "dest": "/a.txt" } ] }'
	run "$ENVPIN" build -f "$T/m.json"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	run "$ENVPIN" unpack "${lines[-1]}" "$T/out"
	[ "$status" -eq 0 ]
	[ "$(cat "$T/out/b.txt")" = "A
A" ]
	[ "$(cat "$T/out/a.txt")" = A ]
	[ "$(jq -r '.stages | keys | join(",")' "$T/m.lock.json")" = "a,b" ]
}

@test "stages: a failing step in a stage names it and leaves the store as it was" {
	two_stage
	run "$ENVPIN" build -f "$T/m.json"
	[ "$status" -eq 0 ]
	manifest "$T/f.json" "    \"build\": { $BB$BASE_SHA\" },
      \"layers\": [ { \"run\": [ \"sh\", \"-c\", \"echo compiling; echo 'error: no cc' >&2; exit 2\" ] } ] }" \
		'    { "copy": [ { "from": "build", "src": "/out/", "dest": "/opt/" } ] }'
	before=$(tree_state "$ENVPIN_STORE")
	run "$ENVPIN" build -f "$T/f.json"
	[ "$status" -eq 1 ]
	[[ "$output" == *"f.json:8: stages.build.layers[0] run: 'sh -c echo compiling;"*"failed with status 2"* ]]
	[[ "$output" == *"compiling"*"error: no cc"* ]]
	[ "$(tree_state "$ENVPIN_STORE")" = "$before" ]
	# a path the stage does not have
	manifest "$T/g.json" "    \"build\": { $BB$BASE_SHA\" } }" \
		'    { "copy": [ { "from": "build", "src": "/nope/", "dest": "/opt/" } ] }'
	run "$ENVPIN" build -f "$T/g.json"
	[ "$status" -eq 2 ]
	[[ "$output" == *"g.json:10: layers[0].copy[0]: '/nope/' does not exist in stage 'build'"* ]]
	[ "$(tree_state "$ENVPIN_STORE")" = "$before" ]
	# unknown stages and cycles are manifest errors
	manifest "$T/h.json" "    \"build\": { $BB$BASE_SHA\" } }" \
		'    { "copy": [ { "from": "biuld", "src": "/x", "dest": "/x" } ] }'
	run "$ENVPIN" build -f "$T/h.json"
	[ "$status" -eq 2 ]
	[[ "$output" == *"h.json:10: layers[0].copy[0].from: unknown stage 'biuld'"* ]]
}
