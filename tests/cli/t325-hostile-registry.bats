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
