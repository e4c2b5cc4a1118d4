"""One way to recognise a file: the ordered format table, fixed wire ids, fall-through, and the
same answer from ``ls`` (bundle) and ``make`` (engine). Fast: files are built in memory."""
from __future__ import annotations

import io
import zipfile

import pytest

from fuzz.base import NEW, OLD
from pyzpatch import describe_patch, make_patch, open_bundle
from pyzpatch.delta.engine import Encoder
from pyzpatch.formats import carchive, executable, registry
from pyzpatch.inspect.bundle import ONEDIR, PKG, ZIP

COOKIE_MAGIC = carchive.MAGIC


def _archive_of(exe_bytes: bytes) -> bytes:
    start, end = executable.locate_archive(exe_bytes)
    return exe_bytes[start:end]


def _appended(prefix: bytes, exe_bytes: bytes) -> bytes:
    """An executable laid out as on Windows and macOS: the archive appended, nothing after it."""
    return prefix + _archive_of(exe_bytes)


PE_HEAD = b"MZ" + bytes(58) + (64).to_bytes(4, "little") + b"PE\0\0" + bytes(200)


def test_wire_ids_are_fixed():
    # Patches record these numbers; changing one breaks every patch made before.
    assert {f.kind: f.wire_id for f in registry.FORMATS} == {"exe": 0, "carchive": 1, "pyz": 2, "zip": 3, "tar": 4}
    for fmt in registry.FORMATS:
        assert registry.kind_of_wire_id(fmt.wire_id) == fmt.kind
    assert registry.kind_of_wire_id(5) is None


def test_file_ending_with_the_cookie_is_an_executable_when_the_archive_is_shorter():
    win = _appended(PE_HEAD, OLD)
    assert win.endswith(b"\0" * 8) or COOKIE_MAGIC in win[-88:]
    assert registry.candidates(win) == ["exe"]  # the bare-CArchive check looks at the length too
    assert registry.recognize(win).kind == "exe"
    bare = _archive_of(OLD)
    assert registry.candidates(bare) == ["carchive", "exe"]
    assert registry.recognize(bare).kind == "carchive"


def test_falls_through_when_the_first_candidate_does_not_parse():
    # A bare CArchive whose TOC is damaged still has a cookie: both candidates fail, each says why.
    bare = bytearray(_archive_of(OLD))
    toc_offset = int.from_bytes(bare[-88 + 12:-88 + 16], "big")
    bare[toc_offset:toc_offset + 4] = b"\xff\xff\xff\xff"
    found = registry.recognize(bytes(bare))
    assert found.kind is None
    assert [k for k, _ in found.rejected] == ["carchive", "exe"]
    assert "CArchive TOC" in found.reason
    # An opener that refuses the first candidate passes the bytes on to the next.
    good = _archive_of(OLD)

    def opener(fmt, data):
        if fmt.codec is carchive:
            raise carchive.FormatError("test", "refused")
        return fmt.codec.parse(data)

    found = registry.recognize(good, opener)
    assert found.kind == "exe" and [k for k, _ in found.rejected] == ["carchive"]


@pytest.mark.parametrize("prefix", [PE_HEAD, b"\xcf\xfa\xed\xfe" + bytes(300)], ids=["pe", "macho"])
def test_appended_layout_gets_a_structural_patch(tmp_path, prefix):
    old, new = tmp_path / "old", tmp_path / "new"
    old.write_bytes(_appended(prefix, OLD))
    new.write_bytes(_appended(prefix, NEW))
    made = make_patch(old, new)
    assert made.structural and made.note is None
    assert {c.path for c in made.changes} >= {"/archive/z:PYZ.pyz/mod1"}
    linux = make_patch(_write(tmp_path / "lo", OLD), _write(tmp_path / "ln", NEW))
    assert abs(len(made.data) - len(linux.data)) <= 64


def _write(path, data):
    path.write_bytes(data)
    return path


def _stored_zip_with_cookie() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("inner.bin", OLD)  # an executable with its cookie, stored as it is
        zf.writestr("readme.txt", "hello")
    return buf.getvalue()


def test_stored_zip_holding_cookie_bytes_is_a_zip_for_ls_and_make(tmp_path):
    blob = _stored_zip_with_cookie()
    assert COOKIE_MAGIC in blob
    assert registry.recognize(blob).kind == "zip"
    path = _write(tmp_path / "z.zip", blob)
    with open_bundle(path) as bundle:
        assert bundle.kind == ZIP
    encoder = Encoder()
    encoder.data_delta(blob, blob.replace(b"hello", b"HELLO"), "")
    assert encoder.out.ops.getvalue()[:2] == bytes([4, registry.wire_id("zip")])  # struct, zip


def test_ls_and_make_agree_on_every_synthetic_layout(tmp_path):
    # fuzz.base's archive carries no Python library, so as an executable it is a one-folder one.
    cases = {"elf": (OLD, ONEDIR), "pe": (_appended(PE_HEAD, OLD), ONEDIR), "bare": (_archive_of(OLD), PKG)}
    for name, (blob, bundle_kind) in cases.items():
        path = _write(tmp_path / name, blob)
        with open_bundle(path) as bundle:
            assert bundle.kind == bundle_kind
        assert registry.recognize(blob).kind == ("carchive" if name == "bare" else "exe")


def test_make_says_why_it_could_not_use_structure(tmp_path):
    # The new file is a PyInstaller executable, the old one is not: ls reads the new one, make
    # cannot pair them, and says so instead of a bare "not a PyInstaller executable".
    old = _write(tmp_path / "old", b"not an executable " * 300)
    new = _write(tmp_path / "new", NEW)
    made = make_patch(old, new)
    assert not made.structural
    assert made.note == ("structure not used (the old version: is not a PyInstaller executable): "
                         "used a whole-file diff")
    # A stored zip holding an executable, against that executable: the zip is refused (the old
    # one is no zip), and the next candidate, an executable around the stored one, is used.
    mixed = make_patch(_write(tmp_path / "exe", OLD), _write(tmp_path / "zip", _stored_zip_with_cookie()))
    assert mixed.structural
    plain = make_patch(_write(tmp_path / "a", b"x" * 5000), _write(tmp_path / "b", b"y" * 5000))
    assert plain.note == "not a PyInstaller executable, archive or zip: used a whole-file diff"
    desc = describe_patch(_write(tmp_path / "p", made.data))
    assert desc["structural"] is False
