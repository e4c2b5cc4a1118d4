"""Patches written by an earlier pyzpatch still apply.

``tests/data/compat-0.1.0/`` holds files and patches made by pyzpatch 0.1.0 (before the
recognition rework gave each container kind a fixed wire id): ``prog.patch`` turns ``prog-old``
(an executable-shaped file around a CArchive holding a PYZ and a zip, so it names every
container kind) into ``prog-new``; ``folder.patch`` turns ``folder-old`` into ``folder-new``.
The test copies them, since a folder patch names modes, and git keeps only some of them.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from pyzpatch import apply_folder_patch, apply_patch, describe_patch

DATA = Path(__file__).resolve().parent / "data" / "compat-0.1.0"


def _copy_folder(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest)
    # The modes the folder had when the patch was made (git does not keep folder modes).
    for current, dirs, files in os.walk(dest):
        os.chmod(current, 0o755)
        for name in files:
            os.chmod(os.path.join(current, name), 0o755 if name == "prog" else 0o644)


def test_file_patch_from_0_1_0_applies(tmp_path):
    target = tmp_path / "prog"
    shutil.copyfile(DATA / "prog-old", target)
    result = apply_patch(target, DATA / "prog.patch")
    assert result.byte_identical
    assert target.read_bytes() == (DATA / "prog-new").read_bytes()
    desc = describe_patch(DATA / "prog.patch")
    assert desc["structural"]
    paths = {c["path"] for c in desc["changes"]}
    # Every container kind of the time is named: executable, CArchive, PYZ and zip.
    assert {"archive", "archive/z:PYZ.pyz", "archive/x:lib.zip", "archive/z:PYZ.pyz/mod1"} <= paths


def test_folder_patch_from_0_1_0_applies(tmp_path):
    target = tmp_path / "app"
    _copy_folder(DATA / "folder-old", target)
    result = apply_folder_patch(target, DATA / "folder.patch")
    assert result.written
    for name in ("prog", "_internal/base_library.zip", "_internal/data.txt"):
        got = hashlib.sha256((target / name).read_bytes()).digest()
        assert got == hashlib.sha256((DATA / "folder-new" / name).read_bytes()).digest(), name
