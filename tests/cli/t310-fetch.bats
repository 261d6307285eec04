#!/usr/bin/env bats
# the fetch step: files and archives from a loopback HTTP server and file://,
# pinned by sha256.

load helpers

FIX="$TOP/tests/fixtures"

setup() {
	common_setup
	mkdir -p "$T/srv/tree/sub" "$T/px"
	printf 'one\n' >"$T/srv/tree/a.txt"
	printf 'two\n' >"$T/srv/tree/sub/b.txt"
	printf 'plain file\n' >"$T/srv/notes.txt"
	(cd "$T/srv/tree" && tar -czf ../t.tar.gz a.txt sub && tar -cJf ../t.tar.xz a.txt sub &&
		python3 -c 'import zipfile,sys; z=zipfile.ZipFile("../t.zip","w"); z.write("a.txt"); z.write("sub/b.txt"); z.close()')
	/usr/bin/python3 "$FIX/proxy.py" --dir "$T/px" --serve-dir "$T/srv" 3>&- &
	for _ in $(seq 100); do [ -f "$T/px/pid" ] && break; sleep 0.05; done
	SRV=$(cat "$T/px/addr")
}

teardown() {
	[ -f "$T/px/pid" ] && kill "$(cat "$T/px/pid")" 2>/dev/null
	common_teardown
}

sha() { sha256sum "$1" | cut -c1-64; }

manifest() { # FILE URL SHA DEST EXTRACT
	cat >"$1" <<-JSON
	{ "envpin": 1, "name": "f", "source_date_epoch": 1767225600, "base": "scratch",
	  "layers": [ { "fetch": [ { "url": "$2", "sha256": "$3", "dest": "$4", "extract": $5 } ] } ] }
	JSON
}

# the paths of an image's only layer
layer_list() {
	local l
	l=$(envpin inspect "$1" --json | jq -r '.layers[-1].digest')
	tar -tzf "$ENVPIN_STORE/blobs/sha256/${l#sha256:}" | sort | tr '\n' ' '
}

@test "fetch a file over loopback http with the right sha256" {
	manifest "$T/m.json" "http://$SRV/notes.txt" "$(sha "$T/srv/notes.txt")" /opt/ false
	run envpin build -f "$T/m.json"
	[ "$status" -eq 0 ]
	[ "$(layer_list "${lines[-1]}")" = "opt/ opt/notes.txt " ]
	grep -q '"path": "/notes.txt"' "$T/px/log"
	# a rebuild is a cache hit: no second download
	run envpin build -f "$T/m.json"
	[ "$status" -eq 0 ]
	[ "$(grep -c '"path": "/notes.txt"' "$T/px/log")" = 1 ]
	[ "$(jq -r '.inputs.layers[0].items[0].sha256' "$T/m.lock.json")" = "$(sha "$T/srv/notes.txt")" ]
}

@test "a wrong sha256 is an error naming both digests; nothing is stored" {
	bad=$(printf 'other' | sha256sum | cut -c1-64)
	manifest "$T/m.json" "http://$SRV/notes.txt" "$bad" /opt/ false
	run envpin build -f "$T/m.json"
	[ "$status" -eq 1 ]
	[[ "$output" == *"sha256:$bad"* ]]
	[[ "$output" == *"sha256:$(sha "$T/srv/notes.txt")"* ]]
	[ ! -e "$ENVPIN_STORE/index.json" ] || [ "$(jq '.manifests | length' "$ENVPIN_STORE/index.json")" = 0 ]
}

@test "tar.gz, tar.xz and zip archives extract to the same layer" {
	declare -A digests
	for f in t.tar.gz t.tar.xz t.zip; do
		manifest "$T/m.json" "http://$SRV/$f" "$(sha "$T/srv/$f")" /opt/x true
		run envpin build -f "$T/m.json"
		[ "$status" -eq 0 ]
		digests[$f]=$(envpin inspect "${lines[-1]}" --json | jq -r '.layers[0].diff_id')
		[ "$(layer_list "${lines[-1]}")" = "opt/ opt/x/ opt/x/a.txt opt/x/sub/ opt/x/sub/b.txt " ]
	done
	[ "${digests[t.tar.gz]}" = "${digests[t.tar.xz]}" ]
	[ "${digests[t.tar.gz]}" = "${digests[t.zip]}" ]
}

@test "file:// URLs; http to a non-loopback host is refused" {
	manifest "$T/m.json" "file://$T/srv/t.tar.gz" "$(sha "$T/srv/t.tar.gz")" /opt/x true
	run envpin build -f "$T/m.json"
	[ "$status" -eq 0 ]
	manifest "$T/m.json" "http://example.invalid/t.tar.gz" "$(sha "$T/srv/t.tar.gz")" /opt/x true
	run envpin build -f "$T/m.json"
	[ "$status" -eq 2 ]
	[[ "$output" == *"plain http is allowed only to loopback hosts"* ]]
}

@test "redirects: followed one hop at a time, at most 10, each hop under the URL rules (lib/fetch.c, also apt's)" {
	manifest "$T/m.json" "http://$SRV/hop/10/notes.txt" "$(sha "$T/srv/notes.txt")" /opt/n.txt false
	run envpin build -f "$T/m.json"
	[ "$status" -eq 0 ]
	[ "$(layer_list "${lines[-1]}")" = "opt/ opt/n.txt " ]
	grep -q '"path": "/hop/1/notes.txt"' "$T/px/log"
	manifest "$T/m.json" "http://$SRV/hop/11/notes.txt" "$(sha "$T/srv/notes.txt")" /opt/n.txt false
	run envpin build -f "$T/m.json"
	[ "$status" -eq 3 ]
	[[ "$output" == *"more than 10 redirects"* ]]
	manifest "$T/m.json" "http://$SRV/away/notes.txt" "$(sha "$T/srv/notes.txt")" /opt/n.txt false
	run envpin build -f "$T/m.json"
	[ "$status" -eq 2 ]
	[[ "$output" == *"'http://192.0.2.1/notes.txt': plain http is allowed only to loopback hosts"* ]]
}
