"""Whole one-folder builds: make, apply, run; apply survives SIGKILL anywhere; no escapes."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from pyzpatch.delta.engine import Encoder
from pyzpatch.formats.node import Child, Node
from pyzpatch.patch.foldernode import FolderContents, node_hash
from pyzpatch.patchfile import codec as patchfile
from pyzpatch.patchfile.codec import Body, Header

from .conftest import REPO, fork_cli, run_cli, run_forked, run_program


def folder_state(path) -> bytes:
    with FolderContents(path) as fc:
        return node_hash(fc.node())[1]


@pytest.fixture(scope="module")
def onedir_patch(hello_onedir, hello_v2_onedir, tmp_path_factory):
    patch = tmp_path_factory.mktemp("fpatch") / "fix.patch"
    result = run_cli("make", hello_onedir, hello_v2_onedir, "-o", patch)
    assert result.returncode == 0, result.stderr
    return patch


def test_onedir_folder_end_to_end(hello_onedir, hello_v2_onedir, onedir_patch, tmp_path):
    # 197 bytes of changes and 461 of manifest (the old build's 49 entries: docs/folder-apply.md)
    assert onedir_patch.stat().st_size < 700
    target = tmp_path / "hello"
    shutil.copytree(hello_onedir, target, symlinks=True)
    shown = json.loads(run_cli("show", "--json", onedir_patch).stdout)
    assert shown["folder"] and any(c["path"].endswith("mod1") for c in shown["changes"])
    assert run_cli("verify", target, onedir_patch).returncode == 0
    (target / "hello").chmod(0o750)
    result = run_cli("apply", target, onedir_patch)
    # The executable's mode differs from the build's, so the folder is not the one the patch
    # names: refused, untouched.
    assert result.returncode != 0 and "not the folder" in result.stderr
    (target / "hello").chmod(0o755)
    result = run_cli("apply", target, onedir_patch)
    assert result.returncode == 0, result.stderr
    assert folder_state(target) == folder_state(hello_v2_onedir)
    assert run_program(target / "hello").strip() == "hello from mod1 v2"
    assert sorted(os.listdir(tmp_path)) == ["hello"]  # no staging or marker left beside it
    again = run_cli("apply", target, onedir_patch)
    assert again.returncode != 0 and "already" in again.stderr


def test_modes_links_and_empty_folders(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    for root in (old, new):
        (root / "lib").mkdir(parents=True)
        (root / "empty").mkdir()
        (root / "lib" / "data.bin").write_bytes(bytes(range(256)) * 50)
        (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
        (root / "run.sh").chmod(0o755)
        os.symlink("lib/data.bin", root / "data-link")
    (new / "lib" / "data.bin").write_bytes(bytes(range(256)) * 49 + b"changed" * 10)
    (new / "run.sh").chmod(0o700)
    (new / "empty").rmdir()
    (new / "empty2").mkdir()
    (new / "empty2").chmod(0o750)
    os.unlink(new / "data-link")
    os.symlink("run.sh", new / "data-link")
    (new / "added.txt").write_text("new file\n")
    patch = tmp_path / "p.patch"
    assert run_cli("make", old, new, "-o", patch).returncode == 0
    assert run_cli("apply", old, patch).returncode == 0
    assert folder_state(old) == folder_state(new)
    assert os.readlink(old / "data-link") == "run.sh"
    assert (old / "empty2").stat().st_mode & 0o777 == 0o750


def _evil_patch(tmp_path, key, attrs, data=b"owned") -> tuple:
    base = tmp_path / "base"
    base.mkdir()
    (base / "a.txt").write_text("a\n")
    with FolderContents(base) as fc:
        old_node = fc.node()
        new_node = Node(old_node.kind, old_node.meta, list(old_node.children) + [Child(key, attrs, data)])
        old_size, old_hash = node_hash(old_node)
        new_size, new_hash = node_hash(new_node)
        encoder = Encoder()
        encoder.node_delta(old_node, new_node, "")
    header = Header(old_size, old_hash, new_size, new_hash, flags=patchfile.FOLDER)
    out = encoder.out
    patch = tmp_path / "evil.patch"
    patch.write_bytes(patchfile.encode(header, Body(out.ops.getvalue(), bytes(out.diff), bytes(out.lit))))
    return base, patch


@pytest.mark.parametrize("key,attrs", [
    ("../evil.txt", ("f", 0o644, "")),
    ("sub/../../evil.txt", ("f", 0o644, "")),
    ("/tmp/evil.txt", ("f", 0o644, "")),
    ("link", ("l", 0, "../../outside")),
    ("link", ("l", 0, "/etc/passwd")),
    ("a.txt/inside", ("f", 0o644, "")),
])
def test_escaping_names_are_refused_before_writing(tmp_path, key, attrs):
    base, patch = _evil_patch(tmp_path, key, attrs)
    before = folder_state(base)
    result = run_cli("apply", base, patch)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert folder_state(base) == before
    assert sorted(os.listdir(tmp_path)) == ["base", "evil.patch"]


# --- killed in the middle ------------------------------------------------------------------

def _apply_process(target, patch, env_extra, swap="folder"):
    env = dict(os.environ, PYTHONPATH=str(REPO), **env_extra)
    if swap == "folder":  # the command line, as a user runs it
        cmd = [sys.executable, "-m", "pyzpatch", "apply", str(target), str(patch)]
    else:  # the API, to choose the swap a system without an atomic exchange gets
        cmd = [sys.executable, "-c", "import sys; from pyzpatch import apply_folder_patch; "
               f"apply_folder_patch(sys.argv[1], sys.argv[2], swap={swap!r})", str(target), str(patch)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _apply_forked(target, patch, env_extra, swap="folder") -> int:
    """``_apply_process`` in a child forked from this process (conftest.run_forked); its exit
    status."""
    if swap == "folder":
        return fork_cli("apply", target, patch, env_extra=env_extra).returncode

    def call():
        from pyzpatch import apply_folder_patch
        apply_folder_patch(str(target), str(patch), swap=swap)

    return run_forked(call, env_extra).returncode


def _check_after_kill(target, old_state, new_state, patch, atomic=True):
    """Right after the kill the folder is old or new (with the two-rename fallback it may also be
    missing between the renames: recoverable); after a re-run it is new."""
    if atomic or target.exists():
        assert folder_state(target) in (old_state, new_state)
    rerun = fork_cli("apply", target, patch)
    assert rerun.returncode == 0 or "already" in rerun.stderr, rerun.stderr
    assert folder_state(target) == new_state
    assert sorted(os.listdir(target.parent)) == [target.name]


def _linked_copy(src, dest):
    """A copy of a build folder made of hard links: apply never writes into a target's files
    (it writes new ones beside them), so the cached build stays intact."""
    shutil.copytree(src, dest, symlinks=True, copy_function=os.link)


def _checkpoint_count(hello_onedir, patch, tmp_path, swap) -> int:
    target = tmp_path / "count" / "hello"
    _linked_copy(hello_onedir, target)
    counter = tmp_path / "count.txt"
    assert _apply_forked(target, patch, {"PYZPATCH_TEST_COUNT_TO": str(counter)}, swap) == 0
    shutil.rmtree(target.parent)
    return int(counter.read_text())


@pytest.mark.parametrize("exchange,points", [(True, 35), (False, 15)], ids=["exchange", "two-renames"])
def test_sigkill_at_checkpoints(hello_onedir, hello_v2_onedir, onedir_patch, tmp_path, exchange, points):
    old_state, new_state = folder_state(hello_onedir), folder_state(hello_v2_onedir)
    swap = "folder" if exchange else "two-renames"
    total = _checkpoint_count(hello_onedir, onedir_patch, tmp_path, swap)
    # Points spread over the whole run, always including the last few (the swap).
    chosen = sorted({max(1, round(i * total / points)) for i in range(1, points + 1)} | {total - 2, total - 1, total})
    assert len(chosen) >= min(points, total)
    for point in chosen:
        work = tmp_path / f"k{point}"
        target = work / "hello"
        _linked_copy(hello_onedir, target)
        assert _apply_forked(target, onedir_patch, {"PYZPATCH_TEST_KILL_AT": str(point)}, swap) == -signal.SIGKILL
        _check_after_kill(target, old_state, new_state, onedir_patch, atomic=exchange)
        shutil.rmtree(work)


def test_sigkill_after_random_delays(hello_onedir, hello_v2_onedir, onedir_patch, tmp_path):
    old_state, new_state = folder_state(hello_onedir), folder_state(hello_v2_onedir)
    rng = random.Random(1234)
    for i in range(12):
        work = tmp_path / f"r{i}"
        target = work / "hello"
        _linked_copy(hello_onedir, target)
        proc = _apply_process(target, onedir_patch, {})
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=120)
        _check_after_kill(target, old_state, new_state, onedir_patch)
        shutil.rmtree(work)
