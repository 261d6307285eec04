#!/usr/bin/env bats
# envpin lab: JupyterLab from the lab test image (tests/fixtures/lab-image.sh,
# built once and cached), as the calling student (SUDO_UID), on 127.0.0.1
# with a random token.  A real browser (Debian's headless chromium driven by
# chromedriver through python3-selenium) opens the printed URL, creates a
# notebook, runs a cell that reads a FITS file from /workspace with astropy
# and plots it with matplotlib; a wrong token is refused; Ctrl-C stops it and
# leaves nothing.  Native engine, and docker (a private dockerd).

load helpers
bats_require_minimum_version 1.5.0

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	command -v runc >/dev/null || return 0
	export LT=$(mktemp -d /tmp/ep480.XXXXXX)
	"$TOP/tests/fixtures/lab-image.sh" >"$LT/image"
	"$TOP/tests/fixtures/busybox-rootfs.sh" "$LT/base.tar"
	cat >"$LT/bb.json" <<-JSON
	{ "envpin": 1, "name": "nojupyter", "source_date_epoch": 1767225600,
	  "base": { "rootfs": "base.tar", "sha256": "$(sha256sum "$LT/base.tar" | cut -d' ' -f1)" } }
	JSON
	ENVPIN_STORE="$LT/bbstore" "${ENVPIN:-$TOP/envpin}" build -q -f "$LT/bb.json" >"$LT/bb"
}
teardown_file() {
	[ -z "${LT:-}" ] && return 0
	[ ! -d "$LT/dockerd" ] || "$TOP/tests/fixtures/dockerd.sh" stop "$LT/dockerd" || true
	rm -rf "$LT"
}

setup() {
	[ "$(id -u)" = 0 ] || skip "the native engine needs root"
	command -v runc >/dev/null || skip "runc is not installed"
	common_setup
	read -r LAB_STORE D <"$LT/image"
	export ENVPIN_STORE=$LAB_STORE ENVPIN_HOST_ROOT="$T/nohost"
	# as `sudo envpin lab` run by a student
	export SUDO_UID=4242 SUDO_GID=4242 SUDO_USER=student
	mkdir -p "$T/ws"
	# a FITS image with a known sum, written by the host's astropy
	/usr/bin/python3 - "$T/ws/sky.fits" <<-'PY'
	import sys
	import numpy as np
	from astropy.io import fits
	y, x = np.mgrid[0:40, 0:60]
	d = (100 * np.exp(-((x - 30) ** 2 + (y - 20) ** 2) / 20.0)).astype("float32")
	d[5, 5] = 7
	fits.PrimaryHDU(d).writeto(sys.argv[1])
	PY
	chown -R 4242:4242 "$T/ws"
	cd "$T/ws"
}
teardown() {
	if [ -n "${LP:-}" ] && kill -0 "$LP" 2>/dev/null; then
		kill -INT "$LP"; sleep 2; kill -KILL "$LP" 2>/dev/null || true
	fi
	rm -rf "${LAB_STORE:?}/home/4242"
	common_teardown
}

# start_lab ARGS...: envpin lab in the background (pid LP); waits for the URL
# line (first line of $T/lab.out); sets URL, BASE and TOKEN.
start_lab() {
	"$ENVPIN" lab --gpus none "$@" >"$T/lab.out" 2>"$T/lab.err" &
	LP=$!
	local i
	for ((i = 0; i < 1200; i++)); do
		grep -q 'http://' "$T/lab.out" && break
		kill -0 "$LP" 2>/dev/null || break
		sleep 0.1
	done
	URL=$(grep -o 'http://[^"]*' "$T/lab.out" | head -1)
	if [ -z "$URL" ]; then cat "$T/lab.err" >&2; return 1; fi
	BASE=${URL%/lab*}
	TOKEN=${URL#*token=}
}

# stop_lab: Ctrl-C (SIGINT), as a terminal sends it; the lab must end
stop_lab() {
	kill -INT "$LP"
	local i
	for ((i = 0; i < 300; i++)); do kill -0 "$LP" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$LP" 2>/dev/null; then echo "envpin lab still runs after SIGINT" >&2; return 1; fi
	wait "$LP" || true
	LP=
}

no_run_left() {
	[ -z "$(ls -A "$ENVPIN_STORE/run" | grep -v '^runc$')" ]
	[ -z "$(ls -A "$ENVPIN_STORE/run/runc")" ]
	if grep "$ENVPIN_STORE" /proc/self/mountinfo; then echo "mounts of the store are left"; false; fi
}

CELL="from astropy.io import fits; import matplotlib.pyplot as plt; d = fits.getdata('/workspace/sky.fits'); plt.imshow(d, origin='lower'); plt.title('sky.fits'); plt.savefig('/workspace/plot.png'); print('FITS', d.shape, round(float(d.sum()), 1))"

@test "lab: chromium opens the URL, a notebook reads FITS with astropy and plots it; wrong token refused; Ctrl-C" {
	command -v chromedriver >/dev/null || skip "chromium-driver is not installed"
	/usr/bin/python3 -c 'import selenium' 2>/dev/null || skip "python3-selenium is not installed"
	start_lab "$D"
	[[ "$URL" =~ ^http://127\.0\.0\.1:[0-9]+/lab\?token=[0-9a-f]{32}$ ]]
	# loopback only
	port=${BASE##*:}
	[ "$(ss -Hltn "sport = :$port" | awk '{print $4}' | sort -u)" = "127.0.0.1:$port" ]
	# the token is not on a command line anyone can read
	for q in $(descendants "$LP"); do
		if tr '\0' ' ' <"/proc/$q/cmdline" 2>/dev/null | grep -q "$TOKEN"; then
			echo "token in the command line of $q"; false
		fi
	done
	# artifacts outlive the test's own tmp dir (bats removes it)
	art=${ENVPIN_TEST_ARTIFACTS:-${TMPDIR:-/tmp}/envpin-test-artifacts}
	mkdir -p "$art"
	shot=$art/t480-notebook.png
	rm -f "$shot"
	run /usr/bin/python3 "$TOP/tests/fixtures/lab-browser.py" "$URL" "$shot" "$CELL" "FITS (40, 60) 6290.2"
	echo "$output"
	echo "# screenshot: $shot" >&3
	if [ "$status" -ne 0 ]; then cp "$T/lab.err" "$art/t480-lab.err"; echo "# lab log: $art/t480-lab.err" >&3; fi
	[ "$status" -eq 0 ]
	[ -s "$shot" ]
	# what the notebook wrote belongs to the student
	[ "$(stat -c %u:%g plot.png)" = 4242:4242 ]
	[ "$(stat -c %u:%g Untitled.ipynb)" = 4242:4242 ]
	# the per-user HOME in the store
	[ "$(stat -c %u:%g:%a "$ENVPIN_STORE/home/4242")" = 4242:4242:700 ]
	# a wrong token: the browser gets the login form, the API a 403
	run /usr/bin/python3 "$TOP/tests/fixtures/lab-browser.py" --refused "$BASE/lab?token=0123456789abcdef0123456789abcdef" \
		"$art/t480-refused.png"
	[ "$status" -eq 0 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/api/status?token=wrong")" = 403 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/api/status")" = 403 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/api/status?token=$TOKEN")" = 200 ]
	TREE=$(proc_ids $(descendants "$LP"))
	stop_lab
	procs_gone 10 $TREE
	no_run_left
	grep -q 'Interrupted' "$T/lab.err"
}

@test "lab: docker engine, --json; a file made through the API belongs to the student; Ctrl-C removes the container" {
	command -v docker >/dev/null || skip "docker is not installed"
	if [ ! -e "$LT/dockerd/env" ]; then
		"$TOP/tests/fixtures/dockerd.sh" start "$LT/dockerd" >/dev/null || skip "dockerd does not start here"
	fi
	. "$LT/dockerd/env"
	export DOCKER_HOST DOCKER_API_VERSION
	start_lab --engine docker --json "$D"
	[ "$(jq -r .token "$T/lab.out")" = "$TOKEN" ]
	[ "$(jq -r .listen "$T/lab.out")" = 127.0.0.1 ]
	run curl -s -X PUT -H "Authorization: token $TOKEN" -d '{"type":"file","format":"text","content":"from the lab"}' \
		"$BASE/api/contents/note.txt"
	[ "$status" -eq 0 ]
	[ "$(cat note.txt)" = "from the lab" ]
	[ "$(stat -c %u:%g note.txt)" = 4242:4242 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/api/status?token=wrong")" = 403 ]
	[ -n "$(docker ps -q)" ]
	stop_lab
	[ -z "$(docker ps -aq)" ]
}

@test "lab: an image without JupyterLab says so in one line, exit 2" {
	run env ENVPIN_STORE="$LT/bbstore" "$ENVPIN" lab --gpus none "$(tail -1 "$LT/bb")"
	[ "$status" -eq 2 ]
	[[ "${lines[-1]}" == "envpin lab: "*" has no JupyterLab (no jupyter-lab on its PATH)"* ]]
	[[ "$output" != *Traceback* ]]
	ENVPIN_STORE="$LT/bbstore" no_run_left
}

@test "lab: --listen: bad addresses refused (exit 2), a non-loopback one warned about, a busy port refused" {
	for bad in 1.2.3:80 example.com:80 127.0.0.1:0 127.0.0.1:99999 '::1:80' '[::1' 127.0.0.1:x; do
		run envpin lab --listen "$bad" "$D"
		[ "$status" -eq 2 ]
		[[ "$output" == *"--listen '$bad': expected ADDR:PORT"* ]]
	done
	# a free port (the kernel's pick), not a fixed one another process may hold
	local free held
	free=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("0.0.0.0", 0)); print(s.getsockname()[1])')
	run env ENVPIN_STORE="$LT/bbstore" "$ENVPIN" lab --gpus none --listen "0.0.0.0:$free" "$(tail -1 "$LT/bb")"
	[ "$status" -eq 2 ]
	[[ "$output" == *"warning: listening on 0.0.0.0:$free, reachable from other machines"* ]]
	# a port someone else holds: named, not silently moved.  The holder
	# writes its port once it listens.
	/usr/bin/python3 -c 'import os, socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
open(sys.argv[1] + ".tmp", "w").write("%d\n" % s.getsockname()[1]); os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(120)' "$T/held-port" 3>&- &
	H=$!
	for ((i = 0; i < 200; i++)); do [ -s "$T/held-port" ] && break; sleep 0.05; done
	held=$(cat "$T/held-port")
	run envpin lab --gpus none --listen "127.0.0.1:$held" "$D"
	kill "$H"
	[ "$status" -eq 125 ]
	[[ "$output" == *"port $held is in use"* ]]
	run envpin lab --help
	[ "$status" -eq 0 ]
	[[ "$output" == "usage: envpin lab"* ]]
	run envpin lab
	[ "$status" -eq 2 ]
}

@test "lab --certify: the check runs first and a failing image is not started" {
	run env ENVPIN_STORE="$LT/bbstore" "$ENVPIN" lab --certify --gpus none "$(tail -1 "$LT/bb")"
	[ "$status" -eq 125 ]
	[[ "$output" == *"refusing to start"* ]]
	[[ "$output" != *"no JupyterLab"* ]]
}
