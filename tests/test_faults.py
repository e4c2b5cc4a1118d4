"""Single-file apply under faults: killed anywhere, disk full, read-only, target swapped."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from pyzpatch.cli import EXIT_IO

from .conftest import REPO, fork_cli, sha256_file


def _apply(target, patch, env_extra, wait=True):
    if wait:  # forked from this process: the sweeps start hundreds (conftest.run_forked)
        done = fork_cli("apply", target, patch, env_extra=env_extra)
        return done.returncode, done.stdout, done.stderr
    env = dict(os.environ, PYTHONPATH=str(REPO), **env_extra)
    proc = subprocess.Popen([sys.executable, "-m", "pyzpatch", "apply", str(target), str(patch)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if wait:
        out, err = proc.communicate(timeout=120)
        return proc.returncode, out, err
    return proc


@pytest.fixture(scope="module")
def case(hello_onefile, hello_v2_onefile, tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    patch = folder / "fix.patch"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    subprocess.run([sys.executable, "-m", "pyzpatch", "make", str(hello_onefile), str(hello_v2_onefile), "-o",
                    str(patch)], check=True, env=env, capture_output=True)
    old_sha, new_sha = sha256_file(hello_onefile), sha256_file(hello_v2_onefile)
    target = folder / "count" / "hello"
    target.parent.mkdir()
    shutil.copy2(hello_onefile, target)
    counter = folder / "count.txt"
    code, _, err = _apply(target, patch, {"PYZPATCH_TEST_COUNT_TO": str(counter)})
    assert code == 0, err
    return {"patch": patch, "old": old_sha, "new": new_sha, "checkpoints": int(counter.read_text()),
            "source": hello_onefile}


def _fresh_target(case, folder):
    folder.mkdir()
    target = folder / "hello"
    shutil.copy2(case["source"], target)
    return target


def _no_temporaries(folder) -> bool:
    return not [n for n in os.listdir(folder) if n.endswith(".pyzpatch-tmp")]


def test_sigkill_at_50_points(case, tmp_path):
    total = case["checkpoints"]
    assert total >= 50, total
    points = sorted({max(1, round(i * total / 50)) for i in range(1, 51)})
    assert len(points) >= 50
    for point in points:
        target = _fresh_target(case, tmp_path / f"k{point}")
        code, _, _ = _apply(target, case["patch"], {"PYZPATCH_TEST_KILL_AT": str(point)})
        assert code == -signal.SIGKILL
        assert sha256_file(target) in (case["old"], case["new"])
        code, _, err = _apply(target, case["patch"], {})
        assert code == 0 or "already" in err, err
        assert sha256_file(target) == case["new"]
        assert _no_temporaries(target.parent), os.listdir(target.parent)
        shutil.rmtree(target.parent)


def test_disk_full_at_every_stage_leaves_target_intact(case, tmp_path):
    total = case["checkpoints"]
    for point in sorted({1, 2, total // 4, total // 2, total - 3, total - 2}):
        target = _fresh_target(case, tmp_path / f"f{point}")
        code, _, err = _apply(target, case["patch"], {"PYZPATCH_TEST_FAIL_WRITE_AT": str(point)})
        assert code == EXIT_IO and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1 and "No space left" in err
        assert sha256_file(target) == case["old"]
        assert _no_temporaries(target.parent)
        shutil.rmtree(target.parent)


def test_read_only_folder(case, tmp_path):
    target = _fresh_target(case, tmp_path / "ro")
    if subprocess.run(["chattr", "+i", str(target.parent)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here (needs root on a file system that supports it)")
    try:
        code, _, err = _apply(target, case["patch"], {})
        assert code == EXIT_IO and "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert "not permitted" in err or "denied" in err or "Read-only" in err
        assert sha256_file(target) == case["old"]
    finally:
        subprocess.run(["chattr", "-i", str(target.parent)])


def test_target_replaced_between_verification_and_rename(case, tmp_path):
    target = _fresh_target(case, tmp_path / "swap")
    pause = tmp_path / "pause"
    # Pause just before the rename (the third-to-last checkpoint of a successful apply).
    proc = _apply(target, case["patch"], {"PYZPATCH_TEST_PAUSE_AT": str(case["checkpoints"] - 2),
                                          "PYZPATCH_TEST_PAUSE_FILE": str(pause)}, wait=False)
    deadline = time.monotonic() + 60
    while not pause.exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.01)
    replacement = tmp_path / "swap" / "other"
    replacement.write_bytes(b"someone else's file\n")
    os.replace(replacement, target)  # an administrator replaced the program meanwhile
    pause.unlink()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "replaced" in err
    assert target.read_bytes() == b"someone else's file\n"
    assert _no_temporaries(target.parent)
