"""Hostile structure: real archives rebuilt with duplicated, reordered, dropped, renamed or
garbled entries at each level (CArchive, PYZ, zip), then byte-mutated where their tables are.

For every mutant, three properties:

1. Only pyzpatch's own error type escapes parsing, listing, extracting, make and apply.
2. What parses rebuilds to the same bytes (``build(parse(x)) == x``), hostile input included.
3. Where ``make`` succeeds between a real archive and a mutant (either way), ``apply`` gives
   back exactly the other one.
"""
from __future__ import annotations

import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyzpatch import PyzpatchError, open_bundle
from pyzpatch.formats import carchive, executable, pyz, ziparchive
from pyzpatch.inspect.extract import extract
from pyzpatch.inspect.listing import describe
from pyzpatch.patch.file import apply_patch, make_patch

from .conftest import NO_HANG


class Blob(bytes):
    """Bytes that Hypothesis reports by size, not by content."""

    def __repr__(self) -> str:
        return f"<{len(self)} bytes>"


# PYZPATCH_FUZZ_EXAMPLES raises the count for a longer local run (docs/security.md).
FUZZ = settings(max_examples=int(os.environ.get("PYZPATCH_FUZZ_EXAMPLES", "40")), deadline=NO_HANG,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def small_pkg(hello_onefile) -> bytes:
    """The hello build's CArchive without its big entries, and its PYZ cut to 40 modules (every
    structure real, small enough for many examples)."""
    archive = executable.parse(open(hello_onefile, "rb").read()).archive
    entries = []
    for e in archive.entries:
        if e.typecode == "z":
            model = pyz.parse(e.data)
            model.entries = model.entries[:40]
            data = pyz.build(model)
            entries.append(carchive.CEntry(e.name, e.typecode, False, len(data), data))
        elif len(e.data) < 30_000:
            entries.append(e)
    archive.entries = entries
    return Blob(carchive.build(archive))


@pytest.fixture(scope="module")
def small_zip(hello_onefile) -> bytes:
    """The first 40 members of the build's base_library.zip, as a zip of its own."""
    archive = executable.parse(open(hello_onefile, "rb").read()).archive
    entry = next(e for e in archive.entries if e.name == "base_library.zip")
    z = ziparchive.parse(carchive.entry_content(entry))
    members = z.members[:40]
    # Re-lay the members one after another (offsets are derived from the list when built).
    return Blob(ziparchive.build(ziparchive.ZipArchive(z.prefix, members, z.offset_shift, z.comment)))


def shuffle_entries(entries: list, data, replace) -> list:
    """Duplicate, drop, swap or move entries, or give one another's name or bytes
    (``replace(a, b, rename)``); the list is copied."""
    entries = list(entries)
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        if not entries:
            break
        i = data.draw(st.integers(0, len(entries) - 1), label="i")
        j = data.draw(st.integers(0, len(entries) - 1), label="j")
        action = data.draw(st.sampled_from(["duplicate", "drop", "swap", "move", "rename", "swap_data"]))
        if action == "duplicate":
            entries.insert(j, entries[i])
        elif action == "drop" and len(entries) > 1:
            del entries[i]
        elif action == "swap":
            entries[i], entries[j] = entries[j], entries[i]
        elif action == "move":
            entries.insert(j, entries.pop(i))
        elif action in ("rename", "swap_data"):
            entries[i] = replace(entries[i], entries[j], action == "rename")
    return entries


def mutate_tables(blob: bytes, data, zone: int) -> bytes:
    """Byte mutations aimed at the last ``zone`` bytes, where the tables of contents are."""
    out = bytearray(blob)
    for _ in range(data.draw(st.integers(0, 3), label="byte edits")):
        if not out:
            break
        pos = data.draw(st.integers(max(0, len(out) - zone), len(out) - 1), label="pos")
        action = data.draw(st.sampled_from(["flip", "u32", "u16", "truncate"]))
        if action == "flip":
            out[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif action == "u32" and pos + 4 <= len(out):
            struct.pack_into("<I", out, pos, data.draw(st.sampled_from([0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF])))
        elif action == "u16" and pos + 2 <= len(out):
            struct.pack_into("<H", out, pos, data.draw(st.sampled_from([0, 1, 0xFFFF])))
        elif action == "truncate":
            del out[pos:]
    return bytes(out)


def check_everything(tmp_path, original: bytes, mutant: bytes, codec) -> None:
    """The three properties; ``codec`` is the module whose build(parse(x)) == x must hold."""
    try:
        model = codec.parse(mutant)
    except PyzpatchError:
        pass
    else:
        assert bytes(codec.build(model)) == mutant
    path = tmp_path / "mutant"
    path.write_bytes(mutant)
    original_path = tmp_path / "original"
    original_path.write_bytes(original)
    try:
        with open_bundle(path) as bundle:
            describe(bundle)
            extract(bundle, str(tmp_path / "out"), everything=True)
    except PyzpatchError:
        pass
    for old, new in ((original_path, path), (path, original_path)):
        try:
            made = make_patch(old, new)
        except PyzpatchError:
            continue
        patch = tmp_path / "p.patch"
        patch.write_bytes(made.data)
        out = tmp_path / "applied"
        if out.exists():
            out.unlink()
        if old.read_bytes() == new.read_bytes():
            continue
        apply_patch(old, patch, output=out)
        assert out.read_bytes() == new.read_bytes()


@FUZZ
@given(data=st.data())
def test_carchive_with_shuffled_entries(small_pkg, tmp_path_factory, data):
    archive = carchive.parse(small_pkg)
    archive.entries = shuffle_entries(archive.entries, data, lambda a, b, rename: carchive.CEntry(
        b.name if rename else a.name, a.typecode, a.compressed if rename else b.compressed,
        a.uncompressed_length if rename else b.uncompressed_length, a.data if rename else b.data))
    try:
        mutant = carchive.build(archive)
    except PyzpatchError:
        return
    mutant = mutate_tables(mutant, data, 4_000)
    check_everything(tmp_path_factory.mktemp("c"), small_pkg, mutant, carchive)


@FUZZ
@given(data=st.data())
def test_pyz_with_shuffled_modules(small_pkg, tmp_path_factory, data):
    archive = carchive.parse(small_pkg)
    index = next(i for i, e in enumerate(archive.entries) if e.typecode == "z")
    model = pyz.parse(archive.entries[index].data)
    model.entries = shuffle_entries(model.entries, data, lambda a, b, rename: pyz.PyzEntry(
        b.name if rename else a.name, a.typecode, a.data if rename else b.data))
    if data.draw(st.booleans(), label="garble a module"):
        i = data.draw(st.integers(0, len(model.entries) - 1))
        e = model.entries[i]
        cut = data.draw(st.integers(0, max(0, len(e.data) - 1)))
        model.entries[i] = pyz.PyzEntry(e.name, e.typecode, bytes(e.data)[:cut])  # truncated zlib stream
    try:
        new_pyz = pyz.build(model)
    except PyzpatchError:
        return
    new_pyz = mutate_tables(new_pyz, data, 6_000)
    old = archive.entries[index]
    archive.entries[index] = carchive.CEntry(old.name, old.typecode, old.compressed, len(new_pyz), new_pyz)
    mutant = carchive.build(archive)
    check_everything(tmp_path_factory.mktemp("p"), small_pkg, mutant, carchive)
    # The PYZ codec itself, on the mutant PYZ alone.
    try:
        parsed = pyz.parse(new_pyz)
    except PyzpatchError:
        return
    assert bytes(pyz.build(parsed)) == new_pyz


@FUZZ
@given(data=st.data())
def test_zip_with_shuffled_members(small_zip, tmp_path_factory, data):
    z = ziparchive.parse(small_zip)

    def replace(a, b, rename):
        if rename:  # a's bytes under b's name (both headers), so names repeat
            return ziparchive.ZipMember(a.local[:8] + (b.local[8],) + a.local[9:], a.data, a.descriptor,
                                        a.central[:9] + (b.central[9],) + a.central[10:])
        return ziparchive.ZipMember(a.local, b.data, a.descriptor, a.central)  # wrong CRC and sizes

    z.members = shuffle_entries(z.members, data, replace)
    try:
        mutant = ziparchive.build(z)
    except PyzpatchError:
        return
    mutant = mutate_tables(mutant, data, 3_000)
    check_everything(tmp_path_factory.mktemp("z"), small_zip, mutant, ziparchive)


def test_duplicate_names_are_kept_and_round_trip(small_pkg, small_zip, tmp_path):
    """Not random: an archive with the same name twice (PyInstaller never writes one, an
    attacker can) parses, lists, rebuilds and patches without losing either copy."""
    archive = carchive.parse(small_pkg)
    archive.entries.append(archive.entries[-1])
    dup = carchive.build(archive)
    assert len(carchive.parse(dup).entries) == len(archive.entries)
    check_everything(tmp_path, small_pkg, dup, carchive)
    z = ziparchive.parse(small_zip)
    z.members = z.members + z.members[:3]
    zdup = ziparchive.build(z)
    assert [m.name for m in ziparchive.parse(zdup).members] == [m.name for m in z.members]
    (tmp_path / "z").mkdir()
    check_everything(tmp_path / "z", small_zip, zdup, ziparchive)
