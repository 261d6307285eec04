# tests/fits/sepcompare.py FITS SECTION RESULT.json: compares envpin-fitsinfer's
# detections and background with SEP's on the same (real) image; prints the
# figures; t540 asserts on them.  SECTION is "x1:x2,y1:y2" (1-based) or "".
import json, sys
import numpy as np, sep
from astropy.io import fits
path, sect, res = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
d = fits.getdata(path, uint=False).astype("<f4")
if d.ndim > 2: d = d[0]
x0 = y0 = 0
if sect:
    (a, b), (c, e) = [tuple(int(v) for v in p.split(":")) for p in sect.split(",")]
    d = np.ascontiguousarray(d[c-1:e, a-1:b]); 
mask = ~np.isfinite(d)
bk = sep.Background(d, mask=mask, bw=64, bh=64, fw=3, fh=3)
o = sep.extract(np.where(mask, 0, d - bk.back()), 5.0, err=bk.globalrms, mask=mask, minarea=5)
cols = res["detection_columns"]; ix, iy, isnr = cols.index("x"), cols.index("y"), cols.index("snr")
det = np.array(res["runs"][0]["detections"])
bright = det[det[:, isnr] >= 20]
sx, sy = o["x"] + 1, o["y"] + 1
d1 = np.hypot(bright[:, None, ix] - sx[None], bright[:, None, iy] - sy[None]).min(1)
snr_sep = o["flux"] / (bk.globalrms * np.sqrt(o["npix"]))
sb = snr_sep >= 20
d2 = np.hypot(det[:, None, ix] - sx[None, sb], det[:, None, iy] - sy[None, sb]).min(0)
print(f"ours {len(det)} (bright {len(bright)}) sep {len(o)} (bright {sb.sum()}); bright-ours matched {np.mean(d1<=3):.3f}; bright-sep matched {np.mean(d2<=3):.3f}; bkg {res['background']['bkg']:.2f} vs {bk.globalback:.2f} rms {res['background']['rms']:.3f} vs {bk.globalrms:.3f}")
