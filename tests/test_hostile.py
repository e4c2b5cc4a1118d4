"""Hostile input, second round (issue 11): one regression test per finding of the outside
review, each on real files, real folders and real processes.

Patches that ``make`` itself would refuse are written by ``unchecked_folder_patch``: the same
encoder and patch-file codec, without make's checks, as an attacker's tool would produce them.
"""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from fuzz import base
from pyzpatch.delta import codes
from pyzpatch.delta.engine import Encoder
from pyzpatch.delta.wire import Writer
from pyzpatch.patch.foldernode import MAX_PATH_DEPTH, FolderContents, node_hash
from pyzpatch.patchfile import codec as patchfile
from pyzpatch.patchfile.codec import Body, Header

from .conftest import REPO, run_cli


def unchecked_folder_patch(old_dir: Path, new_dir: Path, out: Path) -> Path:
    """A folder patch from ``old_dir`` to ``new_dir`` made without any of make's checks."""
    with FolderContents(str(old_dir)) as old, FolderContents(str(new_dir)) as new:
        old_node, new_node = old.node(), new.node()
        old_size, old_hash = node_hash(old_node)
        new_size, new_hash = node_hash(new_node)
        encoder = Encoder()
        encoder.node_delta(old_node, new_node, "")
        s = encoder.out
        body = Body(s.ops.getvalue(), bytes(s.diff), bytes(s.lit))
    header = Header(old_size=old_size, old_sha256=old_hash, new_size=new_size, new_sha256=new_hash,
                    flags=patchfile.FOLDER)
    out.write_bytes(patchfile.encode(header, body))
    return out


def leftovers(folder: Path) -> list:
    """What an apply left beside ``folder`` (hidden siblings of its name)."""
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith("." + folder.name + "."))


def remove_deep(root: Path) -> None:
    """Remove a tree of nested folders of any depth: by descriptors, so no path grows past
    PATH_MAX, and without recursion (``shutil.rmtree`` recurses)."""
    fds = [os.open(root, os.O_RDONLY)]
    names = []
    while fds:
        fd = fds[-1]
        folders = []
        for name in os.listdir(fd):
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                folders.append(name)
            else:
                os.unlink(name, dir_fd=fd)
        if folders:
            fds.append(os.open(folders[0], os.O_RDONLY, dir_fd=fd))
            names.append(folders[0])
            continue
        os.close(fds.pop())
        if names:
            os.rmdir(names.pop(), dir_fd=fds[-1])
    os.rmdir(root)


def make_deep(root: Path, depth: int) -> None:
    """``root/d/d/...`` ``depth`` folders deep, made by descriptors."""
    fd = os.open(root, os.O_RDONLY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        below = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = below
    os.close(fd)


def two_folders(tmp_path: Path):
    old, new = tmp_path / "old", tmp_path / "new"
    for d in (old, new):
        d.mkdir()
        (d / "app").write_text("program\n")
    return old, new


# -- finding 1: a link that leaves the folder through other links ---------------------------


@pytest.mark.parametrize("links", [
    {"l": ".", "esc": "l/l/l/l/../../../../etc"},          # the review's example
    {"a": "b/c", "b": ".", "c": ".", "esc": "a/../.."},    # through a chain of two links
    {"d/up": "..", "esc": "d/up/d/up/.."},                  # a link inside a subfolder
])
def test_links_resolved_through_links_are_refused(tmp_path, links):
    old, new = two_folders(tmp_path)
    (new / "d").mkdir()
    for name, target in links.items():
        os.symlink(target, new / name)
    made = run_cli("make", old, new, "-o", tmp_path / "made.patch")
    assert made.returncode != 0 and "outside the folder" in made.stderr, made.stderr
    assert len(made.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "made.patch").exists()

    patch = unchecked_folder_patch(old, new, tmp_path / "evil.patch")
    target = tmp_path / "t"
    os.rename(old, target)
    applied = run_cli("apply", target, patch)
    assert applied.returncode != 0 and "outside the folder" in applied.stderr, applied.stderr
    assert sorted(os.listdir(target)) == ["app"] and leftovers(target) == []


def test_links_that_stay_inside_through_links_are_kept(tmp_path):
    old, new = two_folders(tmp_path)
    (new / "lib").mkdir()
    (new / "lib" / "x.so.1").write_bytes(b"x")
    os.symlink(".", new / "here")
    os.symlink("lib", new / "libdir")
    os.symlink("here/libdir/../libdir/x.so.1", new / "x.so")  # ends inside: lib/x.so.1
    os.symlink("a", new / "loop1")  # dangling and looping links lead nowhere, not outside
    os.symlink("loop1", new / "a")
    made = run_cli("make", old, new, "-o", tmp_path / "p")
    assert made.returncode == 0, made.stderr
    applied = run_cli("apply", old, tmp_path / "p")
    assert applied.returncode == 0, applied.stderr
    assert (old / "x.so").read_bytes() == b"x"
    assert os.path.realpath(old / "x.so") == str((old / "lib" / "x.so.1").resolve())


# -- finding 6: a deep path --------------------------------------------------------------------


def test_deep_paths_are_refused_at_make_and_apply(tmp_path):
    old, new = two_folders(tmp_path)
    deep = new.joinpath(*["d"] * (MAX_PATH_DEPTH + 1))
    deep.mkdir(parents=True)
    made = run_cli("make", old, new, "-o", tmp_path / "made.patch")
    assert made.returncode != 0 and f"more than {MAX_PATH_DEPTH} folders deep" in made.stderr, made.stderr

    # Like the review's patch (2,000 components), deep enough to overflow Python's recursion
    # limit; 1,500 keeps the absolute path of the folder it is made from within PATH_MAX.
    deeper = tmp_path / "deeper"
    deeper.mkdir()
    (deeper / "app").write_text("program\n")
    make_deep(deeper, 1500)
    patch = unchecked_folder_patch(old, deeper, tmp_path / "evil.patch")
    remove_deep(deeper)  # pytest's own clean-up of tmp_path would recurse 1,500 deep
    applied = run_cli("apply", old, patch)
    assert applied.returncode != 0 and "folders deep" in applied.stderr, applied.stderr
    assert "Traceback" not in applied.stderr and leftovers(old) == []
    assert sorted(os.listdir(old)) == ["app"]


def test_a_build_at_the_depth_limit_round_trips(tmp_path):
    old, new = two_folders(tmp_path)
    deep = new.joinpath(*["d"] * (MAX_PATH_DEPTH - 1))
    deep.mkdir(parents=True)
    (deep / "f").write_text("deep\n")
    assert run_cli("make", old, new, "-o", tmp_path / "p").returncode == 0
    assert run_cli("apply", old, tmp_path / "p").returncode == 0
    assert (old.joinpath(*["d"] * (MAX_PATH_DEPTH - 1)) / "f").read_text() == "deep\n"



# -- finding 2: memory bounded by one budget ------------------------------------------------------


def peak_of(code: str) -> tuple:
    """Run ``code`` in a fresh interpreter; (its output lines, its peak RSS in MiB). VmHWM, not
    ru_maxrss: Linux carries ru_maxrss over from the forking pytest process."""
    code += ("\nprint(next(int(l.split()[1]) for l in open('/proc/self/status') "
             "if l.startswith('VmHWM:')) // 1024)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    return lines[:-1], int(lines[-1])


def deflated_patch(path: Path, header: Header, payload_size: int, body_size=None) -> Path:
    """A patch whose body is ``payload_size`` zero bytes, deflated (about 1,000 to one), written
    without ever holding the body in memory; ``body_size`` is what the header declares."""
    w = Writer()
    w.raw(patchfile.MAGIC + bytes([patchfile.VERSION]))
    w.uint(patchfile.DEFLATE_BODY | (header.flags & patchfile.FOLDER))
    w.uint(header.old_size); w.raw(header.old_sha256)
    w.sint(header.new_size - header.old_size); w.raw(header.new_sha256)
    w.uint(payload_size if body_size is None else body_size)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = bytearray(w.getvalue())
    block = bytes(1 << 20)
    for _ in range(payload_size >> 20):
        out += deflater.compress(block)
    out += deflater.flush()
    out += zlib.crc32(out).to_bytes(4, "little")
    path.write_bytes(out)
    return path


def test_show_has_a_default_bound(tmp_path):
    """The review's ``show`` of a 625 KB patch declaring a 4 GiB body reached 8.5 GB."""
    header = Header(1 << 20, bytes(32), 2 << 30, bytes(32))
    patch = deflated_patch(tmp_path / "p", header, 0, body_size=(4 << 30) - 1)
    shown = run_cli("show", patch)
    assert shown.returncode != 0 and "--max-memory" in shown.stderr, shown.stderr
    assert len(shown.stderr.strip().splitlines()) == 1


def test_apply_checks_the_target_before_the_body(tmp_path):
    """The review's 176 KB patch made apply reach 2.46 GB before the target's hash was checked."""
    target = tmp_path / "t"
    target.write_bytes(os.urandom(1 << 20))
    header = Header(1 << 20, bytes(32), 200 << 20, bytes(32))  # not this file's hash
    patch = deflated_patch(tmp_path / "p", header, 768 << 20)
    assert patch.stat().st_size < 1 << 20
    out, peak = peak_of(f"""
from pyzpatch import PyzpatchError
from pyzpatch.patch.file import apply_patch
try:
    apply_patch({str(target)!r}, {str(patch)!r})
except PyzpatchError as exc:
    print(exc.problem)
""")
    assert "SHA-256 differs" in out[0]
    assert peak < 100, peak


def test_the_body_is_charged_to_the_budget(tmp_path):
    """With the right target, a body as large as the whole budget leaves nothing to decode with:
    refused, and the body is held once (no copy of it)."""
    target = tmp_path / "t"
    target.write_bytes(base.OLD)
    header = Header(len(base.OLD), patchfile.sha256_of(base.OLD), len(base.NEW), patchfile.sha256_of(base.NEW))
    budget = patchfile.memory_budget(header.new_size)
    patch = deflated_patch(tmp_path / "p", header, budget >> 20 << 20)
    out, peak = peak_of(f"""
from pyzpatch import PyzpatchError
from pyzpatch.patch.file import apply_patch
try:
    apply_patch({str(target)!r}, {str(patch)!r})
except PyzpatchError as exc:
    print(exc.problem)
""")
    assert out and out[0], "refused"  # zero bytes are no plan
    assert peak < (budget >> 20) + 120, peak  # the body once, not twice (split_body copied it)


def many_entries_patch(path: Path, old_dir: Path, count: int) -> Path:
    """A folder patch adding ``count`` empty files to ``old_dir``, written op by op (the encoder
    would need gigabytes to make it)."""
    with FolderContents(str(old_dir)) as old:
        old_size, old_hash = node_hash(old.node())
        n_old = len(old.entries)
    w = Writer()
    w.value_delta((0o755,), (0o755,))  # root mode unchanged
    w.uint(0)  # nothing removed
    w.uint(codes.ORDER_SAME)
    w.uint(count)
    attrs = Writer()
    attrs.value(("f", 0o644, ""))
    for i in range(count):
        w.uint(n_old if i == 0 else 1)
        key = b"f%07d" % i
        w.uint(2 * len(key) + 1); w.raw(key)
        w.raw(attrs.getvalue())
        w.uint(codes.COMPRESSIONS.index(None)); w.uint(codes.LITERAL); w.uint(0)
    w.uint(0)  # nothing changed
    header = Header(old_size, old_hash, 0, bytes(32), flags=patchfile.FOLDER)
    path.write_bytes(patchfile.encode(header, Body(w.getvalue(), b"", b"")))
    return path


def test_folder_entries_are_charged_to_the_budget(tmp_path):
    """The review's 1.28 MB folder patch declaring 6 million empty files took 4.24 GB and 132 s.
    Each entry is charged its memory: this many cannot fit in a 256 MiB budget."""
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "app").write_text("program\n")
    patch = many_entries_patch(tmp_path / "p", folder, 400_000)
    assert patch.stat().st_size < 2 << 20
    out, peak = peak_of(f"""
from pyzpatch import PyzpatchError
from pyzpatch.patch.folder import apply_folder_patch
try:
    apply_folder_patch({str(folder)!r}, {str(patch)!r})
except PyzpatchError as exc:
    print(exc.problem)
""")
    assert "more children than" in out[0], out
    assert peak < 300, peak
    assert sorted(os.listdir(folder)) == ["app"] and leftovers(folder) == []
