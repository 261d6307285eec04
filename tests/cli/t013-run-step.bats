#!/usr/bin/env bats
# The run build step: a command in the image built so far, sandboxed (no
# network, fixed env/hostname/umask) and normalized, so that its layer is a
# function of the manifest (docs/manifest.md "run", docs/profile-1.md).

load helpers

setup() {
	common_setup
	[ "$(id -u)" = 0 ] || skip "run steps need root (runc, overlayfs)"
	command -v runc >/dev/null || skip "runc is not installed"
	"$TOP/tests/fixtures/busybox-rootfs.sh" "$T/base.tar"
	BASE_SHA=$(sha256sum "$T/base.tar" | cut -d' ' -f1)
}
teardown() { common_teardown; }

# write_project DIR: a manifest with a run step that reads a mounted source
# dir and leaves behind what a real build leaves (times, logs, caches).
write_project() {
	local d=$1
	mkdir -p "$d/src"
	printf 'hello from the source\n' >"$d/src/in.txt"
	printf '#!/bin/sh\necho tool\n' >"$d/src/tool.sh"
	chmod u+x "$d/src/tool.sh"
	cp "$T/base.tar" "$d/base.tar"
	cat >"$d/m.json" <<-JSON
	{
	  "envpin": 1,
	  "name": "runstep",
	  "source_date_epoch": 1767225600,
	  "base": { "rootfs": "base.tar", "sha256": "$BASE_SHA" },
	  "layers": [
	    { "run": [ "sh", "-c", "mkdir -p /out/sub /var/log /var/cache/ldconfig /out/__pycache__ /root/.cache && cat /mnt/src/in.txt > /out/a && cp /mnt/src/tool.sh /out/tool.sh && echo n > /mnt/note && busybox hostname > /out/host && echo \"\$TZ \$LC_ALL \$SOURCE_DATE_EPOCH \$HOME \$(umask) \$GREETING \$(pwd)\" > /out/env && busybox touch /out/sub/now && busybox date > /var/log/build.log && echo x > /var/cache/ldconfig/aux-cache && echo pyc > /out/__pycache__/m.cpython-311.pyc && echo c > /root/.cache/c && echo t > /tmp/t && rm /etc/group && echo built" ],
	      "env": { "GREETING": "hi" },
	      "workdir": "/work",
	      "mounts": [ { "src": "src/", "dest": "/mnt/src" } ] }
	  ]
	}
	JSON
}

# manifest FILE LAYERS: the busybox base and LAYERS (JSON text, starting at
# line 7 of FILE, so that messages have known line numbers)
manifest() {
	printf '{\n  "envpin": 1,\n  "source_date_epoch": 1767225600,\n  "base": { "rootfs": "%s", "sha256": "%s" },\n  "name": "t",\n  "layers": [\n%s\n  ]\n}\n' \
		"$T/base.tar" "$BASE_SHA" "$2" >"$1"
}

# layer_of STORE DIGEST N: the path of the N-th layer blob
layer_of() {
	local d
	d=$("$ENVPIN" --store "$1" inspect "$2" --json | jq -r ".layers[$3].digest")
	echo "$1/blobs/sha256/${d#sha256:}"
}

@test "run step: two directories, two stores, other umask/TZ/LANG/hostname: same digest" {
	(umask 022 && write_project "$T/one")
	(umask 077 && write_project "$T/two")
	touch -d '2001-02-03 04:05:06' "$T/one/src/in.txt"
	run bash -c "cd '$T/one' && umask 022 && TZ=UTC LANG=C LC_ALL=C '$ENVPIN' --store '$T/s1' build -f m.json"
	[ "$status" -eq 0 ]
	d1=${lines[-1]}
	run unshare -u bash -c "hostname other-host-$$ && cd / && umask 077 && TZ=Asia/Tokyo LANG=de_DE.UTF-8 LC_ALL=de_DE.UTF-8 '$ENVPIN' build -f '$T/two/m.json' --store '$T/s2'"
	[ "$status" -eq 0 ]
	d2=${lines[-1]}
	[[ "$d1" =~ ^sha256:[0-9a-f]{64}$ ]]
	[ "$d1" = "$d2" ]
	cmp "$T/one/m.lock.json" "$T/two/m.lock.json"

	# what the step saw, and what the profile kept of what it left
	mkdir "$T/x"
	tar -xzf "$(layer_of "$T/s1" "$d1" 1)" -C "$T/x"
	[ "$(cat "$T/x/out/host")" = envpin-build ]
	[ "$(cat "$T/x/out/env")" = "UTC C.UTF-8 1767225600 /root 0022 hi /work" ]
	[ "$(cat "$T/x/out/a")" = "hello from the source" ]
	[ -f "$T/x/etc/.wh.group" ]
	run env TZ=UTC tar -tvzf "$(layer_of "$T/s1" "$d1" 1)" --full-time
	[ "$status" -eq 0 ]
	[[ "$output" == *"-rwxr-xr-x 0/0"*"out/tool.sh"* ]]
	[[ "$output" != *"build.log"* ]]
	[[ "$output" != *"aux-cache"* ]]
	[[ "$output" != *".pyc"* ]]
	[[ "$output" != *"root/.cache/c"* ]]
	[[ "$output" != *"tmp/t"* ]]
	[[ "$output" != *"src/in.txt"* ]]
	# a directory made for a mount point, written next to: 0755 whatever the umask
	[[ "$output" == *"drwxr-xr-x 0/0"*" mnt/"* ]]
	[[ "$output" == *" mnt/note"* ]]
	# every mtime clamped to source_date_epoch (2026-01-01)
	[ -z "$(echo "$output" | grep -v ' 2026-01-01 00:00:00 ')" ]

	# the lock marks the step and records its output
	[ "$(jq -r '.inputs.layers[0].kind' "$T/one/m.lock.json")" = run ]
	[ "$(jq -r '.inputs.layers[0].diff_id' "$T/one/m.lock.json")" = \
		"$(jq -r '.image.layers[1].diff_id' "$T/one/m.lock.json")" ]
	[[ "$(jq -r '.inputs.layers[0].mounts[0].content' "$T/one/m.lock.json")" =~ ^sha256: ]]

	# the second build in a store reuses the layer, same digest
	run bash -c "cd '$T/one' && '$ENVPIN' --store '$T/s1' build -f m.json"
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = "$d1" ]
	[[ "$output" == *"layers[0] run (cached)"* ]]
	# a rebuild --locked in a fresh store gives the lock's digest
	run bash -c "cd '$T/one' && '$ENVPIN' --store '$T/s3' build -f m.json --locked"
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = "$d1" ]
}

@test "run step: the network is out of reach, also the host's loopback" {
	write_project "$T/p"
	python3 -m http.server --bind 127.0.0.1 0 >"$T/http.log" 2>&1 &
	srv=$!
	for _ in $(seq 50); do
		port=$(ss -ltnp 2>/dev/null | grep "pid=$srv," | grep -o '127.0.0.1:[0-9]*' | cut -d: -f2 | head -1)
		[ -n "$port" ] && break
		sleep 0.1
	done
	[ -n "$port" ]
	# reachable from the host, so a pass below means the sandbox cut it off
	busybox wget -q -O /dev/null "http://127.0.0.1:$port/"
	manifest "$T/p/net.json" "    { \"run\": [ \"busybox\", \"wget\", \"-O\", \"/got\", \"http://127.0.0.1:$port/\" ] }"
	run "$ENVPIN" build -f "$T/p/net.json"
	kill "$srv"
	[ "$status" -eq 1 ]
	[[ "$output" == *"net.json:7: layers[0] run: 'busybox wget -O /got http://127.0.0.1:$port/' failed with status 1"* ]]
	[[ "$output" == *"Connection refused"* || "$output" == *"unreachable"* ]]
}

@test "run step: a failing step names itself, shows its last lines, leaves the store as it was" {
	write_project "$T/p"
	run "$ENVPIN" build -f "$T/p/m.json"
	[ "$status" -eq 0 ]
	manifest "$T/p/fail.json" '    { "run": [ "true" ] },
    { "run": [ "sh", "-c", "for i in $(seq 1 30); do echo line $i; done; mkdir /junk; echo oops >&2; exit 3" ] }'
	before=$(tree_state "$ENVPIN_STORE")
	run "$ENVPIN" build -f "$T/p/fail.json"
	[ "$status" -eq 1 ]
	[[ "$output" == *"fail.json:8: layers[1] run: 'sh -c for i in"*"failed with status 3; its last output lines:"* ]]
	[[ "$output" == *"line 30"*"oops"* ]]
	[[ "$output" == *"line 12"* ]]
	[[ "$output" != *"line 11"* ]]
	[ "$(tree_state "$ENVPIN_STORE")" = "$before" ]
	[ ! -e "$T/p/fail.lock.json" ]
	# a command that does not exist: 127, named
	manifest "$T/p/nx.json" '    { "run": [ "no-such-program" ] }'
	run "$ENVPIN" build -f "$T/p/nx.json"
	[ "$status" -eq 1 ]
	[[ "$output" == *"nx.json:7: layers[0] run: 'no-such-program' failed with status 127 (command not found)"* ]]
	[ "$(tree_state "$ENVPIN_STORE")" = "$before" ]
}

@test "run step: bad input is refused with file:line:field" {
	write_project "$T/p"
	manifest "$T/p/b1.json" '    { "run": [ "sh",
               1 ] }'
	run "$ENVPIN" build -f "$T/p/b1.json"
	[ "$status" -eq 2 ]
	[[ "$output" == *"b1.json:8: layers[0].run[1]: expected string, got integer"* ]]
	manifest "$T/p/b2.json" '    { "run": [] }'
	run "$ENVPIN" build -f "$T/p/b2.json"
	[ "$status" -eq 2 ]
	[[ "$output" == *"b2.json:7: layers[0].run: empty list"* ]]
	manifest "$T/p/b3.json" '    { "run": [ "true" ],
      "workdri": "/x" }'
	run "$ENVPIN" build -f "$T/p/b3.json"
	[ "$status" -eq 2 ]
	[[ "$output" == *"b3.json:8: layers[0].workdri: unknown key 'workdri' (allowed: run, env, workdir, user, mounts)"* ]]
	manifest "$T/p/b4.json" '    { "run": [ "true" ], "user": "root" }'
	run "$ENVPIN" build -f "$T/p/b4.json"
	[ "$status" -eq 2 ]
	[[ "$output" == *"b4.json:7: layers[0].user: 'root' is not an owner"* ]]
}

@test "run step: --locked catches a step whose output changed" {
	write_project "$T/p"
	manifest "$T/p/r.json" '    { "run": [ "true" ] },
    { "run": [ "sh", "-c", "cat /proc/sys/kernel/random/uuid > /random" ] }'
	run "$ENVPIN" --store "$T/s1" build -f "$T/p/r.json"
	[ "$status" -eq 0 ]
	[ "$(jq -r '.inputs.layers[1].kind' "$T/p/r.lock.json")" = run ]
	before=$(tree_state "$T/s1")
	# the same store reuses the recorded layer; a fresh one runs the step again
	run "$ENVPIN" --store "$T/s1" build -f "$T/p/r.json" --locked
	[ "$status" -eq 0 ]
	run "$ENVPIN" --store "$T/s2" build -f "$T/p/r.json" --locked
	[ "$status" -eq 1 ]
	[[ "$output" == *"--locked: "*"r.json:8: layers[1] run: the step's output differs from the lock"* ]]
	# a changed step definition is refused before anything runs
	manifest "$T/p/r2.json" '    { "run": [ "true" ] },
    { "run": [ "sh", "-c", "echo other > /random" ] }'
	cp "$T/p/r.lock.json" "$T/p/r2.lock.json"
	run "$ENVPIN" --store "$T/s1" build -f "$T/p/r2.json" --locked
	[ "$status" -eq 2 ]
	[[ "$output" == *"r2.json:8: layers[1] run differs from the lock"* ]]
	[ "$(tree_state "$T/s1")" = "$before" ]
}

@test "run step: envpin killed during a step takes the step's processes with it" {
	write_project "$T/p"
	manifest "$T/p/k.json" '    { "run": [ "sleep", "300" ] }'
	"$ENVPIN" build -f "$T/p/k.json" >"$T/k.log" 2>&1 &
	pid=$!
	sl=$(wait_tree_pid "$pid" "sleep 300" 20)
	ids=$(proc_ids $(descendants "$pid"))
	[[ "$ids" == *"$sl:"* ]]
	kill -9 "$pid"
	wait "$pid" || true
	# shellcheck disable=SC2086
	procs_gone 10 $ids
	# the next open of the store removes what the killed build left
	run "$ENVPIN" images
	[ "$status" -eq 0 ]
	[ -z "$(ls -A "$ENVPIN_STORE/tmp")" ]
}
