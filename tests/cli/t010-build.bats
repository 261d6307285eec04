#!/usr/bin/env bats
# envpin build: determinism, the lock, the cache, and refusing bad input.

load helpers

setup() { common_setup; }
teardown() { common_teardown; }

# write_tree DIR ORDER: the same payload, created in a given order with
# unrelated mtimes and whatever umask the caller set.
write_tree() {
	local d=$1 order=$2
	mkdir -p "$d/payload/sub"
	if [ "$order" = forward ]; then
		printf 'alpha\n' >"$d/payload/a.txt"
		printf 'beta\n' >"$d/payload/sub/b.txt"
		printf '#!/bin/sh\necho hi\n' >"$d/payload/run.sh"
		ln -s a.txt "$d/payload/link"
	else
		ln -s a.txt "$d/payload/link"
		printf '#!/bin/sh\necho hi\n' >"$d/payload/run.sh"
		printf 'beta\n' >"$d/payload/sub/b.txt"
		printf 'alpha\n' >"$d/payload/a.txt"
	fi
	chmod u+x "$d/payload/run.sh"
	ln "$d/payload/a.txt" "$d/payload/sub/hard.txt"
	cat >"$d/m.json" <<-'JSON'
	{
	  "envpin": 1,
	  "name": "repro",
	  "source_date_epoch": 1767225600,
	  "base": "scratch",
	  "layers": [
	    { "copy": [ { "src": "payload/", "dest": "/opt/payload/" } ] },
	    { "copy": [ { "src": "payload/run.sh", "dest": "/usr/local/bin/" } ] }
	  ],
	  "config": { "env": { "GREETING": "hello", "A": "1" }, "cmd": [ "/usr/local/bin/run.sh" ],
	              "workdir": "/workspace" }
	}
	JSON
}

@test "same manifest in two directories, other umask/TZ/LANG/order/mtimes: same digest" {
	(umask 022 && write_tree "$T/one" forward)
	(umask 077 && write_tree "$T/two" reverse)
	touch -d '2001-02-03 04:05:06' "$T/one/payload/a.txt" "$T/one/payload/sub"
	touch -d '2030-12-31 23:00:00' "$T/two/payload/sub/b.txt" "$T/two/payload"
	run bash -c "cd '$T/one' && umask 022 && TZ=UTC LANG=C LC_ALL=C '$ENVPIN' --store '$T/s1' build -f m.json"
	[ "$status" -eq 0 ]
	d1=${lines[-1]}
	run bash -c "cd / && umask 077 && TZ=Asia/Tokyo LANG=de_DE.UTF-8 LC_ALL=de_DE.UTF-8 '$ENVPIN' build -f '$T/two/m.json' --store '$T/s2'"
	[ "$status" -eq 0 ]
	d2=${lines[-1]}
	[[ "$d1" =~ ^sha256:[0-9a-f]{64}$ ]]
	[ "$d1" = "$d2" ]
	# the layers really hold the normalized modes
	run "$ENVPIN" --store "$T/s2" inspect "$d2" --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq '.layers | length')" = 2 ]
	cmp "$T/one/m.lock.json" "$T/two/m.lock.json"
}

@test "the lock records inputs, compressor and result; --locked rebuilds the same digest" {
	write_tree "$T/w" forward
	run envpin build -f "$T/w/m.json"
	[ "$status" -eq 0 ]
	d=${lines[-1]}
	lock="$T/w/m.lock.json"
	[ -f "$lock" ]
	[ "$(jq -r .image.digest "$lock")" = "$d" ]
	[ "$(jq -r .compressor.name "$lock")" = gzip ]
	[ "$(jq -r .compressor.library "$lock")" = libdeflate ]
	[ "$(jq -r .profile "$lock")" = 1 ]
	[ "$(jq '.inputs.layers | length' "$lock")" = 2 ]
	[ "$(jq -r '.image.layers[0].diff_id' "$lock")" != null ]
	# canonical: sorted keys, so rewriting gives the same bytes
	sum1=$(sha256sum <"$lock")
	run envpin build -f "$T/w/m.json" --locked
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = "$d" ]
	[ "$(sha256sum <"$lock")" = "$sum1" ]
	# an input drifts: --locked refuses and names it
	printf 'changed\n' >"$T/w/payload/sub/b.txt"
	run envpin build -f "$T/w/m.json" --locked
	[ "$status" -eq 2 ]
	[[ "$output" == *"layers[0] copy differs from the lock"* ]]
	# a different compressor is refused under --locked too
	printf 'beta\n' >"$T/w/payload/sub/b.txt"
	run envpin build -f "$T/w/m.json" --locked --compress zstd
	[ "$status" -eq 2 ]
	[[ "$output" == *"compressor differs"* ]]
}

@test "a no-op rebuild reuses every layer from the store" {
	write_tree "$T/w" forward
	run envpin build -f "$T/w/m.json"
	[ "$status" -eq 0 ]
	d=${lines[-1]}
	run envpin build -f "$T/w/m.json"
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = "$d" ]
	[ "$(grep -c '(cached)' <<<"$output")" = 2 ]
	# a touched file (new mtime, same bytes) misses the stat key but hits the content key
	touch "$T/w/payload/a.txt"
	run envpin build -f "$T/w/m.json" --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r .digest)" = "$d" ]
	[ "$(echo "$output" | jq '[.layers[].cached] | all')" = true ]
}

@test "compressors: gzip, zstd and none give one content identity and different bytes" {
	write_tree "$T/w" forward
	for c in gzip zstd none; do
		run envpin build -f "$T/w/m.json" --compress $c --json --tag "t-$c"
		[ "$status" -eq 0 ]
		echo "$output" | jq -r .config_digest >"$T/cfg.$c"
		echo "$output" | jq -r .digest >"$T/man.$c"
		run envpin verify "t-$c"
		[ "$status" -eq 0 ]
	done
	cmp "$T/cfg.gzip" "$T/cfg.zstd"
	cmp "$T/cfg.gzip" "$T/cfg.none"
	# the compressor changes the layers' bytes, so the manifests differ
	if cmp -s "$T/man.gzip" "$T/man.zstd"; then echo "gzip and zstd manifests are equal"; false; fi
	if cmp -s "$T/man.gzip" "$T/man.none"; then echo "gzip and none manifests are equal"; false; fi
}

@test "build -o writes an OCI layout that umoci and skopeo read" {
	write_tree "$T/w" forward
	run envpin build -f "$T/w/m.json" -o "$T/layout" --tag repro:1
	[ "$status" -eq 0 ]
	d=${lines[-1]}
	[ -f "$T/layout/oci-layout" ]
	run skopeo inspect --raw "oci:$T/layout:repro:1"
	[ "$status" -eq 0 ]
	[ "$(printf '%s' "$output" | sha256sum | cut -d' ' -f1)" = "${d#sha256:}" ]
	run umoci unpack --rootless --image "$T/layout:repro:1" "$T/bundle"
	[ "$status" -eq 0 ]
	[ "$(cat "$T/bundle/rootfs/opt/payload/sub/b.txt")" = beta ]
	[ -L "$T/bundle/rootfs/opt/payload/link" ]
	[ -x "$T/bundle/rootfs/usr/local/bin/run.sh" ]
}
