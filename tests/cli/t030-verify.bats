#!/usr/bin/env bats
# envpin verify: every blob and every diff_id, the first bad blob named.

load helpers

setup() {
	common_setup
	make_payload "$T/payload"
	head -c 200000 /dev/urandom >"$T/payload/noise.bin"
	cat >"$T/m.json" <<-'JSON'
	{ "envpin": 1, "name": "v", "source_date_epoch": 1767225600, "base": "scratch",
	  "layers": [ { "copy": [ { "src": "payload/", "dest": "/opt/p/" } ] },
	              { "copy": [ { "src": "payload/run.sh", "dest": "/usr/bin/run.sh" } ] } ],
	  "config": { "env": { "GREETING": "hi" } } }
	JSON
	D=$("$ENVPIN" build -q -f "$T/m.json")
}
teardown() { common_teardown; }

blob() { echo "$ENVPIN_STORE/blobs/sha256/${1#sha256:}"; }

flip_byte() { # FILE OFFSET
	python3 - "$1" "$2" <<-'PY'
	import sys
	p, off = sys.argv[1], int(sys.argv[2])
	b = bytearray(open(p, 'rb').read())
	b[off % len(b)] ^= 0x01
	open(p, 'wb').write(bytes(b))
	PY
}

@test "a good image verifies; --json reports every blob" {
	run envpin verify "$D"
	[ "$status" -eq 0 ]
	[[ "${lines[-1]}" == "verified $D"* ]]
	run envpin verify "$D" --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq .ok)" = true ]
	[ "$(echo "$output" | jq '.items | length')" = 4 ]
	[ "$(echo "$output" | jq '[.items[] | select(.kind == "layer" and .diff_actual == .diff_id)] | length')" = 2 ]
}

@test "flipping one byte in any blob fails verify and names that blob" {
	cfg=$(jq -r .config.digest "$(blob "$D")")
	mapfile -t layers < <(jq -r '.layers[].digest' "$(blob "$D")")
	for b in "$D" "$cfg" "${layers[@]}"; do
		cp "$(blob "$b")" "$T/saved"
		chmod u+w "$(blob "$b")"
		flip_byte "$(blob "$b")" 100
		run envpin verify "$D"
		cp "$T/saved" "$(blob "$b")"
		echo "blob $b: status $status: $output"
		[ "$status" -eq 1 ]
		[[ "${lines[-1]}" == *"$b"* ]]
	done
	run envpin verify "$D"
	[ "$status" -eq 0 ]
}

@test "a layer whose compressed digest is right but whose diff_id is wrong is caught" {
	# Rewrite layer 2 with other content, give it a correct new digest in a new
	# manifest, but keep the config's diff_ids: only the uncompressed hash can tell.
	man=$(blob "$D")
	old=$(jq -r '.layers[1].digest' "$man")
	mkdir -p "$T/evil/usr/bin"
	printf '#!/bin/sh\necho evil\n' >"$T/evil/usr/bin/run.sh"
	tar -C "$T/evil" --numeric-owner -cf - usr | gzip -n >"$T/evil.tgz"
	new=sha256:$(sha256sum "$T/evil.tgz" | cut -d' ' -f1)
	size=$(stat -c %s "$T/evil.tgz")
	cp "$T/evil.tgz" "$(blob "$new")"
	jq -c --arg d "$new" --argjson s "$size" '.layers[1].digest = $d | .layers[1].size = $s' "$man" | tr -d '\n' >"$T/man2"
	m2=sha256:$(sha256sum "$T/man2" | cut -d' ' -f1)
	cp "$T/man2" "$(blob "$m2")"
	mkdir -p "$T/layout"
	cp -r "$ENVPIN_STORE/blobs" "$T/layout/"
	echo '{"imageLayoutVersion":"1.0.0"}' >"$T/layout/oci-layout"
	jq -n --arg d "$m2" --argjson s "$(stat -c %s "$T/man2")" \
		'{schemaVersion:2, manifests:[{mediaType:"application/vnd.oci.image.manifest.v1+json", digest:$d, size:$s}]}' \
		>"$T/layout/index.json"
	run envpin verify --image "$T/layout"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "${lines[-1]}" == *"$new"* ]]
	[[ "${lines[-1]}" == *"diff_id"* ]]
	[[ "$old" != "$new" ]]
}

@test "a missing blob is named" {
	l0=$(jq -r '.layers[0].digest' "$(blob "$D")")
	rm -f "$(blob "$l0")"
	run envpin verify "$D"
	[ "$status" -eq 1 ]
	[[ "${lines[-1]}" == *"$l0"* ]]
}

@test "verify --image accepts layouts and archives made by skopeo" {
	run envpin build -q -f "$T/m.json" -o "$T/lay" --tag v:1
	[ "$status" -eq 0 ]
	skopeo copy -q "oci:$T/lay:v:1" "oci-archive:$T/a.tar:v:1"
	skopeo copy -q "oci:$T/lay:v:1" "docker-archive:$T/d.tar:v:1"
	skopeo copy -q --format v2s2 "oci:$T/lay:v:1" "oci:$T/lay2:v:1"
	for p in "$T/lay" "$T/a.tar" "$T/d.tar" "$T/lay2"; do
		run envpin verify --image "$p"
		echo "$p: $output"
		[ "$status" -eq 0 ]
	done
	# and a corrupt docker-archive is caught
	python3 - "$T/d.tar" <<-'PY'
	import sys, tarfile, io
	src = tarfile.open(sys.argv[1])
	out = tarfile.open(sys.argv[1] + '.bad', 'w')
	for m in src.getmembers():
	    data = src.extractfile(m).read() if m.isfile() else None
	    if data is not None and len(data) > 2000 and not m.name.endswith('.json'):
	        data = bytearray(data); data[1500] ^= 1; data = bytes(data)
	    out.addfile(m, io.BytesIO(data) if data is not None else None)
	out.close()
	PY
	run envpin verify --image "$T/d.tar.bad"
	[ "$status" -eq 1 ]
}
