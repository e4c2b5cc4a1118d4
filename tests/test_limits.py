"""Hand-made hostile patches, one per way a patch could once make the applier allocate, loop,
recurse or write without bound (found by a review of the decoder; see docs/limits.md). Each
must now fail fast with pyzpatch's own error type, and within a small memory footprint."""
from __future__ import annotations

import io
import os
import resource
import subprocess
import sys
import zipfile

import pytest

from fuzz import base
from pyzpatch import PyzpatchError
from pyzpatch.delta.codes import MAX_NESTING, MAX_RANKED
from pyzpatch.delta.wire import Writer
from pyzpatch.formats import pyz
from pyzpatch.patch.file import apply_patch, describe_patch
from pyzpatch.patch.folder import apply_folder_patch
from pyzpatch.patch.foldernode import FolderContents, node_hash
from pyzpatch.patchfile import codec as patchfile
from pyzpatch.patchfile.codec import Body, Header

from .conftest import REPO


def write_patch(path, ops, diff=b"", lit=b"", old=base.OLD, new_size=None, flags=0, old_hash=None):
    header = Header(len(old), old_hash or patchfile.sha256_of(old),
                    len(base.NEW) if new_size is None else new_size, patchfile.sha256_of(base.NEW), flags=flags)
    path.write_bytes(patchfile.encode(header, Body(bytes(ops), bytes(diff), bytes(lit))))
    return path


@pytest.fixture
def target(tmp_path):
    path = tmp_path / "target"
    path.write_bytes(base.OLD)
    return path


def struct_exe_changing_archive(w: Writer) -> None:
    """STRUCT executable, nothing removed or added, one changed child: the archive."""
    w.uint(4); w.uint(0)  # STRUCT, kind executable
    w.uint(0); w.uint(0); w.uint(0); w.uint(0); w.uint(1)  # meta, removed, order, added, 1 changed
    w.uint(2); w.uint(0); w.uint(0)  # key "archive", attrs same, no compression


def test_nesting_is_bounded(tmp_path, target):
    w = Writer()
    for _ in range(2000):  # an executable's archive re-opened as an executable, again and again
        struct_exe_changing_archive(w)
    w.uint(0)
    patch = write_patch(tmp_path / "p", w.getvalue())
    for action in (lambda: describe_patch(patch), lambda: apply_patch(target, patch, dry_run=True)):
        with pytest.raises(PyzpatchError, match=f"nested more than {MAX_NESTING}"):
            action()


@pytest.mark.parametrize("how", [1, 2])  # ORDER_RANK, ORDER_RUNS
def test_describing_a_huge_reorder_is_cheap(tmp_path, how):
    w = Writer()
    w.uint(4); w.uint(0); w.uint(0); w.uint(0)  # STRUCT exe, meta, 0 removed
    w.uint(how)
    w.uint(1_600_000)
    if how == 2:
        w.uint(MAX_RANKED + 1)
    patch = write_patch(tmp_path / "p", w.getvalue() + bytes(200_000))  # zeros compress to nothing
    with pytest.raises(PyzpatchError):
        describe_patch(patch)


def test_describing_a_long_valid_order_builds_no_list(tmp_path):
    """A runs order of 30 million children in one run is a few bytes; describing it must not
    build a 30-million-item list (show only needs its length)."""
    n = 30_000_000
    w = Writer()
    w.uint(4); w.uint(0); w.uint(0); w.uint(0)  # STRUCT exe, meta, 0 removed
    w.uint(2); w.uint(n); w.uint(1)  # ORDER_RUNS: n children, one run (rank of 1 run: no bytes)
    w.uint(0); w.uint(0)  # 0 added, 0 changed
    patch = write_patch(tmp_path / "p", w.getvalue() + bytes(n // 8))
    code = f"""
from pyzpatch import PyzpatchError
from pyzpatch.patch.file import describe_patch
try:
    describe_patch({str(patch)!r})
except PyzpatchError as exc:
    print(exc.problem)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the (large) pytest process that forked
# this one, while VmHWM starts afresh with the new program.
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) // 1024)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.splitlines()[-1]) < 200, proc.stdout  # a list would take over 1 GB


def test_declared_size_is_tied_to_the_real_base(tmp_path):
    old = os.urandom(1 << 20)
    (tmp_path / "t").write_bytes(old)
    n = 1 << 30
    w = Writer()
    w.uint(3); w.uint(n); w.uint(n >> 20)  # BSDIFF to 1 GiB from 1 MiB runs
    for _ in range(n >> 20):
        w.uint(1 << 20); w.uint(0); w.sint(-(1 << 20))
    w.uint(1)
    d = Writer()
    d.uint(n); d.uint(0)
    patch = write_patch(tmp_path / "p", w.getvalue(), d.getvalue(), old=old, new_size=n)
    with pytest.raises(PyzpatchError, match="more than 16 times its base"):
        apply_patch(tmp_path / "t", patch, dry_run=True)


def test_describing_a_huge_sparse_block_allocates_nothing(tmp_path):
    n = 1 << 40
    w = Writer()
    w.uint(3); w.uint(n); w.uint(1); w.uint(n); w.uint(0); w.sint(0); w.uint(1)
    d = Writer()
    d.uint(n); d.uint(0)
    patch = write_patch(tmp_path / "p", w.getvalue(), d.getvalue(), new_size=n)
    describe_patch(patch, max_memory=1 << 41)  # walks it; would need 1 TiB if it built it


def test_all_pieces_together_are_bounded(tmp_path):
    """Four 1 MiB members each bsdiffed up to 256 MiB: each piece within the limit, together
    four times it."""
    members, piece = 4, 256 << 20
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(members):
            zf.writestr(f"m{i}", os.urandom(1 << 20))
    old = buf.getvalue()
    (tmp_path / "t").write_bytes(old)
    w, d = Writer(), Writer()
    w.uint(4); w.uint(3)  # STRUCT zip
    w.uint(0); w.uint(0); w.uint(0); w.uint(0); w.uint(members)
    for i in range(members):
        key = f"m{i}".encode()
        w.uint(2 * len(key) + 1); w.raw(key); w.uint(0); w.uint(0)
        w.uint(3); w.uint(piece); w.uint(piece >> 20)
        for _ in range(piece >> 20):
            w.uint(1 << 20); w.uint(0); w.sint(-(1 << 20))
        w.uint(1); d.uint(piece); d.uint(0)
    patch = write_patch(tmp_path / "p", w.getvalue(), d.getvalue(), old=old, new_size=len(old))
    code = f"""
import sys
from pyzpatch import PyzpatchError
from pyzpatch.patch.file import apply_patch
try:
    apply_patch({str(tmp_path / 't')!r}, {str(patch)!r}, dry_run=True)
except PyzpatchError as exc:
    print(exc.problem)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the (large) pytest process that forked
# this one, while VmHWM starts afresh with the new program.
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) // 1024)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    problem, peak_mib = proc.stdout.splitlines()
    assert "bytes of memory" in problem
    assert int(peak_mib) < 600, peak_mib  # one piece at most, not four


def test_a_child_changed_twice_is_refused(tmp_path, target):
    """A repeated key once let a patch-made child be 're-compressed' with a content size the
    patch chose (-1: no cap on inflate)."""
    key = b"x:data.txt"
    w = Writer()
    struct_exe_changing_archive(w)
    w.uint(4); w.uint(1)  # STRUCT carchive
    w.uint(0); w.uint(0); w.uint(0); w.uint(0); w.uint(2)  # two changes
    for _ in range(2):
        w.uint(2 * len(key) + 1); w.raw(key); w.uint(0)
        w.uint(1); w.uint(2); w.uint(0)  # zlib, SPLICE with no runs
        w.value(-1)  # content size
    patch = write_patch(tmp_path / "p", w.getvalue())
    with pytest.raises(PyzpatchError, match="content size|changed twice"):
        apply_patch(target, patch, dry_run=True)


def test_apply_writes_no_more_than_declared(tmp_path, target):
    lit = bytes(range(256)) * 4 + b"0123456789"
    w = Writer()
    w.uint(1); w.uint(len(lit))  # LITERAL of 1034 bytes, declared 10
    patch = write_patch(tmp_path / "p", w.getvalue(), lit=lit, new_size=10)
    out = tmp_path / "out"
    with pytest.raises(PyzpatchError, match="more than the 10 bytes it declares"):
        apply_patch(target, patch, output=out)
    assert not out.exists() and sorted(os.listdir(tmp_path)) == ["p", "target"]


def test_duplicate_pyz_names_are_found_in_linear_time():
    model = pyz.Pyz(b"\xa7\r\r\n", [pyz.PyzEntry(f"m{i:07d}", 0, b"x") for i in range(40_000)])
    model.entries.append(pyz.PyzEntry("m0039999", 0, b"x"))
    blob = pyz.build(model)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    with pytest.raises(PyzpatchError, match="more than once"):
        pyz.parse(blob)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_utime - before < 5  # was 26 s


def _folder_patch(tmp_path, ops):
    target = tmp_path / "dir"
    target.mkdir()
    with FolderContents(str(target)) as fc:
        size, digest = node_hash(fc.node())
    header = Header(size, digest, 0, bytes(32), flags=patchfile.FOLDER)
    patch = tmp_path / "p"
    patch.write_bytes(patchfile.encode(header, Body(ops, b"", b"")))
    return target, patch


def test_long_folder_names_are_refused_quickly(tmp_path):
    key = "/".join(["a"] * 200_000).encode()
    w = Writer()
    w.uint(0); w.uint(0); w.uint(0); w.uint(1); w.uint(0)  # one added child
    w.uint(2 * len(key) + 1); w.raw(key); w.value(("d", 0o755, "")); w.uint(0); w.uint(0); w.uint(0)
    target, patch = _folder_patch(tmp_path, w.getvalue())
    with pytest.raises(PyzpatchError, match="longer than"):
        apply_folder_patch(target, patch, dry_run=True)


def test_folder_root_mode_is_checked(tmp_path):
    w = Writer()
    w.uint(2); w.value(("x",))  # meta replaced by a string mode
    w.uint(0); w.uint(0); w.uint(0); w.uint(0)
    target, patch = _folder_patch(tmp_path, w.getvalue())
    with pytest.raises(PyzpatchError, match="own mode is malformed"):
        apply_folder_patch(target, patch, dry_run=True)


@pytest.mark.parametrize("journal", [
    "pyzpatch-journal 1\nbroken\nend\n",
    "pyzpatch-journal 1\nd\t700\t../escaped\nend\n",
    "pyzpatch-journal 1\nf\tzz\tx\nend\n",
])
def test_a_malformed_swap_journal_is_ignored(tmp_path, journal):
    from pyzpatch.fs import siblings
    from pyzpatch.install import moveaside
    target = tmp_path / "app"
    target.mkdir()
    staging = siblings.hidden(str(target), siblings.NEW)
    os.mkdir(staging)
    with open(siblings.hidden(str(target), siblings.JOURNAL), "w") as fp:
        fp.write(journal)
    moveaside.finish_folder(str(target))
    assert not (tmp_path / "escaped").exists()
    assert not os.path.exists(siblings.hidden(str(target), siblings.JOURNAL))


def test_a_large_random_reorder_round_trips_as_a_list(tmp_path):
    """5000 members in a random order: more runs than a rank may cover, so make writes the
    order as a list (code 3), and apply rebuilds the zip exactly."""
    import random
    names = [f"m{i:05d}.txt" for i in range(5000)]
    shuffled = names[:]
    random.Random(3).shuffle(shuffled)
    for path, order in ((tmp_path / "old.zip", names), (tmp_path / "new.zip", shuffled)):
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
            for name in order:
                info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
                zf.writestr(info, name)
    from pyzpatch.delta.codes import ORDER_LIST
    from pyzpatch.delta.encoder import Encoder
    from pyzpatch.formats import registry
    encoder = Encoder()
    old_node = registry.open_node("zip", (tmp_path / "old.zip").read_bytes())
    new_node = registry.open_node("zip", (tmp_path / "new.zip").read_bytes())
    assert encoder.order_delta([[c.key for c in old_node.children].index(c.key) for c in new_node.children])
    assert encoder.out.ops.getvalue()[0] == ORDER_LIST
    from pyzpatch.patch.file import make_patch
    made = make_patch(tmp_path / "old.zip", tmp_path / "new.zip")
    (tmp_path / "p").write_bytes(made.data)
    apply_patch(tmp_path / "old.zip", tmp_path / "p", output=tmp_path / "out.zip")
    assert (tmp_path / "out.zip").read_bytes() == (tmp_path / "new.zip").read_bytes()
    assert describe_patch(tmp_path / "p")["changes"]
