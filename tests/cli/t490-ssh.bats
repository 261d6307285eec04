#!/usr/bin/env bats
# envpin run --ssh: the image's sshd on 127.0.0.1 for the caller, with the
# caller's authorized_keys; a real ssh client runs commands inside, and a tmux
# session outlives the ssh connection.  Uses the lab test image (openssh-server
# and tmux from Debian; tests/fixtures/lab-image.sh builds it once and caches it).

load helpers
bats_require_minimum_version 1.5.0

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	command -v runc >/dev/null || return 0
	command -v ssh >/dev/null || return 0
	export ST=$(mktemp -d /tmp/ep490.XXXXXX)
	"$TOP/tests/fixtures/lab-image.sh" >"$ST/image"
	"$TOP/tests/fixtures/busybox-rootfs.sh" "$ST/base.tar"
	cat >"$ST/bb.json" <<-JSON
	{ "envpin": 1, "name": "nosshd", "source_date_epoch": 1767225600,
	  "base": { "rootfs": "base.tar", "sha256": "$(sha256sum "$ST/base.tar" | cut -d' ' -f1)" } }
	JSON
	ENVPIN_STORE="$ST/bbstore" "${ENVPIN:-$TOP/envpin}" build -q -f "$ST/bb.json" >"$ST/bb"
}
teardown_file() { [ -z "${ST:-}" ] || rm -rf "$ST"; }

setup() {
	[ "$(id -u)" = 0 ] || skip "the native engine needs root"
	command -v runc >/dev/null || skip "runc is not installed"
	command -v ssh >/dev/null || skip "no ssh client"
	common_setup
	read -r LAB_STORE D <"$ST/image"
	export ENVPIN_STORE=$LAB_STORE ENVPIN_HOST_ROOT="$T/nohost"
	# as `sudo envpin` run by a student: the container's user is 4242
	export SUDO_UID=4242 SUDO_GID=4242 SUDO_USER=student HOME="$T/home"
	mkdir -p "$HOME/.ssh" "$T/ws"
	ssh-keygen -q -t ed25519 -N '' -f "$T/key"
	ssh-keygen -q -t ed25519 -N '' -f "$T/otherkey"
	cp "$T/key.pub" "$HOME/.ssh/authorized_keys"
	chown 4242:4242 "$T/ws"
	PORT=$(free_port)
	cd "$T/ws"
}
teardown() {
	local n
	for n in ${NAMES:-}; do "$ENVPIN" rm -f "$n" >/dev/null 2>&1 || true; done
	rm -rf "${LAB_STORE:?}/home/4242"
	common_teardown
}

free_port() { /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# sshc [-i KEY] [USER] -- CMD: the real ssh client, no prompts
sshc() {
	local key=$T/key user=student
	if [ "$1" = -i ]; then key=$2; shift 2; fi
	if [ "$1" != -- ]; then user=$1; shift; fi
	shift
	ssh -p "$PORT" -i "$key" -o BatchMode=yes -o StrictHostKeyChecking=${STRICT:-accept-new} \
		-o UserKnownHostsFile="$T/known_hosts" -o IdentitiesOnly=yes -o ConnectTimeout=10 \
		"$user@127.0.0.1" "$@"
}

# wait_sshd: until sshd answers on $PORT (first start: host key generation)
wait_sshd() {
	local i
	for ((i = 0; i < 150; i++)); do
		if sshc -- true 2>/dev/null; then return 0; fi
		sleep 0.2
	done
	echo "sshd did not come up on $PORT" >&2
	envpin logs "$1" >&2 || true
	return 1
}

@test "run --ssh: ssh runs a command as the caller; a tmux session outlives the connection; host key kept" {
	N=$(envpin run -d --gpus none --ssh "127.0.0.1:$PORT" "$D")
	NAMES=$N
	wait_sshd "$N"
	run sshc -- 'id -u; id -un; echo $HOME; cd /workspace && echo written >from-ssh; python3 -c "import astropy; print(astropy.__version__)"'
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = 4242 ]
	[ "${lines[1]}" = student ]
	[ "${lines[2]}" = /home/student ]
	[[ "${lines[3]}" =~ ^6\. ]]
	[ "$(stat -c %u:%g "$T/ws/from-ssh")" = 4242:4242 ]
	# a job in tmux, then the connection ends
	sshc -- 'tmux new-session -d -s job "echo \$\$ >/tmp/job.pid; sleep 600"'
	# the session's shell writes its pid when it runs (tmux returns before)
	run sshc -- 'for i in $(seq 100); do [ -s /tmp/job.pid ] && break; sleep 0.1; done; tmux ls; ps -o pid= -p "$(cat /tmp/job.pid)"'
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == job:* ]]
	[ -n "${lines[1]}" ]
	# sshd listens on loopback only
	grep -q "sshd on 127.0.0.1:$PORT for student" <(envpin logs "$N")
	if [ "$(ss -Hltn "sport = :$PORT" | awk '{print $4}')" != "127.0.0.1:$PORT" ]; then
		ss -ltn "sport = :$PORT"; false
	fi
	# other keys and root are refused
	run sshc -i "$T/otherkey" -- true
	[ "$status" -eq 255 ]
	run sshc root -- true
	[ "$status" -eq 255 ]
	# a restart keeps the host key (made at the first start, kept in the store)
	run envpin stop "$N"
	[ "$status" -eq 0 ]
	N2=$(envpin run -d --gpus none --ssh "127.0.0.1:$PORT" "$D")
	NAMES="$N $N2"
	STRICT=yes wait_sshd "$N2"
	run sshc -- 'tmux ls 2>&1'
	[[ "$output" != job:* ]]
	# stop is at once: process 1 hands TERM on to sshd (long before the
	# SIGKILL that -t 30 would send)
	start=$(date +%s)
	envpin stop -t 30 "$N2"
	[ $(($(date +%s) - start)) -lt 15 ]
	[ "$(envpin ps --all --json | jq --arg n "$N2" '.[] | select(.name == $n) | .exit_code')" = 0 ]
	[ "$(stat -c %a "$LAB_STORE/ssh")" = 700 ]
	[ -s "$LAB_STORE/ssh/ssh_host_ed25519_key" ]
	# the key sshd showed is the store's, never one baked into the image
	grep -qF "$(cut -d' ' -f2 "$LAB_STORE/ssh/ssh_host_ed25519_key.pub")" "$T/known_hosts"
	[ "$(wc -l <"$T/known_hosts")" -eq 1 ]
}

@test "run --ssh: missing authorized_keys, a command, a bad port, an image without sshd" {
	rm "$HOME/.ssh/authorized_keys"
	run envpin run --gpus none --ssh "$PORT" "$D"
	[ "$status" -eq 125 ]
	[[ "$output" == *"authorized_keys' is not a file"* ]]
	cp "$T/key.pub" "$T/keys"
	run envpin run --gpus none --ssh "$PORT" --authorized-keys "$T/keys" "$D" -- bash
	[ "$status" -eq 125 ]
	[[ "$output" == *"give no command"* ]]
	run envpin run --gpus none --ssh 70000 --authorized-keys "$T/keys" "$D"
	[ "$status" -eq 125 ]
	[[ "$output" == *"--ssh"*"port 1-65535"* ]]
	run -127 env ENVPIN_STORE="$ST/bbstore" "$ENVPIN" run --gpus none --ssh "$PORT" --authorized-keys "$T/keys" "$(tail -1 "$ST/bb")"
	[ "$status" -eq 127 ]
	[[ "$output" == *"this image has no sshd"* ]]
}
