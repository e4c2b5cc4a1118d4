"""make diffs a folder's changed native libraries ahead, on worker threads (encoder._LeavesAhead):
the patch is the same, byte for byte, as the one made diffing each in turn, and applies."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from pyzpatch import apply_folder_patch, make_folder_patch
from pyzpatch.delta import encoder
from pyzpatch.patch.foldernode import FolderContents, node_hash


def _source(n: int, salt: int) -> str:
    body = "\n".join(f"int f{i}(int x) {{ return x * {i + salt % 3} + {(i * 7 + salt) % 11}; }}" for i in range(n))
    calls = " + ".join(f"f{i}(x)" for i in range(0, n, 3))
    return f"{body}\nint total(int x) {{ return {calls}; }}\n"


@pytest.fixture(scope="module")
def native_folders(tmp_path_factory):
    """Two folders of three shared libraries each, every one rebuilt with other code."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("no C compiler on this machine")
    root = tmp_path_factory.mktemp("leaves")
    jobs = []
    for side, salt in (("old", 0), ("new", 1)):
        (root / side / "lib").mkdir(parents=True)
        (root / side / "README").write_text("same in both\n")
        for k, n in enumerate((120, 200, 90)):
            src = root / f"{side}{k}.c"
            src.write_text(_source(n + 10 * salt * k, salt + k))
            jobs.append(subprocess.Popen([gcc, "-O1", "-shared", "-fPIC", "-o", str(root / side / "lib" / f"m{k}.so"),
                                          str(src)]))
    assert all(job.wait() == 0 for job in jobs)
    return root / "old", root / "new"


def _state(path) -> bytes:
    with FolderContents(str(path)) as fc:
        return node_hash(fc.node())[1]


@pytest.mark.parametrize("convert", [False, True])
def test_libraries_diffed_ahead_give_the_same_patch(native_folders, tmp_path, monkeypatch, convert):
    old, new = native_folders
    monkeypatch.setattr(encoder, "CONVERT_BRANCHES", convert)
    with FolderContents(str(old)) as o, FolderContents(str(new)) as n:
        pairs = [(a.data, b.data, b.key) for a, b in zip(o.node().children, n.node().children)
                 if a.key == b.key and bytes(a.data) != bytes(b.data)]
        assert len(pairs) == 3 and isinstance(encoder._leaves_ahead(pairs), encoder._LeavesAhead)
    ahead = make_folder_patch(old, new).data
    # The same encoder with nothing diffed ahead: each library diffed when its turn comes.
    monkeypatch.setattr(encoder, "_leaves_ahead", lambda pairs: encoder._NotAhead())
    in_turn = make_folder_patch(old, new).data
    assert ahead == in_turn
    target, patch = tmp_path / "app", tmp_path / "p.patch"
    shutil.copytree(old, target)
    patch.write_bytes(ahead)
    apply_folder_patch(target, patch)
    assert _state(target) == _state(new)
