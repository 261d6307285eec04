#!/bin/bash
# tests/gpu/in-image.sh OUTDIR - the in-container half of the GPU check, run by
# tests/gpu/run.sh on the GPU machine.  The machine has no network and no
# Debian packages, so envpin, runc and envpin-fitsinfer come from the devkit
# that tests/gpu/devkit.sh packed (.devkit.tar.xz, carried).  It
#   1. builds the FITS smoke test's libtorch shim against the machine's own
#      PyTorch (CUDA build), and the self-check was built by run.sh ($SELFCHECK);
#   2. assembles an image: the programs, their shared libraries, the smoke-test
#      sky, and PyTorch's lib dir plus the nvidia-* wheels' libraries (the image
#      carries its own CUDA runtime, cuBLAS and cuDNN, as a real one does);
#   3. envpin build -> envpin run --gpus all (self-check inside) -> envpin check
#      --require-gpu -> certificate -> verify --certify -> run --gpus none.
# Every step is recorded in OUTDIR/in-image-steps.tsv; nothing stops the rest.
set -u
OUT=${1:?usage: in-image.sh OUTDIR}
TOP=$(cd "$(dirname "$0")/../.." && pwd)
PY=$(command -v python3 || echo python3)
exec >>"$OUT/in-image.log" 2>&1
set -x
printf 'step\trc\tseconds\n' >"$OUT/in-image-steps.tsv"
st() { # st NAME TIMEOUT CMD...
	local n=$1 lim=$2 t0=$(date +%s) rc
	shift 2
	timeout -k 5 "$lim" "$@"
	rc=$?
	printf '%s\t%s\t%s\n' "$n" "$rc" $(($(date +%s) - t0)) >>"$OUT/in-image-steps.tsv"
	return $rc
}

DK=$TOP/.devkit
if [ ! -x "$DK/bin/envpin" ] && [ -f "$TOP/.devkit.tar.xz" ]; then
	st unpack_devkit 60 tar -C "$TOP" -xJf "$TOP/.devkit.tar.xz"
fi
[ -x "$DK/bin/envpin" ] || { echo "no devkit: run tests/gpu/devkit.sh here first"; exit 77; }
# a wrapper file, not a function: `timeout` runs programs
cat >"$DK/ep" <<EOS
#!/bin/sh
LD_LIBRARY_PATH="$DK/lib" PATH="$DK/bin:\$PATH" exec "$DK/bin/envpin" "\$@"
EOS
chmod +x "$DK/ep"
ep=$DK/ep
id
st envpin_version 20 "$ep" version >"$OUT/in-image-version.txt" 2>&1

W=$(mktemp -d /tmp/epg.XXXXXX)
export ENVPIN_STORE=$W/store ENVPIN_PROGRESS=0
R=$W/ctx/rootfs
mkdir -p "$R/opt/envpin/bin" "$R/opt/envpin/share/smoke" "$R/etc" "$R/tmp" "$R/workspace"
chmod 1777 "$R/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\n' >"$R/etc/group"

# 1. the programs
TORCH_DIR=$("$PY" -c 'import torch, os; print(os.path.dirname(torch.__file__))' 2>/dev/null)
NV_DIRS=$("$PY" -c 'import nvidia; print(" ".join(nvidia.__path__))' 2>/dev/null)
cp "$SELFCHECK" "$R/opt/envpin/bin/envpin-selfcheck"
cp "$DK/bin/envpin-fitsinfer" "$R/opt/envpin/bin/"
cp "$DK"/share/smoke/* "$R/opt/envpin/share/smoke/"
mkdir -p "$R/usr/share/source-extractor"
cp "$DK/share/nnw/default.nnw" "$R/usr/share/source-extractor/"
if [ -n "$TORCH_DIR" ]; then
	abi=$("$PY" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))' 2>/dev/null || echo 1)
	st build_shim 240 make -C "$TOP" --no-print-directory BUILD=build/gpu TORCH_PREFIX="$TORCH_DIR" \
		TORCH_CXXFLAGS="-D_GLIBCXX_USE_CXX11_ABI=$abi" build/gpu/bin/envpin-fitsinfer-torch.so &&
		cp "$TOP/build/gpu/bin/envpin-fitsinfer-torch.so" "$R/opt/envpin/bin/"
fi

# 2. shared libraries at the paths the loader will look for them
closure() {
	LD_LIBRARY_PATH="$DK/lib${TORCH_DIR:+:$TORCH_DIR/lib}" ldd "$@" 2>/dev/null |
		awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\/.*ld-linux/ { print $1 }' | sort -u
}
for lib in $(closure "$R"/opt/envpin/bin/envpin-selfcheck "$R"/opt/envpin/bin/envpin-fitsinfer \
	"$R"/opt/envpin/bin/envpin-fitsinfer-torch.so); do
	[ -n "$TORCH_DIR" ] && [ "${lib#"$TORCH_DIR"/}" != "$lib" ] && continue
	case "$lib" in */nvidia/*) continue ;; esac
	dest=$R$lib
	[ "${lib#"$DK"/lib/}" != "$lib" ] && dest=$R/usr/lib/x86_64-linux-gnu/$(basename "$lib")
	mkdir -p "$(dirname "$dest")" && cp -L "$lib" "$dest"
done
# the devkit's libraries (cfitsio) are found through the image's library path
mkdir -p "$R/usr/lib/x86_64-linux-gnu"
LIBPATH=/usr/lib/x86_64-linux-gnu
if [ -n "$TORCH_DIR" ]; then
	mkdir -p "$R$TORCH_DIR"
	st copy_torch 240 cp -a "$TORCH_DIR/lib" "$R$TORCH_DIR/"
	LIBPATH=$TORCH_DIR/lib:$LIBPATH
fi
CUDA_DIRS=""
for d in $NV_DIRS; do
	mkdir -p "$R$d"
	st copy_nvidia 240 cp -a "$d/." "$R$d/"
	for l in "$d"/*/lib; do [ -d "$l" ] && CUDA_DIRS=$CUDA_DIRS${CUDA_DIRS:+:}$l; done
done
du -sh "$R" >"$OUT/in-image-rootfs-size.txt" 2>&1

cat >"$W/ctx/gpu.json" <<JSON
{ "envpin": 1, "name": "gpu-check", "source_date_epoch": 1767225600, "base": "scratch",
  "layers": [ { "copy": [ { "src": "rootfs/", "dest": "/" } ] } ],
  "config": { "env": { "PATH": "/opt/envpin/bin",
                       "LD_LIBRARY_PATH": "$LIBPATH${CUDA_DIRS:+:$CUDA_DIRS}",
                       "ENVPIN_CUDA_LIB_PATH": "$CUDA_DIRS" },
              "workdir": "/workspace" } }
JSON

# 3. envpin, end to end
st build 300 "$ep" build --compress none -f "$W/ctx/gpu.json" >"$OUT/in-image-build.txt" 2>&1
D=$(grep -E "^sha256:[0-9a-f]{64}$" "$OUT/in-image-build.txt" | tail -n 1)
st run_gpu_selfcheck 240 "$ep" run --gpus all --no-workspace "$D" -- /opt/envpin/bin/envpin-selfcheck --json \
	--require-gpu >"$OUT/in-image-selfcheck.json" 2>"$OUT/in-image-selfcheck.err"
st run_gpu_view 60 "$ep" run --gpus all --no-workspace "$D" -- /opt/envpin/bin/envpin-fitsinfer --describe \
	/opt/envpin/share/smoke/sky.fits.fz >"$OUT/in-image-describe.json" 2>&1
st check_require_gpu 300 "$ep" check "$D" --require-gpu -o "$OUT/cert.json" >"$OUT/in-image-check.txt" 2>&1
st verify_certify 300 "$ep" verify "$D" --certify "$OUT/cert.json" >"$OUT/in-image-certify.txt" 2>&1
st run_nogpu_selfcheck 120 "$ep" run --gpus none --no-workspace "$D" -- /opt/envpin/bin/envpin-selfcheck --json \
	>"$OUT/in-image-nogpu.json" 2>&1
st images 20 "$ep" images >"$OUT/in-image-images.txt" 2>&1
[ "${KEEP:-0}" = 1 ] || rm -rf "$W"
awk -F'\t' 'NR > 1 && $2 != 0 { bad = 1 } END { exit bad }' "$OUT/in-image-steps.tsv"
