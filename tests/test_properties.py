"""Random edits to a real build always patch to the exact new bytes."""
from __future__ import annotations

import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyzpatch.formats import carchive, executable, pyz
from pyzpatch.formats.carchive import CEntry
from pyzpatch.formats.pyz import PyzEntry
from pyzpatch.patch.file import apply_patch, make_patch

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.", min_size=1, max_size=24).filter(
    lambda n: not n.startswith(".") and not n.endswith(".") and ".." not in n)
payloads = st.binary(min_size=0, max_size=3000)


@pytest.fixture(scope="module")
def small_real_archive(hello_onefile, tmp_path_factory):
    """The hello build's CArchive without its large shared libraries: real entries, real PYZ.
    (A path, so that a failing example does not print megabytes.)"""
    exe = executable.parse(hello_onefile.read_bytes())
    archive = exe.archive
    archive.entries = [e for e in archive.entries if len(e.data) < 150_000 or e.typecode == "z"]
    path = tmp_path_factory.mktemp("base") / "small.pkg"
    path.write_bytes(carchive.build(archive))
    return path


def edit_module_bytes(data: bytes, edit: bytes, level: int) -> bytes:
    content = zlib.decompress(data) if data else b""
    cut = len(content) // 2
    return zlib.compress(content[:cut] + edit + content[cut + len(edit) // 2:], level)


@st.composite
def edits(draw):
    return {
        "change": draw(st.lists(st.tuples(st.integers(0, 10_000), st.binary(min_size=1, max_size=200)),
                                max_size=6)),
        "add": draw(st.lists(st.tuples(names, payloads, st.sampled_from([6, 9, 1])), max_size=4)),
        "remove": draw(st.lists(st.integers(0, 10_000), max_size=4)),
        "rename": draw(st.lists(st.tuples(st.integers(0, 10_000), names), max_size=2)),
        "data_entry": draw(st.one_of(st.none(), st.tuples(names, payloads, st.booleans()))),
        "change_data_entry": draw(st.one_of(st.none(), st.binary(min_size=1, max_size=100))),
        "shuffle": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**16)),
    }


def apply_edits(blob: bytes, e: dict) -> bytes:
    archive = carchive.parse(blob)
    archive.entries = list(archive.entries)
    pyz_entry = archive.entries_of_type("z")[0]
    model = pyz.parse(bytes(pyz_entry.data))
    modules = model.entries
    for index, edit in e["change"]:
        m = modules[index % len(modules)]
        if m.typecode != pyz.NAMESPACE:
            m.data = edit_module_bytes(bytes(m.data), edit, 6)
    for index in e["remove"]:
        if len(modules) > 1:
            modules.pop(index % len(modules))
    existing = {m.name for m in modules}
    for index, new_name in e["rename"]:
        m = modules[index % len(modules)]
        if new_name not in existing:
            existing.discard(m.name)
            m.name = new_name
            existing.add(new_name)
    for name, payload, level in e["add"]:
        if name not in existing:
            modules.append(PyzEntry(name, pyz.MODULE, zlib.compress(payload, level)))
            existing.add(name)
    if e["shuffle"]:
        import random
        random.Random(e["seed"]).shuffle(modules)
    pyz_entry.data = pyz.build(model)
    pyz_entry.uncompressed_length = len(pyz_entry.data)
    if e["data_entry"]:
        name, payload, compress = e["data_entry"]
        if all(x.name != name for x in archive.entries):
            stored = zlib.compress(payload, 9) if compress else payload
            archive.entries.insert(len(archive.entries) // 2,
                                   CEntry(name, "x", compress, len(payload), stored))
    if e["change_data_entry"]:
        for entry in archive.entries:
            if entry.typecode == "x" and entry.compressed:
                content = zlib.decompress(bytes(entry.data)) + e["change_data_entry"]
                entry.data = zlib.compress(content, 9)
                entry.uncompressed_length = len(content)
                break
    return carchive.build(archive)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(e=edits())
def test_random_edits_patch_exactly(small_real_archive, tmp_path_factory, e):
    folder = tmp_path_factory.mktemp("prop")
    old = folder / "old.pkg"
    new = folder / "new.pkg"
    base = small_real_archive.read_bytes()
    old.write_bytes(base)
    new_bytes = apply_edits(base, e)
    new.write_bytes(new_bytes)
    made = make_patch(old, new)
    if new_bytes == base:
        assert made.note == "the two files are identical"
        return
    patch = folder / "p.patch"
    patch.write_bytes(made.data)
    result = apply_patch(old, patch)
    assert result.byte_identical
    assert old.read_bytes() == new_bytes


def test_renamed_module_is_a_copy_not_a_literal(small_real_archive, tmp_path):
    base = small_real_archive.read_bytes()
    archive = carchive.parse(base)
    pyz_entry = archive.entries_of_type("z")[0]
    model = pyz.parse(bytes(pyz_entry.data))
    biggest = max(model.entries, key=lambda m: len(m.data))
    biggest.name = "renamed_" + biggest.name
    model.entries.sort(key=lambda m: m.name)
    pyz_entry.data = pyz.build(model)
    pyz_entry.uncompressed_length = len(pyz_entry.data)
    old, new = tmp_path / "old.pkg", tmp_path / "new.pkg"
    old.write_bytes(base)
    new.write_bytes(carchive.build(archive))
    made = make_patch(old, new)
    assert made.structural
    assert any(c.action == "added" and c.how.startswith("copy of") for c in made.changes)
    assert len(made.data) < 1024 < len(biggest.data)
    patch = tmp_path / "p.patch"
    patch.write_bytes(made.data)
    assert apply_patch(old, patch).byte_identical
    assert old.read_bytes() == new.read_bytes()
