#!/usr/bin/python3
"""Checks a synthetic sky from envpin-skygen against its own truth catalogue
and the model in docs/fits.md, using only astropy and numpy.

usage: /usr/bin/python3 tests/fits/checksky.py PREFIX

- header: BITPIX 16, BZERO 32768, BLANK -32768, the model keywords, no DATE;
- the dead column (BADCOL) is entirely BLANK and nothing else is;
- the sky: sigma-clipped median within 3 ADU of 800 (+ gradient), clipped
  sigma within 10 % of the expected 20.16 ADU (Poisson 1600 e- + 5 e- read
  noise, gain 2), away from sources;
- the truth: counts per class, coordinates inside the image, and for isolated
  bright stars (snr >= 50, no other source within 15 px + 4 r_eff, not
  saturated, no cosmic ray in the box; at least 10 of them) the sky-subtracted
  first moment in a 7x7 box lies within 0.25 px of the truth
  (1-based FITS coordinates: an off-by-one or a transposition fails this), and
  the box sum is within 15 % of the truth flux (the box holds ~86 % of a
  Moffat beta=3 FWHM 3 px star, so the truth flux must be the total).
Prints one line per check; exits 1 on any failure.
"""
import csv
import sys

import numpy as np
from astropy.io import fits
from astropy.stats import sigma_clipped_stats

prefix = sys.argv[1]
fails = 0


def check(ok, what):
    global fails
    print('%s - %s' % ('ok' if ok else 'not ok', what))
    if not ok:
        fails += 1


with fits.open(prefix + '.fits', uint=False) as hl:
    h = hl[0].header.copy()
    img = np.array(hl[0].data, dtype=np.float64)
ny, nx = img.shape
check(h['BITPIX'] == 16 and h['BZERO'] == 32768 and h['BLANK'] == -32768,
      'uint16 with BLANK: BITPIX %s BZERO %s BLANK %s' % (h['BITPIX'], h['BZERO'], h.get('BLANK')))
check(not any(k.startswith('DATE') for k in h) and 'CHECKSUM' not in h, 'no DATE or CHECKSUM keyword')
check(h['GAIN'] == 2.0 and h['RDNOISE'] == 5.0 and h['FWHMPIX'] == 3.0 and h['SKYVER'] == 1,
      'model keywords GAIN RDNOISE FWHMPIX SKYVER')
bad = int(h['BADCOL']) - 1
nanmask = np.isnan(img)
check(nanmask[:, bad].all() and nanmask.sum() == ny,
      'dead column x=%d is BLANK and nothing else (%d undefined)' % (bad + 1, nanmask.sum()))

rows = list(csv.DictReader(open(prefix + '.truth.csv')))
stars = [r for r in rows if r['class'] == 'star']
gals = [r for r in rows if r['class'] == 'galaxy']
check(len(stars) == h['NSTARS'] and len(gals) == h['NGALS'] and len(stars) + len(gals) == len(rows),
      '%d stars, %d galaxies, as NSTARS/NGALS say' % (len(stars), len(gals)))
x = np.array([float(r['x']) for r in rows])
y = np.array([float(r['y']) for r in rows])
check(((x >= 1) & (x <= nx) & (y >= 1) & (y <= ny)).all(), 'truth positions inside the image')
check(sum(int(r['saturated']) for r in rows) >= 1 and img[~nanmask].max() == 65535,
      'one saturated star, clipped at 65535')

# sky away from sources: mask 12 px around every source with snr > 3 and cosmic rays
yy, xx = np.mgrid[0:ny, 0:nx]
src_mask = nanmask.copy()
for r in rows:
    if float(r['snr']) > 3:
        cx, cy = float(r['x']) - 1, float(r['y']) - 1
        rad = 12 + 3 * float(r['r_eff'])
        src_mask |= (xx - cx) ** 2 + (yy - cy) ** 2 < rad ** 2
src_mask_cr = np.zeros_like(nanmask)
for r in csv.DictReader(open(prefix + '.cosmics.csv')):
    src_mask_cr[int(r['y']) - 1, int(r['x']) - 1] = True
src_mask |= src_mask_cr
sky_model = 800 + 0.02 * (xx - (nx - 1) / 2) + 0.01 * (yy - (ny - 1) / 2)
_, med, std = sigma_clipped_stats((img - sky_model)[~src_mask], sigma=3)
check(abs(med) < 3, 'sky median %.2f ADU from the model (< 3)' % med)
check(abs(std / 20.16 - 1) < 0.10, 'sky sigma %.2f ADU, expected 20.16 (10 %%)' % std)
ramp = np.polyfit(xx[~src_mask], img[~src_mask] - 800, 1)[0]
check(abs(ramp - 0.02) < 0.005, 'sky gradient in x %.4f ADU/px, expected 0.02' % ramp)

reff = np.array([float(r['r_eff']) for r in rows])
worst, checked, fluxdev = 0.0, 0, 0.0
for i, r in enumerate(stars):
    if float(r['snr']) < 50 or int(r['saturated']):
        continue
    cx, cy = float(r['x']) - 1, float(r['y']) - 1
    d = np.hypot(x - 1 - cx, y - 1 - cy) - (15 + 4 * reff)  # < 0: a neighbour's light is near
    d[rows.index(r)] = 1e9
    if d.min() < 0:
        continue
    ix, iy = int(round(cx)), int(round(cy))
    box = img[iy - 3:iy + 4, ix - 3:ix + 4] - sky_model[iy - 3:iy + 4, ix - 3:ix + 4]
    if np.isnan(box).any() or src_mask_cr[iy - 3:iy + 4, ix - 3:ix + 4].any():
        continue
    w = box.sum()
    mx = (box.sum(axis=0) * np.arange(ix - 3, ix + 4)).sum() / w
    my = (box.sum(axis=1) * np.arange(iy - 3, iy + 4)).sum() / w
    worst = max(worst, np.hypot(mx - cx, my - cy))
    fluxdev = max(fluxdev, abs(w / float(r['flux']) - 0.86))
    checked += 1
check(checked >= 10, '%d isolated bright stars measured' % checked)
check(worst < 0.25, 'star centroids within %.3f px of the truth (< 0.25)' % worst)
check(fluxdev < 0.15, '7x7 box holds 0.86 +- %.3f of the truth flux (< 0.15)' % fluxdev)
sys.exit(1 if fails else 0)
