#!/usr/bin/python3
"""Compares envpin's FITS reader (envpin-fitsdescribe --dump-pixels) with
Debian's astropy, opened with uint=False so that BLANK is honoured.

usage: /usr/bin/python3 tests/fits/compare.py --bin DESCRIBE [--matrix DIR] GROUP|PATH[spec]::HDU[::SLICE]...

GROUP is one of the case groups below (matrix files come from mkmatrix.py in
DIR; "real" uses images that Debian packages ship).  A free case is a reader
spec, the astropy HDU index or EXTNAME, and optionally a NumPy slice such as
"1:512,16:524" for a section.  Prints one line per case (ok / not ok / skip)
and exits 0 when all compared cases agree, 1 on any disagreement, 77 when
every case was skipped.

Rules (docs/fits.md, "reader versus astropy"):
- shape, n, nan count and BITPIX/BSCALE/BZERO/BLANK agree exactly;
- undefined pixels agree: the reader's NaN <=> astropy's NaN or +-Inf (cfitsio
  maps Inf to NaN, astropy keeps it) or a value outside float32's range;
- defined pixels are equal after rounding astropy's values to float32, where
  cfitsio flushes float32 subnormals to 0; for BSCALE != 1 they may differ by
  one float32 ulp (astropy scales 16-bit data in float32, cfitsio in double);
- min, max and sum in the JSON match the pixels, pixhash matches an
  independent FNV-1a of the dump (small images only).
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from astropy.io import fits

ASTROPY = '/usr/lib/python3/dist-packages/astropy'
FITSDATA = ASTROPY + '/io/fits/tests/data'
CCDPROC = '/usr/lib/python3/dist-packages/ccdproc/tests/data'

# name: (file, reader suffix, astropy HDU, NumPy slice or None, tolerance)
GROUPS = {
    'bitpix': [
        ('b8', 'b8.fits', '', 0, None, 'exact'),
        ('sb8', 'sb8.fits', '', 0, None, 'exact'),
        ('i16', 'i16.fits', '', 0, None, 'exact'),
        ('u16', 'u16.fits', '', 0, None, 'exact'),
        ('i32', 'i32.fits', '', 0, None, 'exact'),
        ('u32', 'u32.fits', '', 0, None, 'exact'),
        ('i64', 'i64.fits', '', 0, None, 'exact'),
        ('f32', 'f32.fits', '', 0, None, 'exact'),
        ('f64', 'f64.fits', '', 0, None, 'exact'),
    ],
    'scaled': [
        ('scaled16', 'scaled16.fits', '', 0, None, 'ulp'),
        ('scaled32', 'scaled32.fits', '', 0, None, 'ulp'),
    ],
    'blank': [
        ('blank16', 'blank16.fits', '', 0, None, 'exact'),
        ('blank8', 'blank8.fits', '', 0, None, 'exact'),
        ('u16blank', 'u16blank.fits', '', 0, None, 'exact'),
        ('scaled16-blank', 'scaled16.fits', '', 0, None, 'ulp'),
    ],
    'mef': [
        ('mef-first-image', 'mef.fits', '', 1, None, 'exact'),
        ('mef[1]', 'mef.fits', '[1]', 1, None, 'exact'),
        ('mef[SCI]', 'mef.fits', '[SCI]', 'SCI', None, 'exact'),
        ('mef[2]', 'mef.fits', '[2]', 2, None, 'exact'),
        ('mef[ERR]', 'mef.fits', '[ERR]', 'ERR', None, 'exact'),
        ('mef[dq]', 'mef.fits', '[dq]', 'DQ', None, 'exact'),
    ],
    'section': [
        ('i16[10:40,5:30]', 'i16.fits', '[10:40,5:30]', 0, (slice(4, 30), slice(9, 40)), 'exact'),
        ('u16blank[1:53,5:10]', 'u16blank.fits', '[1:53,5:10]', 0, (slice(4, 10), slice(0, 53)), 'exact'),
        ('scaled16[2:10,3:9]', 'scaled16.fits', '[2:10,3:9]', 0, (slice(2, 9), slice(1, 10)), 'ulp'),
        ('mef[SCI][3:20,4:15]', 'mef.fits', '[SCI][3:20,4:15]', 'SCI', (slice(3, 15), slice(2, 20)), 'exact'),
        ('cube[*,*,2:2]', 'cube.fits', '[*,*,2:2]', 0, (slice(1, 2), slice(None), slice(None)), 'exact'),
        ('rice16[5:20,3:9]', 'rice16.fits', '[5:20,3:9]', 1, (slice(2, 9), slice(4, 20)), 'exact'),
    ],
    'cube': [
        ('cube', 'cube.fits', '', 0, None, 'exact'),
        ('deg4', 'deg4.fits', '', 0, None, 'exact'),
    ],
    'compressed': [
        ('rice16', 'rice16.fits', '', 1, None, 'exact'),
        ('riceu16', 'riceu16.fits', '', 1, None, 'exact'),
        ('riceu16[SCI]', 'riceu16.fits', '[SCI]', 'SCI', None, 'exact'),
        ('gzip1_32', 'gzip1_32.fits', '', 1, None, 'exact'),
        ('gzip2_f32', 'gzip2_f32.fits', '', 1, None, 'exact'),
        ('hcomp16', 'hcomp16.fits', '', 1, None, 'exact'),
    ],
    'real': [
        ('comp.fits (NGC 1316, RICE)', FITSDATA + '/comp.fits', '', 1, None, 'exact'),
        ('a8280271.fits (SAAO raw, uint16)', CCDPROC + '/a8280271.fits', '', 0, None, 'exact'),
        ('a8280271.fits[17:524,2:512] (overscan trimmed)', CCDPROC + '/a8280271.fits',
         '[17:524,2:512]', 0, (slice(1, 512), slice(16, 524)), 'exact'),
        ('scale.fits (BSCALE 0.0458)', FITSDATA + '/scale.fits', '', 0, None, 'ulp'),
        ('test0.fits[SCI,2]', FITSDATA + '/test0.fits', '[SCI,2]', ('SCI', 2), None, 'exact'),
        ('arange.fits (cube)', FITSDATA + '/arange.fits', '', 0, None, 'exact'),
        ('double_ext.fits (RICE, BZERO 32768)', FITSDATA + '/double_ext.fits', '', 1, None, 'exact'),
        ('blank.fits (BITPIX 64, BLANK)', FITSDATA + '/blank.fits', '', 0, None, 'exact'),
        ('fixed-1890.fits', FITSDATA + '/fixed-1890.fits', '', 0, None, 'exact'),
        ('1904-66_AZP.fits (NaN)', ASTROPY + '/modeling/tests/data/1904-66_AZP.fits', '', 0, None,
         'exact'),
    ],
}

FLT_MAX = float(np.finfo(np.float32).max)
FLT_TINY = float(np.finfo(np.float32).tiny)


def fnv1a64(a):
    u = a.astype('<f4').view('<u4').copy()
    u[np.isnan(a)] = 0x7fc00000
    h = 0xcbf29ce484222325
    for b in u.tobytes():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def parse_slice(text):
    out = []
    for part in text.split(','):
        if part in ('', ':'):
            out.append(slice(None))
        else:
            a, b = part.split(':')
            out.append(slice(int(a) if a else None, int(b) if b else None))
    return tuple(out)


def run_reader(binary, spec, tmp):
    dump = os.path.join(tmp, 'pix.raw')
    p = subprocess.run([binary, '--dump-pixels', dump, spec], capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError('reader failed (%d): %s' % (p.returncode, p.stderr.strip()))
    desc = json.loads(p.stdout)
    pix = np.fromfile(dump, dtype=np.float32)
    return desc, pix


def astropy_image(path, hdu, sl):
    with fits.open(path, uint=False) as hl:
        h = hl[hdu]
        hdr = h.header.copy()  # before .data, which drops BSCALE/BZERO
        data = np.array(h.data)
    if sl is not None:
        data = data[sl]
    return hdr, data


def compare(binary, name, path, suffix, hdu, sl, tol, tmp):
    desc, pix = run_reader(binary, path + suffix, tmp)
    hdr, data = astropy_image(path, hdu, sl)
    problems = []
    shape = list(data.shape)
    if desc['shape'] != shape:
        problems.append('shape %s, astropy %s' % (desc['shape'], shape))
        return problems
    if desc['n'] != data.size or pix.size != data.size:
        problems.append('n %d (dump %d), astropy %d' % (desc['n'], pix.size, data.size))
        return problems
    pix = pix.reshape(shape)
    e = data.astype(np.float64)
    undefined = ~np.isfinite(e) | (np.abs(np.where(np.isfinite(e), e, 0)) > FLT_MAX)
    e = np.where(undefined, np.nan, e)
    e = np.where(np.abs(e) < FLT_TINY, 0.0, e)  # cfitsio flushes subnormals
    e32 = e.astype(np.float32)
    rnan = np.isnan(pix)
    if not np.array_equal(rnan, undefined):
        problems.append('undefined pixels differ at %d places (reader %d, astropy %d)' %
                        ((rnan != undefined).sum(), rnan.sum(), undefined.sum()))
    ok = ~undefined & ~rnan
    diff = np.abs(pix[ok].astype(np.float64) - e32[ok].astype(np.float64))
    maxdiff = float(diff.max()) if diff.size else 0.0
    if tol == 'exact':
        bad = diff > 0
    else:
        bad = diff > np.spacing(np.abs(e32[ok])).astype(np.float64)
    if bad.any():
        problems.append('%d pixels differ (max %g, tolerance %s)' % (bad.sum(), maxdiff, tol))
    nan = int(undefined.sum())
    if desc['nan'] != nan:
        problems.append('nan %d, astropy %d' % (desc['nan'], nan))
    bitpix = hdr['BITPIX']
    if desc['bitpix'] != bitpix:
        problems.append('bitpix %d, header %d' % (desc['bitpix'], bitpix))
    for key, default in (('BSCALE', 1.0), ('BZERO', 0.0)):
        if abs(desc[key.lower()] - float(hdr.get(key, default))) > 0:
            problems.append('%s %r, header %r' % (key, desc[key.lower()], hdr.get(key, default)))
    blank = hdr.get('BLANK') if bitpix > 0 else None
    if desc['blank'] != blank:
        problems.append('blank %r, header %r' % (desc['blank'], blank))
    good = pix[~rnan].astype(np.float64)
    if good.size:
        # the JSON prints floats with 9 significant digits, which round-trip float32
        if (np.float32(desc['min']) != np.float32(good.min()) or
                np.float32(desc['max']) != np.float32(good.max())):
            problems.append('min/max %r/%r, pixels %r/%r' % (desc['min'], desc['max'], good.min(), good.max()))
        s = float(good.sum())
        if abs(desc['sum'] - s) > 1e-9 * max(1.0, abs(s)):
            problems.append('sum %r, pixels %r' % (desc['sum'], s))
        es = float(e32[ok].astype(np.float64).sum())
        if abs(desc['sum'] - es) > 1e-6 * max(1.0, np.abs(e32[ok].astype(np.float64)).sum()):
            problems.append('sum %r, astropy %r' % (desc['sum'], es))
    elif desc['min'] is not None or desc['max'] is not None:
        problems.append('min/max should be null when no pixel is defined')
    if pix.size <= 20000:
        h = 'fnv1a64:%016x' % fnv1a64(pix.ravel())
        if desc['pixhash'] != h:
            problems.append('pixhash %s, recomputed %s' % (desc['pixhash'], h))
    if not problems:
        return None, 'shape %s, nan %d, max |diff| %g' % (shape, nan, maxdiff)
    return problems, None


def main():
    args = sys.argv[1:]
    binary, matrix = None, None
    cases = []
    while args:
        a = args.pop(0)
        if a == '--bin':
            binary = args.pop(0)
        elif a == '--matrix':
            matrix = args.pop(0)
        elif a in GROUPS:
            cases += GROUPS[a]
        elif '::' in a:
            parts = a.split('::')
            spec, hdu = parts[0], parts[1]
            hdu = int(hdu) if hdu.isdigit() else hdu
            sl = parse_slice(parts[2]) if len(parts) > 2 else None
            base, bracket, rest = spec.partition('[')
            cases.append((spec, base, bracket + rest, hdu, sl, parts[3] if len(parts) > 3 else 'exact'))
        else:
            sys.exit('compare.py: unknown group or case %r' % a)
    if not binary or not cases:
        sys.exit(__doc__)
    failed = compared = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, path, suffix, hdu, sl, tol in cases:
            if not os.path.isabs(path) and matrix and not os.path.exists(path):
                path = os.path.join(matrix, path)
            if not os.path.exists(path):
                print('skip - %s: %s is not installed' % (name, path))
                continue
            compared += 1
            try:
                problems, detail = compare(binary, name, path, suffix, hdu, sl, tol, tmp)
            except Exception as exc:  # a failing reader is a failed case, not a crash
                problems, detail = ['%s: %s' % (type(exc).__name__, exc)], None
            if problems:
                failed += 1
                print('not ok - %s: %s' % (name, '; '.join(problems)))
            else:
                print('ok - %s: %s' % (name, detail))
    if failed:
        sys.exit(1)
    sys.exit(0 if compared else 77)


if __name__ == '__main__':
    main()
