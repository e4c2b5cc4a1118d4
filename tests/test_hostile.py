"""Hostile input, second round (issue 11): one regression test per finding of the outside
review, each on real files, real folders and real processes.

Patches that ``make`` itself would refuse are written by ``unchecked_folder_patch``: the same
encoder and patch-file codec, without make's checks, as an attacker's tool would produce them.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyzpatch.delta.engine import Encoder
from pyzpatch.patch.foldernode import MAX_PATH_DEPTH, FolderContents, node_hash
from pyzpatch.patchfile import codec as patchfile
from pyzpatch.patchfile.codec import Body, Header

from .conftest import run_cli


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

    # The review's patch: 2,000 components, which once overflowed Python's recursion limit.
    deeper = tmp_path / "deeper"
    deeper.mkdir()
    (deeper / "app").write_text("program\n")
    path = str(deeper)
    for _ in range(2000):  # os.makedirs would recurse 2,000 deep
        path = os.path.join(path, "d")
        os.mkdir(path)
    patch = unchecked_folder_patch(old, deeper, tmp_path / "evil.patch")
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

