#!/bin/bash
# tests/gpu/devkit.sh [DIR] - run HERE (the build machine) before the device
# run: packs what the GPU machine lacks into DIR (default .devkit, git-ignored,
# carried to the device): envpin, runc and envpin-fitsinfer with every shared
# library they need except glibc's, and the smoke-test sky.  The device has
# no network and no Debian packages, so this is how envpin gets there.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
dk=${1:-$top/.devkit}
cd "$top"
make --no-print-directory DEVELOPER=1 envpin runtime-here >/dev/null
rm -rf "$dk"
mkdir -p "$dk/bin" "$dk/lib" "$dk/share/smoke"
bins=("$top/envpin" "$(command -v runc)" "$top/build/runtime-here/bin/envpin-fitsinfer" "$top/build/runtime-here/bin/envpin-skygen")
cp "${bins[@]}" "$dk/bin/"
cp "$top"/build/runtime-here/out/opt/envpin/share/smoke/* "$dk/share/smoke/"
# cfitsio's headers and library: tests/gpu/run.sh builds the FITS programs on
# the device with runtime/Makefile against the device's own PyTorch wheel,
# as the reference image does
mkdir -p "$dk/include"
cp /usr/include/fitsio.h /usr/include/fitsio2.h /usr/include/longnam.h "$dk/include/"
cp -L /usr/lib/x86_64-linux-gnu/libcfitsio.so.10 "$dk/lib/"
ln -sf libcfitsio.so.10 "$dk/lib/libcfitsio.so"
# source-extractor's CLASS_STAR weights (GPL: carried for the test run, never
# committed; the device has no Debian packages)
mkdir -p "$dk/share/nnw"
cp /usr/share/source-extractor/default.nnw "$dk/share/nnw/"
# every non-glibc library of those programs (the device's own may be older)
for b in "${bins[@]}"; do
	ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'
done | sort -u | while read -r lib; do
	case "$(basename "$lib")" in
	libc.so.* | libm.so.* | libdl.so.* | libpthread.so.* | librt.so.* | libresolv.so.* | ld-linux*) continue ;;
	esac
	cp -L "$lib" "$dk/lib/"
done
du -sh "$dk"
# the device's carry limit is 64 MiB for everything: ship it compressed
tar -C "$(dirname "$dk")" -cJf "$dk.tar.xz" "$(basename "$dk")"
du -sh "$dk.tar.xz"
