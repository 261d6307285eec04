#!/usr/bin/env bats
# What a hostile user (or a hostile registry) tried: each case fails cleanly,
# says what happened, and leaves the store as it was (issue 13, item 8).

load helpers

setup() {
	common_setup
	mkdir -p "$T/ok/payload"
	printf 'x\n' >"$T/ok/payload/x"
	cat >"$T/ok/m.json" <<-'JSON'
	{ "envpin": 1, "name": "seed", "source_date_epoch": 0, "base": "scratch",
	  "layers": [ { "copy": [ { "src": "payload/", "dest": "/p/" } ] } ] }
	JSON
}
teardown() { common_teardown; }

@test "a lock whose compressor is not an object exits 2 naming the file and the field" {
	"$ENVPIN" build -q -f "$T/ok/m.json" >/dev/null
	cp "$T/ok/m.lock.json" "$T/good.lock"
	for bad in '"x"' 5 null '[]' '{}' '{"name":5}' '{"name":"gzip","level":"9"}' \
		'{"name":"gzip","block_size":-1}' '{"name":"lzma"}'; do
		python3 - "$T/good.lock" "$T/ok/m.lock.json" "$bad" <<-'PY'
		import json, sys
		d = json.load(open(sys.argv[1]))
		d["compressor"] = json.loads(sys.argv[3])
		json.dump(d, open(sys.argv[2], "w"))
		PY
		run "$ENVPIN" build -f "$T/ok/m.json"
		echo "compressor $bad: status $status: $output"
		[ "$status" -eq 2 ]
		[[ "$output" == *"m.lock.json"* ]]
		[[ "$output" == *"field 'compressor'"* ]]
	done
}

@test "verify says 'unchecked', not ok, for a diff_id it could not hash (layer not gzip as its media type says)" {
	"$ENVPIN" build -q --compress none -o "$T/lay" -f "$T/ok/m.json" >/dev/null
	# the manifest now claims gzip for an uncompressed layer; digests stay consistent
	python3 - "$T/lay" <<-'PY'
	import hashlib, json, os, sys
	lay = sys.argv[1]
	idx = json.load(open(os.path.join(lay, "index.json")))
	d = idx["manifests"][0]
	m = json.load(open(os.path.join(lay, "blobs/sha256", d["digest"][7:])))
	m["layers"][0]["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
	b = json.dumps(m, separators=(",", ":")).encode()
	h = hashlib.sha256(b).hexdigest()
	open(os.path.join(lay, "blobs/sha256", h), "wb").write(b)
	d["digest"], d["size"] = "sha256:" + h, len(b)
	json.dump(idx, open(os.path.join(lay, "index.json"), "w"))
	PY
	run "$ENVPIN" verify --image "$T/lay"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"diff_id"*"unchecked"* ]]
	[ "$(grep -c 'diff_id.* ok$' <<<"$output")" -eq 0 ]
	run "$ENVPIN" verify --image "$T/lay" --json
	[ "$status" -eq 1 ]
	[ "$(jq -r '.items[2].diff_id_state' <<<"$output")" = unchecked ]
	[ "$(jq -r '.items[2].ok' <<<"$output")" = false ]
}

@test "gc removes a killed verify --rebuild's store, dead txn dirs and partial unpacks, and counts them; live ones stay" {
	# the seed build takes a while to compress, so the rebuild can be caught in the act
	head -c 64000000 /dev/urandom >"$T/ok/payload/big"
	D=$("$ENVPIN" build -q -f "$T/ok/m.json")
	"$ENVPIN" verify "$D" --rebuild -f "$T/ok/m.json" -q >/dev/null 2>&1 &
	vpid=$!
	for _ in $(seq 300); do
		compgen -G "$ENVPIN_STORE/tmp/rebuild-*/oci-layout" >/dev/null && break
		sleep 0.05
	done
	kill -9 "$vpid"
	wait "$vpid" || true
	compgen -G "$ENVPIN_STORE/tmp/rebuild-*/oci-layout" >/dev/null
	# a dead transaction and a dead unpack of a layer nobody is unpacking
	mkdir -p "$ENVPIN_STORE/tmp/txn-dead1" "$ENVPIN_STORE/rootfs"
	head -c 100000 /dev/zero >"$ENVPIN_STORE/tmp/txn-dead1/blob-0"
	: >"$ENVPIN_STORE/tmp/txn-dead1/.lock"
	hex=$(printf 'x' | sha256sum | cut -c1-64)
	mkdir -p "$ENVPIN_STORE/tmp/rootfs-$hex-abcdef/usr"
	head -c 100000 /dev/zero >"$ENVPIN_STORE/tmp/rootfs-$hex-abcdef/usr/f"
	# a live rebuild store (its lock held shared, as ep_store_open holds it) stays
	live="$ENVPIN_STORE/tmp/rebuild-live00"
	ENVPIN_STORE="$live" "$ENVPIN" build -q -f "$T/ok/m.json" >/dev/null
	flock -s "$live/lock" -c "touch '$T/held'; exec sleep 60" &
	hpid=$!
	for _ in $(seq 100); do [ -e "$T/held" ] && break; sleep 0.05; done
	run "$ENVPIN" gc --json
	kill "$hpid"
	wait "$hpid" || true
	echo "$output"
	[ "$status" -eq 0 ]
	# at least the two 100 kB files and the killed rebuild's blobs
	[ "$(jq .freed_bytes <<<"$output")" -gt 200000 ]
	[ "$(ls "$ENVPIN_STORE/tmp")" = rebuild-live00 ]
	# the image itself is untouched
	"$ENVPIN" verify "$D" -q
}

@test "opening the store removes a dead rebuild store; gc then still reports what the open freed" {
	"$ENVPIN" build -q -f "$T/ok/m.json" >/dev/null
	ENVPIN_STORE="$ENVPIN_STORE/tmp/rebuild-dead00" "$ENVPIN" build -q -f "$T/ok/m.json" >/dev/null
	[ -e "$ENVPIN_STORE/tmp/rebuild-dead00/oci-layout" ]
	run "$ENVPIN" gc --json
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq .freed_bytes <<<"$output")" -gt 0 ]
	[ -z "$(ls -A "$ENVPIN_STORE/tmp")" ]
	ENVPIN_STORE="$ENVPIN_STORE/tmp/rebuild-dead01" "$ENVPIN" build -q -f "$T/ok/m.json" >/dev/null
	"$ENVPIN" images >/dev/null
	[ -z "$(ls -A "$ENVPIN_STORE/tmp")" ]
}

@test "verify/export NAME: the tag NAME wins over a directory NAME here; a bare directory name is refused with './NAME'" {
	D=$("$ENVPIN" build -q --tag seed -f "$T/ok/m.json")
	# a directory called 'seed' holding another image
	mkdir -p "$T/other/payload"
	printf 'other\n' >"$T/other/payload/y"
	sed 's/"seed"/"other"/' "$T/ok/m.json" >"$T/other/m.json"
	O=$(ENVPIN_STORE="$T/s2" "$ENVPIN" build -q -o "$T/seed" -f "$T/other/m.json")
	[ "$O" != "$D" ]
	cd "$T"
	run "$ENVPIN" verify seed
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "${lines[-1]}" == "verified $D:"* ]]
	run "$ENVPIN" verify ./seed
	[ "$status" -eq 0 ]
	[[ "${lines[-1]}" == "verified $O:"* ]]
	run "$ENVPIN" export seed -o "$T/e.tar"
	[ "$status" -eq 0 ]
	[[ "$output" == *"of $D"* ]]
	run "$ENVPIN" export ./seed -o "$T/e2.tar"
	[ "$status" -eq 0 ]
	[[ "$output" == *"of $O"* ]]
	# only a directory: a clear error that names the way out
	mv "$T/seed" "$T/lay"
	for cmd in verify inspect; do
		run "$ENVPIN" $cmd lay
		echo "$cmd: $output"
		[ "$status" -eq 2 ]
		[[ "$output" == *"write './lay'"* ]]
	done
	run "$ENVPIN" export lay -o "$T/e3.tar"
	[ "$status" -eq 2 ]
	[[ "$output" == *"write './lay'"* ]]
	[ ! -e "$T/e3.tar" ]
}

@test "verify resolves its target once: --rebuild of an OCI layout works, of an archive is a usage error" {
	D=$("$ENVPIN" build -q -o "$T/lay" -f "$T/ok/m.json")
	run "$ENVPIN" verify "$T/lay" --rebuild -f "$T/ok/m.json"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"IDENTICAL"* ]]
	[[ "$output" != *"(null)"* ]]
	run "$ENVPIN" verify --image "$T/lay" "$D" --rebuild -f "$T/ok/m.json" --json
	[ "$status" -eq 0 ]
	[ "$(jq -r .rebuild.verdict <<<"$output")" = identical ]
	[ "$(jq -r .rebuild.image.digest <<<"$output")" = "$D" ]
	[ -z "$(ls -A "$ENVPIN_STORE/tmp")" ]
	"$ENVPIN" export "$D" -o "$T/a.tar"
	run "$ENVPIN" verify "$T/a.tar" --rebuild -f "$T/ok/m.json"
	echo "$output"
	[ "$status" -eq 2 ]
	[[ "$output" == *"archive"* ]]
}

@test "verify of an archive named without a '/' says to write './NAME'" {
	D=$("$ENVPIN" build -q -f "$T/ok/m.json")
	"$ENVPIN" export "$D" -o "$T/a.tar" >/dev/null
	cd "$T"
	run "$ENVPIN" verify a.tar
	echo "$output"
	[ "$status" -eq 2 ]
	[[ "$output" == *"write './a.tar'"* ]]
	run "$ENVPIN" verify ./a.tar
	[ "$status" -eq 0 ]
}
