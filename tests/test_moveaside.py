"""The Windows swap (move the running files aside, move the new ones in, clean up at the next
start), killed with SIGKILL at every step: the next start's clean-up always ends with a complete
old or new version, and a re-run with the new one, with nothing left beside it."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess

import pytest

from pyzpatch import selfupdate

from .conftest import run_cli, run_forked, sha256_file
from .test_selfupdate import state


def _run_apply(exe, bundle, patch, env_extra):
    """The Windows-strategy self-update in a child forked from this process (conftest.run_forked:
    the kill sweeps start hundreds)."""
    def call():
        inst = selfupdate.find_installation(str(exe), str(bundle))
        selfupdate.apply_update(str(patch), restart=False, strategy="windows", installation=inst)

    return run_forked(call, env_extra, timeout=300)


def _count_checkpoints(tmp_path, make_site, patch):
    exe, bundle, _ = make_site(tmp_path / "count")
    counter = tmp_path / "count.txt"
    proc = _run_apply(exe, bundle, patch, {"PYZPATCH_TEST_COUNT_TO": str(counter)})
    assert proc.returncode == 0, proc.stderr
    return int(counter.read_text())


def _kill_points(total, wanted=24):
    if total <= wanted:
        return list(range(1, total + 1))
    step = total / wanted
    points = sorted({1, total, *(int(1 + i * step) for i in range(wanted))})
    return points + [p for p in range(max(1, total - 8), total + 1) if p not in points]  # the swap itself


def _check_kills(tmp_path, make_site, patch, old_state, new_state, mid_swap):
    """``mid_swap(root)``: does what the kill left show a swap cut half-way (which the
    clean-up must finish)? At least one kill point must hit that."""
    total = _count_checkpoints(tmp_path, make_site, patch)
    points = _kill_points(total)
    assert len(points) >= min(total, 24)
    cut_half_way = 0
    for point in points:
        root = tmp_path / f"kill{point}"
        exe, bundle, target = make_site(root)
        proc = _run_apply(exe, bundle, patch, {"PYZPATCH_TEST_KILL_AT": str(point)})
        assert proc.returncode == -signal.SIGKILL, (point, proc.stderr)
        cut_half_way += mid_swap(root)
        # The next start: clean-up finishes or undoes the interrupted swap.
        inst = selfupdate.find_installation(str(exe), str(bundle))
        selfupdate.cleanup_previous_update(inst, restart_if_finished=False)
        now = state(target)
        assert now in (old_state, new_state), point
        if now == old_state:
            rerun = _run_apply(exe, bundle, patch, {})
            assert rerun.returncode == 0, (point, rerun.stderr)
            selfupdate.cleanup_previous_update(inst, restart_if_finished=False)
        assert state(target) == new_state, point
        assert sorted(os.listdir(root)) == [os.path.basename(target)], point
    assert cut_half_way


def test_onefile_swap_survives_kills(hello_onefile, hello_v2_onefile, tmp_path):
    patch = tmp_path / "fix.patch"
    assert run_cli("make", hello_onefile, hello_v2_onefile, "-o", patch).returncode == 0

    def make_site(root):
        root.mkdir()
        shutil.copy2(hello_onefile, root / "hello")
        return root / "hello", "/tmp/_MEI-not-here", root / "hello"

    _check_kills(tmp_path, make_site, patch, sha256_file(hello_onefile), sha256_file(hello_v2_onefile),
                 lambda root: not (root / "hello").exists())


def test_onedir_file_by_file_swap_survives_kills(hello_onedir, hello_v2_onedir, tmp_path):
    patch = tmp_path / "fix.patch"
    assert run_cli("make", hello_onedir, hello_v2_onedir, "-o", patch).returncode == 0

    def make_site(root):
        root.mkdir()
        shutil.copytree(hello_onedir, root / "hello", symlinks=True)
        return root / "hello" / "hello", root / "hello" / "_internal", root / "hello"

    _check_kills(tmp_path, make_site, patch, state(hello_onedir), state(hello_v2_onedir),
                 lambda root: (root / ".hello.pyzpatch-journal").exists())


def test_file_by_file_swap_adds_removes_and_retypes(tmp_path):
    """Files added, removed, turned into folders or links, and modes changed, all by renames."""
    old, new = tmp_path / "old" / "app", tmp_path / "new" / "app"
    for root in (old, new):
        (root / "lib").mkdir(parents=True)
        (root / "app").write_text("#!/bin/sh\n")
        (root / "app").chmod(0o755)
        (root / "lib" / "same.txt").write_text("unchanged\n")
    (old / "lib" / "gone.txt").write_text("removed in new\n")
    (old / "becomes-dir").write_text("a file in old\n")
    (new / "becomes-dir").mkdir()
    (new / "becomes-dir" / "inner.txt").write_text("inside\n")
    (old / "olddir").mkdir()
    (old / "olddir" / "x.txt").write_text("x\n")
    (old / "gone" / "sub").mkdir(parents=True)  # a folder the new version drops, with its files
    (old / "gone" / "a.dll").write_text("in use, perhaps\n")
    (old / "gone" / "sub" / "b.dll").write_text("in use, perhaps\n")
    (old / "Icon\r").write_text("a name ending in a carriage return\n")
    (new / "Icon\r").write_text("changed\n")
    os.symlink("lib/same.txt", new / "olddir")
    (new / "app").write_text("#!/bin/sh\necho new\n")
    (new / "lib").chmod(0o750)
    patch = tmp_path / "p.patch"
    assert run_cli("make", old, new, "-o", patch).returncode == 0
    same_inode = os.stat(old / "lib" / "same.txt").st_ino
    inst = selfupdate.find_installation(str(old / "app"), str(old / "lib"))
    assert inst.kind == "onedir"
    selfupdate.apply_update(patch, restart=False, strategy="windows", installation=inst)
    assert state(old) == state(new)
    assert os.stat(old / "lib" / "same.txt").st_ino == same_inode  # not touched
    trash = tmp_path / "old" / ".app.pyzpatch-old"
    assert sorted(os.listdir(trash)) == ["Icon\r", "app", "becomes-dir", "gone", "lib", "olddir"]
    # Old files are only ever renamed into the trash, never deleted (they may be in use).
    assert (trash / "gone" / "a.dll").read_text() == (trash / "gone" / "sub" / "b.dll").read_text()
    done = selfupdate.cleanup_previous_update(inst, restart_if_finished=False)
    assert done and not trash.exists()
    assert sorted(os.listdir(tmp_path / "old")) == ["app"]


def test_an_interrupted_onefile_swap_is_finished_at_the_next_start(tmp_path):
    """Cut between the two renames: the program's name is empty, the new version is staged."""
    exe = tmp_path / "prog"
    (tmp_path / "prog.pyzpatch-new").write_bytes(b"new")
    (tmp_path / "prog.pyzpatch-old").write_bytes(b"old")
    inst = selfupdate.Installation("onefile", str(exe), str(exe))
    done = selfupdate.cleanup_previous_update(inst)
    assert exe.read_bytes() == b"new" and sorted(os.listdir(tmp_path)) == ["prog"]
    assert any("moved the new version into place" in line for line in done)


@pytest.mark.parametrize("stale", ["prog.pyzpatch-new", ".prog.abc.pyzpatch-tmp"])
def test_stale_staged_files_are_removed_at_the_next_start(tmp_path, stale):
    exe = tmp_path / "prog"
    exe.write_bytes(b"current")
    (tmp_path / stale).write_bytes(b"half")
    inst = selfupdate.Installation("onefile", str(exe), str(exe))
    assert selfupdate.cleanup_previous_update(inst)
    assert exe.read_bytes() == b"current" and os.listdir(tmp_path) == ["prog"]


def _immutable(path, on: bool) -> bool:
    return subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True).returncode == 0


def test_old_files_still_in_use_do_not_block_the_next_update(tmp_path):
    """On Windows the old process keeps its files while it waits for the new one, so the trash
    cannot be emptied; a second update in that time must still work (here "in use" is made with
    chattr +i, which even root cannot delete through)."""
    versions = []
    for v in range(3):
        root = tmp_path / f"v{v}" / "app"
        (root / "lib").mkdir(parents=True)
        (root / "app").write_text(f"#!/bin/sh\necho {v}\n")
        (root / "lib" / "core.dll").write_text(f"core {v}\n")
        versions.append(root)
    site = tmp_path / "site"
    shutil.copytree(versions[0], site / "app", symlinks=True)
    inst = selfupdate.Installation("onedir", str(site / "app" / "app"), str(site / "app"))
    patches = []
    for a, b in ((0, 1), (1, 2)):
        patch = tmp_path / f"{a}-{b}.patch"
        assert run_cli("make", versions[a], versions[b], "-o", patch).returncode == 0
        patches.append(patch)
    selfupdate.apply_update(patches[0], restart=False, strategy="windows", installation=inst)
    in_use = site / ".app.pyzpatch-old" / "lib" / "core.dll"
    if not _immutable(in_use, True):
        pytest.skip("chattr +i is not available here")
    try:
        assert selfupdate.cleanup_previous_update(inst, restart_if_finished=False) == []
        selfupdate.apply_update(patches[1], restart=False, strategy="windows", installation=inst)
        assert state(site / "app") == state(versions[2])
        with pytest.raises(selfupdate.AlreadyUpToDate):
            selfupdate.apply_update(patches[1], restart=False, strategy="windows", installation=inst)
    finally:
        _immutable(in_use, False)
    selfupdate.cleanup_previous_update(inst, restart_if_finished=False)
    assert sorted(os.listdir(site)) == ["app"]
