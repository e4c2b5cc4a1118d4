"""How make chooses between its structural patch and a whole-file diff without always running
the whole-file diff (issue 13, item 1), and the body compressed in two halves. Real zip files
of real text (this Python's standard library sources); timings are bench/'s business."""
from __future__ import annotations

import lzma
import os
import sysconfig
import zipfile
import zlib
from pathlib import Path

import bsdiff4
import pytest

from pyzpatch import apply_patch, make_patch
from pyzpatch.delta.estimate import common_prefix, common_suffix
from pyzpatch.delta.same import same_at, same_bytes
from pyzpatch.errors import FormatError
from pyzpatch.patchfile import codec
from pyzpatch.workers import Workers

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
    assert framing.dict_log == 20  # the fast preset's 1 MiB: apply's decoder needs no more
    decoder = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=codec._filters(framing.dict_log))
    payload = decoder.decompress(blob[framing.start:-4])
    assert payload == codec.join_body(body) and decoder.eof and not decoder.unused_data


def test_a_small_change_in_large_inputs_is_compressed_tightly():
    """The same large body, once for inputs it is most of (compressed fast, 1 MiB dictionary) and
    once for inputs 16 times its size (a library upgrade in a big folder: preset 9e, up to an
    8 MiB dictionary): the second is smaller, and both read back."""
    text = b"".join(data for _, data in _sources(400))[:codec.SPLIT_BODY + 4096]
    body = codec.Body(ops=b"\x07" * 100, diff=b"", lit=text)
    sizes = {}
    for inputs in (len(text), 17 * len(text)):
        header = codec.Header(old_size=inputs // 2, old_sha256=bytes(32), new_size=inputs - inputs // 2,
                              new_sha256=bytes(32))
        blob = codec.encode(header, body)
        assert bytes(codec.decode(blob)[1].lit) == text
        sizes[inputs] = (len(blob), codec.read_header(blob)[1].dict_log)
    (fast, fast_dict), (tight, tight_dict) = sizes.values()
    assert fast_dict == 20 and 20 < tight_dict <= 23
    assert tight < fast * 0.95, sizes


def test_common_prefix_and_suffix():
    a = os.urandom(10000)
    b = a[:7000] + bytes([a[7000] ^ 1]) + a[7001:]
    assert common_prefix(a, b) == 7000
    assert common_suffix(a, b, 10000 - 7000) == 10000 - 7001
    assert common_prefix(a, a) == len(a) and common_suffix(a, a, len(a)) == len(a)
    assert common_prefix(b"", a) == 0 and common_suffix(a, b"", 0) == 0
    assert common_prefix(a[:5000], a) == 5000


def _joined_patch():
    """A patch whose body is over SPLIT_BODY: two LZMA2 streams joined (real text)."""
    text = b"".join(data for _, data in _sources(400))[:codec.SPLIT_BODY + 4096]
    body = codec.Body(ops=b"\x07" * 100, diff=b"\x01\x02", lit=text)
    header = codec.Header(old_size=1, old_sha256=bytes(32), new_size=len(text), new_sha256=bytes(32))
    return codec.encode(header, body), body


def test_joined_body_is_read_back_in_two_pieces():
    """make reads its own joined body back as two pieces at once, split at the dictionary reset
    in its middle: the same body as reading it whole."""
    blob, body = _joined_patch()
    _, framing = codec.read_header(blob)
    data = memoryview(blob)[framing.start:-4]
    resets = codec.lzma2_resets(data)
    assert resets[0] == (0, 0) and len(resets) == 2  # each half starts with one
    assert 0 < resets[1][1] < framing.body_size
    with Workers(1) as pool:
        assert codec._decode_in_two(blob, framing, pool) == codec.join_body(body)
        _, got = codec.decode(blob, workers=pool)
    assert (bytes(got.ops), bytes(got.diff), bytes(got.lit)) == (body.ops, body.diff, body.lit)


def test_joined_body_damaged_in_one_piece_is_refused_as_when_read_whole():
    """A byte changed in the second piece (CRC fixed up, so only the decoder can tell): the two
    pieces do not decode, and decode says what the whole read says."""
    blob, _ = _joined_patch()
    _, framing = codec.read_header(blob)
    split = codec.lzma2_resets(memoryview(blob)[framing.start:-4])[1][0]
    bad = bytearray(blob[:-4])
    bad[framing.start + split + 200] ^= 0xFF
    bad += zlib.crc32(bad).to_bytes(4, "little")
    with Workers(1) as pool:
        assert codec._decode_in_two(bytes(bad), framing, pool) is None
        with pytest.raises(FormatError) as in_two:
            codec.decode(bytes(bad), workers=pool)
    with pytest.raises(FormatError) as whole:
        codec.decode(bytes(bad))
    assert str(in_two.value) == str(whole.value)


def test_lzma2_resets_of_streams_that_do_not_parse():
    whole = lzma.compress(b"x" * 1000, format=lzma.FORMAT_RAW, filters=codec._filters(20))
    assert codec.lzma2_resets(whole) == [(0, 0)]
    assert codec.lzma2_resets(whole[:-1]) == []  # no end marker
    assert codec.lzma2_resets(b"\x05" + whole[1:]) == []  # not a chunk
    assert codec.lzma2_resets(whole[:3]) == []


def test_same_bytes_on_views_of_real_files():
    """The equality make compares children and rebuilt containers with (bytes, views, slices of
    a file; a difference in the first, a middle and the last byte)."""
    data = b"".join(d for _, d in _sources(30))
    assert len(data) > 3 * 32 * 1024
    view = memoryview(bytearray(data))
    assert same_bytes(data, view) and same_bytes(view[5:], data[5:]) and same_bytes(b"", memoryview(b""))
    for pos in (0, len(data) // 2, len(data) - 1):
        other = bytearray(data)
        other[pos] ^= 1
        assert not same_bytes(data, other)
    assert not same_bytes(data, data[:-1])
    assert same_at(data, 1000, data[1000:2000]) and not same_at(data, 1001, data[1000:2000])
    assert not same_at(data, len(data) - 10, data[:20])  # runs past the end
