#!/usr/bin/python3
"""Writes the FITS format matrix used by tests/cli/t510-fits-reader.bats.

usage: /usr/bin/python3 tests/fits/mkmatrix.py OUTDIR

Every BITPIX (8, 16, 32, 64, -32, -64), signed bytes and the unsigned
conventions (BZERO -128 / 32768 / 2^31), BSCALE/BZERO scaling, BLANK, NaN and
+-Inf, a multi-extension file with EXTNAMEs, a cube, NAXIS=4 (degenerate and
not), tile compression (RICE_1, GZIP_1, GZIP_2, HCOMPRESS_1, all lossless) and
files the reader must refuse.  Written with Debian's astropy (5.2) from a
fixed numpy seed, so the files are the same on every run.
"""
import os
import sys

import numpy as np
from astropy.io import fits

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(20240501)
NY, NX = 37, 53  # odd, unequal sizes catch transposition and off-by-one


def path(name):
    return os.path.join(out, name)


def write(name, hdus):
    fits.HDUList(hdus).writeto(path(name), overwrite=True, checksum=False)


def raw_image(name, raw, cards):
    """A primary image whose stored integers are raw and whose header carries
    cards (BSCALE, BZERO, BLANK) verbatim, so astropy does not rescale."""
    hdu = fits.PrimaryHDU(raw, do_not_scale_image_data=True)
    for k, v in cards:
        hdu.header[k] = v
    write(name, [hdu])


# --- every BITPIX, plus the signed/unsigned conventions -------------------
write('b8.fits', [fits.PrimaryHDU(rng.integers(0, 256, (NY, NX), dtype=np.uint8))])
sb = rng.integers(-128, 128, (NY, NX), dtype=np.int8)
sb[0, 0], sb[0, 1] = -128, 127
write('sb8.fits', [fits.PrimaryHDU(sb)])                      # BITPIX 8, BZERO -128
i16 = rng.integers(-32768, 32768, (NY, NX), dtype=np.int16)
i16[0, :2] = (-32768, 32767)
write('i16.fits', [fits.PrimaryHDU(i16)])
u16 = rng.integers(0, 65536, (NY, NX), dtype=np.uint16)
u16[0, :2] = (0, 65535)
write('u16.fits', [fits.PrimaryHDU(u16)])                     # BITPIX 16, BZERO 32768
i32 = rng.integers(-2**31, 2**31, (NY, NX), dtype=np.int32)
i32[0, :3] = (-2**31, 2**31 - 1, 16777217)                    # beyond float32's 24 bits
write('i32.fits', [fits.PrimaryHDU(i32)])
u32 = rng.integers(0, 2**32, (NY, NX), dtype=np.uint32)
u32[0, :2] = (0, 2**32 - 1)
write('u32.fits', [fits.PrimaryHDU(u32)])                     # BITPIX 32, BZERO 2^31
i64 = rng.integers(-2**62, 2**62, (NY, NX), dtype=np.int64)
i64[0, :3] = (-2**63, 2**63 - 1, 0)
write('i64.fits', [fits.PrimaryHDU(i64)])
f32 = rng.normal(100, 30, (NY, NX)).astype(np.float32)
f32[1, :7] = (np.nan, np.inf, -np.inf, -0.0, 3.0e38, -1.0e-30, 1.0e-40)
write('f32.fits', [fits.PrimaryHDU(f32)])
f64 = rng.normal(-5, 1e3, (NY, NX))
f64[2, :7] = (np.nan, np.inf, -np.inf, 1.0e38, 1.0000000001, 1.0e300, 1.0e-310)
write('f64.fits', [fits.PrimaryHDU(f64)])

# --- scaling and BLANK ----------------------------------------------------
s16 = rng.integers(-32000, 32000, (NY, NX), dtype=np.int16)
s16[3, 3:9] = -32768
raw_image('scaled16.fits', s16, [('BSCALE', 0.25), ('BZERO', 1000.0), ('BLANK', -32768)])
s32 = rng.integers(-2**30, 2**30, (NY, NX), dtype=np.int32)
s32[4, :4] = 999
raw_image('scaled32.fits', s32, [('BSCALE', 1.0e-3), ('BZERO', -5.5), ('BLANK', 999)])
b16 = rng.integers(-1000, 1000, (NY, NX), dtype=np.int16)
b16[5:8, 10:12] = -999
raw_image('blank16.fits', b16, [('BLANK', -999)])
b8 = rng.integers(0, 255, (NY, NX), dtype=np.uint8)
b8[:, 7] = 255
raw_image('blank8.fits', b8, [('BLANK', 255)])
ub = rng.integers(0, 65535, (NY, NX), dtype=np.uint16)
ub = (ub.astype(np.int32) - 32768).astype(np.int16)           # stored form of uint16
ub[6, :] = -32768                                             # physical 0 is BLANK
raw_image('u16blank.fits', ub, [('BZERO', 32768), ('BLANK', -32768)])

# --- multi-extension ------------------------------------------------------
sci = rng.normal(1000, 10, (NY, NX)).astype(np.float32)
sci[10, 10] = np.nan
err = rng.integers(0, 100, (NY // 2, NX), dtype=np.int16)
dq = rng.integers(0, 4, (NY, NX // 3), dtype=np.uint8)
write('mef.fits', [fits.PrimaryHDU(),
                   fits.ImageHDU(sci, name='SCI'),
                   fits.ImageHDU(err, name='ERR'),
                   fits.ImageHDU(dq, name='DQ'),
                   fits.BinTableHDU.from_columns([fits.Column('a', 'J', array=np.arange(3))],
                                                 name='TAB')])

# --- cubes and NAXIS = 4 ----------------------------------------------------
write('cube.fits', [fits.PrimaryHDU(rng.integers(-500, 500, (3, NY, NX), dtype=np.int16))])
write('deg4.fits', [fits.PrimaryHDU(rng.normal(0, 1, (1, 2, NY, NX)).astype(np.float32))])
write('bad4.fits', [fits.PrimaryHDU(np.zeros((2, 2, 5, 5), dtype=np.float32))])

# --- tile compression (lossless) -----------------------------------------
c16 = rng.integers(-3000, 3000, (NY, NX), dtype=np.int16)
write('rice16.fits', [fits.PrimaryHDU(), fits.CompImageHDU(c16, compression_type='RICE_1')])
cu16 = rng.integers(0, 65535, (NY, NX), dtype=np.uint16)
write('riceu16.fits', [fits.PrimaryHDU(), fits.CompImageHDU(cu16, compression_type='RICE_1',
                                                             name='SCI')])
c32 = rng.integers(-2**20, 2**20, (NY, NX), dtype=np.int32)
write('gzip1_32.fits', [fits.PrimaryHDU(), fits.CompImageHDU(c32, compression_type='GZIP_1')])
cf = rng.normal(0, 1, (NY, NX)).astype(np.float32)
write('gzip2_f32.fits', [fits.PrimaryHDU(), fits.CompImageHDU(cf, compression_type='GZIP_2',
                                                               quantize_level=0.0)])
write('hcomp16.fits', [fits.PrimaryHDU(), fits.CompImageHDU(c16, compression_type='HCOMPRESS_1',
                                                             hcomp_scale=0)])

# --- files the reader refuses --------------------------------------------
write('table.fits', [fits.PrimaryHDU(),
                     fits.BinTableHDU.from_columns([fits.Column('x', 'E', array=np.ones(4))])])
write('vector.fits', [fits.PrimaryHDU(np.arange(10, dtype=np.int16))])
gd = fits.GroupData(np.zeros((3, 1, 2, 2), dtype=np.float32), parnames=['UU', 'VV'],
                    pardata=[np.zeros(3), np.zeros(3)], bitpix=-32)
write('groups.fits', [fits.GroupsHDU(gd)])
with open(path('notfits.fits'), 'w') as f:
    f.write('this is not a FITS file\n' * 200)
with open(path('i16.fits'), 'rb') as f:
    whole = f.read()
with open(path('truncated.fits'), 'wb') as f:
    f.write(whole[:2880 + 1000])                             # header and part of the data
