"""A small but real base for the fuzz harnesses, built with pyzpatch's own codecs (no
PyInstaller needed): a CArchive holding a PYZ of compiled modules, a compressed data entry, a
zip, and runtime options, plus a patch to a changed version of it."""
from __future__ import annotations

import io
import marshal
import os
import zipfile
import zlib

from pyzpatch.delta.engine import Encoder
from pyzpatch.formats import carchive, pyz
from pyzpatch.patchfile import codec as patchfile
from pyzpatch.patchfile.codec import Body, Header


def _module(source: str) -> bytes:
    return zlib.compress(marshal.dumps(compile(source, "m.py", "exec")), 6)


def _archive(version: int) -> bytes:
    modules = [pyz.PyzEntry(f"mod{i}", pyz.MODULE, _module(f"X = {i * version}\ndef f():\n    return {i}\n"))
               for i in range(6)]
    modules.append(pyz.PyzEntry("pkg", pyz.PACKAGE, _module("'''a package'''\n")))
    modules.append(pyz.PyzEntry("ns", pyz.NAMESPACE, b""))
    pyz_blob = pyz.build(pyz.Pyz(pymagic=b"\xa7\r\r\n", entries=modules))
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.py", "A = %d\n" % version * 20)
        zf.writestr("b.txt", "text " * 50)
    data = b"data file contents %d " % version * 30
    entries = [
        carchive.CEntry("boot", "s", True, 9, zlib.compress(b"boot code", 9)),
        carchive.CEntry("data.txt", "x", True, len(data), zlib.compress(data, 9)),
        carchive.CEntry("lib.zip", "x", False, len(zbuf.getvalue()), zbuf.getvalue()),
        carchive.CEntry("pyi-contents-directory _internal", "o", False, 0, b""),
        carchive.CEntry("PYZ.pyz", "z", False, len(pyz_blob), pyz_blob),
    ]
    model = carchive.CArchive(entries=entries, python_version=311,
                              pylib_name=b"libpython3.11.so.1.0".ljust(64, b"\0"))
    return b"\x7fELF" + bytes(60) + carchive.build(model) + b"tail bytes"


OLD = _archive(1)
NEW = _archive(2)


def patch_header() -> Header:
    return Header(len(OLD), patchfile.sha256_of(OLD), len(NEW), patchfile.sha256_of(NEW))


def seed_body() -> bytes:
    """A real patch body (ops, diff, lit) from OLD to NEW, laid out as the harness reads it."""
    encoder = Encoder()
    encoder.data_delta(OLD, NEW, "")
    out = encoder.out
    return patchfile.join_body(Body(out.ops.getvalue(), bytes(out.diff), bytes(out.lit)))


def write_seeds(args, seeds: dict) -> None:
    """Put ``seeds`` ({file name: bytes}) into each corpus folder named among a harness's
    arguments (options and single input files are left alone), unless already there."""

    for folder in [a for a in args if not a.startswith("-")]:
        if os.path.isfile(folder):
            continue  # a single input to replay
        os.makedirs(folder, exist_ok=True)
        for name, blob in seeds.items():
            path = os.path.join(folder, name)
            if not os.path.exists(path):
                with open(path, "wb") as fp:
                    fp.write(blob)
