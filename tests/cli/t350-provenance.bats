#!/usr/bin/env bats
# envpin provenance: an in-toto Statement v1 with a SLSA provenance v1
# predicate in a DSSE envelope, verified by PyPI's securesystemslib (the
# in-toto project's DSSE implementation, with the key id it computes itself)
# and by the OpenSSL CLI over the DSSE pre-authentication encoding.

load helpers

PYT="${ENVPIN_PYTOOLS:-/opt/envpin-pytools}/bin"

setup() {
	common_setup
	mkdir -p "$T/payload"
	printf 'hello\n' >"$T/payload/a.txt"
	echo data >"$T/blob.bin"
	cat >"$T/m.json" <<-EOF
	{ "envpin": 1, "name": "prov", "source_date_epoch": 1767225600, "base": "scratch",
	  "layers": [ { "copy": [ { "src": "payload/", "dest": "/opt/p/" } ] },
	              { "fetch": [ { "url": "file://$T/blob.bin", "sha256": "$(sha256sum "$T/blob.bin" | cut -c1-64)", "dest": "/opt/blob.bin" } ] } ] }
	EOF
	D=$(envpin build -q -f "$T/m.json")
	envpin key generate -o "$T/k" >/dev/null
	envpin key generate -o "$T/other" >/dev/null
}
teardown() { common_teardown; }

# pae ENVELOPE OUT: the DSSE pre-authentication encoding, built with the shell
pae() {
	local type body
	type=$(jq -r .payloadType "$1")
	jq -r .payload "$1" | base64 -d >"$2.body"
	printf 'DSSEv1 %d %s %d ' "${#type}" "$type" "$(stat -c %s "$2.body")" >"$2"
	cat "$2.body" >>"$2"
}

@test "provenance: statement fields, every locked input with its digest" {
	run envpin provenance "$D" --key "$T/k.key" -o "$T/p.json"
	[ "$status" -eq 0 ]
	jq -r .payload "$T/p.json" | base64 -d >"$T/st.json"
	[ "$(jq -r .payloadType "$T/p.json")" = application/vnd.in-toto+json ]
	[ "$(jq -r ._type "$T/st.json")" = https://in-toto.io/Statement/v1 ]
	[ "$(jq -r .predicateType "$T/st.json")" = https://slsa.dev/provenance/v1 ]
	[ "$(jq -r '.subject[0].digest.sha256' "$T/st.json")" = "${D#sha256:}" ]
	[ "$(jq -r .predicate.runDetails.builder.version.envpin "$T/st.json")" = "$(envpin version | sed -n '1s/^envpin \([^ ]*\).*/\1/p')" ]
	bd=$(jq -c .predicate.buildDefinition "$T/st.json")
	[ "$(echo "$bd" | jq -r .internalParameters.manifest_digest)" = "$D" ]
	[ "$(echo "$bd" | jq -r .externalParameters.manifest.sha256)" = "sha256:$(sha256sum "$T/m.json" | cut -c1-64)" ]
	[ "$(echo "$bd" | jq -r .internalParameters.lock_digest)" = "sha256:$(sha256sum "$T/m.lock.json" | cut -c1-64)" ]
	# resolvedDependencies: the lock, the copy content, the fetched file
	deps=$(echo "$bd" | jq -c .resolvedDependencies)
	[ "$(echo "$deps" | jq length)" = 3 ]
	echo "$deps" | jq -e --arg s "$(sha256sum "$T/blob.bin" | cut -c1-64)" 'any(.[]; .digest.sha256 == $s and .uri == "file://'"$T"'/blob.bin")'
	echo "$deps" | jq -e --arg s "$(jq -r '.inputs.layers[0].content' "$T/m.lock.json" | cut -c8-)" 'any(.[]; .digest.sha256 == $s)'
	echo "$deps" | jq -e 'all(.[]; .digest.sha256 | test("^[0-9a-f]{64}$"))'
	# envpin's own check
	run envpin provenance --verify "$T/p.json" --key "$T/k.pub" "$D"
	[ "$status" -eq 0 ]
}

@test "provenance: securesystemslib and OpenSSL verify the DSSE envelope; one changed byte fails" {
	[ -x "$PYT/python" ] || skip "PyPI validators missing: run scripts/pytools.sh (make deps)"
	envpin provenance "$D" --key "$T/k.key" -o "$T/p.json"
	cat >"$T/check.py" <<-'PY'
	import json, sys
	from cryptography.hazmat.primitives.serialization import load_pem_public_key
	from securesystemslib.dsse import Envelope
	from securesystemslib.signer import SSlibKey
	env = Envelope.from_dict(json.load(open(sys.argv[1])))
	# the key id securesystemslib computes itself must be the envelope's
	key = SSlibKey.from_crypto(load_pem_public_key(open(sys.argv[2], "rb").read()))
	env.verify([key], 1)
	print("verified", key.keyid)
	PY
	run "$PYT/python" "$T/check.py" "$T/p.json" "$T/k.pub"
	[ "$status" -eq 0 ]
	[ "$output" = "verified $(jq -r '.signatures[0].keyid' "$T/p.json")" ]
	run "$PYT/python" "$T/check.py" "$T/p.json" "$T/other.pub"
	[ "$status" -ne 0 ]
	# OpenSSL over the PAE the shell builds
	pae "$T/p.json" "$T/pae"
	jq -r '.signatures[0].sig' "$T/p.json" | base64 -d >"$T/sig"
	openssl dgst -sha256 -verify "$T/k.pub" -signature "$T/sig" "$T/pae"
	run openssl dgst -sha256 -verify "$T/other.pub" -signature "$T/sig" "$T/pae"
	[ "$status" -ne 0 ]
	# one byte of the statement changed: every verifier refuses
	jq -r .payload "$T/p.json" | base64 -d | sed 's/Statement/Statemenu/' | base64 -w0 >"$T/b64"
	jq --rawfile p "$T/b64" '.payload = $p' "$T/p.json" >"$T/bad.json"
	pae "$T/bad.json" "$T/badpae"
	run openssl dgst -sha256 -verify "$T/k.pub" -signature "$T/sig" "$T/badpae"
	[ "$status" -ne 0 ]
	run "$PYT/python" "$T/check.py" "$T/bad.json" "$T/k.pub"
	[ "$status" -ne 0 ]
	run envpin provenance --verify "$T/bad.json" --key "$T/k.pub"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" = 1 ]
}

@test "provenance bad input: corrupt key, wrong passphrase, no lock: exit 2, one line, nothing written" {
	echo 'right' >"$T/pass"
	echo 'wrong' >"$T/wrong"
	envpin key generate -o "$T/e" --passphrase-file "$T/pass" >/dev/null
	run envpin provenance "$D" --key "$T/e.key" --passphrase-file "$T/wrong" -o "$T/out.json"
	[ "$status" -eq 2 ]
	[ "${#lines[@]}" = 1 ]
	[ ! -e "$T/out.json" ]
	printf -- '-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n' >"$T/corrupt.key"
	run envpin provenance "$D" --key "$T/corrupt.key" -o "$T/out.json"
	[ "$status" -eq 2 ]
	[ "${#lines[@]}" = 1 ]
	[ ! -e "$T/out.json" ]
	rm "$ENVPIN_STORE/cache/lock-${D#sha256:}.json"
	run envpin provenance "$D" --key "$T/k.key" -o "$T/out.json"
	[ "$status" -eq 2 ]
	[ "${#lines[@]}" = 1 ]
	[[ "$output" == *"has no lock"* ]]
	[ ! -e "$T/out.json" ]
	# the encrypted key works with its passphrase (after a rebuild records the lock)
	envpin build -q -f "$T/m.json" >/dev/null
	envpin provenance "$D" --key "$T/e.key" --passphrase-file "$T/pass" -o "$T/out.json"
	envpin provenance --verify "$T/out.json" --key "$T/e.pub" "$D" >/dev/null
}
