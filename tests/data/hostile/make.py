#!/usr/bin/env python3
"""Hostile-layer corpus for `envpin unpack` (docs/unpack.md, issue 4).

  make.py corpus OUT --sentinel DIR   one OCI layout per case in OUT/CASE/, and
                                      OUT/cases.tsv ("|"-separated): name, expect, exit code,
                                      message substring, extra CLI args
  make.py check OUT CASE ROOT         asserts what a "contained" case must leave
                                      inside ROOT (exit 1 naming the failure)
  make.py image OUT                   a benign 3-layer image with whiteouts and
                                      opaque dirs, tagged "wh", for umoci comparison
  make.py list DIR                    a listing (type, mode, owner, size, link
                                      target, sha256, hardlink group) for diffs

Tars are written byte by byte here, because the point is entries no honest
tool writes (negative sizes, NUL in PAX paths, '..' names).  DIR, the
sentinel, sits beside the unpack root: relative escapes name it as
"../sentinel", absolute ones by its full path.  Every case is deterministic.
"""
import gzip
import hashlib
import json
import os
import stat
import sys

BLOCK = 512


def octal(v, n):
    return ("%0*o" % (n - 1, v)).encode() + b"\0"


def header(name, typ=b"0", size=0, mode=0o644, link=b"", uid=0, gid=0, mtime=1767225600,
           devmajor=0, devminor=0, size_field=None, magic=b"ustar\x0000", bad_sum=False):
    if isinstance(name, str):
        name = name.encode()
    if isinstance(link, str):
        link = link.encode()
    b = bytearray(BLOCK)
    b[0:100] = name[:100].ljust(100, b"\0")
    b[100:108] = octal(mode, 8)
    b[108:116] = octal(uid, 8)
    b[116:124] = octal(gid, 8)
    b[124:136] = size_field if size_field is not None else octal(size, 12)
    b[136:148] = octal(mtime, 12)
    b[148:156] = b" " * 8
    b[156:157] = typ
    b[157:257] = link[:100].ljust(100, b"\0")
    b[257:265] = magic
    b[329:337] = octal(devmajor, 8)
    b[337:345] = octal(devminor, 8)
    s = sum(b) + (1 if bad_sum else 0)
    b[148:156] = ("%06o" % s).encode() + b"\0 "
    return bytes(b)


def pad(data):
    return data + b"\0" * ((BLOCK - len(data) % BLOCK) % BLOCK)


def entry(name, typ=b"0", data=b"", **kw):
    return header(name, typ, size=len(data) if typ == b"0" else kw.pop("size", 0), **kw) + pad(data)


def f(name, data=b"x\n", **kw):
    return entry(name, b"0", data, **kw)


def d(name, mode=0o755, **kw):
    return entry(name, b"5", mode=mode, **kw)


def sym(name, target, **kw):
    return entry(name, b"2", link=target, mode=0o777, **kw)


def hard(name, target, **kw):
    return entry(name, b"1", link=target, **kw)


def pax_records(recs):
    out = b""
    for k, v in recs:
        if isinstance(k, str):
            k = k.encode()
        if isinstance(v, str):
            v = v.encode()
        body = b" " + k + b"=" + v + b"\n"
        n = len(body) + 1
        while len(str(n).encode()) + len(body) != n:
            n = len(str(n).encode()) + len(body)
        out += str(n).encode() + body
    return out


def pax(recs, typ=b"x", raw=None):
    data = raw if raw is not None else pax_records(recs)
    return header("PaxHeaders/x", typ, size=len(data)) + pad(data)


def gnu_long(name, typ=b"L"):
    if isinstance(name, str):
        name = name.encode()
    data = name + b"\0"
    return header("././@LongLink", typ, size=len(data), magic=b"ustar  \0") + pad(data)


END = b"\0" * 1024


def tar(*entries, end=True):
    return b"".join(entries) + (END if end else b"")


def write_layout(out, layers, tag="img", media="gzip", diff_override=None):
    """An OCI layout with one image of the given layer tars."""
    os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)

    def put(data):
        h = hashlib.sha256(data).hexdigest()
        with open(os.path.join(out, "blobs", "sha256", h), "wb") as fh:
            fh.write(data)
        return "sha256:" + h, len(data)

    descs, diffs = [], []
    for raw in layers:
        diffs.append("sha256:" + hashlib.sha256(raw).hexdigest())
        if media == "gzip":
            blob = gzip.compress(raw, compresslevel=9, mtime=0)
            mt = "application/vnd.oci.image.layer.v1.tar+gzip"
        elif media == "lying-gzip":
            blob = raw
            mt = "application/vnd.oci.image.layer.v1.tar+gzip"
        else:
            blob = raw
            mt = "application/vnd.oci.image.layer.v1.tar"
        dg, n = put(blob)
        descs.append({"mediaType": mt, "digest": dg, "size": n})
    if diff_override:
        diffs = diff_override(diffs)
    cfg = {"architecture": "amd64", "os": "linux", "config": {},
           "rootfs": {"type": "layers", "diff_ids": diffs}}
    cdg, cn = put(json.dumps(cfg, sort_keys=True).encode())
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdg,
                      "size": cn},
           "layers": descs}
    mdg, mn = put(json.dumps(man, sort_keys=True).encode())
    idx = {"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdg, "size": mn,
         "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    with open(os.path.join(out, "index.json"), "w") as fh:
        json.dump(idx, fh)
    with open(os.path.join(out, "oci-layout"), "w") as fh:
        json.dump({"imageLayoutVersion": "1.0.0"}, fh)


# --------------------------------------------------------------------------
# The corpus.  Each case: name -> dict(layers=[tar bytes...], expect=
# "contained" | "refused", msg=substring of stderr for refusals, rc=exit code
# (2 unless said), args=[extra CLI args], checks=[...] for contained cases,
# media=gzip|none|lying-gzip, doc=one line).
# --------------------------------------------------------------------------

def cases(sent):
    S = sent.rstrip("/")
    C = {}

    def add(name, doc, layers, expect, msg="", rc=None, args=(), checks=(), media="gzip",
            diff_override=None):
        C[name] = dict(doc=doc, layers=layers, expect=expect, msg=msg,
                       rc=rc if rc is not None else (0 if expect == "contained" else 2),
                       args=list(args), checks=list(checks), media=media,
                       diff_override=diff_override)

    R, K = "refused", "contained"
    # -- path traversal and absolute names
    add("trav-dotdot", "file '../sentinel/pwn'", [tar(f("../sentinel/pwn"))], R,
        "entry '../sentinel/pwn'")
    add("trav-dotdot2", "file '../../pwn'", [tar(f("../../pwn"))], R, "entry '../../pwn'")
    add("trav-embedded", "file 'a/../../sentinel/pwn'", [tar(d("a/"), f("a/../../sentinel/pwn"))],
        R, "entry 'a/../../sentinel/pwn'")
    add("trav-dir", "directory '../evil/'", [tar(d("../evil/"))], R, "entry '../evil/'")
    add("trav-abs-dotdot", "file '/../sentinel/pwn'", [tar(f("/../sentinel/pwn"))], R,
        "entry '/../sentinel/pwn'")
    add("abs-path", "absolute name SENTINEL/pwn lands under the root",
        [tar(f(S + "/pwn"))], K, checks=[["file", S.lstrip("/") + "/pwn"]])
    add("abs-etc", "absolute '/etc/envpin-pwn' lands in ROOT/etc",
        [tar(f("/etc/envpin-pwn"))], K, checks=[["file", "etc/envpin-pwn"]])
    # -- symlinks
    add("sym-rel-escape-write", "symlink l -> ../sentinel, then file l/pwn",
        [tar(sym("l", "../sentinel"), f("l/pwn"))], R, "entry 'l/pwn'")
    add("sym-abs-escape-write", "symlink l -> SENTINEL (absolute), then file l/pwn",
        [tar(sym("l", S), f("l/pwn"))], R, "entry 'l/pwn'")
    add("sym-escape-rerooted", "symlink l -> ../sentinel with ROOT/sentinel present: write "
        "stays inside", [tar(d("sentinel/"), sym("l", "../sentinel"), f("l/pwn"))], K,
        checks=[["file", "sentinel/pwn"], ["symlink", "l", "../sentinel"]])
    add("sym-localetc", "localetc -> /etc, then localetc/unbroken (containerd SymlinkAbsolute)",
        [tar(d("etc/"), sym("localetc", "/etc"), f("localetc/unbroken"))], K,
        checks=[["file", "etc/unbroken"]])
    add("sym-chain", "a -> b -> c -> ../../sentinel, then a/pwn",
        [tar(sym("a", "b"), sym("b", "c"), sym("c", "../../sentinel"), f("a/pwn"))], R,
        "entry 'a/pwn'")
    add("sym-loop", "a -> b, b -> a, then a/x",
        [tar(sym("a", "b"), sym("b", "a"), f("a/x"))], R, "entry 'a/x'")
    add("sym-chain-45", "a 45-hop symlink chain used as a parent",
        [tar(*[sym("s%d" % i, "s%d" % (i + 1)) for i in range(45)], d("s45/"), f("s0/x"))], R,
        "entry 's0/x'")
    add("sym-dot", "a symlink named '.' pointing at the sentinel",
        [tar(sym(".", S))], R, "entry '.'")
    add("sym-slash-dot", "symlink '/.' -> SENTINEL, then later layer writes (umoci "
        "CVE-2021-29136)", [tar(sym("/.", S)), tar(f("pwn"))], R, "entry '/.'")
    add("sym-dotdot-name", "a symlink named '..'", [tar(sym("..", S))], R, "entry '..'")
    add("sym-to-dot", "cur -> ., then cur/cur/cur/x stays in the root",
        [tar(sym("cur", "."), f("cur/cur/cur/x"))], K, checks=[["file", "x"]])
    add("sym-empty-target", "symlink with an empty target", [tar(sym("e", ""))], R, "entry 'e'")
    add("sym-replace-not-follow", "symlink victim -> SENTINEL/victim, then a file 'victim' "
        "replaces the link", [tar(sym("victim", S + "/victim"), f("victim", b"new\n"))], K,
        checks=[["file", "victim"]])
    add("dir-to-symlink-same-layer", "d/, d/a, then d -> SENTINEL, then d/pwn",
        [tar(d("d/"), f("d/a"), sym("d", S), f("d/pwn"))], R, "entry 'd/pwn'")
    add("dir-to-symlink-later-layer", "layer 1 d/ and d/a; layer 2 d -> ../sentinel; layer 3 "
        "d/pwn", [tar(d("d/"), f("d/a")), tar(sym("d", "../sentinel")), tar(f("d/pwn"))], R,
        "entry 'd/pwn'")
    add("dir-to-symlink-root", "layer 2 replaces d/ by d -> /, layer 3 writes d/etc/x "
        "(SymlinkOverridePath): lands in ROOT/etc/x",
        [tar(d("d/"), d("etc/")), tar(sym("d", "/")), tar(f("d/etc/x"))], K,
        checks=[["file", "etc/x"], ["symlink", "d", "/"]])
    add("dangling-parent", "l -> /missing, then l/x", [tar(sym("l", "/missing"), f("l/x"))],
        R, "entry 'l/x'")
    # -- hardlinks
    add("hard-dotdot", "hardlink to ../sentinel/victim", [tar(hard("h", "../sentinel/victim"))],
        R, "entry 'h'")
    add("hard-etc-passwd", "hardlink to /etc/passwd (absent in the root)",
        [tar(hard("h", "/etc/passwd"))], R, "entry 'h'")
    add("hard-abs-sentinel", "hardlink to SENTINEL/victim (absolute)",
        [tar(hard("h", S + "/victim"))], R, "entry 'h'")
    add("hard-to-symlink-out", "symlink s -> SENTINEL/victim, hardlink h -> s",
        [tar(sym("s", S + "/victim"), hard("h", "s"))], R, "entry 'h'")
    add("hard-symlink-chmod", "CVE-2021-32760: link to a symlink to outside, then chmod 4777",
        [tar(sym("s", S + "/victim"), hard("h", "s"), f("h", mode=0o4777))], R, "entry 'h'")
    add("hard-through-symlink-dir", "l -> ../sentinel, hardlink h -> l/victim",
        [tar(sym("l", "../sentinel"), hard("h", "l/victim"))], R, "entry 'h'")
    add("hard-sibling-prefix", "hardlink to ../root-evil/secret (string-prefix bug)",
        [tar(hard("h", "../root-evil/secret"))], R, "entry 'h'")
    add("hard-to-dir", "hardlink to a directory", [tar(d("dd/"), hard("h", "dd"))], R,
        "entry 'h'")
    add("hard-self", "hardlink to itself", [tar(hard("h", "h"))], R, "entry 'h'")
    add("hard-abs-rerooted", "hardlink to /etc/ok re-rooted to ROOT/etc/ok",
        [tar(d("etc/"), f("etc/ok"), hard("h", "/etc/ok"))], K, checks=[["samefile", "h",
                                                                        "etc/ok"]])
    # -- whiteouts
    add("wh-dotdot", "whiteout '.wh..' (removes the parent)", [tar(f(".wh.."))], R,
        "entry '.wh..'")
    add("wh-dotdotdot", "whiteout '.wh...' (removes '..')", [tar(f(".wh..."))], R,
        "entry '.wh...'")
    add("wh-sub-dotdot", "whiteout 'etc/.wh..'", [tar(d("etc/"), f("etc/.wh.."))], R,
        "entry 'etc/.wh..'")
    add("wh-sub-dotdotdot", "whiteout 'etc/.wh...'", [tar(d("etc/"), f("etc/.wh..."))], R,
        "entry 'etc/.wh...'")
    add("wh-through-rel-symlink", "l -> ../sentinel; next layer l/.wh.victim",
        [tar(sym("l", "../sentinel")), tar(f("l/.wh.victim"))], K,
        checks=[["symlink", "l", "../sentinel"]])
    add("wh-through-abs-symlink", "l -> SENTINEL; next layer l/.wh.victim",
        [tar(sym("l", S)), tar(f("l/.wh.victim"))], K, checks=[["symlink", "l", S]])
    add("wh-symlink-to-root", "l -> /; next layer l/.wh.keep removes ROOT/keep only",
        [tar(d("keep/"), f("keep/a"), sym("l", "/")), tar(f("l/.wh.keep"))], K,
        checks=[["absent", "keep"]])
    add("wh-name-is-symlink", "a whiteout of a symlink to outside removes the link, not the "
        "target", [tar(sym("v", S + "/victim")), tar(f(".wh.v"))], K, checks=[["absent", "v"]])
    add("opq-through-symlink", "l -> ../sentinel; next layer l/.wh..wh..opq",
        [tar(sym("l", "../sentinel")), tar(f("l/.wh..wh..opq"))], K)
    add("opq-root", "opaque marker at the root empties lower layers, keeps this layer's",
        [tar(f("old")), tar(f("new"), f(".wh..wh..opq"))], K,
        checks=[["absent", "old"], ["file", "new"]])
    add("wh-reserved", "whiteout '.wh..wh.foo' (reserved prefix)", [tar(f(".wh..wh.foo"))], R,
        "entry '.wh..wh.foo'")
    # -- names
    add("long-path-pax", "PAX path of 5000 bytes (> PATH_MAX)",
        [tar(pax([("path", "a/" * 2500)]), f("short"))], R, "PATH_MAX")
    add("long-component", "a 300-byte component (> NAME_MAX) via PAX",
        [tar(pax([("path", "b" * 300)]), f("short"))], R, "NAME_MAX")
    add("gnu-longname-huge", "GNU 'L' header of 1 MiB",
        [tar(header("././@LongLink", b"L", size=1 << 20, magic=b"ustar  \0") +
             pad(b"a" * (1 << 20)), f("x"))], R, "exceeds")
    add("gnu-longname-dotdot", "GNU long name '../../sentinel/pwn' + 100 chars",
        [tar(gnu_long("../../sentinel/" + "p" * 120), f("short"))], R,
        "entry '../../sentinel/ppp")
    add("gnu-longlink-escape", "GNU 'K' link target ../sentinel/victim on a hardlink",
        [tar(gnu_long("../sentinel/victim", b"K"), hard("h", "placeholder"))], R, "entry 'h'")
    add("empty-name", "an entry with an empty name", [tar(f(""))], R, "empty name")
    # -- PAX abuse
    add("pax-huge", "a 2 MiB PAX header", [tar(pax(None, raw=b"x" * (2 << 20)), f("x"))], R,
        "exceeds")
    add("pax-nul-path", "PAX path 'ok\\0../../x'", [tar(pax([("path", b"ok\0../../x")]), f("y"))],
        R, "NUL")
    add("pax-negative-size", "PAX size=-1", [tar(pax([("size", "-1")]), f("y"))], R,
        "not a valid size")
    add("pax-path-dotdot", "PAX path '../sentinel/pwn' overrides a benign ustar name",
        [tar(pax([("path", "../sentinel/pwn")]), f("benign"))], R, "entry '../sentinel/pwn'")
    add("pax-linkpath-escape", "PAX linkpath ../sentinel/victim on a hardlink",
        [tar(pax([("linkpath", "../sentinel/victim")]), hard("h", "x"))], R, "entry 'h'")
    add("pax-malformed", "PAX record with a bad length", [tar(pax(None, raw=b"999 path=x\n"),
                                                              f("y"))], R, "malformed PAX")
    add("pax-sparse", "GNU sparse via PAX", [tar(pax([("GNU.sparse.major", "1")]), f("y"))], R,
        "sparse")
    add("pax-xattr-trusted", "SCHILY.xattr.trusted.overlay.opaque is dropped",
        [tar(pax([("SCHILY.xattr.trusted.overlay.opaque", "y")]), d("o/"))], K,
        checks=[["noxattr", "o", "trusted.overlay.opaque"]])
    add("pax-global-path", "a global PAX path is ignored, not applied to every entry",
        [tar(pax([("path", "../sentinel/pwn")], typ=b"g"), f("ok"))], K, checks=[["file", "ok"]])
    # -- headers and sizes
    add("ustar-negative-size", "base-256 negative size field",
        [tar(header("neg", b"0", size_field=b"\xff" * 12))], R, "entry 'neg'")
    add("bad-checksum", "header checksum mismatch", [tar(header("c", b"0", bad_sum=True))], R,
        "checksum")
    add("truncated", "a file claims 4096 bytes, the stream ends after 100",
        [header("t", b"0", size=4096) + b"y" * 100], R, "truncated")
    add("trailing-garbage", "non-zero data after the end-of-archive marker",
        [tar(f("x")) + b"garbage" + b"\0" * 505], R, "after the end-of-archive")
    add("bomb-file", "64 MiB file of zeros in a ~64 KiB gzip, cap 8 MiB",
        [tar(f("zeros", b"\0" * (64 << 20)))], R, "size limit", args=["--max-bytes", "8388608"])
    add("bomb-stream", "32 MiB of zero padding after the archive (gzip ~32 KiB)",
        [tar(f("x")) + b"\0" * (32 << 20)], R, "padding", args=["--max-bytes", "8388608"])
    add("max-entries", "2000 entries with --max-entries 1000",
        [tar(*[f("f%04d" % i, b"") for i in range(2000)])], R, "more than 1000 entries",
        args=["--max-entries", "1000"])
    # -- special files and replacement
    add("devices-skipped", "char 1:1 and block 8:0 without --devices are skipped",
        [tar(d("dev/"), entry("dev/mem", b"3", devmajor=1, devminor=1, mode=0o666),
             entry("dev/sda", b"4", devmajor=8, devminor=0, mode=0o666))], K,
        checks=[["absent", "dev/mem"], ["absent", "dev/sda"]])
    add("fifo", "a fifo is created as a fifo", [tar(entry("p", b"6", mode=0o644))], K,
        checks=[["fifo", "p"]])
    add("setuid-no-same-owner", "setuid file with --no-same-owner loses the bit",
        [tar(f("su", mode=0o4755, uid=1234))], K, args=["--no-same-owner"],
        checks=[["mode", "su", 0o755]])
    add("duplicates", "x as file, dir, symlink to SENTINEL, then file: last wins by replacing",
        [tar(f("x"), d("x/"), sym("x", S), f("x", b"last\n"))], K,
        checks=[["file", "x"], ["content", "x", "last\n"]])
    add("file-then-dir", "a file replaced by a directory", [tar(f("x"), d("x/"), f("x/y"))], K,
        checks=[["dir", "x"], ["file", "x/y"]])
    add("dir-then-file", "a directory replaced by a file", [tar(d("x/"), f("x/y"), f("x"))], K,
        checks=[["file", "x"]])
    add("parent-is-file", "file f, then f/x", [tar(f("f"), f("f/x"))], R, "entry 'f/x'")
    add("sparse-type", "GNU sparse type 'S'", [tar(entry("sp", b"S"))], R, "entry 'sp'")
    add("root-dir-entry", "'./' entry for the root is ignored", [tar(d("./", mode=0o777),
                                                                    f("a"))], K,
        checks=[["file", "a"], ["mode", ".", 0o755]])
    add("media-type-lie", "layer claims gzip but is a plain tar",
        [tar(f("x"))], R, "the content is none", media="lying-gzip")
    add("diff-id-mismatch", "config diff_id does not match the layer", [tar(f("x"))], R,
        "diff_id mismatch", rc=1, diff_override=lambda ds: ["sha256:" + "0" * 64 for _ in ds])
    add("diff-ids-short", "the config lists fewer diff_ids than layers", [tar(f("a")),
                                                                            tar(f("b"))], R,
        "no diff_id", diff_override=lambda ds: ds[:1])
    return C


def cmd_corpus(out, sent):
    os.makedirs(out, exist_ok=True)
    cs = cases(sent)
    with open(os.path.join(out, "cases.tsv"), "w") as tsv:
        for name, c in sorted(cs.items()):
            write_layout(os.path.join(out, name), c["layers"], media=c["media"],
                         diff_override=c["diff_override"])
            with open(os.path.join(out, name, "checks.json"), "w") as fh:
                json.dump(c["checks"], fh)
            tsv.write("|".join([name, c["expect"], str(c["rc"]), c["msg"],
                                 " ".join(c["args"]), c["doc"]]) + "\n")
    return 0


def cmd_check(out, case, root):
    with open(os.path.join(out, case, "checks.json")) as fh:
        checks = json.load(fh)
    for c in checks:
        kind, p = c[0], os.path.join(root, c[1])
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            st = None
        ok = {
            "file": lambda: st and stat.S_ISREG(st.st_mode),
            "dir": lambda: st and stat.S_ISDIR(st.st_mode),
            "fifo": lambda: st and stat.S_ISFIFO(st.st_mode),
            "absent": lambda: st is None,
            "symlink": lambda: st and stat.S_ISLNK(st.st_mode) and os.readlink(p) == c[2],
            "mode": lambda: st and stat.S_IMODE(st.st_mode) == c[2],
            "content": lambda: st and open(p).read() == c[2],
            "samefile": lambda: st and os.path.samefile(p, os.path.join(root, c[2])),
            "noxattr": lambda: st and c[2] not in os.listxattr(p, follow_symlinks=False),
        }[kind]()
        if not ok:
            print("%s: check %s failed" % (case, json.dumps(c)), file=sys.stderr)
            return 1
    return 0


def cmd_image(out):
    """Three layers: a base, deletions by whiteout, an opaque directory."""
    l1 = tar(d("etc/"), f("etc/keep", b"keep\n"), f("etc/gone", b"gone\n"), d("opt/"),
             d("opt/app/"), f("opt/app/old1", b"1\n"), d("opt/app/sub/"), f("opt/app/sub/old2"),
             d("var/"), d("var/lib/"), f("var/lib/x", b"x\n"), sym("var/link", "lib/x"),
             f("bin/tool", b"#!/bin/sh\n", mode=0o755), hard("bin/tool2", "bin/tool"),
             f("suid", mode=0o4755), d("tmp/", mode=0o1777))
    l2 = tar(f("etc/.wh.gone"), d("var/"), f("var/.wh.lib"), f("etc/new", b"new\n"),
             d("opt/"), d("opt/app/"), f("opt/app/.wh..wh..opq"), f("opt/app/fresh", b"f\n"))
    l3 = tar(f("var/lib", b"now a file\n"), f("etc/keep", b"changed\n", mode=0o600),
             d("etc/d/", mode=0o700), f("etc/d/.wh.nothing"))
    write_layout(out, [l1, l2, l3], tag="wh")
    return 0


def cmd_list(root):
    seen = {}
    rows = []
    for dp, dns, fns in os.walk(root):
        dns.sort()
        for n in sorted(dns + fns):
            p = os.path.join(dp, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            m = st.st_mode
            t = ("d" if stat.S_ISDIR(m) else "l" if stat.S_ISLNK(m) else "f" if stat.S_ISREG(m)
                 else "p" if stat.S_ISFIFO(m) else "c" if stat.S_ISCHR(m) else
                 "b" if stat.S_ISBLK(m) else "?")
            extra = ""
            if t == "f":
                h = hashlib.sha256()
                with open(p, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        h.update(chunk)
                key = (st.st_dev, st.st_ino)
                group = seen.setdefault(key, rel)
                extra = "size=%d sha256=%s link-group=%s" % (st.st_size, h.hexdigest(), group)
            elif t == "l":
                extra = "-> " + os.readlink(p)
            elif t in "cb":
                extra = "dev=%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
            mode = "%04o" % stat.S_IMODE(m) if t != "l" else "----"
            rows.append("%s %s %s %d:%d %s" % (rel, t, mode, st.st_uid, st.st_gid, extra))
    rows.sort()
    sys.stdout.write("".join(r.rstrip() + "\n" for r in rows))
    return 0


def main(argv):
    if len(argv) >= 4 and argv[1] == "corpus" and argv[3] == "--sentinel" and len(argv) == 5:
        return cmd_corpus(argv[2], os.path.abspath(argv[4]))
    if len(argv) == 5 and argv[1] == "check":
        return cmd_check(argv[2], argv[3], argv[4])
    if len(argv) == 3 and argv[1] == "image":
        return cmd_image(argv[2])
    if len(argv) == 3 and argv[1] == "list":
        return cmd_list(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
