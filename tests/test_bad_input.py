"""Bad input gets one clear line and a non-zero exit; names cannot escape the output folder."""
from __future__ import annotations

import os
import shutil
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz import base
from pyzpatch.errors import PyzpatchError
from pyzpatch.formats import carchive, executable
from pyzpatch.inspect.bundle import open_bundle
from pyzpatch.inspect.listing import describe

from .conftest import NO_HANG, run_cli


def assert_clean_failure(result, path) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] or os.path.basename(str(path)) in lines[0]


@pytest.fixture(scope="module", params=["synthetic", pytest.param("hello", marks=pytest.mark.slow)])
def hello_bytes(request) -> bytes:
    """An executable to damage: one built in memory (fuzz/base.py: a CArchive with a PYZ, a zip
    and compressed entries, fast), and a real PyInstaller build (slow)."""
    if request.param == "synthetic":
        return base.OLD
    return request.getfixturevalue("hello_onefile").read_bytes()


def cookie_pos(raw: bytes) -> int:
    return raw.rfind(carchive.MAGIC)


def corrupt_cookie_offsets(raw: bytes) -> bytes:
    data = bytearray(raw)
    pos = cookie_pos(raw)
    magic, length, toc_off, toc_len, pyver, lib = carchive.COOKIE.unpack_from(data, pos)
    carchive.COOKIE.pack_into(data, pos, magic, length, toc_off + 10**9 % 2**31, toc_len, pyver, lib)
    return bytes(data)


def cookie_length_past_start(raw: bytes) -> bytes:
    data = bytearray(raw)
    pos = cookie_pos(raw)
    struct.pack_into("!I", data, pos + 8, pos + 10_000)
    return bytes(data)


def lying_toc_entry(raw: bytes) -> bytes:
    data = bytearray(raw)
    start, end = executable.locate_archive(raw)
    toc_off = carchive.COOKIE.unpack_from(raw, end - carchive.COOKIE.size)[2]
    struct.pack_into("!I", data, start + toc_off, 0x7FFFFFF0)  # entry length far past the TOC
    return bytes(data)


def lying_stored_length(raw: bytes) -> bytes:
    data = bytearray(raw)
    start, end = executable.locate_archive(raw)
    toc_off = carchive.COOKIE.unpack_from(raw, end - carchive.COOKIE.size)[2]
    struct.pack_into("!I", data, start + toc_off + 8, 0x7FFFFFF0)  # stored length past the archive
    return bytes(data)


def garbage_pyz_toc(raw: bytes) -> bytes:
    data = bytearray(raw)
    exe = executable.parse(raw)
    offsets = carchive.entry_offsets(exe.archive)
    index = next(i for i, e in enumerate(exe.archive.entries) if e.typecode == "z")
    pyz_start = len(exe.head) + offsets[index]
    (toc_off,) = struct.unpack_from("!i", raw, pyz_start + 8)
    toc_len = len(exe.archive.entries[index].data) - toc_off
    data[pyz_start + toc_off:pyz_start + toc_off + toc_len] = bytes((i * 37 + 11) % 256 for i in range(toc_len))
    return bytes(data)


CASES = {
    "empty": lambda raw: b"",
    "text": lambda raw: b"just some text\nnot an executable\n" * 20,
    "truncated": lambda raw: raw[: len(raw) // 2],
    "cookie-offsets-past-end": corrupt_cookie_offsets,
    "cookie-length-past-start": cookie_length_past_start,
    "toc-entry-length-lies": lying_toc_entry,
    "toc-stored-length-lies": lying_stored_length,
    "pyz-toc-garbage": garbage_pyz_toc,
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("command", ["ls", "extract"])
def test_bad_file_gives_one_clear_line(hello_bytes, tmp_path, case, command):
    bad = tmp_path / f"{case}.bin"
    bad.write_bytes(CASES[case](hello_bytes))
    before = bad.read_bytes()
    if command == "ls":
        result = run_cli("ls", bad)
    else:
        result = run_cli("extract", bad, "--all", "-o", tmp_path / "out")
    assert_clean_failure(result, bad)
    assert bad.read_bytes() == before


def test_system_binary_is_refused(tmp_path):
    ls = shutil.which("ls")
    result = run_cli("ls", ls)
    assert_clean_failure(result, ls)
    assert "not a PyInstaller executable" in result.stderr


def test_missing_file_and_plain_folder(tmp_path):
    assert_clean_failure(run_cli("ls", tmp_path / "nope"), tmp_path / "nope")
    assert_clean_failure(run_cli("ls", tmp_path), tmp_path)


def test_sideloaded_exe_without_its_pkg(hello_sideload, tmp_path):
    lonely = tmp_path / "hello"
    shutil.copy(hello_sideload, lonely)
    result = run_cli("ls", lonely)
    assert_clean_failure(result, lonely)
    assert "hello.pkg" in result.stderr


# --- names that try to escape the output folder -------------------------------------------

def archive_with_names(names) -> bytes:
    entries = [carchive.CEntry(name=n, typecode="x", compressed=False, uncompressed_length=5, data=b"owned")
               for n in names]
    model = carchive.CArchive(entries=entries, python_version=311,
                              pylib_name=b"libpython3.11.so.1.0".ljust(64, b"\0"))
    return carchive.build(model)


@pytest.mark.parametrize("evil", ["../evil", "/tmp/abs-evil", "a/../../evil", "..\\..\\evil", "ok//x", "C:evil"])
def test_escaping_names_are_refused_before_writing(tmp_path, evil):
    pkg = tmp_path / "evil.pkg"
    pkg.write_bytes(archive_with_names(["fine.txt", evil]))
    out = tmp_path / "sub" / "out"
    result = run_cli("extract", pkg, "--all", "-o", out)
    assert_clean_failure(result, pkg)
    # Nothing at all was written, not even the harmless entry.
    assert not out.exists() or list(out.iterdir()) == []
    assert not (tmp_path / "evil").exists() and not (tmp_path / "sub" / "evil").exists()


def test_symlink_inside_output_folder_is_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "link").symlink_to(outside)
    pkg = tmp_path / "evil.pkg"
    pkg.write_bytes(archive_with_names(["link/planted.txt"]))
    result = run_cli("extract", pkg, "--all", "-o", out)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert list(outside.iterdir()) == []


# --- mutation fuzzing on a small real archive ---------------------------------------------

@pytest.fixture(scope="module")
def small_real_pkg(hello_bytes) -> bytes:
    """The hello build's archive without its big shared libraries: every structure is real."""
    exe = executable.parse(hello_bytes)
    archive = exe.archive
    archive.entries = [e for e in archive.entries if len(e.data) < 200_000]
    return carchive.build(archive)


def exercise(path) -> None:
    """Everything ls does: parse every level and decompress every module."""
    with open_bundle(path) as bundle:
        describe(bundle)
        if bundle.archive:
            for entry in bundle.archive.entries:
                carchive.entry_content(entry)


@settings(max_examples=150, deadline=NO_HANG, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_archives_raise_only_pyzpatch_errors(small_real_pkg, tmp_path_factory, data):
    blob = bytearray(small_real_pkg)
    # Aim most mutations at the structures (PYZ TOC, CArchive TOC, cookie) near the end.
    tail_zone = min(len(blob), 40_000)
    for _ in range(data.draw(st.integers(1, 6))):
        action = data.draw(st.sampled_from(["flip", "byte", "u32", "truncate"]))
        if not blob:
            break
        pos = data.draw(st.integers(max(0, len(blob) - tail_zone), len(blob) - 1))
        if action == "flip":
            blob[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif action == "byte":
            blob[pos] = data.draw(st.integers(0, 255))
        elif action == "u32" and pos + 4 <= len(blob):
            struct.pack_into("!I", blob, pos, data.draw(st.sampled_from([0, 1, 17, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF])))
        elif action == "truncate":
            del blob[pos:]
    path = tmp_path_factory.mktemp("fuzz") / "mutant.pkg"
    path.write_bytes(bytes(blob))
    try:
        exercise(path)
    except PyzpatchError:
        pass
