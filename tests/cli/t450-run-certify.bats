#!/usr/bin/env bats
# run --certify on the native engine with a small image whose self-check and
# smoke test are scripts: the image the check certified is the image that
# runs, even when its tag moves in between; a certificate kept in the store
# is reused while the image, GPUs, driver and runtime are the same, and the
# image is certified again when the (fake) driver changes.

load helpers
bats_require_minimum_version 1.5.0

setup_file() {
	native_setup_file ep450 CT || return 0
	for v in A B; do
		mkdir -p "$CT/$v/opt/envpin/bin" "$CT/$v/opt/p"
		# what a passing self-check and smoke test print (docs/certificate.md)
		printf '#!/bin/sh\necho {\\"driver_version\\":null,\\"devices\\":[],\\"checks\\":[{\\"name\\":\\"cuda.device\\",\\"status\\":\\"skip\\"}]}\n' \
			>"$CT/$v/opt/envpin/bin/envpin-selfcheck"
		printf '#!/bin/sh\necho {\\"result\\":\\"pass\\",\\"checks\\":[{\\"name\\":\\"cpu.sum\\",\\"status\\":\\"pass\\"}],\\"fingerprint\\":{\\"n_det\\":1}}\n' \
			>"$CT/$v/opt/envpin/bin/envpin-fitsinfer"
		printf '#!/bin/sh\necho "this is image %s"\n' "$v" >"$CT/$v/opt/p/which.sh"
		chmod 755 "$CT/$v/opt/envpin/bin/"* "$CT/$v/opt/p/which.sh"
		cat >"$CT/$v.json" <<-JSON
		{ "envpin": 1, "name": "certtest", "source_date_epoch": 1767225600,
		  "base": { "rootfs": "base.tar", "sha256": "$(sha256sum "$CT/base.tar" | cut -d' ' -f1)" },
		  "layers": [ { "copy": [ { "src": "$v/opt/", "dest": "/opt/" } ] } ],
		  "config": { "cmd": [ "/opt/p/which.sh" ] } }
		JSON
	done
	export CERT_STORE="$CT/store"
	ENVPIN_STORE=$CERT_STORE "${ENVPIN:-$TOP/envpin}" build -q -f "$CT/A.json" >"$CT/digest-A"
	ENVPIN_STORE=$CERT_STORE "${ENVPIN:-$TOP/envpin}" build -q -f "$CT/B.json" >"$CT/digest-B"
}
teardown_file() { [ -z "${CT:-}" ] || rm -rf "$CT"; }

setup() {
	[ "$(id -u)" = 0 ] || skip "the native engine needs root"
	command -v runc >/dev/null || skip "runc is not installed"
	common_setup
	export ENVPIN_STORE=$CERT_STORE ENVPIN_HOST_ROOT="$T/nohost"
	DA=$(cat "$CT/digest-A") DB=$(cat "$CT/digest-B")
	rm -rf "$ENVPIN_STORE/certs"
}
teardown() {
	# a run left waiting on the fifo by a failed test
	[ -z "${pid:-}" ] || kill "$pid" 2>/dev/null || true
	common_teardown
}

@test "run --certify: a tag moved after the check does not change what runs" {
	envpin build -q -f "$CT/A.json" --tag moving >/dev/null
	mkfifo "$T/sync"
	ENVPIN_TEST_CERTIFIED_FIFO="$T/sync" "$ENVPIN" run --certify --gpus none moving \
		>"$T/out" 2>"$T/err" &
	pid=$!
	read -r certified <"$T/sync"
	[ "$certified" = "$DA" ]
	# between certification and start, the tag moves to image B
	envpin build -q -f "$CT/B.json" --tag moving >/dev/null
	[ "$(envpin inspect --json moving | jq -r .digest)" = "$DB" ]
	echo go >"$T/sync"
	st=0
	wait "$pid" || st=$?
	pid=
	cat "$T/out" "$T/err"
	[ "$st" -eq 0 ]
	[ "$(cat "$T/out")" = "this is image A" ]
	grep -q "certified on this machine (CPU only: 0 of .* GPU checks run" "$T/err"
	# the tag did move: a run now starts B
	run envpin run --gpus none moving
	[ "$status" -eq 0 ]
	[ "$output" = "this is image B" ]
}

@test "run --certify reuses the stored certificate until the driver changes" {
	"$FIX/fake-nvidia.sh" "$T/host" >/dev/null 2>&1 || skip "fake-nvidia.sh could not build the tree"
	export ENVPIN_HOST_ROOT="$T/host"
	cert="$ENVPIN_STORE/certs/sha256-${DA#sha256:}.json"
	run envpin run --certify "$DA"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"running the self-check"* ]]
	[[ "$output" == *"this is image A"* ]]
	# the certificate remembers the host: driver, GPUs, driver files, runtime
	[ "$(jq -r .passthrough.driver_version "$cert")" = 550.54.15 ]
	[ "$(jq -r '.passthrough.gpus[0].uuid' "$cert")" = GPU-00000000-0000-0000-0000-000000000000 ]
	[ "$(jq '[.passthrough.driver_files[] | select(.kind == "library")] | length' "$cert")" -gt 3 ]
	[ "$(jq '.passthrough.driver_files[0].size' "$cert")" -gt 0 ]
	[ "$(jq -r .passthrough.runtime.engine "$cert")" = native ]
	[[ "$(jq -r .passthrough.runtime.version "$cert")" == "runc version "* ]]

	run envpin run --certify "$DA"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"reusing the certificate"* ]]
	[[ "$output" != *"running the self-check"* ]]
	[[ "$output" == *"this is image A"* ]]

	# a driver update: certified again, and the new certificate says so
	rm -rf "$T/host"
	"$FIX/fake-nvidia.sh" "$T/host" --driver 555.42.02 >/dev/null 2>&1
	run envpin run --certify "$DA"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"certifying again: the driver changed (550.54.15 -> 555.42.02)"* ]]
	[[ "$output" == *"running the self-check"* ]]
	[ "$(jq -r .passthrough.driver_version "$cert")" = 555.42.02 ]

	run envpin run --certify "$DA"
	[ "$status" -eq 0 ]
	[[ "$output" == *"reusing the certificate"* ]]

	# another GPU selection is another host as far as the check goes
	run envpin run --certify --gpus 0 "$DA"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"certifying again: the GPUs changed"* ]]
}

@test "run --certify: a driver file changed in place is certified again" {
	"$FIX/fake-nvidia.sh" "$T/host" >/dev/null 2>&1 || skip "fake-nvidia.sh could not build the tree"
	export ENVPIN_HOST_ROOT="$T/host"
	run envpin run --certify "$DA"
	[ "$status" -eq 0 ]
	lib=$(ls "$T"/host/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15)
	printf 'x' >>"$lib"
	run envpin run --certify "$DA"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"certifying again: driver file '$lib' changed"* ]]
}
