"""make / apply / show / verify on real builds: exact results, refusals that touch nothing."""
from __future__ import annotations

import json
import os
import random
import shutil
import stat
import sys
import textwrap

import pytest

from .conftest import REPO, run_cli, run_program, sha256_file


def make(old, new, patch):
    result = run_cli("make", old, new, "-o", patch)
    assert result.returncode == 0, result.stderr
    return result


def assert_refused(result, path_hint):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert path_hint in lines[0]


def no_temp_files(folder) -> bool:
    return not [p for p in os.listdir(folder) if p.endswith(".pyzpatch-tmp")]


def test_onefile_end_to_end(hello_onefile, hello_v2_onefile, tmp_path):
    patch = tmp_path / "fix.patch"
    out = make(hello_onefile, hello_v2_onefile, patch).stdout
    assert "mod1" in out
    target = tmp_path / "hello"
    shutil.copy2(hello_onefile, target)
    result = run_cli("apply", target, patch)
    assert result.returncode == 0, result.stderr
    assert "byte-identical" in result.stdout
    assert sha256_file(target) == sha256_file(hello_v2_onefile)
    assert run_program(target).strip() == "hello from mod1 v2"
    assert no_temp_files(tmp_path)
    # Smaller than the whole executable by far (the exact figures are measured in bench/).
    assert patch.stat().st_size < 1024


def test_onedir_executable_end_to_end(hello_onedir, hello_v2_onedir, tmp_path):
    folder = tmp_path / "hello"
    shutil.copytree(hello_onedir, folder, symlinks=True)
    patch = tmp_path / "fix.patch"
    make(hello_onedir / "hello", hello_v2_onedir / "hello", patch)
    result = run_cli("apply", folder / "hello", patch)
    assert result.returncode == 0, result.stderr
    assert sha256_file(folder / "hello") == sha256_file(hello_v2_onedir / "hello")
    assert run_program(folder / "hello").strip() == "hello from mod1 v2"


def test_bigapp_module_change(bigapp_onefile, bigapp_v2_onefile, tmp_path):
    patch = tmp_path / "fix.patch"
    make(bigapp_onefile, bigapp_v2_onefile, patch)
    out = tmp_path / "bigapp-new"
    result = run_cli("apply", bigapp_onefile, patch, "-o", out)
    assert result.returncode == 0, result.stderr
    assert sha256_file(out) == sha256_file(bigapp_v2_onefile)
    assert os.access(out, os.X_OK)
    assert "bigapp v2" in run_program(out)


def test_show_and_verify(hello_onefile, hello_v2_onefile, tmp_path):
    patch = tmp_path / "fix.patch"
    make(hello_onefile, hello_v2_onefile, patch)
    shown = run_cli("show", "--json", patch)
    assert shown.returncode == 0, shown.stderr
    desc = json.loads(shown.stdout)
    assert desc["old"]["sha256"] == sha256_file(hello_onefile)
    assert desc["new"]["sha256"] == sha256_file(hello_v2_onefile)
    assert desc["structural"]
    assert any(c["path"].endswith("/mod1") and c["action"] == "changed" for c in desc["changes"])
    text = run_cli("show", patch).stdout
    assert "mod1" in text and "applies to" in text

    target = tmp_path / "hello"
    shutil.copy2(hello_onefile, target)
    before = (sha256_file(target), target.stat().st_mtime_ns)
    for args in (("verify", target, patch), ("apply", "--dry-run", target, patch)):
        result = run_cli(*args)
        assert result.returncode == 0, result.stderr
        assert "applies" in result.stdout
    assert (sha256_file(target), target.stat().st_mtime_ns) == before
    assert sorted(os.listdir(tmp_path)) == ["fix.patch", "hello"]


def test_apply_keeps_mode_and_output_leaves_target(hello_onefile, hello_v2_onefile, tmp_path):
    patch = tmp_path / "fix.patch"
    make(hello_onefile, hello_v2_onefile, patch)
    target = tmp_path / "hello"
    shutil.copy2(hello_onefile, target)
    target.chmod(0o750)
    before = sha256_file(target)
    out = tmp_path / "elsewhere"
    assert run_cli("apply", target, patch, "-o", out).returncode == 0
    assert sha256_file(target) == before
    assert sha256_file(out) == sha256_file(hello_v2_onefile)
    assert run_cli("apply", target, patch).returncode == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    again = run_cli("apply", target, patch)
    assert_refused(again, "already")


# --- refusals ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hello_patch(hello_onefile, hello_v2_onefile, tmp_path_factory):
    patch = tmp_path_factory.mktemp("patch") / "fix.patch"
    make(hello_onefile, hello_v2_onefile, patch)
    return patch.read_bytes()


def _try_apply(target_bytes: bytes, patch_bytes: bytes, tmp_path):
    target = tmp_path / "target"
    target.write_bytes(target_bytes)
    target.chmod(0o755)
    patch = tmp_path / "p.patch"
    patch.write_bytes(patch_bytes)
    result = run_cli("apply", target, patch)
    assert target.read_bytes() == target_bytes, "the target must be untouched"
    assert no_temp_files(tmp_path)
    return result, target, patch


def test_wrong_file_is_refused(bigapp_onefile, hello_patch, tmp_path):
    result, target, _ = _try_apply(bigapp_onefile.read_bytes(), hello_patch, tmp_path)
    assert_refused(result, str(target))


def test_target_changed_after_make_is_refused(hello_onefile, hello_patch, tmp_path):
    data = bytearray(hello_onefile.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size, one bit different
    result, target, _ = _try_apply(bytes(data), hello_patch, tmp_path)
    assert_refused(result, str(target))
    assert "SHA-256" in result.stderr


@pytest.mark.parametrize("cut", [0, 3, 10, 40, 80, -30, -1])
def test_truncated_patch_is_refused(hello_onefile, hello_patch, tmp_path, cut):
    result, _, patch = _try_apply(hello_onefile.read_bytes(), hello_patch[:cut], tmp_path)
    assert_refused(result, str(patch))


@pytest.mark.parametrize("where", [1, 3, 5, 20, 45, 80, 100, -40, -10, -2])
def test_altered_patch_is_refused(hello_onefile, hello_patch, tmp_path, where):
    data = bytearray(hello_patch)
    data[where] ^= 0x40
    result, target, patch = _try_apply(hello_onefile.read_bytes(), bytes(data), tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert str(patch) in result.stderr or str(target) in result.stderr


def test_not_a_patch(hello_onefile, tmp_path):
    result, _, patch = _try_apply(hello_onefile.read_bytes(), b"#!/bin/sh\necho hi\n", tmp_path)
    assert_refused(result, str(patch))


# --- whole-file fallback ------------------------------------------------------------------------

def test_plain_files_get_a_whole_file_diff(tmp_path):
    old = tmp_path / "old.bin"
    new = tmp_path / "new.bin"
    # Not periodic: bsdiff's suffix sort of a periodic file takes seconds, of random bytes none.
    base = random.Random(171).randbytes(1_024_000)
    old.write_bytes(base)
    new.write_bytes(base[:5000] + b"inserted" + base[5000:-300])
    patch = tmp_path / "p.patch"
    made = make(old, new, patch)
    # Said as a warning on stderr (one line), so that a script sees it apart from the report.
    assert made.stderr.startswith("pyzpatch: warning: ") and "whole-file diff" in made.stderr
    assert "whole-file diff" not in made.stdout
    assert run_cli("apply", old, patch).returncode == 0
    assert old.read_bytes() == new.read_bytes()


def test_unrelated_executables_stay_within_1k_of_bsdiff4(hello_onefile, bigapp_onefile, tmp_path):
    import bsdiff4
    patch = tmp_path / "p.patch"
    make(hello_onefile, bigapp_onefile, patch)
    whole = bsdiff4.diff(hello_onefile.read_bytes(), bigapp_onefile.read_bytes())
    assert patch.stat().st_size <= len(whole) + 1024
    out = tmp_path / "out"
    assert run_cli("apply", hello_onefile, patch, "-o", out).returncode == 0
    assert sha256_file(out) == sha256_file(bigapp_onefile)


# --- a device whose zlib compresses differently -------------------------------------------------

OTHER_ZLIB = textwrap.dedent('''
    # Stands in for a device whose zlib (zlib-ng, another version) compresses the same bytes
    # differently: every compressor runs with another memory level, so its output differs.
    import zlib
    _compressobj = zlib.compressobj
    def compressobj(level=-1, method=zlib.DEFLATED, wbits=15, memLevel=8, strategy=0, *args):
        return _compressobj(level, method, wbits, 9 if memLevel != 9 else 7, strategy, *args)
    zlib.compressobj = compressobj
''')


def test_other_zlib_gives_content_identical_result(hello_onefile, hello_v2_onefile, hello_patch, tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(OTHER_ZLIB)
    patch = tmp_path / "fix.patch"
    patch.write_bytes(hello_patch)
    target = tmp_path / "hello"
    shutil.copy2(hello_onefile, target)
    import subprocess
    env = dict(os.environ, PYTHONPATH=f"{shim}{os.pathsep}{REPO}")
    dry = subprocess.run([sys.executable, "-m", "pyzpatch", "apply", "--dry-run", str(target), str(patch)],
                         capture_output=True, text=True, env=env)
    assert dry.returncode == 0 and "content-identical" in dry.stdout, dry.stderr
    proc = subprocess.run([sys.executable, "-m", "pyzpatch", "apply", str(target), str(patch)],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "content-identical" in proc.stdout
    assert sha256_file(target) != sha256_file(hello_v2_onefile)
    assert run_program(target).strip() == "hello from mod1 v2"


def test_zip_with_deflated_members(tmp_path):
    """Deflated zip members are diffed on their content and re-compressed exactly."""
    import zipfile
    old, new = tmp_path / "old.zip", tmp_path / "new.zip"
    text = "".join(f"line {i}: {'x' * (i % 37)}\n" for i in range(4000))
    for path, edit in ((old, text), (new, text.replace("line 2000:", "LINE 2000:"))):
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("__main__.py", "print('hi')\n")
            zf.writestr("data/big.txt", edit)
            zf.writestr("data/stored.bin", bytes(range(256)) * 8, compress_type=zipfile.ZIP_STORED)
    patch = tmp_path / "p.patch"
    make(old, new, patch)
    desc = json.loads(run_cli("show", "--json", patch).stdout)
    changed = [c for c in desc["changes"] if c["path"].endswith("data/big.txt")]
    assert changed and changed[0]["how"].startswith("recompressed")
    assert patch.stat().st_size < 300
    assert run_cli("apply", old, patch).returncode == 0
    assert old.read_bytes() == new.read_bytes()
