"""pyzpatch as tufup's binary diff, with the real tufup 0.10 and the bsdiff4 1.2.x it pins.

These tests run their tufup side in .venv-tufup (made by the test install step:
``python fixtures/build.py --tufup-venv``), where ``import pyzpatch`` is this working tree and
bsdiff4 is 1.2.x, while the main environment has 1.3.x: so CI checks pyzpatch with both.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyzpatch.patch.foldernode import FolderContents, node_hash

from .conftest import REPO, run_program

TUFUP_PYTHON = REPO / ".venv-tufup" / "bin" / "python"


@pytest.fixture(scope="session")
def tufup_python() -> str:
    if not TUFUP_PYTHON.exists():
        pytest.skip(f"{TUFUP_PYTHON.parent.parent} is missing (tufup 0.10 with bsdiff4 1.2.x): run the test "
                    "install step from README.md (python fixtures/build.py --tufup-venv)")
    return str(TUFUP_PYTHON)


def run_in_venv(python: str, args, cwd=None, timeout=600) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the venv's own .pth names this working tree
    proc = subprocess.run([python, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


# Two small tars made by tufup's own make_gztar_archive, the new one with a changed member in a
# zip inside and a changed binary file, patched with tufup's Patcher and PyzpatchDiff.
PATCHER_SCRIPT = r'''
import gzip, io, json, pathlib, random, sys, zipfile
import bsdiff4
from tufup.common import Patcher, TargetMeta
from tufup.repo import make_gztar_archive
from pyzpatch import make_patch
from pyzpatch.delta import bsdiff
from pyzpatch.tufup import PyzpatchDiff

work = pathlib.Path(sys.argv[1])
blob = random.Random(0).randbytes(100_000)
for version in ("1.0", "2.0"):
    folder = work / version
    folder.mkdir()
    modules = {f"pkg/m{i}.py": (f"# module {i}\n" + "x = 1\n" * 300).encode() for i in range(30)}
    if version == "2.0":
        modules["pkg/m3.py"] = modules["pkg/m3.py"].replace(b"x = 1", b"x = 22", 1)
        blob = blob[:5000] + b"inserted" + blob[5000:]
    with zipfile.ZipFile(folder / "lib.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in modules.items():
            zf.writestr(name, data)
    (folder / "data.bin").write_bytes(blob)
    make_gztar_archive(src_dir=folder, dst_dir=work, app_name="demo", version=version)
old, new = work / "demo-1.0.tar.gz", work / "demo-2.0.tar.gz"
expected = Patcher.diff_and_hash(src_path=old, dst_path=new, patch_path=work / "demo-2.0.patch",
                                 binary_diff=PyzpatchDiff)
meta = TargetMeta(target_path=work / "demo-2.0.patch", custom=dict(user=None, tufup=expected))
Patcher.patch_and_verify(src_path=old, dst_path=work / "out.tar.gz", patch_targets={meta: work / "demo-2.0.patch"},
                         binary_diff=PyzpatchDiff)
(work / "old.tar").write_bytes(gzip.decompress(old.read_bytes()))
(work / "new.tar").write_bytes(gzip.decompress(new.read_bytes()))
changes = {c.path: c.how for c in make_patch(work / "old.tar", work / "new.tar").changes}
print(json.dumps({"bsdiff4": bsdiff4.__version__, "control_as_list": bsdiff.CONTROL_AS_LIST,
                  "same": gzip.decompress((work / "out.tar.gz").read_bytes()) == (work / "new.tar").read_bytes(),
                  "patch_size": (work / "demo-2.0.patch").stat().st_size, "changes": changes}))
'''


def test_tufup_patcher_with_pyzpatch_diff_under_bsdiff4_1_2(tufup_python, tmp_path):
    """tufup's Patcher makes and applies a PyzpatchDiff patch whose parts need bsdiff, with
    bsdiff4 1.2.x (whose control block is a list, not bytes)."""
    out = json.loads(run_in_venv(tufup_python, ["-c", PATCHER_SCRIPT, tmp_path]).stdout)
    assert out["bsdiff4"].startswith("1.2.") and out["control_as_list"]
    assert out["same"]
    assert out["changes"]["/./data.bin"] == "bsdiff", out["changes"]
    assert out["changes"]["/./lib.zip/pkg/m3.py"].startswith("recompressed"), out["changes"]
    assert out["patch_size"] < 2000


def test_pyzpatch_diff_class_without_tufup():
    """``import pyzpatch`` and ``pyzpatch.tufup`` need no tufup; the class says what to install."""
    code = ("import sys, pyzpatch, pyzpatch.tufup\n"
            "assert 'tufup' not in sys.modules\n"
            "try:\n    pyzpatch.tufup.PyzpatchDiff\nexcept ImportError as exc:\n    print(exc)\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    if "needs tufup" in proc.stdout:  # tufup is not installed in the main environment
        assert "pip install 'pyzpatch[tufup]'" in proc.stdout


def folder_id(folder: Path):
    with FolderContents(str(folder)) as fc:
        return node_hash(fc.node())


def test_tufup_client_updates_a_one_folder_build_through_a_pyzpatch_patch(
        tufup_python, hello_onedir, hello_v2_onedir, bigapp_onedir, tmp_path):
    proc = run_in_venv(tufup_python, [REPO / "tests" / "tufup_update.py", tmp_path, hello_onedir, hello_v2_onedir,
                                      bigapp_onedir], cwd=tmp_path)
    out = json.loads(proc.stdout)
    assert out["tufup"] == "0.10.0" and out["bsdiff4"].startswith("1.2."), out
    # The repository's patch is a pyzpatch patch, and the client chose it over the archive.
    assert out["patch_magic"] == "PZP"
    assert out["found"] == "2.0" and out["chosen"] == ["hello-2.0.patch"], out
    assert "/targets/hello-2.0.patch" in out["served"], out["served"]
    assert not any(p.endswith(".tar.gz") for p in out["served"]), out["served"]
    assert out["new_archive_rebuilt"]
    assert out["patch_size"] < 2000, out
    # The installed folder is now the v2 build, and runs as v2.
    assert folder_id(tmp_path / "app") == folder_id(hello_v2_onedir)
    assert run_program(tmp_path / "app" / "hello") == run_program(hello_v2_onedir / "hello")
    assert "v2" in run_program(tmp_path / "app" / "hello")
    # The codec rebuilds exactly every tar make_gztar_archive wrote of the fixtures' folders.
    assert len(out["codec_exact"]) == 3 and all(out["codec_exact"].values()), out["codec_exact"]
