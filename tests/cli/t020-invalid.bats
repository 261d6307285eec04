#!/usr/bin/env bats
# Bad input gets a clear error, exit 2, and leaves the store as it was.

load helpers

setup() {
	common_setup
	mkdir -p "$T/ok/payload"
	printf 'x\n' >"$T/ok/payload/x"
	cat >"$T/ok/m.json" <<-'JSON'
	{ "envpin": 1, "name": "seed", "source_date_epoch": 0, "base": "scratch",
	  "layers": [ { "copy": [ { "src": "payload/", "dest": "/p/" } ] } ] }
	JSON
	# a store that already holds an image, so "unchanged" means something
	"$ENVPIN" build -q -f "$T/ok/m.json" >/dev/null
	tree_state "$ENVPIN_STORE" >"$T/before"
}
teardown() { common_teardown; }

store_unchanged() {
	tree_state "$ENVPIN_STORE" >"$T/after"
	diff -u "$T/before" "$T/after"
}

@test "every bad manifest in tests/data/manifests/bad exits 2, says why, changes nothing" {
	n=0
	for m in "$TOP"/tests/data/manifests/bad/*.json; do
		expect="${m%.json}.expect"
		[ -f "$expect" ] || continue
		run "$ENVPIN" build -f "$m"
		if [ "$status" -ne 2 ]; then
			echo "manifest $m: status $status, output: $output"
			return 1
		fi
		while IFS= read -r want; do
			[ -n "$want" ] || continue
			if [[ "$output" != *"$want"* ]]; then
				echo "manifest $m: output: $output"
				echo "expected to contain: $want"
				return 1
			fi
		done <"$expect"
		store_unchanged
		n=$((n + 1))
	done
	[ "$n" -ge 10 ]
}

@test "a wrong base sha256 names both digests and changes nothing" {
	mkdir -p "$T/b/root/etc"
	printf 'hi\n' >"$T/b/root/etc/hello"
	tar -C "$T/b/root" -cf "$T/b/base.tar" .
	real=$(sha256sum "$T/b/base.tar" | cut -d' ' -f1)
	wrong=$(printf '%064d' 0)
	cat >"$T/b/m.json" <<-JSON
	{ "envpin": 1, "name": "b", "source_date_epoch": 0,
	  "base": { "rootfs": "base.tar", "sha256": "$wrong" } }
	JSON
	run envpin build -f "$T/b/m.json"
	[ "$status" -eq 2 ]
	[[ "$output" == *"$wrong"* ]]
	[[ "$output" == *"sha256:$real"* ]]
	store_unchanged
	[ ! -e "$T/b/m.lock.json" ]
}

@test "a build that fails half-way (a socket among the sources) leaves the store as it was" {
	mkdir -p "$T/s/payload"
	printf 'one\n' >"$T/s/payload/a"
	python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$T/s/payload/zz.sock"
	cat >"$T/s/m.json" <<-'JSON'
	{ "envpin": 1, "name": "s", "source_date_epoch": 0, "base": "scratch",
	  "layers": [ { "copy": [ { "src": "payload/a", "dest": "/a" } ] },
	              { "copy": [ { "src": "payload/", "dest": "/p/" } ] } ] }
	JSON
	run envpin build -f "$T/s/m.json"
	[ "$status" -ne 0 ]
	[[ "$output" == *"zz.sock"* ]]
	store_unchanged
}

@test "a build killed with SIGKILL leaves a store that verify and gc accept" {
	mkdir -p "$T/k/payload"
	head -c 300000000 /dev/urandom >"$T/k/payload/big"
	cat >"$T/k/m.json" <<-'JSON'
	{ "envpin": 1, "name": "k", "source_date_epoch": 0, "base": "scratch",
	  "layers": [ { "copy": [ { "src": "payload/", "dest": "/p/" } ] } ] }
	JSON
	"$ENVPIN" build -q -f "$T/k/m.json" >/dev/null 2>&1 &
	pid=$!
	# kill it once it is writing a layer into its transaction
	local i
	for ((i = 0; i < 600; i++)); do
		[ -n "$(find "$ENVPIN_STORE/tmp" -path '*/txn-*' -type f ! -name .lock -size +0 2>/dev/null)" ] && break
		kill -0 $pid 2>/dev/null || break
		sleep 0.05
	done
	kill -9 $pid
	local st=0
	wait $pid || st=$?
	[ "$st" -eq 137 ] || { echo "the build was not killed mid-way (exit $st)"; false; }
	# the next command cleans the dead transaction; images and blobs are as before
	run envpin images
	[ "$status" -eq 0 ]
	[ -z "$(ls -A "$ENVPIN_STORE/tmp")" ]
	store_unchanged
	run envpin verify seed
	[ "$status" -eq 0 ]
	run envpin gc
	[ "$status" -eq 0 ]
}

@test "usage errors exit 2; unknown commands and options are named" {
	run envpin frobnicate
	[ "$status" -eq 2 ]
	[[ "$output" == *"'frobnicate' is not an envpin command"* ]]
	run envpin build --bogus
	[ "$status" -eq 2 ]
	run envpin verify
	[ "$status" -eq 2 ]
	run envpin verify sha256:0000
	[ "$status" -eq 2 ]
	[[ "$output" == *"no image"* ]]
	run envpin build -f "$T/nope.json"
	[ "$status" -eq 2 ]
	[[ "$output" == *"nope.json"* ]]
	store_unchanged
}

@test "run, lab and check refuse a bad shared option in the same words (cmd/runopts.c)" {
	# run's failures are 125 (as docker's), lab's and check's 2
	for c in run:125 lab:2 check:2 verify:2; do
		run envpin ${c%:*} --engine warp seed
		[ "$status" -eq "${c#*:}" ]
		[[ "$output" == *"envpin ${c%:*}: --engine: 'warp' is not native, docker, podman or auto"* ]]
	done
	for c in run:125 lab:2; do
		run envpin ${c%:*} -e =x seed
		[ "$status" -eq "${c#*:}" ]
		[[ "$output" == *"envpin: environment entry '=x' has no name"* ]]
		run envpin ${c%:*} -v "$T/missing:/data" seed
		[ "$status" -eq "${c#*:}" ]
		[[ "$output" == *"envpin: volume source '$T/missing': No such file"* ]]
		run envpin ${c%:*} -v "$T/ok:data" seed
		[ "$status" -eq "${c#*:}" ]
		[[ "$output" == *"volume destination 'data' is not an absolute path"* ]]
	done
	# what only run takes is refused by the others, by the same table
	run envpin lab -w /x seed
	[ "$status" -eq 2 ]
	[[ "$output" == *"envpin lab: unknown option"* ]]
	run envpin check -v "$T/ok:/data" seed
	[ "$status" -eq 2 ]
	[[ "$output" == *"envpin check: unknown option"* ]]
	store_unchanged
}

@test "every command has --help" {
	for c in build lock verify export inspect images gc version; do
		run envpin $c --help
		[ "$status" -eq 0 ]
		[[ "$output" == *"usage: envpin $c"* ]]
	done
	run envpin --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"build"* && "$output" == *"verify"* ]]
}
