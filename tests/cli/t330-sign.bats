#!/usr/bin/env bats
# envpin key / sign / verify --key: cosign's keyed signature layout, checked
# step by step with tools other than envpin (skopeo inspect --raw, curl, jq,
# the OpenSSL CLI) against Debian's docker-registry on loopback.

load helpers

FIX="$TOP/tests/fixtures"

setup_file() {
	command -v docker-registry >/dev/null || return 0
	export REG_DIR=$(mktemp -d /tmp/ep330.XXXXXX)
	export ADDR=$("$FIX/registry.sh" start "$REG_DIR/r")
}

teardown_file() {
	[ -n "${REG_DIR:-}" ] || return 0
	"$FIX/registry.sh" stop "$REG_DIR/r" || true
	rm -rf "$REG_DIR"
}

setup() {
	common_setup
	export DOCKER_CONFIG="$T/docker"
	mkdir -p "$T/payload"
	printf 'signed content\n' >"$T/payload/a.txt"
	cat >"$T/m.json" <<-'JSON'
	{ "envpin": 1, "name": "p", "source_date_epoch": 1767225600, "base": "scratch",
	  "layers": [ { "copy": [ { "src": "payload/", "dest": "/opt/p/" } ] } ] }
	JSON
	D=$(envpin build -q -f "$T/m.json")
	HEX=${D#sha256:}
}
teardown() { common_teardown; }

need_registry() { [ -n "${ADDR:-}" ] || skip "docker-registry not installed"; }

@test "key generate: P-256 PEM pair, private key 0600, never overwritten, optional passphrase" {
	umask 000
	run envpin key generate -o "$T/k" --json
	[ "$status" -eq 0 ]
	[ "$(stat -c %a "$T/k.key")" = 600 ]
	openssl pkey -in "$T/k.key" -noout -text | grep -q 'NIST CURVE: P-256'
	openssl pkey -pubin -in "$T/k.pub" -noout
	# the key id is the sha256 of the public key's DER
	[ "$(echo "$output" | jq -r .key_id)" = "sha256:$(openssl pkey -pubin -in "$T/k.pub" -outform DER | sha256sum | cut -c1-64)" ]
	before=$(sha256sum "$T/k.key")
	run envpin key generate -o "$T/k"
	[ "$status" -eq 2 ]
	[ "$(sha256sum "$T/k.key")" = "$before" ]
	# with a passphrase: encrypted PKCS#8 that OpenSSL opens with it
	echo 'correct horse' >"$T/pass"
	run envpin key generate -o "$T/e" --passphrase-file "$T/pass"
	[ "$status" -eq 0 ]
	grep -q 'BEGIN ENCRYPTED PRIVATE KEY' "$T/e.key"
	openssl pkey -in "$T/e.key" -passin pass:'correct horse' -noout
}

@test "sign/verify: ok; another key, another repository, no signature each exit 1 with one line" {
	envpin key generate -o "$T/k" >/dev/null
	envpin key generate -o "$T/other" >/dev/null
	run envpin verify "$D" --key "$T/k.pub" -q
	[ "$status" -eq 1 ]
	[[ "$output" == *"no signature"* ]]
	run envpin sign "$D" --key "$T/k.key" localhost:5000/lab/astro --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r .identity)" = localhost:5000/lab/astro ]
	[ "$(echo "$output" | jq -r .tag)" = "sha256-$HEX.sig" ]
	# the image itself is unchanged: same digest, still verifies
	[ "$(envpin inspect "$D" --json | jq -r .digest)" = "$D" ]
	run envpin verify "$D" --key "$T/k.pub" --identity localhost:5000/lab/astro --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r .signature.verified)" = true ]
	run envpin verify "$D" --key "$T/other.pub" -q
	[ "$status" -eq 1 ]
	[ "$(echo "$output" | grep -c '^envpin:')" = 1 ]
	[[ "$output" == *"wrong key"* ]]
	run envpin verify "$D" --key "$T/k.pub" --identity localhost:5000/lab/other -q
	[ "$status" -eq 1 ]
	[[ "$output" == *"for repository 'localhost:5000/lab/astro', not 'localhost:5000/lab/other'"* ]]
	# a second key adds a signature; each verifies
	envpin sign "$D" --key "$T/other.key" localhost:5000/lab/astro >/dev/null
	envpin verify "$D" --key "$T/other.pub" -q >/dev/null
	envpin verify "$D" --key "$T/k.pub" -q >/dev/null
}

@test "verify --key: a tampered payload and a payload for another digest are refused (exit 1)" {
	envpin key generate -o "$T/k" >/dev/null
	envpin sign "$D" --key "$T/k.key" localhost:5000/lab/astro >/dev/null
	rec="$ENVPIN_STORE/cache/trust-$HEX.json"
	sigm=$(jq -r .signature.digest "$rec")
	payload=$(jq -r '.layers[0].digest' "$ENVPIN_STORE/blobs/sha256/${sigm#sha256:}")
	pfile="$ENVPIN_STORE/blobs/sha256/${payload#sha256:}"
	# the same record moved to another image: its payload names $D
	printf 'other\n' >"$T/payload/a.txt"
	D2=$(envpin build -q -f "$T/m.json" --tag p2)
	jq --arg d "$D2" '.image = $d' "$rec" >"$ENVPIN_STORE/cache/trust-${D2#sha256:}.json"
	run envpin verify "$D2" --key "$T/k.pub" -q
	[ "$status" -eq 1 ]
	[[ "$output" == *"the signature is for image $D, not $D2"* ]]
	# one byte of the payload changed in the store
	chmod u+w "$pfile"
	sed -i 's/cosign container/cosign_container/' "$pfile"
	run envpin verify "$D" --key "$T/k.pub" -q
	[ "$status" -eq 1 ]
	[[ "$output" == *"tampered payload"* ]]
}

@test "bad input: corrupt key, wrong or missing passphrase: exit 2, one line, nothing written" {
	echo 'pw1' >"$T/pass"
	echo 'pw2' >"$T/wrong"
	envpin key generate -o "$T/e" --passphrase-file "$T/pass" >/dev/null
	before=$(tree_state "$ENVPIN_STORE")
	run envpin sign "$D" --key "$T/e.key" --passphrase-file "$T/wrong" localhost:5000/x/y
	[ "$status" -eq 2 ]
	[ "${#lines[@]}" = 1 ]
	[[ "$output" == *"wrong passphrase"* ]]
	run envpin sign "$D" --key "$T/e.key" localhost:5000/x/y
	[ "$status" -eq 2 ]
	[[ "$output" == *"is encrypted"* ]]
	head -c 100 "$T/e.key" >"$T/corrupt.key"
	run envpin sign "$D" --key "$T/corrupt.key" localhost:5000/x/y
	[ "$status" -eq 2 ]
	[ "${#lines[@]}" = 1 ]
	[ "$(tree_state "$ENVPIN_STORE")" = "$before" ]
	echo garbage >"$T/bad.pub"
	run envpin verify "$D" --key "$T/bad.pub" -q
	[ "$status" -eq 2 ]
	# the encrypted key signs with its passphrase
	envpin sign "$D" --key "$T/e.key" --passphrase-file "$T/pass" localhost:5000/x/y >/dev/null
	envpin verify "$D" --key "$T/e.pub" -q >/dev/null
}

@test "interop: the pushed .sig manifest is cosign's layout and OpenSSL verifies its signature" {
	need_registry
	envpin key generate -o "$T/k" >/dev/null
	envpin key generate -o "$T/other" >/dev/null
	envpin sign "$D" --key "$T/k.key" "$ADDR/lab/astro" >/dev/null
	run envpin push "$D" "$ADDR/lab/astro:v1" --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq .trust.signature)" = true ]
	[ "$(echo "$output" | jq .trust.signature_matches_repository)" = true ]
	# pushed elsewhere, the signature names the wrong repository: a warning says so
	run envpin push "$D" "$ADDR/lab/elsewhere:v1"
	[ "$status" -eq 0 ]
	[[ "$output" == *"warning: the signature names $ADDR/lab/astro, not this repository"* ]]
	# skopeo (not envpin) fetches the signature manifest by cosign's tag
	skopeo inspect --tls-verify=false --raw "docker://$ADDR/lab/astro:sha256-$HEX.sig" >"$T/sig.json"
	[ "$(jq -r .mediaType "$T/sig.json")" = application/vnd.oci.image.manifest.v1+json ]
	[ "$(jq -r '.layers[0].mediaType' "$T/sig.json")" = application/vnd.dev.cosign.simplesigning.v1+json ]
	ldigest=$(jq -r '.layers[0].digest' "$T/sig.json")
	jq -r '.layers[0].annotations["dev.cosignproject.cosign/signature"]' "$T/sig.json" | base64 -d >"$T/sig.der"
	# curl fetches the payload blob; its fields name this image and repository
	curl -fsS "http://$ADDR/v2/lab/astro/blobs/$ldigest" >"$T/payload.json"
	[ "sha256:$(sha256sum "$T/payload.json" | cut -c1-64)" = "$ldigest" ]
	[ "$(jq -r '.critical.image["docker-manifest-digest"]' "$T/payload.json")" = "$D" ]
	[ "$(jq -r '.critical.identity["docker-reference"]' "$T/payload.json")" = "$ADDR/lab/astro" ]
	[ "$(jq -r '.critical.type' "$T/payload.json")" = "cosign container image signature" ]
	# and the registry's image is the one signed
	[ "$(skopeo inspect --tls-verify=false --raw "docker://$ADDR/lab/astro:v1" | sha256sum | cut -c1-64)" = "$HEX" ]
	# OpenSSL: accepts, refuses one changed byte, refuses another key
	openssl dgst -sha256 -verify "$T/k.pub" -signature "$T/sig.der" "$T/payload.json"
	sed 's/cosign container/cosign_container/' "$T/payload.json" >"$T/changed.json"
	[ "$(wc -c <"$T/changed.json")" = "$(wc -c <"$T/payload.json")" ]
	run openssl dgst -sha256 -verify "$T/k.pub" -signature "$T/sig.der" "$T/changed.json"
	[ "$status" -ne 0 ]
	run openssl dgst -sha256 -verify "$T/other.pub" -signature "$T/sig.der" "$T/payload.json"
	[ "$status" -ne 0 ]
}

@test "pull fetches the signature; verify --key and --policy (skopeo's sigstoreSigned) pass" {
	need_registry
	envpin key generate -o "$T/k" >/dev/null
	envpin key generate -o "$T/other" >/dev/null
	envpin sign "$D" --key "$T/k.key" "$ADDR/lab/pulled" >/dev/null
	envpin push "$D" "$ADDR/lab/pulled:v1" >/dev/null
	export ENVPIN_STORE="$T/store2"
	# listed from the registry before any pull
	run envpin attachments "$ADDR/lab/pulled:v1" --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r '.attachments[0].tag')" = "sha256-$HEX.sig" ]
	run envpin pull "$ADDR/lab/pulled:v1"
	[ "$status" -eq 0 ]
	[[ "$output" == *"signature yes"* ]]
	[ "${lines[-1]}" = "$D" ]
	# the tag names the repository the signature must name
	run envpin verify "$ADDR/lab/pulled:v1" --key "$T/k.pub"
	[ "$status" -eq 0 ]
	[[ "$output" == *"signature: verified"*"for '$ADDR/lab/pulled'"* ]]
	cat >"$T/policy.json" <<-JSON
	{ "default": [ { "type": "reject" } ],
	  "transports": { "docker": {
	    "$ADDR/lab": [ { "type": "sigstoreSigned", "keyPath": "$T/k.pub",
	                     "signedIdentity": { "type": "matchRepository" } } ],
	    "$ADDR/lab/other": [ { "type": "sigstoreSigned", "keyPath": "$T/other.pub" } ] } } }
	JSON
	run envpin verify "$ADDR/lab/pulled:v1" --policy "$T/policy.json" -q
	[ "$status" -eq 0 ]
	run envpin verify "$D" --policy "$T/policy.json" --identity "$ADDR/lab/other" -q
	[ "$status" -eq 1 ]
	run envpin verify "$D" --policy "$T/policy.json" --identity "elsewhere.io/x" -q
	[ "$status" -eq 1 ]
	[[ "$output" == *"rejects"* ]]
}
