#!/usr/bin/env bats
# A hostile registry (or image author) against pull: each case fails cleanly,
# says what happened, and leaves the store as it was (issue 13, item 8).

load helpers

FIX="$TOP/tests/fixtures"

setup_file() {
	command -v docker-registry >/dev/null || skip "docker-registry not installed"
	export REG_DIR=$(mktemp -d /tmp/epreg.XXXXXX)
	export ADDR=$("$FIX/registry.sh" start "$REG_DIR/r")
	"$FIX/busybox-rootfs.sh" "$REG_DIR/bb.tar"
	"$FIX/oci-from-rootfs.sh" "$REG_DIR/bb.tar" "$REG_DIR/oci" bb >/dev/null
	skopeo copy -q --dest-tls-verify=false --format oci "oci:$REG_DIR/oci:bb" "docker://$ADDR/fix/oci:v1"
}

teardown_file() {
	[ -n "${REG_DIR:-}" ] || return 0
	"$FIX/registry.sh" stop "$REG_DIR/r" || true
	rm -rf "$REG_DIR"
}

setup() {
	common_setup
	export DOCKER_CONFIG="$T/docker"
	export ENVPIN_HTTP_TIMEOUT=3
	PROXY_DIRS=()
}

teardown() {
	for d in "${PROXY_DIRS[@]}"; do
		[ -f "$d/pid" ] && kill "$(cat "$d/pid")" 2>/dev/null
	done
	common_teardown
}

# start_proxy DIR ARGS...: proxy.py in front of the registry; sets PADDR.
start_proxy() {
	local d=$1
	shift
	mkdir -p "$d"
	/usr/bin/python3 "$FIX/proxy.py" --dir "$d" "$@" 3>&- &
	PROXY_DIRS+=("$d")
	for _ in $(seq 100); do
		[ -f "$d/addr" ] && [ -f "$d/pid" ] && break
		sleep 0.05
	done
	PADDR=$(cat "$d/addr")
}

# no txn dirs, temp files or partial blobs left behind
no_leftovers() {
	[ -z "$(ls -A "$ENVPIN_STORE/tmp" 2>/dev/null)" ]
}

@test "a registry that sends more bytes than its Content-Length: pull says so, stores nothing" {
	envpin pull "$ADDR/fix/oci:v1" >/dev/null
	before=$(tree_state "$ENVPIN_STORE")
	# a second image, so that the pull has blobs to fetch over a reused connection
	mkdir -p "$T/payload"
	printf 'hello\n' >"$T/payload/a"
	printf '{ "envpin": 1, "name": "p", "source_date_epoch": 0, "base": "scratch", "layers": [ { "copy": [ { "src": "payload/", "dest": "/p/" } ] } ] }' >"$T/m.json"
	D=$(ENVPIN_STORE="$T/other" envpin build -q -f "$T/m.json")
	ENVPIN_STORE="$T/other" envpin push "$D" "$ADDR/fix/excess:1" >/dev/null
	start_proxy "$T/px" --upstream "http://$ADDR" --mode excess
	run envpin pull "$PADDR/fix/excess:1"
	echo "$output"
	[ "$status" -eq 3 ]
	[[ "$output" == *"more bytes than its Content-Length"* ]]
	[[ "$output" != *"Unsupported protocol"* ]]
	[ "$(tree_state "$ENVPIN_STORE")" = "$before" ]
	no_leftovers
}

# push_layers REPO TAG ARGS...: an image made by layers-image.py, tagged in the registry
push_layers() {
	local repo=$1 tag=$2
	shift 2
	"$FIX/layers-image.py" --data "$REG_DIR/r/data" --repo "$repo" "$@" >"$T/manifest.json"
	curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
		--data-binary @"$T/manifest.json" "http://$ADDR/v2/$repo/manifests/$tag"
}

@test "a pull holds no descriptor per blob: 600 layers under 'ulimit -n 128' succeed and verify" {
	push_layers many/l v1 --layers 600
	run bash -c 'ulimit -n 128 && exec "$0" pull "$1"' "$ENVPIN" "$ADDR/many/l:v1"
	echo "$output" | tail -3
	[ "$status" -eq 0 ]
	no_leftovers
	run envpin verify "${lines[-1]}" -q
	[ "$status" -eq 0 ]
}

@test "pull checks diff_ids: a config that lies about one layer is refused, naming it; the store is unchanged" {
	push_layers diff/good v1 --layers 3
	push_layers diff/bad v1 --layers 3 --bad-diff-id 1
	bad1=$(jq -r '.layers[1].digest' "$T/manifest.json")
	envpin pull "$ADDR/fix/oci:v1" >/dev/null
	before=$(tree_state "$ENVPIN_STORE")
	run envpin pull "$ADDR/diff/bad:v1"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"layer 1 ($bad1): diff_id mismatch"* ]]
	[ "$(tree_state "$ENVPIN_STORE")" = "$before" ]
	no_leftovers
	# the same blobs already in the store (pulled with a true config): still refused
	envpin pull "$ADDR/diff/good:v1" >/dev/null
	before=$(tree_state "$ENVPIN_STORE")
	run envpin pull "$ADDR/diff/bad:v1"
	[ "$status" -eq 1 ]
	[[ "$output" == *"layer 1 ($bad1): diff_id mismatch"* ]]
	[ "$(tree_state "$ENVPIN_STORE")" = "$before" ]
	no_leftovers
}

@test "pull refuses a layer whose media type it does not know, before fetching anything" {
	push_layers odd/mt v1 --layers 2 --media-type application/x-not-a-layer
	envpin pull "$ADDR/fix/oci:v1" >/dev/null
	before=$(tree_state "$ENVPIN_STORE")
	run envpin pull "$ADDR/odd/mt:v1"
	echo "$output"
	[ "$status" -eq 2 ]
	[[ "$output" == *"unknown media type 'application/x-not-a-layer'"* ]]
	[ "$(tree_state "$ENVPIN_STORE")" = "$before" ]
	no_leftovers
}

@test "push holds no descriptor per blob either: the 600-layer image goes back under 'ulimit -n 128'" {
	push_layers many/p v1 --layers 600
	D=$(envpin pull "$ADDR/many/p:v1" | tail -1)
	run bash -c 'ulimit -n 128 && exec "$0" push "$1" "$2"' "$ENVPIN" "$D" "$ADDR/many/back:v1"
	echo "$output" | tail -3
	[ "$status" -eq 0 ]
	[ "$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$ADDR/v2/many/back/manifests/v1" | sha256sum | cut -c1-64)" = "${D#sha256:}" ]
}
