"""How make chooses between its structural patch and a whole-file diff without always running
the whole-file diff (issue 13, item 1), and the body compressed in two halves. Real zip files
of real text (this Python's standard library sources); timings are bench/'s business."""
from __future__ import annotations

import lzma
import os
import sysconfig
import zipfile
from pathlib import Path

import bsdiff4

from pyzpatch import apply_patch, make_patch
from pyzpatch.delta.estimate import common_prefix, common_suffix
from pyzpatch.patchfile import codec

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def _sources(count: int, skip: int = 0) -> list:
    files = sorted(p for p in STDLIB.rglob("*.py") if "site-packages" not in p.parts
                   and p.stat().st_size > 2000)[skip:skip + count]
    assert len(files) == count
    return [(p.relative_to(STDLIB).as_posix(), p.read_bytes()) for p in files]


def _zip(path: Path, members, compress=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compress) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = compress
            zf.writestr(info, data)
    return path


def _applied(old: Path, made, tmp_path: Path) -> bytes:
    patch = tmp_path / "p.patch"
    patch.write_bytes(made.data)
    out = tmp_path / "out"
    apply_patch(old, patch, output=out)
    return out.read_bytes()


def test_added_compressed_parts_need_no_whole_file_diff(tmp_path):
    """Many deflated members added: their stored bytes are new to any byte diff, so the estimate
    of a whole-file bsdiff4 rules it out without running it, and it is a true lower bound."""
    base = _sources(5)
    old = _zip(tmp_path / "old.zip", base)
    new = _zip(tmp_path / "new.zip", base + _sources(16, skip=5))
    made = make_patch(old, new)
    assert made.structural
    assert made.whole_file is not None and made.whole_file["checked"] is False
    whole = len(bsdiff4.diff(old.read_bytes(), new.read_bytes()))
    assert made.whole_file["estimate"] <= whole
    assert len(made.data) <= whole + 1024
    assert _applied(old, made, tmp_path) == new.read_bytes()


def test_parts_the_structure_cannot_pair_get_the_exact_check(tmp_path):
    """Stored (uncompressed) members renamed and each edited: the structure sees them all as new,
    a whole-file diff finds them. The estimate counts nothing for uncompressed bytes, so make
    runs the real whole-file diff and keeps it."""
    members = _sources(20)
    old = _zip(tmp_path / "old.zip", members, zipfile.ZIP_STORED)
    renamed = [("moved/" + name, data.replace(b"def ", b"def  ", 1)) for name, data in members]
    new = _zip(tmp_path / "new.zip", renamed, zipfile.ZIP_STORED)
    made = make_patch(old, new)
    assert made.whole_file is not None and made.whole_file["checked"] is True
    assert not made.structural and "whole-file diff" in made.note
    assert len(made.data) == made.whole_file["whole_size"]
    assert _applied(old, made, tmp_path) == new.read_bytes()


def test_large_body_compressed_in_two_halves_reads_back(tmp_path):
    """A body above SPLIT_BODY is two raw LZMA2 streams joined into one: the patch decodes as
    written, and a plain LZMA2 decoder reads the joined stream whole."""
    text = b"".join(data for _, data in _sources(400))[:codec.SPLIT_BODY + 4096]
    assert len(text) > codec.SPLIT_BODY
    body = codec.Body(ops=b"\x07" * 100, diff=b"", lit=text)
    header = codec.Header(old_size=1, old_sha256=bytes(32), new_size=len(text), new_sha256=bytes(32))
    blob = codec.encode(header, body)
    got_header, got = codec.decode(blob)
    assert bytes(got.lit) == text and bytes(got.ops) == body.ops
    _, framing = codec.read_header(blob)
    decoder = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=codec._filters(framing.dict_log))
    payload = decoder.decompress(blob[framing.start:-4])
    assert payload == codec.join_body(body) and decoder.eof and not decoder.unused_data


def test_common_prefix_and_suffix():
    a = os.urandom(10000)
    b = a[:7000] + bytes([a[7000] ^ 1]) + a[7001:]
    assert common_prefix(a, b) == 7000
    assert common_suffix(a, b, 10000 - 7000) == 10000 - 7001
    assert common_prefix(a, a) == len(a) and common_suffix(a, a, len(a)) == len(a)
    assert common_prefix(b"", a) == 0 and common_suffix(a, b"", 0) == 0
    assert common_prefix(a[:5000], a) == 5000
