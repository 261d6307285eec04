#!/usr/bin/env bats
# envpin unpack on honest images: the same tree as `umoci unpack` (type, mode,
# owner, size, link target, content hash, hardlink groups), whiteouts and
# opaque directories across layers applied, and the command's contract.

load helpers

setup() {
	common_setup
	MK="$TOP/tests/data/hostile/make.py"
}
teardown() { common_teardown; }

listing() { python3 "$MK" list "$1"; }

# umoci_rootfs LAYOUT TAG OUT: umoci's flattened rootfs of LAYOUT:TAG in OUT/rootfs
umoci_rootfs() {
	command -v umoci >/dev/null || skip "umoci not installed"
	umoci unpack --image "$1:$2" "$3" >/dev/null 2>&1
}

build_busybox_image() {
	"$TOP/tests/fixtures/busybox-rootfs.sh" base.tar
	local sha
	sha=$(sha256sum base.tar | cut -d' ' -f1)
	make_payload payload
	chmod 4755 payload/run.sh
	cat >m.json <<-JSON
	{"envpin": 1, "name": "u", "source_date_epoch": 1767225600,
	 "base": {"rootfs": "base.tar", "sha256": "$sha"},
	 "layers": [ {"copy": [ {"src": "payload/", "dest": "/opt/payload/"} ]},
	             {"copy": [ {"src": "payload/run.sh", "dest": "/usr/local/bin/"} ]} ],
	 "config": {"cmd": ["/bin/sh"]}}
	JSON
	envpin build -f m.json --tag unp >/dev/null
}

@test "unpack: an envpin image unpacks to the same tree as umoci unpack" {
	build_busybox_image
	run envpin unpack unp out
	[ "$status" -eq 0 ]
	[[ "$output" == *"2 layers"* || "$output" == *"3 layers"* ]]
	cp -a "$ENVPIN_STORE" layout
	umoci_rootfs layout unp bundle
	listing out >ours.txt
	listing bundle/rootfs >umoci.txt
	diff -u umoci.txt ours.txt
	grep -q '^bin/busybox f 0755 0:0 ' ours.txt
	grep -q '^opt/payload/sub/link l ---- 0:0 -> ../run.sh' ours.txt
	# hardlinks stay hardlinks
	grep -q '^opt/payload/sub/hard.txt f .*link-group=opt/payload/sub/a.txt' ours.txt
}

@test "unpack: whiteouts and opaque directories across layers match umoci" {
	python3 "$MK" image wh
	run envpin unpack ./wh out --json
	[ "$status" -eq 0 ]
	echo "$output" | python3 -c 'import json,sys; j=json.load(sys.stdin); assert j["layers"]==3 and j["whiteouts"]==4, j'
	[ ! -e out/etc/gone ]
	[ "$(cat out/etc/keep)" = changed ]
	[ -f out/var/lib ] && [ ! -e out/var/lib/x ]
	[ ! -e out/opt/app/old1 ] && [ ! -e out/opt/app/sub ] && [ -f out/opt/app/fresh ]
	[ "$(stat -c %a out/suid)" = 4755 ] && [ "$(stat -c %a out/tmp)" = 1777 ]
	umoci_rootfs wh wh bundle
	diff -u <(listing bundle/rootfs) <(listing out)
}

@test "unpack: an image umoci built with deletions (whiteouts) matches umoci" {
	command -v umoci >/dev/null || skip "umoci not installed"
	umoci init --layout lay >/dev/null
	umoci new --image lay:base >/dev/null
	umoci unpack --image lay:base b >/dev/null 2>&1
	mkdir -p b/rootfs/etc/conf.d b/rootfs/data
	echo a >b/rootfs/etc/conf.d/a
	echo b >b/rootfs/etc/conf.d/b
	echo keep >b/rootfs/data/keep
	ln -s /etc/conf.d b/rootfs/conf
	umoci repack --image lay:base b >/dev/null 2>&1
	rm -rf b/rootfs/etc/conf.d/a b/rootfs/data
	echo c >b/rootfs/etc/conf.d/c
	umoci repack --image lay:base b >/dev/null 2>&1
	run envpin unpack ./lay out --json
	[ "$status" -eq 0 ]
	[ ! -e out/etc/conf.d/a ] && [ ! -e out/data ] && [ -f out/etc/conf.d/c ]
	umoci_rootfs lay base ub
	diff -u <(listing ub/rootfs) <(listing out)
}

@test "unpack: refuses a non-empty DIR and a DIR that is a symlink; --help" {
	python3 "$MK" image wh
	mkdir full && touch full/x
	run envpin unpack ./wh full
	[ "$status" -eq 2 ]
	[[ "$output" == *"'full' is not empty"* ]]
	[ -f full/x ]
	mkdir real && ln -s real viasym
	run envpin unpack ./wh viasym
	[ "$status" -eq 2 ]
	[ -z "$(ls -A real)" ]
	run envpin unpack --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"usage: envpin unpack IMAGE DIR"* ]]
	run envpin unpack ./wh
	[ "$status" -eq 2 ]
	run envpin unpack no-such-image out
	[ "$status" -ne 0 ]
	[ ! -e out ]
}

@test "unpack: --no-same-owner leaves files to the caller and drops setuid" {
	python3 "$MK" image wh
	run envpin unpack ./wh out --no-same-owner
	[ "$status" -eq 0 ]
	[ "$(stat -c %a out/suid)" = 755 ]
}
