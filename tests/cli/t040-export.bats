#!/usr/bin/env bats
# envpin export: archives that skopeo, umoci, podman and docker accept,
# keeping the manifest digest and the config digest (Docker's image ID).
# The default archive is an OCI layout that also carries docker's
# manifest.json, so that one file suits every tool.

load helpers

setup() {
	common_setup
	make_payload "$T/payload"
	cat >"$T/m.json" <<-'JSON'
	{ "envpin": 1, "name": "exp", "source_date_epoch": 1767225600, "base": "scratch",
	  "layers": [ { "copy": [ { "src": "payload/", "dest": "/opt/p/" } ] } ],
	  "config": { "env": { "GREETING": "hi" }, "cmd": [ "/opt/p/run.sh" ] } }
	JSON
	D=$("$ENVPIN" build -q -f "$T/m.json")
	CFG=$(jq -r .config.digest "$ENVPIN_STORE/blobs/sha256/${D#sha256:}")
}
teardown() { common_teardown; }

@test "default archive: skopeo sees the same manifest and config digests as oci and docker archive; umoci unpacks it" {
	run envpin export "$D" -o "$T/img.tar"
	[ "$status" -eq 0 ]
	[[ "$output" == *"oci+docker archive"* ]]
	tar -tf "$T/img.tar" | grep -qx manifest.json
	tar -tf "$T/img.tar" | grep -qx index.json
	run skopeo inspect --config --raw "docker-archive:$T/img.tar"
	[ "$status" -eq 0 ]
	[ "sha256:$(printf '%s' "$output" | sha256sum | cut -d' ' -f1)" = "$CFG" ]
	run skopeo inspect --raw "oci-archive:$T/img.tar"
	[ "$status" -eq 0 ]
	[ "sha256:$(printf '%s' "$output" | sha256sum | cut -d' ' -f1)" = "$D" ]
	run skopeo inspect --config --raw "oci-archive:$T/img.tar"
	[ "sha256:$(printf '%s' "$output" | sha256sum | cut -d' ' -f1)" = "$CFG" ]
	skopeo copy -q "oci-archive:$T/img.tar" "oci:$T/lay:x"
	run umoci unpack --rootless --image "$T/lay:x" "$T/bundle"
	[ "$status" -eq 0 ]
	[ "$(cat "$T/bundle/rootfs/opt/p/sub/a.txt")" = data ]
	[ -L "$T/bundle/rootfs/opt/p/sub/link" ]
	# the same image exported twice gives the same archive bytes; 'docker' names the default
	envpin export "$D" --format docker -o "$T/img2.tar"
	cmp "$T/img.tar" "$T/img2.tar"
	# --format oci is the bare layout
	envpin export "$D" --format oci -o "$T/bare.tar"
	run skopeo inspect --raw "oci-archive:$T/bare.tar"
	[ "sha256:$(printf '%s' "$output" | sha256sum | cut -d' ' -f1)" = "$D" ]
	run tar -tf "$T/bare.tar"
	[[ "$output" != *manifest.json* ]]
	run envpin export "$D" --format tarball -o "$T/bad.tar"
	[ "$status" -eq 2 ]
	# and the archive verifies
	run envpin verify --image "$T/img.tar"
	[ "$status" -eq 0 ]
}

@test "docker archive: skopeo reads it; config digest is the image ID" {
	run envpin export "$D" --format docker --tag envpin/exp:1 -o "$T/d.tar"
	[ "$status" -eq 0 ]
	tar -tf "$T/d.tar" | grep -qx manifest.json
	[ "$(tar -xOf "$T/d.tar" manifest.json | jq -r '.[0].RepoTags[0]')" = envpin/exp:1 ]
	run skopeo inspect --config --raw "docker-archive:$T/d.tar"
	[ "$status" -eq 0 ]
	[ "sha256:$(printf '%s' "$output" | sha256sum | cut -d' ' -f1)" = "$CFG" ]
}

@test "podman load accepts both archives with the config digest as image ID" {
	command -v podman >/dev/null || skip "podman is not installed"
	envpin export "$D" --format docker --tag envpin/exp:1 -o "$T/d.tar"
	envpin export "$D" --format oci --tag envpin/exp:2 -o "$T/o.tar"
	export CONTAINERS_STORAGE_CONF="$T/storage.conf"
	printf '[storage]\ndriver = "vfs"\nrunroot = "%s/run"\ngraphroot = "%s/graph"\n' "$T" "$T" >"$CONTAINERS_STORAGE_CONF"
	run podman load -i "$T/d.tar"
	echo "$output"
	[ "$status" -eq 0 ]
	run podman load -i "$T/o.tar"
	echo "$output"
	[ "$status" -eq 0 ]
	run podman images --no-trunc --format '{{.ID}}'
	[[ "$output" == *"${CFG#sha256:}"* ]]
}

@test "a real Docker Engine loads the default archive and runs the payload with the configured env" {
	[ "$(id -u)" = 0 ] || skip "dockerd needs root"
	command -v dockerd >/dev/null || skip "docker.io is not installed"
	"$TOP/tests/fixtures/busybox-rootfs.sh" "$T/base.tar"
	sha=$(sha256sum "$T/base.tar" | cut -d' ' -f1)
	cat >"$T/d.json" <<-JSON
	{ "envpin": 1, "name": "dock", "source_date_epoch": 1767225600,
	  "base": { "rootfs": "base.tar", "sha256": "$sha" },
	  "layers": [ { "copy": [ { "src": "payload/", "dest": "/opt/p/" } ] } ],
	  "config": { "env": { "GREETING": "from-the-manifest" }, "cmd": [ "/opt/p/run.sh" ] } }
	JSON
	D2=$("$ENVPIN" build -q -f "$T/d.json")
	CFG2=$(jq -r .config.digest "$ENVPIN_STORE/blobs/sha256/${D2#sha256:}")
	envpin export "$D2" --tag envpin/dock:1 -o "$T/dock.tar"
	run skopeo inspect --raw "oci-archive:$T/dock.tar"
	[ "sha256:$(printf '%s' "$output" | sha256sum | cut -d' ' -f1)" = "$D2" ]
	DD=$(mktemp -d /tmp/epd.XXXXXX)
	"$TOP/tests/fixtures/dockerd.sh" start "$DD" >/dev/null
	. "$DD/env"
	run docker load -i "$T/dock.tar"
	echo "$output"
	load_status=$status
	id=$(docker image inspect --format '{{.Id}}' envpin/dock:1 2>&1 || true)
	run docker run --rm --network none envpin/dock:1
	run_status=$status
	run_output=$output
	"$TOP/tests/fixtures/dockerd.sh" stop "$DD" >/dev/null 2>&1 || true
	[ "$load_status" -eq 0 ]
	[ "$id" = "$CFG2" ]
	echo "$run_output"
	[ "$run_status" -eq 0 ]
	[[ "$run_output" == *"hello from payload: from-the-manifest"* ]]
}
