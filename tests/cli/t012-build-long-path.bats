#!/usr/bin/env bats
# Long host paths are not cut short anywhere their meaning matters.

load helpers

setup() { common_setup; }
teardown() { common_teardown; }

@test "a base rootfs under a path over 512 bytes: a changed tar is noticed on the next build" {
	# the sha256 of a base tar is cached by its path and stat; the cache id
	# once went through a 512-byte buffer, so that a long path pushed the
	# stat out of it and a changed tar hit the old digest
	local seg d i
	seg=$(printf 'd%.0s' $(seq 1 120))
	d="$T"
	for i in 1 2 3 4 5; do d="$d/$seg$i"; done
	mkdir -p "$d/root/etc" "$d/payload"
	[ "${#d}" -gt 600 ]
	printf 'one\n' >"$d/root/etc/v"
	printf 'x\n' >"$d/payload/x"
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$d/root" -cf "$d/base.tar" etc
	sha=$(sha256sum "$d/base.tar" | cut -d' ' -f1)
	cat >"$d/m.json" <<-JSON
	{ "envpin": 1, "name": "long", "source_date_epoch": 0,
	  "base": { "rootfs": "base.tar", "sha256": "$sha" },
	  "layers": [ { "copy": [ { "src": "payload/", "dest": "/p/" } ] } ] }
	JSON
	run "$ENVPIN" build -q -f "$d/m.json"
	echo "$output"
	[ "$status" -eq 0 ]
	# other bytes, same length, a new inode
	printf 'two\n' >"$d/root/etc/v"
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$d/root" -cf "$d/base.tar.new" etc
	mv "$d/base.tar.new" "$d/base.tar"
	[ "$(sha256sum "$d/base.tar" | cut -d' ' -f1)" != "$sha" ]
	run "$ENVPIN" build -q -f "$d/m.json"
	echo "$output"
	[ "$status" -eq 2 ]
	[[ "$output" == *"does not match the manifest"* ]]
}

@test "a base image's variable with a name over 255 bytes survives the manifest's env" {
	# merge_env once copied each base name into a 256-byte buffer and
	# dropped the variables whose names did not fit
	local long
	long=V$(printf 'N%.0s' $(seq 1 300))
	mkdir -p "$T/payload" && printf 'x\n' >"$T/payload/x"
	cat >"$T/a.json" <<-JSON
	{ "envpin": 1, "name": "a", "source_date_epoch": 0, "base": "scratch",
	  "layers": [ { "copy": [ { "src": "payload/", "dest": "/p/" } ] } ],
	  "config": { "env": { "$long": "kept", "SHORT": "kept" } } }
	JSON
	A=$("$ENVPIN" build -q -f "$T/a.json" -o "$T/lay")
	cat >"$T/b.json" <<-JSON
	{ "envpin": 1, "name": "b", "source_date_epoch": 0,
	  "base": { "oci": "$T/lay", "digest": "$A" },
	  "layers": [ { "copy": [ { "src": "payload/", "dest": "/q/" } ] } ],
	  "config": { "env": { "OTHER": "new" } } }
	JSON
	B=$("$ENVPIN" build -q -f "$T/b.json")
	cfg=$(jq -r .config.digest "$ENVPIN_STORE/blobs/sha256/${B#sha256:}")
	run jq -r '.config.Env[]' "$ENVPIN_STORE/blobs/sha256/${cfg#sha256:}"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"SHORT=kept"* ]]
	[[ "$output" == *"OTHER=new"* ]]
	[[ "$output" == *"$long=kept"* ]]
}

@test "verify --rebuild describes a changed symlink with its whole target" {
	# describe_entry once wrote into a 256-byte buffer: two long targets
	# that differ at the end were described alike
	local stem
	stem=/opt/$(printf 't%.0s' $(seq 1 300))
	mkdir -p "$T/w/payload"
	ln -s "$stem-old" "$T/w/payload/link"
	cat >"$T/w/m.json" <<-'JSON'
	{ "envpin": 1, "name": "ln", "source_date_epoch": 0, "base": "scratch",
	  "layers": [ { "copy": [ { "src": "payload/", "dest": "/d/" } ] } ] }
	JSON
	D=$("$ENVPIN" build -q -f "$T/w/m.json")
	ln -sfn "$stem-new" "$T/w/payload/link"
	run "$ENVPIN" verify "$D" --rebuild -f "$T/w/m.json" --json
	[ "$status" -eq 1 ]
	[ "$(echo "$output" | jq -r '.rebuild.paths[0].path')" = d/link ]
	[[ "$(echo "$output" | jq -r '.rebuild.paths[0].image')" == *" -> $stem-old" ]]
	[[ "$(echo "$output" | jq -r '.rebuild.paths[0].rebuilt')" == *" -> $stem-new" ]]
}
