#!/usr/bin/env bats
# envpin verify --rebuild --vary (docs/verify.md "--vary"): the rebuild under a
# varied host (build directory, umask, TZ, locale, hostname, file order through
# disorderfs, the clock through libfaketime, one thread) says which variation,
# if any, changed the bytes.

load helpers
bats_require_minimum_version 1.5.0

setup_file() {
	export VT
	VT=$(mktemp -d /tmp/ep056.XXXXXX)
	"$TOP/tests/fixtures/busybox-rootfs.sh" "$VT/base.tar"
}
teardown_file() { rm -rf "${VT:-/nonexistent}"; }

setup() {
	common_setup
	mkdir -p "$T/p/app/b" "$T/p/app/a"
	cp "$VT/base.tar" "$T/p/base.tar"
	for f in z y x w v u; do printf '%s\n' "$f" >"$T/p/app/a/$f"; done
	printf '#!/bin/sh\necho app\n' >"$T/p/app/b/run.sh"
	chmod 755 "$T/p/app/b/run.sh"
	ln -s ../a/z "$T/p/app/b/link"
	cat >"$T/p/m.json" <<-JSON
	{ "envpin": 1, "name": "vary", "source_date_epoch": 1767225600,
	  "base": { "rootfs": "base.tar", "sha256": "$(sha256sum "$T/p/base.tar" | cut -d' ' -f1)" },
	  "layers": [ { "copy": [ { "src": "app/", "dest": "/opt/app/" } ] } ] }
	JSON
	D=$("$ENVPIN" build -q -f "$T/p/m.json")
}
teardown() { common_teardown; }

@test "vary: a busybox-based image is identical under every variation (one rebuild)" {
	run envpin verify "$D" --rebuild --vary -f "$T/p/m.json"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"vary verdict: IDENTICAL under every variation"* ]]
	run envpin verify "$D" --rebuild --vary -f "$T/p/m.json" --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r .rebuild.verdict)" = identical ]
	# all eight at once, in one rebuild; none skipped where the host allows it
	[ "$(echo "$output" | jq '.rebuild.runs | length')" = 1 ]
	[ "$(echo "$output" | jq -c '.rebuild.variations | map(.name)')" = \
		'["builddir","umask","tz","locale","hostname","fileorder","clock","threads"]' ]
	if [ "$(id -u)" = 0 ] && [ -w /dev/fuse ] && command -v disorderfs >/dev/null; then
		[ "$(echo "$output" | jq '[.rebuild.variations[] | select(.skipped)] | length')" = 0 ]
		[ "$(echo "$output" | jq '.rebuild.runs[0].vary | length')" = 8 ]
	fi
	[ -z "$(ls -A "$ENVPIN_STORE/tmp")" ]
}

@test "vary: a list of variations, and with --from a bundle" {
	run envpin verify "$D" --rebuild --vary=tz,umask,fileorder -f "$T/p/m.json" --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -c '.rebuild.variations | map(.name)')" = '["umask","tz","fileorder"]' ]
	envpin vendor "$D" -o "$T/bundle" >/dev/null
	run envpin verify --rebuild --vary --from "$T/bundle"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"IDENTICAL under every variation"* ]]
}

# run_manifest DIR CMD: a run step CMD over the mounted src/ of DIR
run_manifest() {
	mkdir -p "$1/src"
	printf 'in\n' >"$1/src/in.txt"
	cp "$VT/base.tar" "$1/base.tar"
	cat >"$1/m.json" <<-JSON
	{ "envpin": 1, "name": "varyrun", "source_date_epoch": 1767225600,
	  "base": { "rootfs": "base.tar", "sha256": "$(sha256sum "$1/base.tar" | cut -d' ' -f1)" },
	  "layers": [ { "run": [ "sh", "-c", "$2" ], "mounts": [ { "src": "src/", "dest": "/src" } ] } ] }
	JSON
}

need_run_steps() {
	[ "$(id -u)" = 0 ] || skip "run steps need root (runc, overlayfs)"
	command -v runc >/dev/null || skip "runc is not installed"
}

@test "vary: a run step that writes the time is caught: it differs even unvaried, the path named" {
	need_run_steps
	run_manifest "$T/r" "sleep 1; date +%s > /now"
	R=$("$ENVPIN" build -q -f "$T/r/m.json")
	run envpin verify "$R" --rebuild --vary -f "$T/r/m.json" --json
	echo "$output" | jq -c '.error, (.rebuild | {verdict, runs: [.runs[] | {vary, v: (.report.verdict // .error)}]})'
	[ "$status" -eq 1 ]
	[ "$(echo "$output" | jq -r .rebuild.verdict)" = not-reproducible ]
	# all at once, then the unvaried control: no variation is blamed
	[ "$(echo "$output" | jq '.rebuild.runs | length')" = 2 ]
	[ "$(echo "$output" | jq -c '.rebuild.runs[1].vary')" = '[]' ]
	[ "$(echo "$output" | jq -r '.rebuild.runs[1].report.paths[0].path')" = now ]
	[ "$(echo "$output" | jq -c .rebuild.changed_by)" = '[]' ]
	run envpin verify "$R" --rebuild --vary=tz -f "$T/r/m.json"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"rebuild under no variation: different"*"now"*"NOT REPRODUCIBLE (even unvaried)"* ]]
}

@test "vary: the sandbox holds hostname, TZ, locale, umask and the mounts' modes constant for run steps" {
	need_run_steps
	run_manifest "$T/h" "hostname > /host; date +%Z > /tz; echo \$LANG \$LC_ALL > /lang; umask > /umask; stat -c %a%Y /src/in.txt > /mode; ls /src > /ls"
	H=$("$ENVPIN" build -q -f "$T/h/m.json")
	run envpin verify "$H" --rebuild --vary -f "$T/h/m.json" --json
	echo "$output" | jq -c '.rebuild | {verdict, changed_by, runs: [.runs[] | {vary, v: .report.verdict}]}'
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r .rebuild.verdict)" = identical ]
}

# dyn_dir DIR: Debian 12's own /bin/date and the glibc it loads, taken from
# their .debs (apt-get download; no host binary), as a dynamic program for the
# busybox image: libfaketime reaches only dynamic programs
dyn_dir() {
	local d=$1 x="$T/debs"
	mkdir -p "$x/root" "$d/lib/x86_64-linux-gnu" "$d/lib64" "$d/usr/bin"
	(cd "$x" && apt-get download -q coreutils libc6 >/dev/null 2>&1) || return 1
	dpkg-deb -x "$x"/coreutils_*.deb "$x/root" && dpkg-deb -x "$x"/libc6_*.deb "$x/root"
	cp "$x/root/bin/date" "$d/usr/bin/date"
	for l in libc.so.6 libm.so.6 ld-linux-x86-64.so.2; do cp -L "$x/root/lib/x86_64-linux-gnu/$l" "$d/lib/x86_64-linux-gnu/"; done
	ln -s /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$d/lib64/ld-linux-x86-64.so.2"
}

@test "vary: a run step whose dynamic date writes the year is caught under the clock, and the clock named" {
	need_run_steps
	[ -r /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || skip "libfaketime is not installed"
	dyn_dir "$T/y/dyn" || skip "apt-get download coreutils libc6 failed (no Debian mirror)"
	cp "$VT/base.tar" "$T/y/base.tar"
	cat >"$T/y/m.json" <<-JSON
	{ "envpin": 1, "name": "varyyear", "source_date_epoch": 1767225600,
	  "base": { "rootfs": "base.tar", "sha256": "$(sha256sum "$T/y/base.tar" | cut -d' ' -f1)" },
	  "layers": [ { "copy": [ { "src": "dyn/", "dest": "/" } ] },
	              { "run": [ "sh", "-c", "/usr/bin/date -u +%Y > /year" ] } ] }
	JSON
	Y=$("$ENVPIN" build -q -f "$T/y/m.json")
	run envpin verify "$Y" --rebuild --vary -f "$T/y/m.json" --json
	echo "$output" | jq -c '.error, (.rebuild | {verdict, changed_by, runs: [.runs[] | {vary, v: (.report.verdict // .error)}]})'
	[ "$status" -eq 1 ]
	# identical unvaried (same year), other bytes under the clock alone, in /year
	[ "$(echo "$output" | jq -r .rebuild.verdict)" = varies ]
	[ "$(echo "$output" | jq -c .rebuild.changed_by)" = '["clock"]' ]
	[ "$(echo "$output" | jq -r '.rebuild.runs[] | select(.vary == ["clock"]) | .report.paths[0].path')" = year ]
	run envpin verify "$Y" --rebuild --vary=tz,clock -f "$T/y/m.json"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"these variations change the bytes: [\"clock\"]"* ]]
}

@test "vary: usage" {
	run envpin verify "$D" --vary -f "$T/p/m.json"
	[ "$status" -eq 2 ]
	[[ "$output" == *"--vary goes with --rebuild"* ]]
	run envpin verify "$D" --rebuild --vary=moon -f "$T/p/m.json"
	[ "$status" -eq 2 ]
	[[ "$output" == *"unknown variation 'moon'"* ]]
}
