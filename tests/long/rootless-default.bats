#!/usr/bin/env bats
# Long (make test-rootless-long, not in make test): the default image
# (manifests/default.json, mmdebstrap: minutes) checked and run by a user
# made here, rootless.  Root builds the image (or ROOTLESS_DEFAULT_STORE
# names a store that has it), the user gets a copy of the store's blobs and
# index (its own per-user store, ~/.local/share/envpin), as after a pull.

load ../cli/helpers

UL=envpinlong

setup_file() {
	export TOP=${TOP:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
	[ "$(id -u)" = 0 ] || return 0
	export LT=$(mktemp -d /tmp/eplong.XXXXXX)
	chmod 755 "$LT"
	id "$UL" >/dev/null 2>&1 || useradd -M -d "$LT/home" -s /bin/sh "$UL"
	local src=${ROOTLESS_DEFAULT_STORE:-$LT/rootstore}
	if [ -z "${ROOTLESS_DEFAULT_STORE:-}" ]; then
		[ -x "$TOP/manifests/default/opt/envpin/bin/envpin-selfcheck" ] ||
			make -C "$TOP" --no-print-directory image-inputs >/dev/null
		ENVPIN_STORE=$src "$ENVPIN" build -q -f "$TOP/manifests/default.json" --lock "$LT/default.lock.json" | tail -n1 >"$LT/digest"
	else
		ENVPIN_STORE=$src "$ENVPIN" images --json | jq -r '[.[] | select(.tag == "envpin-default")] | last | .digest' >"$LT/digest"
	fi
	mkdir -p "$LT/home/.local/share/envpin" "$LT/ws"
	cp -a "$src/oci-layout" "$src/index.json" "$src/blobs" "$LT/home/.local/share/envpin/"
	chown -R "$UL" "$LT/home" "$LT/ws"
}
teardown_file() {
	[ -z "${LT:-}" ] || rm -rf "$LT"
	if id "$UL" >/dev/null 2>&1; then userdel "$UL"; fi
}

setup() {
	[ "$(id -u)" = 0 ] || skip "needs root (useradd, mmdebstrap)"
	D=$(cat "$LT/digest")
	[[ "$D" == sha256:* ]] || skip "no default image"
}

as_user() {
	(cd "$LT/ws" && runuser -u "$UL" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$LT/home" ENVPIN_PROGRESS=0 "$ENVPIN" "$@")
}

@test "rootless long: envpin check on the default image passes as a user" {
	run as_user check "$D" -o "$LT/ws/cert.json"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"check: PASS"* ]]
	[ "$(jq -r .result "$LT/ws/cert.json")" = pass ]
	[ "$(jq -r .run.engine "$LT/ws/cert.json")" = native ]
	[ "$(stat -c %U "$LT/ws/cert.json")" = "$UL" ]
}

@test "rootless long: python3 and numpy in the default image write into the user's workspace" {
	run as_user run "$D" -- python3 -c 'import numpy; open("/workspace/np.txt", "w").write(str(numpy.arange(4).sum()))'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(cat "$LT/ws/np.txt")" = 6 ]
	[ "$(stat -c %U "$LT/ws/np.txt")" = "$UL" ]
}
