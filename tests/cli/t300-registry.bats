#!/usr/bin/env bats
# envpin pull / push / login against Debian's docker-registry on loopback,
# through a misbehaving proxy (tests/fixtures/proxy.py), and over TLS with
# htpasswd auth.

load helpers

FIX="$TOP/tests/fixtures"

setup_file() {
	command -v docker-registry >/dev/null || skip "docker-registry not installed"
	export REG_DIR=$(mktemp -d /tmp/epreg.XXXXXX)
	export ADDR=$("$FIX/registry.sh" start "$REG_DIR/r")
	"$FIX/busybox-rootfs.sh" "$REG_DIR/bb.tar"
	"$FIX/oci-from-rootfs.sh" "$REG_DIR/bb.tar" "$REG_DIR/oci" bb >/dev/null
	skopeo copy -q --dest-tls-verify=false --format oci "oci:$REG_DIR/oci:bb" "docker://$ADDR/fix/oci:v1"
	skopeo copy -q --dest-tls-verify=false --format v2s2 "oci:$REG_DIR/oci:bb" "docker://$ADDR/fix/v2:v1"
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
	[ -d "$T/tls" ] && "$FIX/registry.sh" stop "$T/tls"
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

skopeo_digest() { # REF
	skopeo inspect --tls-verify=false --raw "docker://$1" | sha256sum | sed 's/ .*//; s/^/sha256:/'
}

small_manifest() {
	mkdir -p "$T/payload"
	printf 'hello\n' >"$T/payload/a.txt"
	head -c 300000 /dev/urandom >"$T/payload/noise.bin"
	cat >"$T/m.json" <<-'JSON'
	{ "envpin": 1, "name": "p", "source_date_epoch": 1767225600, "base": "scratch",
	  "layers": [ { "copy": [ { "src": "payload/", "dest": "/opt/p/" } ] } ] }
	JSON
}

@test "push: skopeo sees envpin's manifest digest; a second push uploads nothing" {
	small_manifest
	D=$(envpin build -q -f "$T/m.json")
	run envpin push "$D" "$ADDR/envpin/p:1" --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r .digest)" = "$D" ]
	[ "$(echo "$output" | jq .uploaded)" = 2 ]
	[ "$(skopeo_digest "$ADDR/envpin/p:1")" = "$D" ]
	[ "$(skopeo inspect --tls-verify=false "docker://$ADDR/envpin/p:1" | jq -r .Digest)" = "$D" ]
	run envpin push "$D" "$ADDR/envpin/p:2" --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq .existing)" = 2 ]
	[ "$(echo "$output" | jq .uploaded)" = 0 ]
}

@test "pull: skopeo-pushed OCI and Docker v2s2 images by tag and by digest, then verify" {
	for repo in fix/oci fix/v2; do
		want=$(skopeo_digest "$ADDR/$repo:v1")
		run envpin pull "$ADDR/$repo:v1"
		[ "$status" -eq 0 ]
		[ "${lines[-1]}" = "$want" ]
		run envpin verify "$want"
		[ "$status" -eq 0 ]
		rm -rf "$ENVPIN_STORE"
		run envpin pull "$ADDR/$repo@$want"
		[ "$status" -eq 0 ]
		[ "${lines[-1]}" = "$want" ]
		run envpin verify "$want"
		[ "$status" -eq 0 ]
	done
	# the v2s2 manifest keeps its media type
	[ "$(envpin inspect "$want" --json | jq -r '.layers[0].media_type')" = application/vnd.docker.image.rootfs.diff.tar.gzip ]
}

@test "pull: a wrong digest in the reference is refused and stores nothing" {
	envpin pull "$ADDR/fix/oci:v1" >/dev/null
	before=$(tree_state "$ENVPIN_STORE")
	run envpin pull "$ADDR/fix/oci@sha256:$(printf x | sha256sum | cut -c1-64)"
	[ "$status" -ne 0 ]
	[ "$(tree_state "$ENVPIN_STORE")" = "$before" ]
}

@test "pull: an index is followed to linux/amd64 (or --platform)" {
	skopeo copy -q --dest-tls-verify=false --format oci "oci:$REG_DIR/oci:bb" "docker://$ADDR/fix/one:v1"
	leaf=$(skopeo_digest "$ADDR/fix/one:v1")
	size=$(skopeo inspect --tls-verify=false --raw "docker://$ADDR/fix/one:v1" | wc -c)
	cat >"$T/index.json" <<-JSON
	{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
	 {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"$leaf","size":$size,"platform":{"os":"linux","architecture":"arm64"}},
	 {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"$leaf","size":$size,"platform":{"os":"linux","architecture":"amd64"}}]}
	JSON
	curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.index.v1+json' \
		--data-binary @"$T/index.json" "http://$ADDR/v2/fix/one/manifests/multi"
	run envpin pull "$ADDR/fix/one:multi" --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r .digest)" = "$leaf" ]
	[ "$(echo "$output" | jq -r .index_digest)" = "sha256:$(sha256sum <"$T/index.json" | cut -c1-64)" ]
	run envpin pull "$ADDR/fix/one:multi" --platform linux/s390x
	[ "$status" -eq 2 ]
	[[ "$output" == *"no image for platform linux/s390x"* ]]
}

@test "pull: a document that is both manifest and index is refused" {
	cat >"$T/amb.json" <<-'JSON'
	{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},"layers":[],"manifests":[]}
	JSON
	curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
		--data-binary @"$T/amb.json" "http://$ADDR/v2/fix/amb/manifests/x" || skip "the registry refused the document itself"
	run envpin pull "$ADDR/fix/amb:x"
	[ "$status" -eq 2 ]
	[[ "$output" == *"ambiguous"* ]]
}

blob_of() { # REPO: the layer digest
	skopeo inspect --tls-verify=false --raw "docker://$ADDR/$1:v1" | jq -r '.layers[0].digest'
}

@test "proxy flips a byte: pull fails naming the blob, the store is unchanged" {
	small_manifest
	envpin build -q -f "$T/m.json" >/dev/null # a store with something in it
	before=$(tree_state "$ENVPIN_STORE")
	start_proxy "$T/px" --upstream "http://$ADDR" --mode flip
	run timeout 60 "$ENVPIN" pull "$PADDR/fix/oci:v1"
	[ "$status" -eq 1 ]
	[[ "$output" == *"hash to sha256:"* ]]
	named=$(echo "$output" | grep -o 'blob sha256:[0-9a-f]*' | head -1)
	skopeo inspect --tls-verify=false --raw "docker://$ADDR/fix/oci:v1" | grep -q "\"${named#blob }\""
	[ "$(tree_state "$ENVPIN_STORE")" = "$before" ]
}

@test "proxy truncates: pull fails naming the blob after retries, nothing stored" {
	start_proxy "$T/px" --upstream "http://$ADDR" --mode truncate
	L=$(blob_of fix/oci)
	run timeout 60 "$ENVPIN" pull "$PADDR/fix/oci:v1"
	[ "$status" -eq 1 ]
	[[ "$output" == *"blob sha256:"*": truncated: the registry sent "* ]]
	[ ! -e "$ENVPIN_STORE/blobs/sha256/${L#sha256:}" ]
	[ "$(jq '.manifests | length' "$ENVPIN_STORE/index.json")" = 0 ]
}

@test "proxy drops the connection mid-blob: the pull resumes with Range" {
	start_proxy "$T/px" --upstream "http://$ADDR" --mode drop
	L=$(blob_of fix/oci)
	run timeout 60 "$ENVPIN" pull "$PADDR/fix/oci:v1"
	[ "$status" -eq 0 ]
	grep -q "\"path\": \"/v2/fix/oci/blobs/$L\".*\"Range\": \"bytes=[1-9][0-9]*-\"" "$T/px/log"
	run envpin verify "${lines[-1]}"
	[ "$status" -eq 0 ]
}

@test "proxy stalls mid-blob: the low-speed timeout fires and the pull resumes" {
	start_proxy "$T/px" --upstream "http://$ADDR" --mode stall
	export ENVPIN_HTTP_TIMEOUT=2
	SECONDS=0
	run timeout 60 "$ENVPIN" pull "$PADDR/fix/oci:v1"
	[ "$status" -eq 0 ]
	[ "$SECONDS" -lt 30 ]
	# what happened, from the proxy's log rather than the clock: every blob
	# stalled after half its bytes, and envpin resumed it from exactly there
	jq -r 'select(.headers.Range) | "\(.path) \(.headers.Range)"' "$T/px/log" >"$T/ranges"
	[ -s "$T/ranges" ]
	local path range size
	while read -r path range; do
		size=$(stat -c %s "$ENVPIN_STORE/blobs/sha256/${path##*sha256:}")
		[ "$range" = "bytes=$((size / 2))-" ] || { echo "$path: $range of $size bytes"; false; }
	done <"$T/ranges"
}

@test "redirect to another host: the Authorization header is not forwarded" {
	start_proxy "$T/px" --upstream "http://$ADDR" --mode redirect --auth envpin:pw1
	mkdir -p "$DOCKER_CONFIG"
	printf '{"auths":{"%s":{"auth":"%s"}}}' "$PADDR" "$(printf envpin:pw1 | base64 -w0)" >"$DOCKER_CONFIG/config.json"
	run timeout 60 "$ENVPIN" pull "$PADDR/fix/oci:v1"
	[ "$status" -eq 0 ]
	# the registry host got credentials; the blob host got the blob requests without them
	grep '"server": "proxy"' "$T/px/log" | grep -q '"Authorization": "Basic '
	[ "$(grep -c '"server": "other"' "$T/px/log")" -ge 1 ]
	[ "$(grep '"server": "other"' "$T/px/log" | grep -ci 'authorization')" = 0 ]
	run envpin verify "${lines[-1]}"
	[ "$status" -eq 0 ]
}

@test "bearer token flow: 401 challenge, token from the realm with basic auth, then success" {
	start_proxy "$T/px" --upstream "http://$ADDR" --mode pass --auth envpin:pw2 --token
	run timeout 60 "$ENVPIN" pull "$PADDR/fix/oci:v1"
	[ "$status" -ne 0 ]
	[[ "$output" == *"envpin login"* ]]
	run envpin login "$PADDR" -u envpin --password-stdin <<<"wrong"
	[ "$status" -ne 0 ]
	run envpin login "$PADDR" -u envpin --password-stdin <<<"pw2"
	[ "$status" -eq 0 ]
	[ "$(stat -c %a "$DOCKER_CONFIG/config.json")" = 600 ]
	[ "$(jq -r --arg h "$PADDR" '.auths[$h].auth' "$DOCKER_CONFIG/config.json" | base64 -d)" = envpin:pw2 ]
	run timeout 60 "$ENVPIN" pull "$PADDR/fix/oci:v1"
	[ "$status" -eq 0 ]
	grep '"path": "/token' "$T/px/log" | grep -q 'scope=repository%3Afix%2Foci%3Apull'
	grep -q '"Authorization": "Bearer tok-s3cret"' "$T/px/log"
}

@test "TLS registry with a self-signed CA and htpasswd: verification on, login, push, pull" {
	"$FIX/registry.sh" start "$T/tls" --tls --htpasswd >/dev/null 3>&-
	A=$(cat "$T/tls/addr")
	small_manifest
	D=$(envpin build -q -f "$T/m.json")
	# a CA that did not sign the server's certificate: verification fails
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=other CA" -keyout "$T/o.key" \
		-out "$T/other-ca.crt" >/dev/null 2>&1
	run envpin login "$A" -u envpin --password-stdin --ca-cert "$T/other-ca.crt" <<<"envpin-secret"
	[ "$status" -eq 3 ]
	[[ "$output" == *"certificate"* ]]
	[ ! -e "$DOCKER_CONFIG/config.json" ]
	run envpin login "$A" -u envpin --password-stdin --ca-cert "$T/tls/ca.crt" <<<"wrong"
	[ "$status" -eq 3 ]
	run envpin login "$A" -u envpin --password-stdin --ca-cert "$T/tls/ca.crt" <<<"envpin-secret"
	[ "$status" -eq 0 ]
	# the CA found in a certs.d layout
	export ENVPIN_CERTS_D="$T/tls/certs.d"
	run envpin push "$D" "$A/envpin/tls:1"
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = "$D" ]
	[ "$(skopeo inspect --cert-dir "$T/tls/certs.d/$A" --authfile "$T/tls/auth.json" "docker://$A/envpin/tls:1" | jq -r .Digest)" = "$D" ]
	rm -rf "$ENVPIN_STORE"
	run envpin pull "$A/envpin/tls:1"
	[ "$status" -eq 0 ]
	run envpin verify "$D"
	[ "$status" -eq 0 ]
}

@test "lock pins a base image tag; after the tag moves, build --locked refuses naming it" {
	skopeo copy -q --src-tls-verify=false --dest-tls-verify=false "docker://$ADDR/fix/oci:v1" "docker://$ADDR/fix/moving:latest"
	first=$(skopeo_digest "$ADDR/fix/moving:latest")
	mkdir -p "$T/payload" && printf 'x\n' >"$T/payload/x"
	cat >"$T/b.json" <<-JSON
	{ "envpin": 1, "name": "onbase", "source_date_epoch": 1767225600,
	  "base": { "image": "$ADDR/fix/moving:latest" },
	  "layers": [ { "copy": [ { "src": "payload/", "dest": "/opt/" } ] } ] }
	JSON
	run envpin lock -f "$T/b.json"
	[ "$status" -eq 0 ]
	[ "$(jq -r .inputs.base.digest "$T/b.lock.json")" = "$first" ]
	run envpin build -f "$T/b.json"
	[ "$status" -eq 0 ]
	img=${lines[-1]}
	[ "$(envpin inspect "$img" --json | jq '.layers | length')" = 2 ]
	run envpin verify "$img"
	[ "$status" -eq 0 ]
	run envpin build --locked -f "$T/b.json"
	[ "$status" -eq 0 ]
	# move the tag to another image
	small_manifest
	other=$(envpin build -q -f "$T/m.json")
	envpin push "$other" "$ADDR/fix/moving:latest" >/dev/null
	run envpin build --locked -f "$T/b.json"
	[ "$status" -eq 2 ]
	[[ "$output" == *"base.image '$ADDR/fix/moving:latest'"*"differs from the lock"* ]]
	[[ "$output" == *"$first"* ]]
}
