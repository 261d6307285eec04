#!/usr/bin/python3
"""Writes the hand-made seed inputs of tests/fuzz/corpus/ (docs/fuzzing.md).

  tests/fuzz/make-seeds.py        (re)writes every seed, deterministically

Real files (manifests, the lock, a certificate) are copied from the tree;
the rest (tars, layouts, archives, FITS headers, registry answers) is built
here byte by byte so the seeds stay small and cover the formats' corners:
ustar, PAX 'x'/'g', GNU 'L'/'K', whiteouts, links; OCI and Docker documents;
primary, extension and tile-compressed FITS HDUs."""
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(TOP, "tests", "fuzz", "corpus")
SEP = b"\n%%\n"


def put(harness, name, data):
    d = os.path.join(OUT, harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def copy(harness, name, src):
    with open(os.path.join(TOP, src), "rb") as f:
        put(harness, name, f.read())


def sha(b):
    return hashlib.sha256(b).hexdigest()


# ---- manifest -------------------------------------------------------------
def manifests():
    for sub in ("good", "bad"):
        d = os.path.join(TOP, "tests", "data", "manifests", sub)
        for n in sorted(os.listdir(d)):
            if n.endswith(".json"):
                copy("manifest", sub + "-" + n, os.path.join(d, n))
    for n in ("default.json", "pytorch-cuda-2.9.json", "pytorch-cuda-2.9-nvidia.json"):
        copy("manifest", "manifests-" + n, os.path.join("manifests", n))
    put("manifest", "edge-escapes.json",
        '{"envpin":1,"name":"a\\u00e9\\ud83d\\ude00","base":{"scratch":true},'
        '"layers":[{"run":["sh","-c","echo \\"\\\\\\/\\b\\f\\n\\r\\t\\""]}]}')
    put("manifest", "edge-deep.json", '{"envpin":1,"x":' + "[" * 40 + "]" * 40 + "}")
    put("manifest", "edge-dup.json", '{"envpin":1,"base":{"scratch":true},"envpin":2}')


# ---- lock ------------------------------------------------------------------
def locks():
    copy("lock", "pytorch-cuda-2.9.lock.json", "manifests/pytorch-cuda-2.9.lock.json")
    base = {"lockVersion": 1, "manifest": "m.json", "manifest_sha256": "0" * 64,
            "source_date_epoch": 1767225600,
            "inputs": {"base": {"kind": "debian", "suite": "bookworm",
                                "packages": [{"name": "python3.11", "version": "3.11.2-6"},
                                             {"name": "libc6", "version": "2.36-9"}]},
                       "layers": [{"kind": "pip", "requirements": ["numpy==2.0"], "python": "3.11",
                                   "glibc": "2.36", "wheels": []},
                                  {"kind": "copy", "files": []}]}}
    for i, c in enumerate([{"name": "gzip", "level": 6}, {"name": "zstd", "level": 19},
                           {"name": "pigz", "level": 9, "block_size": 131072}, {"name": "none"},
                           "x", 5, None, [], {}]):
        d = dict(base)
        d["compressor"] = c
        put("lock", "compressor-%d.json" % i, json.dumps(d))
    d = dict(base)
    d["lockVersion"] = 2
    put("lock", "version-2.json", json.dumps(d))


# ---- tar --------------------------------------------------------------------
def tarball(fmt, members):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=fmt) as t:
        for m, data in members:
            m.mtime = 1767225600
            t.addfile(m, io.BytesIO(data) if data is not None else None)
    return b.getvalue()


def ti(name, typ=tarfile.REGTYPE, size=0, link="", mode=0o644, pax=None):
    m = tarfile.TarInfo(name)
    m.type = typ
    m.size = size
    m.linkname = link
    m.mode = mode
    if pax:
        m.pax_headers = pax
    return m


def tars():
    long = "d/" + "x" * 150 + "/" + "y" * 120
    basic = [(ti("d/", tarfile.DIRTYPE, mode=0o755), None), (ti("d/f", size=5), b"hello"),
             (ti("d/l", tarfile.SYMTYPE, link="f"), None), (ti("d/h", tarfile.LNKTYPE, link="d/f"), None)]
    put("tar", "ustar.tar", tarball(tarfile.USTAR_FORMAT, basic))
    put("tar", "gnu-long.tar", tarball(tarfile.GNU_FORMAT, [
        (ti("d/", tarfile.DIRTYPE), None), (ti(long, size=3), b"abc"),
        (ti("d/ln", tarfile.SYMTYPE, link="/" + "t" * 200), None)]))
    put("tar", "pax.tar", tarball(tarfile.PAX_FORMAT, [
        (ti("p/", tarfile.DIRTYPE), None),
        (ti("p/" + "z" * 180, size=2, pax={"mtime": "1767225600.5", "uid": "1000",
                                           "SCHILY.xattr.user.k": "v", "comment": "c"}), b"zz"),
        (ti("p/big", size=1, pax={"size": "1"}), b"1")]))
    put("tar", "whiteout.tar", tarball(tarfile.USTAR_FORMAT, [
        (ti("w/", tarfile.DIRTYPE), None), (ti("w/.wh.gone"), b""), (ti("w/.wh..wh..opq"), b""),
        (ti("w/fifo", tarfile.FIFOTYPE), None)]))
    # a global PAX header ('g') before the entries
    put("tar", "pax-global.tar", pax_global() + tarball(tarfile.USTAR_FORMAT, basic[:2]))
    put("tar", "dotdot.tar", tarball(tarfile.USTAR_FORMAT, [(ti("../escape", size=1), b"x")]))


def pax_record(k, v):
    body = (" %s=%s\n" % (k, v)).encode()
    n = len(body)
    while len(str(n + len(str(n))).encode()) + len(body) != n + len(str(n)):
        n += 1
    n = len(body) + len(str(n))
    return str(n).encode() + body


def pax_global():
    rec = pax_record("mtime", "1767225600") + pax_record("path", "g/ignored")
    m = tarfile.TarInfo("pax_global_header")
    m.type = tarfile.XGLTYPE
    m.size = len(rec)
    hdr = m.tobuf(tarfile.USTAR_FORMAT)
    return hdr + rec + b"\0" * (-len(rec) % 512)


# ---- OCI layout (placeholders: see fuzz_oci_layout.c) -----------------------
def layouts():
    layer = tarball(tarfile.USTAR_FORMAT, [(ti("f", size=2), b"hi")])
    cfg = ('{"architecture":"amd64","os":"linux","config":{"Env":["A=1"],"Cmd":["sh"],'
           '"Labels":{"k":"v"}},"rootfs":{"type":"layers","diff_ids":["sha256:@3"]},'
           '"history":[{"created_by":"x"}]}')
    man = ('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
           '"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:@2","size":#2},'
           '"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:@3","size":#3}]}')
    idx = ('{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",'
           '"digest":"sha256:@1","size":#1,"annotations":{"org.opencontainers.image.ref.name":"t"},'
           '"platform":{"architecture":"amd64","os":"linux"}}]}')
    put("oci_layout", "oci-one-layer", SEP.join([idx.encode(), man.encode(), cfg.encode(), layer]))
    # docker media types, a gzip layer (diff_id is then the tar's hash: a mismatch seed)
    dman = man.replace("application/vnd.oci.image.manifest.v1+json",
                       "application/vnd.docker.distribution.manifest.v2+json").replace(
        "application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json").replace(
        "application/vnd.oci.image.layer.v1.tar", "application/vnd.docker.image.rootfs.diff.tar.gzip")
    didx = idx.replace("application/vnd.oci.image.manifest.v1+json",
                       "application/vnd.docker.distribution.manifest.v2+json")
    put("oci_layout", "docker-gzip", SEP.join([didx.encode(), dman.encode(), cfg.encode(),
                                               gzip.compress(layer, mtime=0)]))
    # an index pointing at a nested index (multi-platform)
    nested = ('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":['
              '{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:@2","size":#2,'
              '"platform":{"architecture":"arm64","os":"linux","variant":"v8"}},'
              '{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:@2","size":#2,'
              '"platform":{"architecture":"amd64","os":"linux"}}]}')
    top = ('{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json",'
           '"digest":"sha256:@1","size":#1}]}')
    man2 = man.replace("@2", "@3").replace("#2", "#3").replace("@3\",\"size\":#3}]", "@4\",\"size\":#4}]")
    cfg2 = cfg.replace("@3", "@4")
    put("oci_layout", "nested-index", SEP.join([top.encode(), nested.encode(), man2.encode(),
                                                cfg2.encode(), layer]))
    put("oci_layout", "empty-layers", SEP.join([idx.encode(), man.replace(
        ',"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:@3","size":#3}]',
        ',"layers":[]').encode(), cfg.replace('"sha256:@3"', "").encode()]))


# ---- image archives ---------------------------------------------------------
def archives():
    layer = tarball(tarfile.USTAR_FORMAT, [(ti("f", size=2), b"hi")])
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                      "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha(layer)]}}).encode()
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                 "digest": "sha256:" + sha(cfg), "size": len(cfg)},
                      "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                  "digest": "sha256:" + sha(layer), "size": len(layer)}]}).encode()
    idx = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + sha(man),
         "size": len(man), "annotations": {"org.opencontainers.image.ref.name": "t"}}]}).encode()
    blobs = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", idx),
             ("blobs/sha256/" + sha(man), man), ("blobs/sha256/" + sha(cfg), cfg),
             ("blobs/sha256/" + sha(layer), layer)]
    dm = json.dumps([{"Config": "blobs/sha256/" + sha(cfg), "RepoTags": ["x/y:1"],
                      "Layers": ["blobs/sha256/" + sha(layer)]}]).encode()
    for fmt, name in ((tarfile.USTAR_FORMAT, "oci-ustar.tar"), (tarfile.PAX_FORMAT, "oci-pax.tar")):
        put("oci_archive", name, tarball(fmt, [(ti("blobs/", tarfile.DIRTYPE), None),
                                               (ti("blobs/sha256/", tarfile.DIRTYPE), None)] +
                                         [(ti(n, size=len(d)), d) for n, d in blobs]))
    put("oci_archive", "docker.tar", tarball(tarfile.GNU_FORMAT,
                                             [(ti(n, size=len(d)), d) for n, d in blobs] +
                                             [(ti("manifest.json", size=len(dm)), dm),
                                              (ti("repositories", size=2), b"{}"),
                                              (ti("lnk", tarfile.SYMTYPE, link="manifest.json"), None)]))
    dm2 = dm.replace(b"blobs/sha256/" + sha(cfg).encode(), b"cfg.json").replace(
        b"blobs/sha256/" + sha(layer).encode(), b"abc/layer.tar")
    put("oci_archive", "docker-legacy.tar", tarball(tarfile.USTAR_FORMAT, [
        (ti("abc/layer.tar", size=len(layer)), layer), (ti("cfg.json", size=len(cfg)), cfg),
        (ti("manifest.json", size=len(dm2)), dm2)]))


# ---- registry answers (challenge %% content type %% body %% location %% base64) ----
def registry():
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"digest": "sha256:" + "a" * 64, "size": 2}, "layers": []})
    idx = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                      "manifests": [{"digest": "sha256:" + "b" * 64, "platform":
                                     {"os": "linux", "architecture": "amd64"}}]})
    cases = {
        "bearer": ['Bearer realm="https://auth.example/token",service="registry.example",'
                   'scope="repository:a/b:pull,push"', "application/vnd.oci.image.manifest.v1+json; charset=utf-8",
                   man, "/v2/a/b/blobs/uploads/1?_state=x", "dXNlcjpwYXNz"],
        "basic": ['Basic realm="r"', "application/vnd.oci.image.index.v1+json", idx,
                  "https://[::1]:5000/v2/x", "dTpw"],
        "escapes": ['Bearer  realm = "a\\"b" , service=svc,scope="x y", error="invalid_token"',
                    "application/json", '{"token":"abc","access_token":"def","expires_in":300}',
                    "//other.example/p", "=="],
        "schema1": ["Digest nonce=1", "application/vnd.docker.distribution.manifest.v1+json",
                    '{"schemaVersion":1,"fsLayers":[]}', "http://127.0.0.1/", "YQ=="],
    }
    for n, parts in cases.items():
        put("registry", n, SEP.join(p.encode() for p in parts))


# ---- certificates (cert %% cert %% check output) ----
def certs():
    with open(os.path.join(TOP, "tests", "data", "gpu", "h100-cert.json")) as f:
        c = json.load(f)
    small = {k: c[k] for k in ("certificate_version", "fingerprint", "result", "image")}
    now = json.loads(json.dumps(small))
    now["fingerprint"]["bkg"] = 801.7
    now["fingerprint"]["pixhash"] = "fnv1a64:0"
    sc = {"driver_version": "550.54", "runtime_version": "12.4", "devices": [{"uuid": "GPU-1"}],
          "checks": [{"name": "cuda", "status": "pass"}, {"name": "gpu-mem", "status": "skip"},
                     {"name": "x", "status": "fail"}],
          "model": {"torch": "2.9", "cuda_version": "12.4"}, "result": "pass",
          "fingerprint": c["fingerprint"]}
    put("cert", "h100", SEP.join([json.dumps(small).encode(), json.dumps(now).encode(),
                                  json.dumps(sc).encode()]))
    put("cert", "no-tolerance", SEP.join([b'{"fingerprint":{"version":1,"a":1}}',
                                          b'{"fingerprint":{"version":2,"a":"x"}}', b'{}']))


# ---- FITS --------------------------------------------------------------------
def fits():
    import numpy as np
    from astropy.io import fits as F
    rng = np.random.default_rng(1)

    def save(name, hdul):
        b = io.BytesIO()
        hdul.writeto(b)
        put("fits", name, b.getvalue())

    save("i16.fits", F.HDUList([F.PrimaryHDU(rng.integers(0, 100, (8, 6)).astype(np.int16))]))
    h = F.PrimaryHDU(rng.integers(0, 60000, (4, 5)).astype(np.uint16))
    save("u16-bzero.fits", F.HDUList([h]))
    h = F.PrimaryHDU(rng.integers(-5, 5, (4, 4)).astype(np.int32))
    h.header["BLANK"] = -5
    h.header["BSCALE"] = 2.5
    save("i32-blank.fits", F.HDUList([h]))
    save("f32-ext.fits", F.HDUList([F.PrimaryHDU(), F.ImageHDU(rng.random((3, 4, 2)).astype(np.float32),
                                                                name="SCI")]))
    save("f64.fits", F.HDUList([F.PrimaryHDU(np.array([[np.nan, 1.0], [np.inf, -2.0]]))]))
    save("rice.fits", F.HDUList([F.PrimaryHDU(), F.CompImageHDU(rng.integers(0, 1000, (16, 16)).astype(np.int32),
                                                                compression_type="RICE_1")]))
    save("table.fits", F.HDUList([F.PrimaryHDU(), F.BinTableHDU.from_columns(
        [F.Column(name="a", format="J", array=np.arange(3))])]))


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    manifests()
    locks()
    tars()
    layouts()
    archives()
    registry()
    certs()
    fits()


if __name__ == "__main__":
    sys.exit(main())
