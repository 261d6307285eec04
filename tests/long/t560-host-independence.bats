#!/usr/bin/env bats
# Host independence (design.md section 10; `make test-host-independence`, ~20
# minutes, not part of `make test`): the default image's digest is the same
# whether this host's envpin and its runtime programs were built with gcc -O2
# or clang -O0, because the image's programs are compiled inside its build
# stage and nothing built here goes into it.  Two stores, two envpins, two
# builds of manifests/default.json (mmdebstrap runs in each), one digest.

load ../cli/helpers

setup_file() {
	export HI=$(mktemp -d /tmp/ep560.XXXXXX)
	cp -r "$TOP/manifests" "$TOP/runtime" "$HI/"
	for v in gcc:-O2 clang:-O0; do
		cc=${v%%:*} opt=${v#*:}
		make -C "$TOP" --no-print-directory BUILD="$HI/build-$cc" CC="$cc" CFLAGS="$opt -g" \
			"$HI/build-$cc/envpin" >"$HI/make-$cc.log" 2>&1
		# the host's runtime programs too, each compiler its own (never used by the image)
		make -C "$TOP/runtime" --no-print-directory BUILD="$HI/rt-$cc" CC="$cc" CFLAGS="$opt" all \
			>>"$HI/make-$cc.log" 2>&1
	done
}
teardown_file() { [ -z "${HI:-}" ] || rm -rf "$HI"; }

setup() {
	[ "$(id -u)" = 0 ] || skip "building the default image needs root (mmdebstrap, runc)"
	common_setup
}
teardown() { common_teardown; }

@test "the host's compiler and flags do not reach the default image's digest" {
	# the two host builds really differ
	run cmp "$HI/build-gcc/envpin" "$HI/build-clang/envpin"
	[ "$status" -ne 0 ]
	run cmp "$HI/rt-gcc/bin/envpin-fitsinfer" "$HI/rt-clang/bin/envpin-fitsinfer"
	[ "$status" -ne 0 ]
	ENVPIN_STORE="$HI/store-gcc" "$HI/build-gcc/envpin" build -q -f "$HI/manifests/default.json" \
		--lock "$HI/default.lock.json" >"$HI/digest-gcc"
	ENVPIN_STORE="$HI/store-clang" "$HI/build-clang/envpin" build -q --locked -f "$HI/manifests/default.json" \
		--lock "$HI/default.lock.json" >"$HI/digest-clang"
	cat "$HI/digest-gcc" "$HI/digest-clang"
	[[ "$(cat "$HI/digest-gcc")" == sha256:* ]]
	[ "$(cat "$HI/digest-gcc")" = "$(cat "$HI/digest-clang")" ]
}
