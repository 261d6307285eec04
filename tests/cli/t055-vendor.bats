#!/usr/bin/env bats
# envpin vendor (docs/vendor.md): a bundle holds an image and every input it
# was built from, named by sha256; `verify --rebuild --from` and
# `build --from` rebuild from it with no network (unshare -n); a damaged file
# is named by `vendor --check` and by the rebuild.  And the lock as a
# complete record (docs/lock.md): envpin's source commit and tarball digest.

load helpers
bats_require_minimum_version 1.5.0

setup_file() {
	export VT
	VT=$(mktemp -d /tmp/ep055.XXXXXX)
	"$TOP/tests/fixtures/busybox-rootfs.sh" "$VT/base.tar"
}
teardown_file() { rm -rf "${VT:-/nonexistent}"; }

# project DIR: a busybox-rootfs manifest with a copy step (files, a
# symlink, an executable) and a fetch step (a file:// URL outside DIR)
project() {
	local d=$1 sha fs
	mkdir -p "$d/app/sub" "$d/shared"
	cp "$VT/base.tar" "$d/base.tar"
	sha=$(sha256sum "$d/base.tar" | cut -d' ' -f1)
	printf '#!/bin/sh\necho app\n' >"$d/app/run.sh"
	chmod 755 "$d/app/run.sh"
	printf 'one\n' >"$d/app/sub/one.txt"
	ln -s run.sh "$d/app/link"
	printf 'hello\n' >"$d/shared/hello.txt"
	printf 'fetched bytes\n' >"$T/fetched.bin"
	fs=$(sha256sum "$T/fetched.bin" | cut -d' ' -f1)
	cat >"$d/m.json" <<-JSON
	{ "envpin": 1, "name": "vend", "source_date_epoch": 1767225600,
	  "base": { "rootfs": "base.tar", "sha256": "$sha" },
	  "layers": [ { "copy": [ { "src": "app/", "dest": "/opt/app/" },
	                          { "src": "shared/hello.txt", "dest": "/etc/hello.txt" } ] },
	              { "fetch": [ { "url": "file://$T/fetched.bin", "sha256": "$fs", "dest": "/opt/f.bin" } ] } ] }
	JSON
}

need_netns() { unshare -n true 2>/dev/null || skip "unshare -n is not permitted here"; }

setup() {
	common_setup
	project "$T/p"
	D=$("$ENVPIN" build -q -f "$T/p/m.json")
}
teardown() {
	if [ -s "$T/mirror.pid" ]; then kill "$(cat "$T/mirror.pid")" 2>/dev/null || true; fi
	common_teardown
}

@test "vendor: every input by sha256; offline verify --rebuild --from is identical" {
	need_netns
	run envpin vendor "$D" -o "$T/bundle" --json
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r .image)" = "$D" ]
	# what the bundle holds: the context, the fetched file, envpin's source
	run jq -r '.files | keys[]' "$T/bundle/envpin-bundle.json"
	[[ "$output" == *"context/m.json"* && "$output" == *"context/m.lock.json"* ]]
	[[ "$output" == *"context/base.tar"* && "$output" == *"context/app/run.sh"* ]]
	[[ "$output" == *"context/shared/hello.txt"* && "$output" == *"inputs/fetch/"* ]]
	[[ "$output" == *"source/envpin-"*".tar"* ]]
	[ "$(jq -r '.files["context/app/link"].symlink' "$T/bundle/envpin-bundle.json")" = run.sh ]
	[ "$(jq -r '.files["context/app/run.sh"].mode' "$T/bundle/envpin-bundle.json")" = 0755 ]
	# each file's blob is named by its own sha256
	for f in context/app/run.sh context/base.tar; do
		h=$(jq -r --arg f "$f" '.files[$f].sha256' "$T/bundle/envpin-bundle.json")
		[ "sha256:$(sha256sum "$T/bundle/blobs/sha256/${h#sha256:}" | cut -d' ' -f1)" = "$h" ]
	done
	# and it is an OCI layout that holds the image
	jq -e --arg d "$D" '[.manifests[].digest] | index($d) != null' "$T/bundle/index.json"
	run envpin vendor --check "$T/bundle"
	[ "$status" -eq 0 ]
	[[ "$output" == *"intact"* ]]
	# the reviewer: no project, no fetched file, an empty store, no network
	rm -rf "$T/p" "$T/fetched.bin"
	run env ENVPIN_STORE="$T/reviewer" unshare -n "$ENVPIN" verify "$D" --rebuild --from "$T/bundle"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"IDENTICAL (same bytes)"* ]]
	[ -z "$(ls -A "$T/reviewer/tmp")" ]
	# the digest may be left out: the bundle's image
	run env ENVPIN_STORE="$T/reviewer" unshare -n "$ENVPIN" verify --rebuild --from "$T/bundle" --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r .rebuild.verdict)" = identical ]
	# another image than the bundle's is refused
	run env ENVPIN_STORE="$T/reviewer" "$ENVPIN" verify sha256:0000 --rebuild --from "$T/bundle"
	[ "$status" -eq 2 ]
	[[ "$output" == *"holds image $D"* ]]
}

@test "vendor to a .tar; build --from it offline gives the digest (checked against its lock)" {
	need_netns
	run envpin vendor -f "$T/p/m.json" -o "$T/b.tar"
	[ "$status" -eq 0 ]
	tar -tf "$T/b.tar" | grep -qx './envpin-bundle.json'
	# the same inputs give the same tar
	run envpin vendor -f "$T/p/m.json" -o "$T/b2.tar"
	cmp "$T/b.tar" "$T/b2.tar"
	rm -rf "$T/p" "$T/fetched.bin"
	run env ENVPIN_STORE="$T/reviewer" unshare -n "$ENVPIN" build -q --from "$T/b.tar"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${output##*$'\n'}" = "$D" ]
	run env ENVPIN_STORE="$T/reviewer" "$ENVPIN" verify -q "$D"
	[ "$status" -eq 0 ]
	run env ENVPIN_STORE="$T/reviewer" "$ENVPIN" vendor --check "$T/b.tar"
	[ "$status" -eq 0 ]
	[ -z "$(ls -A "$T/reviewer/tmp")" ]
}

@test "a tampered or missing file in the bundle is named by vendor --check and by the rebuild" {
	envpin vendor "$D" -o "$T/bundle" >/dev/null
	h=$(jq -r '.files["context/app/sub/one.txt"].sha256' "$T/bundle/envpin-bundle.json")
	chmod u+w "$T/bundle/blobs/sha256/${h#sha256:}"
	printf 'two\n' >"$T/bundle/blobs/sha256/${h#sha256:}"
	run envpin vendor --check "$T/bundle"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"BAD context/app/sub/one.txt (blobs/sha256/${h#sha256:}): its content hashes to"* ]]
	[[ "$output" == *"DAMAGED"* ]]
	run envpin vendor --check "$T/bundle" --json
	[ "$status" -eq 1 ]
	[ "$(echo "$output" | jq -r '.bad[0].path')" = context/app/sub/one.txt ]
	run env ENVPIN_STORE="$T/reviewer" "$ENVPIN" verify "$D" --rebuild --from "$T/bundle"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"context/app/sub/one.txt (blobs/sha256/${h#sha256:}) is damaged"* ]]
	run env ENVPIN_STORE="$T/reviewer" "$ENVPIN" build --from "$T/bundle"
	[ "$status" -eq 1 ]
	[[ "$output" == *"context/app/sub/one.txt"*"is damaged"* ]]
	# a missing blob is named too
	printf 'one\n' >"$T/bundle/blobs/sha256/${h#sha256:}"
	h=$(jq -r '.files["context/base.tar"].sha256' "$T/bundle/envpin-bundle.json")
	rm "$T/bundle/blobs/sha256/${h#sha256:}"
	run envpin vendor --check "$T/bundle"
	[ "$status" -eq 1 ]
	[[ "$output" == *"BAD context/base.tar: its blob is missing"* ]]
}

@test "a bundle index that would write outside the context is refused before anything is written" {
	envpin vendor "$D" -o "$T/bundle" >/dev/null
	mkdir "$T/outside"
	jq --arg o "$T/outside" '.files["context/evil"] = {"symlink": $o} |
		.files["context/evil/x"] = .files["context/app/run.sh"] |
		.files["context/../y"] = .files["context/app/run.sh"]' \
		"$T/bundle/envpin-bundle.json" >"$T/i" && mv "$T/i" "$T/bundle/envpin-bundle.json"
	run envpin vendor --check "$T/bundle"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"BAD context/evil/x: a path below a symlink of the index"* ]]
	[[ "$output" == *"BAD context/../y: unsafe path in the index"* ]]
	run env ENVPIN_STORE="$T/reviewer" "$ENVPIN" verify --rebuild --from "$T/bundle"
	[ "$status" -eq 1 ]
	[ -z "$(ls -A "$T/outside")" ]
}

@test "vendor refuses what it cannot carry and an image its lock does not record" {
	run envpin vendor "$D" -o "$T/bundle"
	[ "$status" -eq 0 ]
	run envpin vendor "$D" -o "$T/bundle"
	[ "$status" -eq 2 ]
	[[ "$output" == *"exists"* ]]
	# another image than the lock's
	printf 'changed\n' >"$T/p/app/sub/one.txt"
	D2=$("$ENVPIN" build -q -f "$T/p/m.json" --tag other)
	run envpin vendor "$D" -f "$T/p/m.json" -o "$T/b3"
	[ "$status" -eq 2 ]
	[[ "$output" == *"records image $D2, not $D"* ]]
	[ ! -e "$T/b3" ]
	# without -f: the manifest the store recorded at build time
	run envpin vendor other -o "$T/b4"
	[ "$status" -eq 0 ]
	[ "$(jq -r .image.digest "$T/b4/envpin-bundle.json")" = "$D2" ]
	# a stage's debian base is carried from its lock entry: a lock without
	# one is named before any mmdebstrap runs (make test-vendor-long carries one)
	jq '.stages = {"deb": {"base": {"debian": {"suite": "bookworm"}}}}' "$T/p/m.json" >"$T/p/deb.json"
	jq 'del(.stages)' "$T/p/m.lock.json" >"$T/p/deb.lock.json"
	run envpin vendor "$D2" -f "$T/p/deb.json" -o "$T/b5"
	echo "$output"
	[ "$status" -eq 2 ]
	[[ "$output" == *"the lock has no package list for stages.deb.base.debian: build first"* ]]
	[ ! -e "$T/b5" ]
	run envpin vendor -o "$T/b6"
	[ "$status" -eq 2 ]
	run envpin vendor --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"--check"* ]]
}

@test "the lock records envpin's source; another envpin is a warning, --strict an error, and the verdict says it" {
	local commit
	commit=$(jq -r .envpin_source.commit "$T/p/m.lock.json")
	[[ "$(jq -r .envpin_source.tarball_sha256 "$T/p/m.lock.json")" == sha256:* ]]
	# the recorded digest is git archive's (make dist), when this checkout has the commit
	if git -C "$TOP" cat-file -e "$commit" 2>/dev/null; then
		[ "sha256:$(git -C "$TOP" archive --format=tar --prefix="envpin-${commit:0:12}/" "$commit" | sha256sum | cut -d' ' -f1)" = \
			"$(jq -r .envpin_source.tarball_sha256 "$T/p/m.lock.json")" ]
	fi
	"$ENVPIN" version | grep -q "^source $commit"
	# the image does not depend on the commit: no blob of it names it (the
	# lock kept beside the image for sbom/provenance does, by design)
	local d b
	d=$("$ENVPIN" inspect "$D" --json |
		jq -r '.digest, .config_digest, .layers[].digest')
	[ -n "$d" ]
	for b in $d; do
		run grep -c "$commit" "$ENVPIN_STORE/blobs/sha256/${b#sha256:}"
		[ "$output" = 0 ]
	done
	jq '.envpin_source.commit = "0123456789abcdef0123456789abcdef01234567"' "$T/p/m.lock.json" >"$T/l" &&
		mv "$T/l" "$T/p/m.lock.json"
	run envpin build -q --locked -f "$T/p/m.json"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"warning: the lock was written by envpin "*"(commit 0123456789ab"*"this is envpin"* ]]
	[ "${output##*$'\n'}" = "$D" ]
	run envpin build -q --locked --strict -f "$T/p/m.json"
	[ "$status" -eq 2 ]
	[[ "$output" == *"--locked --strict: the lock was written by envpin"* ]]
	run envpin build -q --strict -f "$T/p/m.json"
	[ "$status" -eq 2 ]
	run envpin verify "$D" --rebuild -f "$T/p/m.json"
	[ "$status" -eq 0 ]
	[[ "$output" == *"IDENTICAL"*"Note: the lock was written by envpin"*"(commit 0123456789ab"* ]]
	run envpin verify "$D" --rebuild -f "$T/p/m.json" --json
	[ "$(echo "$output" | jq -r .rebuild.envpin_source.lock.commit)" = 0123456789abcdef0123456789abcdef01234567 ]
	[ "$(echo "$output" | jq -r .rebuild.envpin_source.rebuild.commit)" = "$commit" ]
}

@test "a registry base travels as its blobs: the offline rebuild needs no registry" {
	command -v docker-registry >/dev/null || skip "docker-registry not installed"
	command -v skopeo >/dev/null || skip "skopeo not installed"
	need_netns
	local fix="$TOP/tests/fixtures" addr
	addr=$("$fix/registry.sh" start "$T/reg")
	"$fix/oci-from-rootfs.sh" "$VT/base.tar" "$T/oci" bb >/dev/null
	skopeo copy -q --dest-tls-verify=false --format oci "oci:$T/oci:bb" "docker://$addr/fix/bb:v1"
	mkdir -p "$T/ri/app" && printf 'x\n' >"$T/ri/app/x"
	# a stage on the same registry base: its blobs travel too
	cat >"$T/ri/m.json" <<-JSON
	{ "envpin": 1, "name": "regbase", "source_date_epoch": 1767225600,
	  "base": { "image": "$addr/fix/bb:v1" },
	  "stages": { "s": { "base": { "image": "$addr/fix/bb:v1" } } },
	  "layers": [ { "copy": [ { "src": "app/", "dest": "/app/" },
	                          { "from": "s", "src": "/bin/busybox", "dest": "/opt/bb" } ] } ] }
	JSON
	run envpin build -q -f "$T/ri/m.json"
	[ "$status" -eq 0 ] || { "$fix/registry.sh" stop "$T/reg"; echo "$output"; false; }
	R=${output##*$'\n'}
	run envpin vendor "$R" -o "$T/rb"
	[ "$status" -eq 0 ]
	"$fix/registry.sh" stop "$T/reg"
	[ "$(jq -r .base_image.digest "$T/rb/envpin-bundle.json")" = "$(jq -r .inputs.base.digest "$T/ri/m.lock.json")" ]
	[ "$(jq -r .stage_base_images.s.digest "$T/rb/envpin-bundle.json")" = "$(jq -r .stages.s.inputs.base.digest "$T/ri/m.lock.json")" ]
	[ "$(jq '[.files | keys[] | select(startswith("inputs/base-image/"))] | length' "$T/rb/envpin-bundle.json")" -ge 3 ]
	run env ENVPIN_STORE="$T/reviewer" unshare -n "$ENVPIN" verify "$R" --rebuild --from "$T/rb"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"IDENTICAL (same bytes)"* ]]
	run env ENVPIN_STORE="$T/reviewer2" unshare -n "$ENVPIN" build -q --from "$T/rb"
	[ "$status" -eq 0 ]
	[ "${output##*$'\n'}" = "$R" ]
}

# py_rootfs OUT: a small rootfs with the host's python3.11 (as t600-pip)
py_rootfs() {
	local r="$T/pyroot" lib=usr/lib/x86_64-linux-gnu
	mkdir -p "$r/usr/bin" "$r/$lib" "$r/usr/lib64" "$r/usr/lib/python3.11" "$r/tmp" "$r/dev"
	cp /usr/bin/python3.11 "$r/usr/bin/" && ln -s python3.11 "$r/usr/bin/python3"
	for l in libm.so.6 libz.so.1 libexpat.so.1 libc.so.6 ld-linux-x86-64.so.2; do cp -L "/$lib/$l" "$r/$lib/"; done
	ln -s ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$r/usr/lib64/ld-linux-x86-64.so.2"
	ln -s usr/lib "$r/lib" && ln -s usr/lib64 "$r/lib64" && ln -s usr/bin "$r/bin"
	tar -C /usr/lib/python3.11 --exclude=test --exclude=__pycache__ --exclude=idlelib --exclude=tkinter \
		--exclude=ensurepip --exclude=lib2to3 --exclude=pydoc_data --exclude='config-3.11-*' \
		--exclude=distutils --exclude=unittest --exclude=dist-packages -cf - encodings codecs.py abc.py \
		os.py stat.py posixpath.py genericpath.py _collections_abc.py io.py site.py _sitebuiltins.py |
		tar -C "$r/usr/lib/python3.11" -xf -
	tar -C "$r" --sort=name --mtime=@1700000000 --owner=0 --group=0 --numeric-owner --format=pax \
		--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -cf "$1" .
	rm -rf "$r"
}

@test "pip wheels travel in the bundle: the offline rebuild downloads nothing" {
	[ -x /usr/bin/python3.11 ] && /usr/bin/python3 -m pip --version >/dev/null 2>&1 || skip "needs /usr/bin/python3.11 with pip"
	need_netns
	mkdir -p "$T/py"
	py_rootfs "$T/py/py.tar"
	# and a stage's pip step: its wheel travels as the image's does
	local pysha
	pysha=$(sha256sum "$T/py/py.tar" | cut -d' ' -f1)
	cat >"$T/py/m.json" <<-JSON
	{ "envpin": 1, "name": "pyv", "source_date_epoch": 1767225600,
	  "base": { "rootfs": "py.tar", "sha256": "$pysha" },
	  "stages": { "w": { "base": { "rootfs": "py.tar", "sha256": "$pysha" },
	                     "layers": [ { "pip": [ "idna==3.6" ] } ] } },
	  "layers": [ { "pip": [ "six==1.16.0" ] },
	              { "copy": [ { "from": "w", "src": "/usr/local/lib/python3.11/dist-packages/idna/", "dest": "/opt/idna/" } ] } ] }
	JSON
	run envpin build -q -f "$T/py/m.json"
	[ "$status" -eq 0 ] || skip "no PyPI here: $output"
	P=${output##*$'\n'}
	run envpin vendor "$P" -o "$T/pyb"
	[ "$status" -eq 0 ]
	jq -e '.files["inputs/wheels/six-1.16.0-py2.py3-none-any.whl"].sha256 ==
		"sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"' "$T/pyb/envpin-bundle.json"
	jq -e '.files["inputs/wheels/idna-3.6-py3-none-any.whl"].sha256 ==
		("sha256:" + (input.stages.w.inputs.layers[0].wheels[0].sha256))' "$T/pyb/envpin-bundle.json" "$T/py/m.lock.json"
	rm -rf "$T/py"
	run env ENVPIN_STORE="$T/reviewer" ENVPIN_HOST_PYTHON=/nonexistent unshare -n "$ENVPIN" verify "$P" --rebuild --from "$T/pyb"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"IDENTICAL (same bytes)"* ]]
}

# apt_base DIR: a local Debian mirror on loopback (tests/fixtures/apt-mirror.py,
# as t060-apt) and a bookworm minbase (mmdebstrap) whose sources.list names it
apt_base() {
	local a=$1
	mkdir -p "$a/mirror"
	python3 "$TOP/tests/fixtures/apt-mirror.py" --root "$a/mirror" --addr-file "$a/addr" \
		>/dev/null 2>"$a/mirror.err" 3>&- &
	echo $! >"$T/mirror.pid"
	for _ in $(seq 50); do [ -s "$a/addr" ] && break; sleep 0.1; done
	[ -s "$a/addr" ]
	SOURCE_DATE_EPOCH=1767225600 mmdebstrap --quiet --variant=minbase --format=tar \
		--customize-hook="echo 'deb http://$(cat "$a/addr")/debian bookworm main' >\"\$1/etc/apt/sources.list\"" \
		bookworm "$a/base.tar" http://deb.debian.org/debian >"$a/mmdebstrap.log" 2>&1
}

@test "apt steps, of the image and of a stage, travel as their .debs: the offline rebuild over an empty store is identical" {
	[ "$(id -u)" = 0 ] && command -v runc >/dev/null && command -v mmdebstrap >/dev/null &&
		command -v gpgv >/dev/null || skip "needs root, runc, mmdebstrap and gpgv"
	curl -sfI -m 20 http://deb.debian.org/debian/dists/bookworm/InRelease >/dev/null || skip "needs deb.debian.org"
	need_netns
	local a="$T/apt" sha n
	apt_base "$a"
	sha=$(sha256sum "$a/base.tar" | cut -d' ' -f1)
	cat >"$a/m.json" <<-JSON
	{ "envpin": 1, "name": "aptv", "source_date_epoch": 1767225600,
	  "base": { "rootfs": "base.tar", "sha256": "$sha" },
	  "stages": { "pager": { "base": { "rootfs": "base.tar", "sha256": "$sha" },
	                         "layers": [ { "apt": [ "less" ] } ] } },
	  "layers": [ { "apt": [ "jq" ] },
	              { "copy": [ { "from": "pager", "src": "/usr/bin/less", "dest": "/usr/local/bin/less" } ] } ] }
	JSON
	run envpin build -q --compress none -f "$a/m.json"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	A=${output##*$'\n'}
	run envpin vendor "$A" -o "$T/ab"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	# the mirror is gone from here on
	kill "$(cat "$T/mirror.pid")" && rm "$T/mirror.pid"
	# every .deb of both apt steps, under its pool name, by the lock's sha256
	n=0
	while read -r f h; do
		[ "$(jq -r --arg f "inputs/apt/${f##*/}" '.files[$f].sha256' "$T/ab/envpin-bundle.json")" = "sha256:$h" ]
		n=$((n + 1))
	done < <(jq -r '(.inputs.layers[0].debs[], .stages.pager.inputs.layers[0].debs[]) | "\(.filename) \(.sha256)"' "$a/m.lock.json")
	[ "$n" -ge 3 ]
	jq -e '.files | keys | any(startswith("inputs/apt/less_"))' "$T/ab/envpin-bundle.json"
	rm -rf "$a"
	run env ENVPIN_STORE="$T/reviewer" unshare -n "$ENVPIN" verify "$A" --rebuild --from "$T/ab"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"IDENTICAL (same bytes)"* ]]
}
