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
teardown() { common_teardown; }

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
	# steps a bundle cannot carry yet are named
	jq '.layers += [{"pip": ["six==1.16.0"]}]' "$T/p/m.json" >"$T/p/pip.json"
	run envpin vendor -f "$T/p/pip.json" -o "$T/b5"
	[ "$status" -eq 2 ]
	[[ "$output" == *"layers[2]: a pip step cannot be vendored yet"* ]]
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
	# the image does not depend on the commit: no blob of it names it
	for b in "$ENVPIN_STORE"/blobs/sha256/*; do
		run grep -c "$commit" "$b"
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
