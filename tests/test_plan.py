"""A patch body read once into a plan, then applied or explained (delta/reader.py, applier.py,
explainer.py), and make's reasons for its encodings. Fast: the base is fuzz/base.py's small
archive, built by pyzpatch's own codecs."""
from __future__ import annotations

import json
import random
import tracemalloc

import pytest

from fuzz import base
from pyzpatch import PyzpatchError
from pyzpatch.delta import plan as p
from pyzpatch.delta.applier import Applier
from pyzpatch.delta.changes import Change
from pyzpatch.delta.encoder import Encoder
from pyzpatch.delta.engine import decode_file, explain
from pyzpatch.delta.explainer import explain_bytes
from pyzpatch.delta.reader import read_bytes_plan
from pyzpatch.delta.wire import FieldChanges, KeepValue, NewValue, Reader, Writer, resolve_value
from pyzpatch.formats.node import join
from pyzpatch.patch.file import change_dict
from pyzpatch.patchfile import codec as patchfile
from pyzpatch.patchfile.codec import Body

from .conftest import run_cli

LIMIT = 256 << 20


def _made():
    encoder = Encoder()
    encoder.data_delta(base.OLD, base.NEW, "")
    out = encoder.out
    return Body(out.ops.getvalue(), bytes(out.diff), bytes(out.lit)), encoder.changes


def _plan(ops, diff=b"", lit=b"", limit=LIMIT):
    return read_bytes_plan(bytes(ops), bytes(diff), bytes(lit), limit)


def _varints(*numbers) -> bytes:
    w = Writer()
    for n in numbers:
        w.uint(n)
    return w.getvalue()


def test_plan_of_a_real_patch():
    body, made = _made()
    plan = _plan(body.ops, body.diff, body.lit)
    # The executable, its archive, the PYZ inside: containers all the way down.
    assert isinstance(plan, p.Struct) and plan.kind == "exe"
    (archive,) = plan.node.changed
    assert archive.key == "archive" and isinstance(archive.child, p.ChildBytes)
    assert isinstance(archive.child.data, p.Struct) and archive.child.data.kind == "carchive"
    entries = {c.key: c for c in archive.child.data.node.changed}
    assert isinstance(entries["z:PYZ.pyz"].child.data, p.Struct)
    assert isinstance(entries["x:data.txt"].child, p.ChildRecompress)
    # Applied, it is the new file; explained, it names what make reported, encoded the same way.
    assert join([Applier(LIMIT).bytes(plan, base.OLD, "")]) == base.NEW
    assert [(c.path, c.action, c.how) for c in explain_bytes(plan)] == [(c.path, c.action, c.how) for c in made]


def test_one_plan_applies_and_explains_any_number_of_times():
    body, _ = _made()
    plan = _plan(body.ops, body.diff, body.lit)
    first = join([Applier(LIMIT).bytes(plan, base.OLD, "")])
    assert join([Applier(LIMIT).bytes(plan, base.OLD, "")]) == first == base.NEW
    assert explain_bytes(plan) == explain_bytes(plan)


def test_entry_points_agree_with_the_plan():
    body, made = _made()
    decoded = decode_file(body, base.OLD, LIMIT)
    assert join([decoded.result]) == base.NEW and decoded.recompressed > 0
    explained = explain(body, LIMIT)
    assert explained.structural and explained.root == "struct"
    assert [c.how for c in explained.changes] == [c.how for c in made]
    assert all(not c.reason for c in explained.changes)  # a patch does not say why


def _struct_exe(w: Writer, order=None) -> None:
    w.uint(4); w.uint(0); w.uint(0); w.uint(0)  # STRUCT exe, meta same, nothing removed
    if order is None:
        w.uint(0)
    else:
        order(w)


def _traced(fn):
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_reading_a_claimed_order_allocates_nothing_of_its_size():
    n = 1 << 60  # one run of 2**60 children: a few bytes in the patch
    w = Writer()
    _struct_exe(w, lambda w: (w.uint(2), w.uint(n), w.uint(1)))  # ORDER_RUNS, n, one run
    w.uint(0); w.uint(0)  # nothing added or changed
    plan, peak = _traced(lambda: _plan(w.getvalue()))
    assert peak < 64 * 1024
    assert isinstance(plan.node.order, p.RunsOrder) and plan.node.order.count == n
    changes, peak = _traced(lambda: explain_bytes(plan))
    assert peak < 64 * 1024 and [c.how for c in changes] == [f"{n} children"]
    # Only the old file says how many children there are: the claim is refused there.
    with pytest.raises(PyzpatchError, match=f"reorders {n} children, the base has 3"):
        Applier(LIMIT).bytes(plan, base.OLD, "")


def test_reading_a_claimed_difference_block_allocates_nothing_of_its_size():
    n = 1 << 40
    w, d = Writer(), Writer()
    w.uint(3); w.uint(n); w.uint(1); w.uint(n); w.uint(0); w.sint(0); w.uint(1)  # BSDIFF, one sparse block
    d.uint(n); d.uint(0)  # n zeros
    plan, peak = _traced(lambda: _plan(w.getvalue(), d.getvalue(), limit=1 << 41))
    assert peak < 64 * 1024 and isinstance(plan.diff, p.SparseBlock) and plan.diff.size == n
    with pytest.raises(PyzpatchError, match="difference run outside the old data"):
        Applier(1 << 41).bytes(plan, base.OLD, "")


@pytest.mark.parametrize("ops, problem", [
    ([4, 0, 0, 1, 6], "unknown well-known key 3 for exe"),  # exe has 3: head, archive, tail
    ([4, 9], "unknown container kind 9"),
    ([4, 0, 0, 0, 9], "unknown order encoding 9"),
    ([4, 0, 0, 0, 1, 5000], "a ranked order of 5000 items"),
    ([4, 0, 0, 0, 0, 0, 1, 2, 0, 7], "unknown compression 7"),
    ([4, 0, 0, 0, 0, 0, 1, 2, 0, 0, 6, 0], "copy of '', which is not a removed sibling"),
    ([4, 0, 0, 0, 0, 0, 2, 2, 0, 0, 0, 2, 0, 0, 0], "changed twice"),
    ([9], "unknown operation 9"),
    ([0, 0], "1 unexpected bytes at the end"),
])
def test_reading_refuses_what_needs_no_old_file(ops, problem):
    with pytest.raises(PyzpatchError, match=problem):
        _plan(_varints(*ops))


def test_reading_refuses_deep_nesting():
    w = Writer()
    for _ in range(20):
        _struct_exe(w); w.uint(0); w.uint(1)  # one changed child: the archive, opened again
        w.uint(2); w.uint(0); w.uint(0)
    with pytest.raises(PyzpatchError, match="nested more than 12"):
        _plan(w.getvalue())


@pytest.mark.parametrize("ops, lit, problem", [
    ([4, 0, 0, 1, 1, 0, 0, 0], b"", "removed child '' is not in the base"),
    ([4, 0, 0, 2, 0, 0, 0, 0, 0], b"", "removed twice"),
    ([4, 0, 0, 0, 0, 1, 9, 1, 0, 0, 0, 0], b"", "added child index out of order or range"),
    ([2, 1, 0, 10], b"x" * 10, None),  # a splice within the limit, but past the old bytes
    ([4, 0, 0, 0, 3, 2, 0, 1, 0, 0], b"", "reorders 2 children, the base has 3"),
])
def test_applying_checks_what_needs_the_old_file(ops, lit, problem):
    plan = _plan(_varints(*ops), lit=lit)  # reads: nothing here needs the old file
    with pytest.raises(PyzpatchError, match=problem or "splice run past the end of its data"):
        Applier(LIMIT).bytes(plan, b"short" if problem is None else base.OLD, "")


def test_the_memory_budget_is_charged_when_applying():
    w = Writer()
    w.uint(1); w.uint(100)  # a literal of 100 bytes
    plan = _plan(w.getvalue(), lit=bytes(100), limit=100)
    assert len(Applier(100).bytes(plan, b"", "")) == 100
    applier = Applier(100)
    applier.budget = 99
    with pytest.raises(PyzpatchError, match="more than 100 bytes of memory"):
        applier.bytes(plan, b"", "")


def test_value_deltas_are_read_without_the_old_value():
    w = Writer()
    w.value_delta((1, "a", (2, 3)), (1, "b", (2, 4)))
    delta = Reader(w.getvalue()).value_delta()
    assert isinstance(delta, FieldChanges) and delta.mask == 0b110
    assert resolve_value(delta, (1, "a", (2, 3))) == (1, "b", (2, 4))
    assert resolve_value(KeepValue(), "x") == "x" and resolve_value(NewValue(5), "x") == 5
    with pytest.raises(PyzpatchError, match="beyond the value's fields"):
        resolve_value(delta, (1, "a"))
    with pytest.raises(PyzpatchError, match="no fields"):
        resolve_value(delta, None)


def test_change_how_is_structured_but_reads_as_before():
    assert Change("/a", "changed", "recompress", inner="splice").how == "recompressed splice"
    assert Change("/a", "added", "copy", source="b").how == "copy of b"
    assert Change("/", "reordered", children=7).how == "7 children"
    assert Change("/a", "removed").how == ""
    assert Change("/a", "changed", "struct").container
    assert Change("/a", "changed", "recompress", inner="struct").container
    assert not Change("/a", "added", "struct").container
    assert not Change("/a", "changed", "recompress", inner="bsdiff").container


def test_make_records_why_it_chose_each_encoding():
    _, made = _made()
    reasons = {c.path: c.reason for c in made}
    assert all(reasons.values())
    assert reasons["/archive"] == "struct: opened as carchive"
    assert reasons["/archive/z:PYZ.pyz"] == "struct: opened as pyz"
    assert reasons["/archive/x:data.txt"].startswith("recompressed: zlib level 9 reproduces the stored bytes; ")
    encoder = Encoder()
    assert encoder.bytes_delta(b"", b"new").reason == "literal: no old bytes"
    old = bytes(range(256)) * 16
    new = bytearray(old)
    new[100:103] = b"abc"
    assert encoder.bytes_delta(old, bytes(new)).reason == "splice: 1 run, 3 bytes changed"
    old = random.Random(1).randbytes(20000)
    choice = encoder.bytes_delta(old, old[:2000] + b"inserted" + old[2000:])
    assert choice.encoding == "bsdiff" and choice.reason.startswith("bsdiff smaller than literal after lzma (")


def test_make_json_says_why_and_show_json_is_unchanged(tmp_path):
    old, new, patch = tmp_path / "old", tmp_path / "new", tmp_path / "p"
    old.write_bytes(base.OLD)
    new.write_bytes(base.NEW)
    made = json.loads(run_cli("make", old, new, "-o", patch, "--json").stdout)
    assert made["changes"] and all(c["reason"] for c in made["changes"])
    shown = json.loads(run_cli("show", patch, "--json").stdout)
    assert shown["changes"] and not any("reason" in c for c in shown["changes"])
    assert set(shown["body"]) == {"ops", "data", "literal", "compression"}
    assert change_dict(Change("/x", "removed")) == {"path": "x", "action": "removed", "how": "", "old_size": None,
                                                    "new_size": None, "patch_bytes": None, "container": False}


def test_bsdiff_difference_blocks_go_to_the_diff_stream():
    old = random.Random(2).randbytes(20000)
    new = old[:5000] + b"inserted" + old[5000:]
    encoder = Encoder()
    assert encoder.bytes_delta(old, new).encoding == "bsdiff"
    out = encoder.out
    body = Body(out.ops.getvalue(), bytes(out.diff), bytes(out.lit))
    assert body.diff and patchfile.split_body(patchfile.join_body(body)) == body
    assert join([decode_file(body, old, LIMIT).result]) == new


def test_plan_entries_are_charged_before_the_old_file_is_read():
    """Added children cost a few bytes of structure each but hundreds of bytes of plan: reading
    charges them to the budget, and a stream that names more than the budget's worth is refused
    before anything is applied."""
    limit = 16 << 20  # 8,192 entries at PLAN_ENTRY_COST (2 KiB)

    def body(count):
        w = Writer()
        _struct_exe(w)
        w.uint(count)
        for n in range(count):
            w.uint(0 if n == 0 else 1)  # added at positions 0, 1, 2, ...
            key = b"k%d" % n
            w.uint(2 * len(key) + 1); w.raw(key)
            w.uint(0)  # attrs None
            w.uint(0); w.uint(0)  # uncompressed, same (empty)
        w.uint(0)  # nothing changed
        return w.getvalue()

    plan = _plan(body(8000), limit=limit)
    assert len(plan.node.added) == 8000
    with pytest.raises(PyzpatchError, match="more children than 16777216 bytes of memory can hold"):
        _plan(body(8300), limit=limit)
