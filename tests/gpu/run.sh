#!/bin/bash
# tests/gpu/run.sh OUTDIR - the GPU half of envpin's certification tests, for
# a machine with an NVIDIA GPU, no network, and PyTorch installed from pip
# with its nvidia-* CUDA/cuDNN wheels (plus a C compiler).  It builds
# envpin-selfcheck from this working tree, runs it on the host against the
# wheels' libraries, cross-checks with torch, and (when envpin itself builds
# and tests/gpu/in-image.sh exists) runs the check inside an image with
# `envpin run --gpus all`.  Everything goes to OUTDIR:
#   log.txt        the whole run (set -x)
#   steps.tsv      step, exit status, expected status, seconds
#   summary.txt    one line per step and the key figures
#   *.json / *.txt each step's own output
# Every step has a timeout and is recorded; no step stops the others.  The
# whole script stays under ~6 minutes (DEADLINE) so it fits a 10-minute slot.
set -u
OUT=${1:?usage: tests/gpu/run.sh OUTDIR}
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
TOP=$(cd "$(dirname "$0")/../.." && pwd)
START=$(date +%s)
DEADLINE=${DEADLINE:-480}
exec 3>&1 >>"$OUT/log.txt" 2>&1
set -x
printf 'step\trc\texpected\tseconds\n' >"$OUT/steps.tsv"

left() { echo $((DEADLINE - ($(date +%s) - START))); }

# step NAME EXPECTED_RC TIMEOUT CMD...: runs CMD with a timeout (never past
# the deadline), records its status; never fails the script.
step() {
	local name=$1 expect=$2 lim=$3 t0 rc
	shift 3
	if [ "$(left)" -lt 15 ]; then
		printf '%s\t%s\t%s\t%s\n' "$name" "deadline" "$expect" 0 >>"$OUT/steps.tsv"
		return 0
	fi
	[ "$lim" -gt "$(left)" ] && lim=$(left)
	t0=$(date +%s)
	timeout -k 10 "$lim" "$@"
	rc=$?
	printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$expect" $(($(date +%s) - t0)) >>"$OUT/steps.tsv"
	return 0
}

cd "$TOP" || exit 2
PY=$(command -v python3 || command -v python || echo python3)

# ---- 1. what this machine is ----
env_info() {
	uname -a
	cat /etc/os-release 2>/dev/null | head -3
	ls -l /dev/nvidia* /dev/dxg 2>&1
	cat /proc/driver/nvidia/version 2>&1
	command -v nvidia-smi && nvidia-smi -L && nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv
	${CC:-cc} --version | head -1
	"$PY" --version
	ldconfig -p | grep -E 'libcuda\.so|libcudart|libcublas|libcudnn' || true
	command -v jq make pkg-config
}
step env 0 60 bash -c "$(declare -f env_info); PY=$PY; env_info" >"$OUT/env.txt" 2>&1

cat >"$OUT/torch_info.py" <<'PY'
import json, os, sys
r = {}
try:
    import torch
    r["torch"] = torch.__version__
    r["torch_cuda"] = torch.version.cuda
    r["cudnn"] = torch.backends.cudnn.version()
    r["cuda_available"] = torch.cuda.is_available()
    r["arch_list"] = torch.cuda.get_arch_list()
    r["torch_lib"] = os.path.join(os.path.dirname(torch.__file__), "lib")
    if torch.cuda.is_available():
        r["devices"] = [{"name": torch.cuda.get_device_name(i),
                         "cc": "%d.%d" % torch.cuda.get_device_capability(i)}
                        for i in range(torch.cuda.device_count())]
except Exception as e:
    r["error"] = repr(e)
dirs = []
try:
    import glob, nvidia
    for p in list(nvidia.__path__):
        dirs += sorted(d for d in glob.glob(os.path.join(p, "*", "lib")) if os.path.isdir(d))
except Exception as e:
    r["nvidia_error"] = repr(e)
r["nvidia_lib_dirs"] = dirs
json.dump(r, sys.stdout, indent=1)
print()
PY
step torch_info 0 120 "$PY" "$OUT/torch_info.py" >"$OUT/torch_info.json" 2>"$OUT/torch_info.err"
LIBDIRS=$("$PY" -c 'import json,sys; print(":".join(json.load(open(sys.argv[1])).get("nvidia_lib_dirs", [])))' "$OUT/torch_info.json" 2>/dev/null)
echo "ENVPIN_CUDA_LIB_PATH=$LIBDIRS"

# ---- 2. build the programs as the images do: runtime/Makefile against this
# machine's own PyTorch wheel (its torch/ and nvidia/*/lib, RUNPATH, no
# LD_LIBRARY_PATH); the FITS programs too when cfitsio's headers are here
# (the devkit carries them) ----
B="$TOP/build/gpu"
mkdir -p "$B"
SC="$B/bin/envpin-selfcheck"
TORCH_DIR=$("$PY" -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null)
RT_ARGS=(-C runtime BUILD="$B" VERSION=gpu-test)
[ -n "$TORCH_DIR" ] && RT_ARGS+=(TORCH=wheel TORCH_DIR="$TORCH_DIR")
if [ -f "$TOP/.devkit/include/fitsio.h" ]; then
	RT_ARGS+=(CFITSIO_CFLAGS="-I$TOP/.devkit/include" CFITSIO_LIBS="-L$TOP/.devkit/lib -Wl,-rpath,$TOP/.devkit/lib -lcfitsio")
fi
step build_selfcheck 0 120 make "${RT_ARGS[@]}" "$SC"
step build_fits any 300 make "${RT_ARGS[@]}" all smoke
( make "${RT_ARGS[@]}" print-config; for p in "$B"/bin/*; do echo "== $p"; ldd "$p"; done ) >"$OUT/ldd.txt" 2>&1
cp "$SC" "$OUT/" 2>/dev/null
if [ -x "$B/bin/envpin-fitsinfer" ] && [ -f "$B/smoke/sky.fits" ]; then
	step fits_smoke_both 0 240 "$B/bin/envpin-fitsinfer" --smoke "$B/smoke" --device both --json \
		--nnw "$TOP/.devkit/share/nnw/default.nnw" >"$OUT/fits-smoke.json" 2>"$OUT/fits-smoke.err"
fi

# the unit tests, when cmocka is there
if pkg-config --exists cmocka 2>/dev/null; then
	step build_unit 0 120 ${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -Iruntime/selfcheck -o "$B/test_selfcheck" \
		tests/unit/test_selfcheck.c runtime/selfcheck/api.c runtime/selfcheck/checks.c \
		runtime/selfcheck/numeric.c runtime/selfcheck/report.c -ldl -lm $(pkg-config --libs cmocka)
	step unit 0 60 "$B/test_selfcheck" >"$OUT/unit.txt" 2>&1
fi

# ---- 3. the self-check on the host, against the wheels' libraries ----
if [ -x "$SC" ]; then
	step selfcheck_json 0 180 env ENVPIN_CUDA_LIB_PATH="$LIBDIRS" "$SC" --json --require-gpu \
		>"$OUT/selfcheck.json" 2>"$OUT/selfcheck.err"
	step selfcheck_kv 0 180 env ENVPIN_CUDA_LIB_PATH="$LIBDIRS" "$SC" --expect-gpus 1 --require-gpu \
		>"$OUT/selfcheck.txt" 2>&1
	# the built-in search alone (site-packages/dist-packages globs), no hint
	step selfcheck_search 0 180 "$SC" --json >"$OUT/selfcheck-search.json" 2>"$OUT/selfcheck-search.err"
	# without the re-exec: do the wheels' libraries find their own deps?
	step selfcheck_noreexec any 180 env ENVPIN_CUDA_LIB_PATH="$LIBDIRS" ENVPIN_SELFCHECK_REEXEC=1 "$SC" --json \
		>"$OUT/selfcheck-noreexec.json" 2>"$OUT/selfcheck-noreexec.err"
	# a missing cuDNN must be named and fail (exit 1), not crash
	NOCUDNN=$(tr ':' '\n' <<<"$LIBDIRS" | grep -v '/cudnn/' | paste -sd:)
	step selfcheck_no_cudnn 1 180 env ENVPIN_CUDA_LIB_PATH="$NOCUDNN" ENVPIN_CUDA_LIB_PATH_ONLY=1 "$SC" --json \
		>"$OUT/selfcheck-no-cudnn.json" 2>"$OUT/selfcheck-no-cudnn.err"
	# wrong --expect-gpus must fail
	step selfcheck_expect_wrong 1 180 env ENVPIN_CUDA_LIB_PATH="$LIBDIRS" "$SC" --expect-gpus 99 \
		>"$OUT/selfcheck-expect99.txt" 2>&1
fi

# ---- 4. the same figures through torch, as an independent witness ----
cat >"$OUT/torch_check.py" <<'PY'
import json, sys, time
import torch
r = {}
dev = "cuda"
g = torch.Generator().manual_seed(0)
a = torch.rand(1024, 1024, generator=g, dtype=torch.float64) * 2 - 1
b = torch.rand(1024, 1024, generator=g, dtype=torch.float64) * 2 - 1
ref = a @ b
def rel(x, ref):
    return float((x.double().cpu() - ref).abs().max() / ref.abs().mean())
torch.backends.cuda.matmul.allow_tf32 = False
ag, bg = a.float().to(dev), b.float().to(dev)
r["gemm_fp32_rel"] = rel(ag @ bg, a.float().double() @ b.float().double())
torch.backends.cuda.matmul.allow_tf32 = True
r["gemm_tf32_rel"] = rel(ag @ bg, a.float().double() @ b.float().double())
torch.backends.cuda.matmul.allow_tf32 = False
x = torch.rand(2, 8, 64, 64, generator=g, dtype=torch.float64) * 2 - 1
w = torch.rand(16, 8, 3, 3, generator=g, dtype=torch.float64) * 2 - 1
cref = torch.nn.functional.conv2d(x.float().double(), w.float().double(), padding=1)
torch.backends.cudnn.allow_tf32 = False
torch.backends.cudnn.deterministic = True
torch.backends.cudnn.benchmark = False
y = torch.nn.functional.conv2d(x.float().to(dev), w.float().to(dev), padding=1)
r["conv_fp32_rel"] = rel(y, cref)
y2 = torch.nn.functional.conv2d(x.float().to(dev), w.float().to(dev), padding=1)
r["conv_fp32_identical"] = bool(torch.equal(y, y2))
cref16 = torch.nn.functional.conv2d(x.half().double(), w.half().double(), padding=1)
y16 = torch.nn.functional.conv2d(x.half().to(dev), w.half().to(dev), padding=1)
r["conv_fp16_rel"] = rel(y16, cref16)
r["cudnn"] = torch.backends.cudnn.version()
json.dump(r, sys.stdout, indent=1)
print()
PY
step torch_check 0 180 "$PY" "$OUT/torch_check.py" >"$OUT/torch_check.json" 2>"$OUT/torch_check.err"

# ---- 5. inside an image, through envpin (hook; integrated later) ----
# When envpin builds here (libjansson-dev, libcurl, libarchive, ... present),
# tests/gpu/in-image.sh OUTDIR is run with ENVPIN, SELFCHECK and
# ENVPIN_CUDA_LIB_PATH set: it builds an image holding the self-check and
# runs it with `envpin run --gpus all` (and `envpin check`).  Exit 77 = skipped.
# envpin comes from the devkit that tests/gpu/devkit.sh packed on the build
# machine (.devkit.tar.xz, carried): this machine has no Debian packages.
if [ -f "$TOP/.devkit.tar.xz" ] || [ -x "$TOP/.devkit/bin/envpin" ]; then
	step in_image 0 420 env SELFCHECK="$SC" ENVPIN_CUDA_LIB_PATH="$LIBDIRS" \
		"$TOP/tests/gpu/in-image.sh" "$OUT"
else
	printf '%s\t%s\t%s\t%s\n' in_image "skipped: no devkit (run tests/gpu/devkit.sh)" 0 0 >>"$OUT/steps.tsv"
fi

# ---- 6. summary ----
set +x
{
	echo "# envpin tests/gpu/run.sh, $(date -u +%FT%TZ), $(($(date +%s) - START)) s"
	awk -F'\t' 'NR > 1 { ok = ($2 == $3 || $3 == "any") ? "ok  " : ($2 == 77 || $2 ~ /^skipped/) ? "skip" : "FAIL"; printf "%s %-24s rc=%s expected=%s %ss\n", ok, $1, $2, $3, $4 }' "$OUT/steps.tsv"
	"$PY" - "$OUT" <<'PY' 2>&1
import json, os, sys
out = sys.argv[1]
for f in ("selfcheck.json", "selfcheck-search.json", "selfcheck-noreexec.json", "selfcheck-no-cudnn.json"):
    p = os.path.join(out, f)
    try:
        r = json.load(open(p))
    except Exception as e:
        print("%s: unreadable (%s)" % (f, e)); continue
    print("%s: result=%s driver=%s runtime=%s cublas=%s cudnn=%s devices=%s" % (
        f, r.get("result"), r.get("driver_version"), r.get("runtime_version"), r.get("cublas_version"),
        r.get("cudnn_version"), [(d.get("name"), d.get("cc")) for d in r.get("devices", [])]))
    for c in r.get("checks", []):
        if f != "selfcheck.json" and c["status"] != "fail":
            continue
        figs = {k: v for k, v in c.items() if k in ("rel_err", "h2d_gbps", "d2h_gbps", "algo", "tf32_engaged",
                                                   "gemm", "conv", "probe_targets", "count", "cpu_ref_seconds")}
        print("  %-20s %-4s %s %s" % (c["name"], c["status"], c.get("detail", "")[:160], figs or ""))
try:
    print("torch:", json.load(open(os.path.join(out, "torch_check.json"))))
except Exception as e:
    print("torch: unreadable (%s)" % e)
PY
} >"$OUT/summary.txt" 2>&1
cat "$OUT/summary.txt" >&3
# the script's own status: 0 when every step ended as expected
awk -F'\t' 'NR > 1 && $2 != $3 && $3 != "any" && $2 != 77 && $2 !~ /^skipped/ { bad = 1 } END { exit bad }' "$OUT/steps.tsv"
