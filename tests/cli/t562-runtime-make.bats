#!/usr/bin/env bats
# runtime/Makefile, the recipe the images' build stages run: it builds the
# in-image programs and the smoke sky from a read-only source tree, and the
# bytes do not depend on where that tree is (two checkouts, same output),
# so an image build that mounts it at /src/runtime is host-independent.

load helpers

setup() {
	common_setup
	command -v g++ >/dev/null && [ -d /usr/include/torch ] || skip "needs g++ and libtorch-dev"
	for d in a/deep/er b; do
		mkdir -p "$T/$d" && cp -r "$TOP/runtime" "$T/$d/" && chmod -R a-w "$T/$d/runtime"
	done
}
teardown() {
	chmod -R u+w "$T" 2>/dev/null || true
	common_teardown
}

@test "runtime/Makefile: programs and smoke sky from a read-only tree, the same bytes from two places" {
	# with debug info, so that a source path left in the objects would show
	for d in a/deep/er b; do
		run make -s -C "$T/$d/runtime" BUILD="$T/build-${d%%/*}" DESTDIR="$T/out-${d%%/*}" CFLAGS="-O2 -g" install
		echo "$output"
		[ "$status" -eq 0 ]
	done
	for f in bin/envpin-selfcheck bin/envpin-fitsinfer bin/envpin-fitsinfer-torch.so bin/envpin-skygen \
		bin/envpin-fitsdescribe share/smoke/sky.fits share/smoke/sky.fits.fz share/smoke/sky.truth.csv; do
		[ -f "$T/out-a/opt/envpin/$f" ] || { echo "missing $f"; false; }
		cmp "$T/out-a/opt/envpin/$f" "$T/out-b/opt/envpin/$f" || { echo "$f depends on the source path"; false; }
	done
	# the checkout path is nowhere in the programs
	run grep -l "$T" "$T"/out-a/opt/envpin/bin/*
	[ "$status" -eq 1 ]
	# Debian's libtorch: no RUNPATH needed; the smoke test runs on what was built
	run "$T/out-a/opt/envpin/bin/envpin-fitsinfer" --smoke "$T/out-a/opt/envpin/share/smoke" --json
	[ "$status" -eq 0 ]
	[ "$(jq -r .result <<<"$output")" = pass ]
	run make -s -C "$T/b/runtime" BUILD="$T/build-b" print-config
	[[ "$output" == *"TORCH=debian"* ]]
}
