#!/usr/bin/env bats
# The shell fixtures other CLI tests stand on: the busybox rootfs, a private
# dockerd, and a local docker-registry (plain, and TLS + htpasswd).  No envpin
# here: these prove the peers work, so that a later failure points at envpin.

load helpers

FIX="$BATS_TEST_DIRNAME/../fixtures"

setup() {
	common_setup
	DOCKERD_DIR=""
	REGISTRY_DIR=""
}

teardown() {
	[ -z "$DOCKERD_DIR" ] || "$FIX/dockerd.sh" stop "$DOCKERD_DIR" || true
	[ -z "$REGISTRY_DIR" ] || "$FIX/registry.sh" stop "$REGISTRY_DIR" || true
	common_teardown
}

need_root() {
	[ "$(id -u)" = 0 ] || skip "needs root"
}

need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null || skip "'$c' not installed"
	done
}

need_busybox() {
	[ -x /bin/busybox ] && /bin/busybox --list >/dev/null 2>&1 || skip "busybox-static not installed"
}

# busybox_oci: $T/bb.tar and an OCI layout $T/oci with tag "bb"; sets BB_DIGEST
busybox_oci() {
	"$FIX/busybox-rootfs.sh" "$T/bb.tar"
	BB_DIGEST=$("$FIX/oci-from-rootfs.sh" "$T/bb.tar" "$T/oci" bb)
}

@test "busybox rootfs: same bytes under another umask, TZ and cwd" {
	need_busybox
	"$FIX/busybox-rootfs.sh" "$T/a.tar"
	mkdir "$T/elsewhere"
	(cd "$T/elsewhere" && umask 077 && TZ=Pacific/Kiritimati LANG=de_DE.UTF-8 "$FIX/busybox-rootfs.sh" ../b.tar)
	cmp "$T/a.tar" "$T/b.tar"
	run tar -tvf "$T/a.tar" --numeric-owner
	[ "$status" -eq 0 ]
	[[ "$output" == *"bin/sh -> busybox"* ]]
	[[ "$output" == *"-rw-r--r-- 0/0"*"etc/passwd"* ]]
	[[ "$output" == *"drwxrwxrwt 0/0"*"tmp/"* ]]
	# every entry at mtime 0, and sorted by name
	[ -z "$(TZ=UTC tar -tvf "$T/a.tar" --full-time | grep -v ' 1970-01-01 00:00:00 ')" ]
	tar -tf "$T/a.tar" >"$T/names"
	LC_ALL=C sort -c "$T/names"
}

@test "oci-from-rootfs: same manifest digest twice" {
	need_busybox
	need umoci jq
	busybox_oci
	[[ "$BB_DIGEST" =~ ^sha256:[0-9a-f]{64}$ ]]
	sleep 1
	d2=$("$FIX/oci-from-rootfs.sh" "$T/bb.tar" "$T/oci2")
	[ "$d2" = "$BB_DIGEST" ]
}

@test "dockerd: starts, loads a skopeo docker-archive, runs it; stop leaves nothing" {
	need_root
	need_busybox
	need dockerd umoci skopeo jq
	busybox_oci
	skopeo copy -q "oci:$T/oci:bb" "docker-archive:$T/bb-docker.tar:envpin-test/bb:1"

	DOCKERD_DIR=$(mktemp -d /tmp/epd.XXXXXX)
	host=$("$FIX/dockerd.sh" start "$DOCKERD_DIR")
	[ "$host" = "unix://$DOCKERD_DIR/docker.sock" ]
	. "$DOCKERD_DIR/env"
	[ "$DOCKER_HOST" = "$host" ]

	run docker load -i "$T/bb-docker.tar"
	[ "$status" -eq 0 ]
	[[ "$output" == *"Loaded image: envpin-test/bb:1"* ]]
	# the layer docker stored is the rootfs tar, byte for byte
	layer=$(docker image inspect -f '{{index .RootFS.Layers 0}}' envpin-test/bb:1)
	[ "$layer" = "sha256:$(sha256sum <"$T/bb.tar" | cut -d' ' -f1)" ]

	# both clients: 28.x at /usr/local/bin (negotiates down) and Debian's 20.10
	for cli in /usr/local/bin/docker /usr/bin/docker; do
		[ -x "$cli" ] || continue
		run "$cli" run --rm --network none envpin-test/bb:1 /bin/busybox echo "hi from $cli"
		[ "$status" -eq 0 ]
		[ "$output" = "hi from $cli" ]
	done
	run docker run --rm --network none envpin-test/bb:1 /bin/sh -c 'exit 7'
	[ "$status" -eq 7 ]

	# a running container at stop time must not leave shims, mounts or the dir
	docker run -d --network none envpin-test/bb:1 /bin/sleep 600
	"$FIX/dockerd.sh" stop "$DOCKERD_DIR"
	[ ! -e "$DOCKERD_DIR" ]
	run grep -F "$DOCKERD_DIR/" /proc/self/mountinfo
	[ "$status" -eq 1 ]
	run pgrep -f "$DOCKERD_DIR/"
	[ "$status" -eq 1 ]
	DOCKERD_DIR=""
}

@test "registry: skopeo push and pull over plain HTTP keep the digest" {
	need_busybox
	need docker-registry umoci skopeo jq curl
	busybox_oci
	REGISTRY_DIR=$(mktemp -d /tmp/epr.XXXXXX)
	addr=$("$FIX/registry.sh" start "$REGISTRY_DIR")
	[[ "$addr" =~ ^127\.0\.0\.1:[0-9]+$ ]]
	skopeo copy -q --dest-tls-verify=false "oci:$T/oci:bb" "docker://$addr/envpin/bb:1"
	skopeo inspect --raw --tls-verify=false "docker://$addr/envpin/bb:1" >"$T/m.json"
	[ "sha256:$(sha256sum <"$T/m.json" | cut -d' ' -f1)" = "$BB_DIGEST" ]
	skopeo copy -q --src-tls-verify=false "docker://$addr/envpin/bb:1" "oci:$T/pulled:bb"
	[ "$(jq -r '.manifests[0].digest' "$T/pulled/index.json")" = "$BB_DIGEST" ]
	# the registry answers the plain distribution API too
	run curl -sf "http://$addr/v2/envpin/bb/tags/list"
	[ "$status" -eq 0 ]
	[ "$(jq -r '.tags[0]' <<<"$output")" = 1 ]
	"$FIX/registry.sh" stop "$REGISTRY_DIR"
	[ ! -e "$REGISTRY_DIR" ]
	run curl -s "http://$addr/v2/"
	[ "$status" -ne 0 ]
	REGISTRY_DIR=""
}

@test "registry --tls --htpasswd: needs the CA and the password" {
	need_busybox
	need docker-registry umoci skopeo jq curl openssl htpasswd
	busybox_oci
	REGISTRY_DIR=$(mktemp -d /tmp/epr.XXXXXX)
	addr=$("$FIX/registry.sh" start "$REGISTRY_DIR" --tls --htpasswd)
	certs="$REGISTRY_DIR/certs.d/$addr"
	[ -f "$certs/ca.crt" ]
	# without credentials: 401; without the CA: x509 error
	run skopeo copy -q --dest-cert-dir "$certs" "oci:$T/oci:bb" "docker://$addr/envpin/bb:1"
	[ "$status" -ne 0 ]
	[[ "$output" == *"authentication required"* || "$output" == *"unauthorized"* ]]
	run skopeo copy -q --dest-authfile "$REGISTRY_DIR/auth.json" "oci:$T/oci:bb" "docker://$addr/envpin/bb:1"
	[ "$status" -ne 0 ]
	[[ "$output" == *"certificate signed by unknown authority"* ]]
	skopeo copy -q --dest-cert-dir "$certs" --dest-authfile "$REGISTRY_DIR/auth.json" \
		"oci:$T/oci:bb" "docker://$addr/envpin/bb:1"
	skopeo inspect --raw --cert-dir "$certs" \
		--creds "$(cat "$REGISTRY_DIR/user"):$(cat "$REGISTRY_DIR/password")" "docker://$addr/envpin/bb:1" >"$T/m.json"
	[ "sha256:$(sha256sum <"$T/m.json" | cut -d' ' -f1)" = "$BB_DIGEST" ]
	run curl -s -o /dev/null -w '%{http_code}' --cacert "$REGISTRY_DIR/ca.crt" "https://$addr/v2/"
	[ "$output" = 401 ]
}

@test "bench/lib/oci-verify.sh: passes a good layout, fails on one flipped byte" {
	need_busybox
	need umoci jq
	busybox_oci
	"$BATS_TEST_DIRNAME/../../bench/lib/oci-verify.sh" "$T/oci"
	layer=$(jq -r '.layers[0].digest | sub("^sha256:"; "")' "$T/oci/blobs/sha256/${BB_DIGEST#sha256:}")
	f="$T/oci/blobs/sha256/$layer"
	chmod u+w "$f"
	# flipped, not overwritten: the byte there may already be the one written
	python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(100); b = f.read(1); f.seek(100); f.write(bytes([b[0] ^ 0xff]))' "$f"
	run "$BATS_TEST_DIRNAME/../../bench/lib/oci-verify.sh" "$T/oci"
	[ "$status" -eq 1 ]
	[[ "$output" == *"$layer: FAILED"* ]]
}
