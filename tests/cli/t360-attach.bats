#!/usr/bin/env bats
# envpin attach / attachments: OCI 1.1 artifacts whose subject is the image,
# pushed to Debian's docker-registry (no referrers API) with the referrers tag
# fallback sha256-<hex>, listed from the registry, pulled back into a fresh
# store and verified; verify --certify --from-registry compares with the
# certificate attached in the registry.

load helpers

FIX="$TOP/tests/fixtures"

setup_file() {
	command -v docker-registry >/dev/null || return 0
	export REG_DIR=$(mktemp -d /tmp/ep360.XXXXXX)
	export ADDR=$("$FIX/registry.sh" start "$REG_DIR/r")
	# an image whose self-check and smoke test are scripts (as t450)
	local v="$REG_DIR/img"
	"$FIX/busybox-rootfs.sh" "$REG_DIR/base.tar" >/dev/null
	mkdir -p "$v/opt/envpin/bin"
	printf '#!/bin/sh\necho {\\"driver_version\\":null,\\"devices\\":[],\\"checks\\":[{\\"name\\":\\"cuda.device\\",\\"status\\":\\"skip\\"}]}\n' \
		>"$v/opt/envpin/bin/envpin-selfcheck"
	printf '#!/bin/sh\necho {\\"result\\":\\"pass\\",\\"checks\\":[{\\"name\\":\\"cpu.sum\\",\\"status\\":\\"pass\\"}],\\"fingerprint\\":{\\"version\\":1,\\"n_det\\":1,\\"tolerance\\":{\\"n_det\\":\\"equal\\"}}}\n' \
		>"$v/opt/envpin/bin/envpin-fitsinfer"
	chmod 755 "$v/opt/envpin/bin/"*
	cat >"$REG_DIR/m.json" <<-JSON
	{ "envpin": 1, "name": "att", "source_date_epoch": 1767225600,
	  "base": { "rootfs": "base.tar", "sha256": "$(sha256sum "$REG_DIR/base.tar" | cut -d' ' -f1)" },
	  "layers": [ { "copy": [ { "src": "img/opt/", "dest": "/opt/" } ] } ] }
	JSON
}

teardown_file() {
	[ -n "${REG_DIR:-}" ] || return 0
	"$FIX/registry.sh" stop "$REG_DIR/r" || true
	rm -rf "$REG_DIR"
}

setup() {
	[ -n "${ADDR:-}" ] || skip "docker-registry not installed"
	common_setup
	export DOCKER_CONFIG="$T/docker"
	D=$(envpin build -q -f "$REG_DIR/m.json")
	HEX=${D#sha256:}
	envpin key generate -o "$T/k" >/dev/null
}
teardown() { common_teardown; }

@test "attach: three artifacts round-trip through the registry's referrers tag and verify" {
	envpin sbom "$D" -o "$T/sbom.spdx.json" 2>/dev/null
	envpin sbom "$D" --format cyclonedx -o "$T/sbom.cdx.json" 2>/dev/null
	envpin provenance "$D" --key "$T/k.key" -o "$T/prov.json" 2>/dev/null
	printf '{"fingerprint":{"n_det":1},"result":"pass"}\n' >"$T/cert.json"
	envpin attach "$D" "$T/sbom.spdx.json" --type sbom >/dev/null
	envpin attach "$D" "$T/prov.json" --type provenance >/dev/null
	run envpin attach "$D" "$T/cert.json" --type cert --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r .artifactType)" = application/vnd.envpin.certificate.v1+json ]
	# attaching the same bytes again adds nothing; the image is unchanged
	envpin attach "$D" "$T/cert.json" --type cert >/dev/null
	[ "$(envpin attachments "$D" --json | jq '.attachments | length')" = 3 ]
	envpin verify "$D" -q >/dev/null
	run envpin push "$D" "$ADDR/lab/att:v1" --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r .trust.via)" = tag-fallback ]
	[ "$(echo "$output" | jq .trust.attachments)" = 3 ]
	# curl (not envpin): the fallback index lists three artifacts whose subject is the image
	curl -fsS -H 'Accept: application/vnd.oci.image.index.v1+json' \
		"http://$ADDR/v2/lab/att/manifests/sha256-$HEX" >"$T/index.json"
	[ "$(jq '.manifests | length' "$T/index.json")" = 3 ]
	for m in $(jq -r '.manifests[].digest' "$T/index.json"); do
		curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
			"http://$ADDR/v2/lab/att/manifests/$m" >"$T/a.json"
		[ "$(jq -r .subject.digest "$T/a.json")" = "$D" ]
		[ "$(jq -r .config.mediaType "$T/a.json")" = application/vnd.oci.empty.v1+json ]
		[ "$(jq -r .artifactType "$T/a.json")" = "$(jq -r --arg m "$m" '.manifests[] | select(.digest == $m) | .artifactType' "$T/index.json")" ]
	done
	jq -r '.manifests[].artifactType' "$T/index.json" | sort >"$T/types"
	printf '%s\n' application/spdx+json application/vnd.dsse.envelope.v1+json application/vnd.envpin.certificate.v1+json >"$T/want"
	diff "$T/want" "$T/types"
	# skopeo sees the index too
	skopeo inspect --tls-verify=false --raw "docker://$ADDR/lab/att:sha256-$HEX" | jq -e '.manifests | length == 3'
	# a second push (a new SBOM) merges into the index instead of replacing it
	envpin attach "$D" "$T/sbom.cdx.json" --type sbom >/dev/null
	envpin push "$D" "$ADDR/lab/att:v1" >/dev/null
	[ "$(skopeo inspect --tls-verify=false --raw "docker://$ADDR/lab/att:sha256-$HEX" | jq '.manifests | length')" = 4 ]

	# a fresh store lists them from the registry, then pulls them with the image
	export ENVPIN_STORE="$T/store2"
	run envpin attachments "$ADDR/lab/att:v1" --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r .source)" = tag-fallback ]
	[ "$(echo "$output" | jq '.attachments | length')" = 4 ]
	[ ! -e "$ENVPIN_STORE/index.json" ] || [ "$(jq '.manifests | length' "$ENVPIN_STORE/index.json")" = 0 ]
	run envpin pull "$ADDR/lab/att:v1" --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq .trust.attachments)" = 4 ]
	run envpin attachments "$D" --json
	[ "$(echo "$output" | jq '.attachments | length')" = 4 ]
	# the pulled provenance is byte for byte the one attached, and verifies
	d=$(echo "$output" | jq -r '.attachments[] | select(.artifactType == "application/vnd.dsse.envelope.v1+json") | .digest')
	layer=$(jq -r '.layers[0].digest' "$ENVPIN_STORE/blobs/sha256/${d#sha256:}")
	cmp "$T/prov.json" "$ENVPIN_STORE/blobs/sha256/${layer#sha256:}"
	envpin provenance --verify "$ENVPIN_STORE/blobs/sha256/${layer#sha256:}" --key "$T/k.pub" "$D" >/dev/null
	envpin verify "$D" -q >/dev/null
}

@test "attach: bad type or content is refused with exit 2 and nothing stored" {
	before=$(tree_state "$ENVPIN_STORE")
	echo '{"not":"an sbom"}' >"$T/x.json"
	run envpin attach "$D" "$T/x.json" --type sbom
	[ "$status" -eq 2 ]
	[ "${#lines[@]}" = 1 ]
	run envpin attach "$D" "$T/x.json" --type picture
	[ "$status" -eq 2 ]
	[ "$(tree_state "$ENVPIN_STORE")" = "$before" ]
}

@test "verify --certify --from-registry: the lab's signed certificate from the registry matches here" {
	[ "$(id -u)" = 0 ] || skip "the native engine needs root"
	command -v runc >/dev/null || skip "runc is not installed"
	export ENVPIN_HOST_ROOT="$T/nohost"
	# the lab: certify, sign the image, attach the certificate signed, push
	envpin check "$D" --gpus none -o "$T/cert.json" >/dev/null
	envpin sign "$D" --key "$T/k.key" "$ADDR/lab/cert" >/dev/null
	envpin attach "$D" "$T/cert.json" --type cert --key "$T/k.key" >/dev/null
	envpin push "$D" "$ADDR/lab/cert:v1" >/dev/null
	# a certificate with another fingerprint, unsigned, in another repository
	jq '.fingerprint.n_det = 7' "$T/cert.json" >"$T/other-cert.json"
	export ENVPIN_STORE="$T/lab2"
	D2=$(envpin build -q -f "$REG_DIR/m.json")
	envpin attach "$D2" "$T/other-cert.json" --type cert >/dev/null
	envpin push "$D2" "$ADDR/lab/othercert:v1" >/dev/null

	# the reviewer: an empty store, only the reference and the lab's public key
	export ENVPIN_STORE="$T/reviewer"
	run envpin verify "$ADDR/lab/cert:v1" --certify --from-registry --key "$T/k.pub" --gpus none
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"signature: verified"* ]]
	[[ "$output" == *"fingerprint MATCHES"* ]]
	# another key refuses the signed certificate
	envpin key generate -o "$T/other" >/dev/null
	run envpin verify "$ADDR/lab/cert:v1" --certify --from-registry --key "$T/other.pub" --gpus none -q
	[ "$status" -eq 1 ]
	# a fingerprint that differs: exit 1
	run envpin verify "$ADDR/lab/othercert:v1" --certify --from-registry --gpus none -q
	[ "$status" -eq 1 ]
	[[ "$output" == *"DOES NOT MATCH"* ]]
	# no certificate attached: exit 2, one line
	export ENVPIN_STORE="$T/bare"
	N=$(envpin build -q -f "$REG_DIR/m.json")
	run envpin verify "$N" --certify --from-registry --gpus none -q
	[ "$status" -eq 2 ]
	[[ "$output" == *"has no application/vnd.envpin.certificate.v1+json attachment"* ]]
}
