#!/usr/bin/env bats
# copy through symlinks (issue 9 item 6): a copy destination is resolved
# inside the image built so far, following the lower layers' symlinks as
# Docker does, and never leaving the image's root.

load helpers

setup() {
	common_setup
	# a merged-/usr-like base: the busybox rootfs plus /usr/lib with
	# /lib -> usr/lib, an absolute link to /etc and a '..' chain
	"$TOP/tests/fixtures/busybox-rootfs.sh" "$T/bb.tar"
	mkdir -p "$T/root" "$T/payload/sub"
	tar -xf "$T/bb.tar" -C "$T/root"
	mkdir -p "$T/root/usr/lib" "$T/root/a/b"
	printf 'libc\n' >"$T/root/usr/lib/libc.so.6"
	ln -s usr/lib "$T/root/lib"
	ln -s /etc "$T/root/etc2"
	ln -s ../../../../.. "$T/root/a/b/up"
	ln -s loop2 "$T/root/loop1"
	ln -s loop1 "$T/root/loop2"
	tar -C "$T/root" --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 \
		-cf "$T/base.tar" .
	BASE_SHA=$(sha256sum "$T/base.tar" | cut -d' ' -f1)
	printf 'x\n' >"$T/payload/x.so"
	printf 'y\n' >"$T/payload/sub/y"
}
teardown() { common_teardown; }

manifest() {
	printf '{\n  "envpin": 1,\n  "source_date_epoch": 1767225600,\n  "base": { "rootfs": "base.tar", "sha256": "%s" },\n  "name": "t",\n  "layers": [\n%s\n  ]\n}\n' \
		"$BASE_SHA" "$2" >"$1"
}

@test "copy through symlinks: /lib -> usr/lib stays a link, the files land in /usr/lib" {
	manifest "$T/m.json" '    { "copy": [ { "src": "payload/x.so", "dest": "/lib/x.so" },
                { "src": "payload/sub/", "dest": "/lib/sub/" },
                { "src": "payload/x.so", "dest": "/etc2/x.conf" },
                { "src": "payload/x.so", "dest": "/a/b/up/top.txt" } ] }'
	run "$ENVPIN" build -f "$T/m.json"
	[ "$status" -eq 0 ]
	d=${lines[-1]}
	run "$ENVPIN" unpack "$d" "$T/out"
	[ "$status" -eq 0 ]
	[ -L "$T/out/lib" ]
	[ "$(readlink "$T/out/lib")" = usr/lib ]
	[ "$(cat "$T/out/usr/lib/x.so")" = x ]
	[ "$(cat "$T/out/usr/lib/sub/y")" = y ]
	[ "$(cat "$T/out/usr/lib/libc.so.6")" = libc ]
	# an absolute link means the image's /etc, never the host's
	[ "$(cat "$T/out/etc/x.conf")" = x ]
	[ ! -e /etc/x.conf ]
	[ -L "$T/out/etc2" ]
	# a '..' chain stops at the image's root
	[ "$(cat "$T/out/top.txt")" = x ]
	[ -L "$T/out/a/b/up" ]
	# the layer names the resolved paths only
	run tar -tzf "$ENVPIN_STORE/blobs/sha256/$("$ENVPIN" inspect "$d" --json | jq -r '.layers[1].digest' | cut -d: -f2)"
	[ "$status" -eq 0 ]
	[[ "$output" == *"usr/lib/x.so"* ]]
	[[ "$output" != *$'\n'"lib/"* && "$output" != "lib/"* ]]
}

@test "copy through symlinks: a link made by an earlier layer of the same build is followed" {
	mkdir -p "$T/links"
	ln -s /srv "$T/links/data"
	manifest "$T/m.json" '    { "copy": [ { "src": "links/data", "dest": "/data" } ] },
    { "copy": [ { "src": "payload/x.so", "dest": "/data/x" } ] }'
	run "$ENVPIN" build -f "$T/m.json"
	[ "$status" -eq 0 ]
	d=${lines[-1]}
	run "$ENVPIN" unpack "$d" "$T/out"
	[ "$status" -eq 0 ]
	[ -L "$T/out/data" ]
	[ "$(cat "$T/out/srv/x")" = x ]
	# and the same manifest builds the same digest in another store
	run "$ENVPIN" --store "$T/s2" build -f "$T/m.json"
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = "$d" ]
}

@test "copy through symlinks: a symlink loop is refused, naming the item" {
	manifest "$T/ok.json" '    { "copy": [ { "src": "payload/x.so", "dest": "/lib/x" } ] }'
	run "$ENVPIN" build -f "$T/ok.json"
	[ "$status" -eq 0 ]
	manifest "$T/m.json" '    { "copy": [ { "src": "payload/x.so", "dest": "/loop1/x" } ] }'
	before=$(tree_state "$ENVPIN_STORE")
	run "$ENVPIN" build -f "$T/m.json"
	[ "$status" -eq 2 ]
	[[ "$output" == *"m.json:7: layers[0].copy[0]"*"more than 40 symlinks"* ]]
	[ "$(tree_state "$ENVPIN_STORE")" = "$before" ]
}
