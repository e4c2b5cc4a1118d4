"""The codecs rebuild real PyInstaller output byte for byte, and edited models stay valid."""
from __future__ import annotations

import os
import stat
import zlib

import pytest

from pyzpatch.formats import carchive, executable, pyz
from pyzpatch.formats.marshal_toc import TocStyle
from pyzpatch.fs.filebytes import FileBytes

from .conftest import archive_files, run_program

BUILDS = ["hello-onefile", "hello-onedir", "hello-sideload", "bigapp-onefile", "bigapp-onedir"]


def read(path) -> bytes:
    with open(path, "rb") as fp:
        return fp.read()


@pytest.mark.parametrize("build_id", BUILDS)
def test_every_build_round_trips(all_builds, build_id):
    for path in archive_files(all_builds[build_id]):
        raw = read(path)
        with FileBytes(path) as fb:
            if path.suffix == ".pkg":
                model = carchive.parse(fb.data)
                assert carchive.build(model) == raw
                archive = model
            else:
                exe = executable.parse(fb.data)
                assert executable.build(exe) == raw
                archive = exe.archive
            assert archive.layout is None, "PyInstaller lays blobs out back to back"
            pyz_entries = archive.entries_of_type("z")
            assert len(pyz_entries) == 1
            model = pyz.parse(pyz_entries[0].data)
            assert pyz.build(model) == bytes(pyz_entries[0].data)
            # The TOC encoder reproduces PyInstaller's bytes: no raw TOC had to be kept.
            assert model.toc_style is not None and model.toc_raw is None


def test_sideloaded_executable_has_only_the_sideload_magic(hello_sideload):
    raw = read(hello_sideload)
    assert executable.find_cookie(raw) == -1
    assert executable.has_sideload_magic(raw)
    with pytest.raises(Exception) as info:
        executable.parse(raw)
    assert "side-loaded" in str(info.value)


@pytest.fixture(scope="module")
def hello_pkg(hello_onefile) -> bytes:
    raw = read(hello_onefile)
    start, end = executable.locate_archive(raw)
    return raw[start:end]


def test_appended_layout_without_tail(hello_pkg):
    """Windows style: the archive is simply appended to the bootloader."""
    head = b"MZ" + os.urandom(4094)
    blob = head + hello_pkg
    exe = executable.parse(blob)
    assert len(exe.tail) == 0 and bytes(exe.head) == head
    assert executable.build(exe) == blob


def test_signature_tail_layout(hello_pkg):
    """macOS style: a code-signature blob follows the archive."""
    head = b"\xcf\xfa\xed\xfe" + os.urandom(8188)
    signature = b"\xfa\xde\x0c\xc0" + os.urandom(20000).replace(b"MEI", b"mei")
    blob = head + hello_pkg + signature
    exe = executable.parse(blob)
    assert bytes(exe.tail) == signature
    assert executable.build(exe) == blob


def test_bare_pkg_and_pyz_round_trip(hello_pkg):
    model = carchive.parse(hello_pkg)
    assert carchive.build(model) == hello_pkg
    pyz_blob = bytes(model.entries_of_type("z")[0].data)
    assert pyz.build(pyz.parse(pyz_blob)) == pyz_blob


def test_nonstandard_layout_is_kept_exactly(hello_pkg):
    """An archive with a gap between blobs (not PyInstaller's layout) still rebuilds exactly."""
    model = carchive.parse(hello_pkg)
    gap = b"GAPGAPGAP"
    # Re-lay the archive by hand: a gap before the last blob moves it and the TOC.
    entries = model.entries
    offsets = carchive.entry_offsets(model)
    cut = offsets[-1]
    data = bytearray(hello_pkg[:cut]) + gap + bytearray(hello_pkg[cut:])
    toc_off = carchive.COOKIE.unpack_from(hello_pkg, len(hello_pkg) - carchive.COOKIE.size)[2] + len(gap)
    # Rewrite the last TOC entry's offset and the cookie's fields.
    toc_len = len(data) - toc_off - carchive.COOKIE.size
    pos = toc_off
    for _ in entries[:-1]:
        pos += carchive.TOC_ENTRY.unpack_from(data, pos)[0]
    fields = list(carchive.TOC_ENTRY.unpack_from(data, pos))
    fields[1] += len(gap)
    carchive.TOC_ENTRY.pack_into(data, pos, *fields)
    carchive.COOKIE.pack_into(data, len(data) - carchive.COOKIE.size, carchive.MAGIC, len(data), toc_off,
                              toc_len, model.python_version, model.pylib_name)
    odd = carchive.parse(bytes(data))
    assert odd.layout is not None and odd.layout.gaps == [(cut, gap)]
    assert carchive.build(odd) == bytes(data)


def test_edited_model_builds_a_working_program(hello_onefile, tmp_path):
    """Replace mod1's code in the PYZ, rebuild the executable from the model, and run it."""
    raw = read(hello_onefile)
    exe = executable.parse(raw)
    pyz_entry = exe.archive.entries_of_type("z")[0]
    model = pyz.parse(pyz_entry.data)
    mod1 = model.entry("mod1")
    import marshal
    code = compile('def hello():\n    print("hello from an edited model")\n', "mod1.py", "exec")
    mod1.data = zlib.compress(marshal.dumps(code), 6)
    # Also add a module and drop nothing: the TOC must be re-encoded with new offsets.
    extra = compile("X = 1\n", "zz_extra.py", "exec")
    model.entries.append(pyz.PyzEntry("zz_extra", pyz.MODULE, zlib.compress(marshal.dumps(extra), 6)))
    pyz_entry.data = pyz.build(model)
    pyz_entry.uncompressed_length = len(pyz_entry.data)
    out = tmp_path / "edited"
    new = executable.build(exe)
    # Head and tail are kept as they were: the ELF section headers still give the old pydata
    # size, which the loader ignores (the bootloader finds its archive by the cookie).
    out.write_bytes(new)
    out.chmod(out.stat().st_mode | stat.S_IXUSR)
    reparsed = pyz.parse(executable.parse(new).archive.entries_of_type("z")[0].data)
    assert [e.name for e in reparsed.entries][-1] == "zz_extra"
    assert reparsed.toc_style == TocStyle()
    assert "hello from an edited model" in run_program(out)


def test_pyinstaller5_build_round_trips(hello_pyi5):
    raw = read(hello_pyi5)
    exe = executable.parse(raw)
    assert executable.build(exe) == raw
    pyz_entry = exe.archive.entries_of_type("z")[0]
    assert pyz_entry.name == "PYZ-00.pyz"  # 5.x naming: found by typecode, not by name
    model = pyz.parse(pyz_entry.data)
    assert pyz.build(model) == bytes(pyz_entry.data)
    assert model.toc_style is not None and model.toc_raw is None
    assert model.entry("mod1") is not None


def test_pyinstaller5_program_runs(hello_pyi5):
    assert run_program(hello_pyi5).strip() == "hello from mod1 v1"
