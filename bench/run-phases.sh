#!/bin/bash
# bench/run-phases.sh [N]: where the milliseconds of a warm `envpin run
# IMAGE -- true` go (native engine, busybox image), from syscall timestamps
# (strace --seccomp-bpf, only the phase-marking calls are stopped, so the
# overhead is small but not nil).  Medians over N runs (default 15).
# Phases: process start (execve to the store lock), store open + image
# resolve (to the last blob read), bundle (run dir, lock, namespace), overlay
# mount, rootfs targets + spec (to config.json written), runc (fork to
# runc's exit: create, start, the container's life, delete), cleanup (to
# exit).  Needs root, strace, runc.
set -euo pipefail
export LC_ALL=C
N=${1:-15}
top=$(cd "$(dirname "$0")/.." && pwd)
ENVPIN=${ENVPIN:-$top/envpin}
FIX=$top/tests/fixtures
[ "$(id -u)" = 0 ] || { echo "run-phases: needs root" >&2; exit 77; }
command -v strace >/dev/null || { echo "run-phases: strace missing" >&2; exit 77; }
W=$(mktemp -d /tmp/eprp.XXXXXX)
trap 'rm -rf "$W"' EXIT
export ENVPIN_STORE=$W/store ENVPIN_PROGRESS=0 ENVPIN_HOST_ROOT=$W/nohost
"$FIX/busybox-rootfs.sh" "$W/base.tar"
printf '{"envpin":1,"name":"bench","source_date_epoch":1767225600,"base":{"rootfs":"base.tar","sha256":"%s"},"config":{"cmd":["/bin/true"]}}\n' \
	"$(sha256sum "$W/base.tar" | cut -d' ' -f1)" >"$W/m.json"
D=$("$ENVPIN" build -q -f "$W/m.json")
cd "$W"
for i in 1 2 3; do "$ENVPIN" run --gpus none "$D" -- true; done
for ((i = 0; i < N; i++)); do
	strace -f --seccomp-bpf -ttt -e trace=execve,openat,mkdir,mount,clone,clone3,wait4,exit_group -o "$W/s$i" \
		"$ENVPIN" run --gpus none "$D" -- true
done
python3 - "$W" "$N" <<'PY'
import re, statistics, sys
w, n = sys.argv[1], int(sys.argv[2])
phases = [("process start (exec to store lock)", "start", "lock"),
          ("store open + image resolve", "lock", "blob"),
          ("bundle dir + mount namespace", "blob", "ovl0"),
          ("overlay mount", "ovl0", "ovl1"),
          ("rootfs targets + spec written", "ovl1", "spec"),
          ("watchdog + runc fork/exec", "spec", "runc"),
          ("runc (create, start, wait, delete)", "runc", "wait"),
          ("cleanup + exit", "wait", "exit"),
          ("total", "start", "exit")]
out = {p[0]: [] for p in phases}
for i in range(n):
    main = None; marks = {}; after_ovl = False
    for line in open("%s/s%d" % (w, i)):
        m = re.match(r"(\d+) +(\d+\.\d+) (.*)", line)
        if not m: continue
        pid, t, call = int(m.group(1)), float(m.group(2)), m.group(3)
        if main is None: main = pid
        if call.startswith("execve(") and "runc" in call and "runc" not in marks: marks["runc"] = t
        if pid != main: continue
        if after_ovl: marks["ovl1"] = t; after_ovl = False
        if call.startswith("execve(") and "start" not in marks: marks["start"] = t
        elif call.startswith("openat(") and call.endswith("= 3") and "/store/lock" in call: marks.setdefault("lock", t)
        elif call.startswith("openat(") and "/blobs/sha256/" in call: marks["blob"] = t
        elif call.startswith('mount("overlay"'): marks["ovl0"] = t; after_ovl = True
        elif call.startswith("openat(") and "config.json" in call: marks["spec"] = t
        elif call.startswith("wait4(") and "resumed" not in call: marks["wait"] = t
        elif "wait4 resumed" in call: marks["wait"] = t
        elif call.startswith("+++ exited"): marks["exit"] = t
    for name, a, b in phases:
        if a in marks and b in marks: out[name].append((marks[b] - marks[a]) * 1000)
for name, a, b in phases:
    v = out[name]
    print("  %-38s %7.2f ms" % (name, statistics.median(v)) if v else "  %-38s     n/a" % name)
PY
