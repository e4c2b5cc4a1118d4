"""One-folder apply that keeps what the program added (issue 12, item 3): entries the installed
folder holds beyond the old build are carried into the new folder untouched, unless the new
build uses their paths; changed build entries refuse the patch, named."""
from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys

import pytest

from pyzpatch import selfupdate
from pyzpatch.errors import FormatError
from pyzpatch.formats.node import Node
from pyzpatch.patch import manifest
from pyzpatch.patch.folder import make_folder_patch
from pyzpatch.patch.foldernode import FolderContents, node_hash

from .conftest import REPO, run_cli, run_program


def build_state(path, ignore=()) -> bytes:
    """The folder hash of ``path`` without the entries in ``ignore`` (and what lies in them)."""
    with FolderContents(str(path)) as fc:
        node = fc.node()
        kept = [c for c in node.children if not any(c.key == i or c.key.startswith(i + "/") for i in ignore)]
        return node_hash(Node(node.kind, node.meta, kept))[1]


def leftovers(folder) -> list:
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith("." + folder.name + "."))


def builds(tmp_path):
    """An old and a new build: a changed program, a kept library folder, an added file, a
    dropped folder."""
    old, new = tmp_path / "old", tmp_path / "new"
    for root in (old, new):
        (root / "lib").mkdir(parents=True)
        (root / "lib" / "x.so").write_bytes(bytes(range(256)) * 20)
        (root / "app").write_text("program v1\n")
        (root / "app").chmod(0o755)
    (new / "app").write_text("program v2\n")
    (new / "lib" / "y.so").write_bytes(b"new library\n")
    (old / "plugins").mkdir()
    (old / "plugins" / "builtin.py").write_text("builtin\n")
    patch = tmp_path / "p.patch"
    made = run_cli("make", old, new, "-o", patch)
    assert made.returncode == 0, made.stderr
    return old, new, patch


def install(old, where):
    shutil.copytree(old, where, symlinks=True)
    return where


def add_program_files(target):
    """What a program writes beside itself: a log, an updates folder, a file inside a build
    folder, a link, and a file in a build folder the new version drops."""
    (target / "app.log").write_text("started\n")
    (target / "updates" / "cache").mkdir(parents=True)
    (target / "updates" / "cache" / "fix.patch").write_bytes(b"PZP...")
    (target / "updates").chmod(0o700)
    (target / "lib" / "user.cfg").write_text("colour = blue\n")
    (target / "lib" / "user.cfg").chmod(0o600)
    os.symlink("updates/cache", target / "current")
    (target / "plugins" / "mine.py").write_text("mine\n")


ADDED = ["app.log", "current", "lib/user.cfg", "plugins", "plugins/mine.py", "updates"]


def test_what_the_program_added_is_carried(tmp_path):
    old, new, patch = builds(tmp_path)
    target = install(old, tmp_path / "site" / "app")
    add_program_files(target)
    log_inode = os.stat(target / "app.log").st_ino
    checked = run_cli("verify", target, patch)
    assert checked.returncode == 0, checked.stderr
    assert "kept 8 entries not part of the build (app.log, current, lib/user.cfg, ...)" in checked.stdout
    applied = run_cli("apply", target, patch)
    assert applied.returncode == 0, applied.stderr
    assert "kept 8 entries" in applied.stdout and len(applied.stdout.strip().splitlines()) == 2
    # The build part is exactly the new build; what the program added is there, untouched.
    assert build_state(target, ADDED) == build_state(new)
    assert (target / "app").read_text() == "program v2\n"
    assert os.stat(target / "app.log").st_ino == log_inode  # the same file, not a copy
    assert (target / "updates" / "cache" / "fix.patch").read_bytes() == b"PZP..."
    assert stat.S_IMODE(os.stat(target / "updates").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(target / "lib" / "user.cfg").st_mode) == 0o600
    assert os.readlink(target / "current") == "updates/cache"
    # The folder the new build dropped stays only for what the program put in it.
    assert sorted(os.listdir(target / "plugins")) == ["mine.py"]
    assert leftovers(target) == []
    again = run_cli("apply", target, patch)
    assert again.returncode != 0 and "already" in again.stderr, again.stderr


def test_changed_build_entries_are_refused_and_named(tmp_path):
    old, new, patch = builds(tmp_path)
    target = install(old, tmp_path / "app")
    add_program_files(target)
    (target / "lib" / "x.so").write_bytes(b"patched by hand\n")
    (target / "app").chmod(0o700)
    os.unlink(target / "plugins" / "builtin.py")
    before = build_state(target)
    refused = run_cli("apply", target, patch)
    assert refused.returncode != 0 and len(refused.stderr.strip().splitlines()) == 1
    assert "3 of the build's entries differ: 'app' changed; 'lib/x.so' changed; " \
           "'plugins/builtin.py' missing" in refused.stderr, refused.stderr
    assert "app.log" not in refused.stderr
    assert build_state(target) == before and leftovers(target) == []


def test_at_most_ten_are_named_but_verify_names_all(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    for root in (old, new):
        root.mkdir()
        for i in range(14):
            (root / f"f{i:02d}").write_text(f"{i}\n")
    (new / "f00").write_text("new\n")
    patch = tmp_path / "p"
    assert run_cli("make", old, new, "-o", patch).returncode == 0
    for i in range(14):
        (old / f"f{i:02d}").write_text("changed\n")
    applied = run_cli("apply", old, patch)
    assert "14 of the build's entries differ" in applied.stderr
    assert "'f09' changed; and 4 more (verify names all)" in applied.stderr, applied.stderr
    verified = run_cli("verify", old, patch)
    assert verified.returncode != 0 and "'f13' changed" in verified.stderr and "more" not in verified.stderr


@pytest.mark.parametrize("taken", ["lib/y.so", "lib/y.so/inside"])
def test_a_path_the_new_build_uses_is_refused(tmp_path, taken):
    old, new, patch = builds(tmp_path)
    target = install(old, tmp_path / "app")
    (target / taken).parent.mkdir(parents=True, exist_ok=True)
    (target / taken).write_text("the program's own\n")
    refused = run_cli("apply", target, patch)
    assert refused.returncode != 0 and len(refused.stderr.strip().splitlines()) == 1
    assert "'lib/y.so', which is not part of the build" in refused.stderr, refused.stderr
    assert "move it away" in refused.stderr
    assert (target / taken).read_text() == "the program's own\n" and leftovers(target) == []


def test_a_file_or_link_where_an_added_entry_needs_a_folder_is_refused(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    for root in (old, new):
        (root / "data").mkdir(parents=True)
        (root / "real").mkdir()
    os.rmdir(new / "data")
    os.symlink("real", new / "data")  # the new build turns a folder into a link
    patch = tmp_path / "p"
    assert run_cli("make", old, new, "-o", patch).returncode == 0
    (old / "data" / "user.cfg").write_text("mine\n")
    refused = run_cli("apply", old, patch)
    assert refused.returncode != 0
    assert "'data/user.cfg', which is not part of the build" in refused.stderr, refused.stderr
    assert "uses 'data'" in refused.stderr


def test_an_added_link_that_leads_outside_is_refused(tmp_path):
    old, new, patch = builds(tmp_path)
    target = install(old, tmp_path / "app")
    os.symlink("../../etc", target / "lib" / "escape")
    refused = run_cli("apply", target, patch)
    assert refused.returncode != 0 and "outside the folder" in refused.stderr, refused.stderr
    assert "beyond the build" in refused.stderr and leftovers(target) == []


def test_a_patch_without_manifest_keeps_the_exact_rule(tmp_path):
    old, new, _ = builds(tmp_path)
    patch = tmp_path / "exact.patch"
    patch.write_bytes(make_folder_patch(old, new, manifest=False).data)
    target = install(old, tmp_path / "app")
    (target / "app.log").write_text("started\n")
    refused = run_cli("apply", target, patch)
    assert refused.returncode != 0 and "its contents, names or modes differ" in refused.stderr
    os.unlink(target / "app.log")
    assert run_cli("apply", target, patch).returncode == 0


def test_the_windows_swap_leaves_added_files_in_place(tmp_path):
    """selfupdate's file-by-file swap (a running program on Windows): what the program added is
    part of the staged folder, so it is neither moved aside as old nor touched."""
    old, new, patch = builds(tmp_path)
    target = install(old, tmp_path / "site" / "app")
    add_program_files(target)
    inodes = {rel: os.lstat(target / rel).st_ino for rel in ("app.log", "lib/user.cfg", "plugins/mine.py")}
    inst = selfupdate.find_installation(str(target / "app"), str(target / "lib"))
    selfupdate.apply_update(patch, restart=False, strategy="windows", installation=inst)
    assert build_state(target, ADDED) == build_state(new)
    assert {rel: os.lstat(target / rel).st_ino for rel in inodes} == inodes
    trash = tmp_path / "site" / ".app.pyzpatch-old"
    moved = sorted(str(p.relative_to(trash)) for p in trash.rglob("*"))
    assert moved == ["app", "plugins", "plugins/builtin.py"], moved
    selfupdate.cleanup_previous_update(inst, restart_if_finished=False)
    assert sorted(os.listdir(tmp_path / "site")) == ["app"]
    with pytest.raises(selfupdate.AlreadyUpToDate):
        selfupdate.apply_update(patch, restart=False, strategy="windows", installation=inst)


@pytest.mark.slow  # seconds of kills and re-runs: the whole suite runs it, the fast tier need not
def test_killed_near_the_swap_the_added_files_survive(tmp_path):
    old, new, patch = builds(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "pyzpatch", "apply"]
    counting = install(old, tmp_path / "count" / "app")
    add_program_files(counting)
    counter = tmp_path / "n"
    subprocess.run(cmd + [str(counting), str(patch)], env=dict(env, PYZPATCH_TEST_COUNT_TO=str(counter)),
                   check=True, capture_output=True)
    total = int(counter.read_text())
    for point in range(max(1, total - 6), total + 1):
        target = install(old, tmp_path / f"k{point}" / "app")
        add_program_files(target)
        proc = subprocess.run(cmd + [str(target), str(patch)], env=dict(env, PYZPATCH_TEST_KILL_AT=str(point)),
                              capture_output=True)
        assert proc.returncode == -signal.SIGKILL
        rerun = run_cli("apply", target, patch)
        assert rerun.returncode == 0 or "already" in rerun.stderr, rerun.stderr
        assert build_state(target, ADDED) == build_state(new), point
        assert (target / "app.log").read_text() == "started\n" and (target / "plugins" / "mine.py").exists()
        assert leftovers(target) == [], point


# -- the manifest's encoding ----------------------------------------------------------------


def test_manifest_round_trips_and_refuses_malformed():
    m = manifest.Manifest(0o755, ["a", "b/c", "b\udcff"], [b"\x01\x02", b"\x03\x04", b"\x05\x06"],
                          removed=[0, 2], added=["d", "e"])
    data = manifest.encode(m)
    assert manifest.decode(data, 1 << 20) == m
    assert m.new_paths() == ["b/c", "d", "e"]
    bad_order = manifest.encode(manifest.Manifest(0o755, ["b", "a"], [b"..", b".."]))
    for blob, problem in [(data + b"x", "stray"), (data[:-1], ""), (bad_order, "out of order"),
                          (manifest.encode(manifest.Manifest(0o755, ["a"], [b".."], added=["a"])), "already"),
                          (data, "more than")]:
        with pytest.raises(FormatError, match=problem or None):
            manifest.decode(blob, 1 << 20 if problem != "more than" else 1000)


# -- a real one-folder build (issue 12: what must hold) ---------------------------------------


def test_a_real_build_keeps_its_log_and_updates_folder(hello_onedir, hello_v2_onedir, tmp_path):
    patch = tmp_path / "fix.patch"
    assert run_cli("make", hello_onedir, hello_v2_onedir, "-o", patch).returncode == 0
    target = tmp_path / "site" / "hello"
    shutil.copytree(hello_onedir, target, symlinks=True, copy_function=os.link)  # the cache stays intact
    (target / "app.log").write_text("hello started\n")
    (target / "updates").mkdir()
    (target / "updates" / "fix.patch").write_bytes(patch.read_bytes())
    applied = run_cli("apply", target, patch)
    assert applied.returncode == 0, applied.stderr
    assert "kept 3 entries not part of the build (app.log, updates)" in applied.stdout
    assert run_program(target / "hello").strip() == "hello from mod1 v2"
    assert build_state(target, ["app.log", "updates"]) == build_state(hello_v2_onedir)
    assert (target / "app.log").read_text() == "hello started\n"
    assert (target / "updates" / "fix.patch").read_bytes() == patch.read_bytes()

    # A build whose own file was changed is refused, naming that file.
    changed = tmp_path / "changed" / "hello"
    shutil.copytree(hello_onedir, changed, symlinks=True, copy_function=os.link)
    (changed / "app.log").write_text("hello started\n")
    lib = changed / "_internal" / "libz.so.1"
    data = lib.read_bytes()
    os.unlink(lib)  # a new file, never written through the cache's hard link
    lib.write_bytes(data + b"\0")
    refused = run_cli("apply", changed, patch)
    assert refused.returncode != 0
    assert "1 of the build's entries differs: '_internal/libz.so.1' changed" in refused.stderr, refused.stderr
