"""Self-update: a real frozen program (fixtures/apps/selfapp, bundling this tree's pyzpatch)
applies a patch to itself, restarts as the new version in the same invocation, and refuses
patches it must not take while carrying on as the old version."""
from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading

import pytest

from pyzpatch import selfupdate
from pyzpatch.patch.foldernode import FolderContents, node_hash

from .conftest import HELLO_APP, REPO, SELFAPP_APP, SELFAPP_V2, build, run_cli, sha256_file, variant


def state(path) -> str:
    """SHA-256 of a file, or the folder hash of a folder (names, modes, links and contents)."""
    if os.path.isdir(path):
        with FolderContents(str(path)) as fc:
            return node_hash(fc.node())[1].hex()
    return sha256_file(path)


class Site:
    """A device's view: the installed program at ``site/selfapp`` and ``site/updates``."""

    def __init__(self, tmp_path, builds, mode):
        self.mode = mode
        self.root = tmp_path / "site"
        self.root.mkdir()
        self.updates = self.root / "updates"
        self.updates.mkdir()
        self.v1, self.v2 = builds[(mode, 1)], builds[(mode, 2)]
        self.target = self.root / "selfapp"
        if mode == "onedir":
            shutil.copytree(self.v1, self.target, symlinks=True)
            self.exe = self.target / "selfapp"
        else:
            shutil.copy2(self.v1, self.target)
            self.exe = self.target
        self.patch = self.updates / "fix.patch"

    def make_patch(self, old=None, new=None, *extra):
        result = run_cli("make", old or self.v1, new or self.v2, "-o", self.patch, *extra)
        assert result.returncode == 0, result.stderr
        return self.patch

    def run(self, *args, env=None, cwd=None):
        full_env = dict(os.environ, **(env or {}))
        for name in ("SELFAPP_UPDATES", "SELFAPP_UPDATE_URL", "SELFAPP_TRUST", "SELFAPP_STRATEGY"):
            if env is None or name not in env:
                full_env.pop(name, None)
        proc = subprocess.run([str(self.exe), *args], capture_output=True, text=True, timeout=180,
                              env=full_env, cwd=cwd or self.root)
        return proc

    def leftovers(self):
        """Everything beside the program and in the updates folder, but the program itself (and
        a key put beside it)."""
        beside = sorted(set(os.listdir(self.root)) - {"selfapp", "updates", "release.pub"})
        return beside + sorted(os.listdir(self.updates))


def assert_updated(site, proc, args):
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    # One invocation: v1 starts, applies the patch, and v2 runs with the same arguments.
    assert f"selfapp version 1 args={args!r}" in out
    assert "update: applying fix.patch" in out
    assert f"selfapp version 2 args={args!r}" in out
    assert "working as version 2" in out and "working as version 1" not in out
    assert out.index("selfapp version 1") < out.index("selfapp version 2")
    assert state(site.target) == state(site.v2)
    again = site.run("plain")
    assert again.returncode == 0 and again.stdout.splitlines() == ["selfapp version 2 args=['plain']",
                                                                   "working as version 2"]
    assert site.leftovers() == []


def assert_refused(site, proc, why):
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "update: refused, still version 1" in proc.stdout, proc.stdout
    assert why in proc.stdout, proc.stdout
    assert "working as version 1" in proc.stdout and "version 2" not in proc.stdout
    assert state(site.target) == state(site.v1)
    assert site.leftovers() == ["fix.patch.rejected"]


@pytest.mark.parametrize("mode", ["onefile", "onedir"])
def test_updates_itself_and_restarts_as_the_new_version(selfapp_builds, tmp_path, mode):
    site = Site(tmp_path, selfapp_builds, mode)
    site.make_patch()
    args = ["--flag", "two words", "ünïcode"]
    # One-folder: run from inside the folder being replaced; the restart finds its way back.
    cwd = site.target if mode == "onedir" else None
    assert_updated(site, site.run(*args, cwd=cwd), args)


@pytest.mark.parametrize("mode", ["onefile", "onedir"])
def test_pyinstaller5_build_updates_itself(pyi5_python, tmp_path, mode):
    """PyInstaller 5.13 marks a child with _MEIPASS2 and puts a one-folder build's files beside
    the executable (no _internal/): both handled."""
    builds = {(mode, 1): build(SELFAPP_APP, mode, name="selfapp", python=pyi5_python),
              (mode, 2): build(variant(SELFAPP_APP, SELFAPP_V2), mode, name="selfapp", python=pyi5_python)}
    site = Site(tmp_path, builds, mode)
    site.make_patch()
    assert_updated(site, site.run("five"), ["five"])


@pytest.mark.parametrize("mode", ["onefile", "onedir"])
def test_windows_strategy_moves_the_running_program_aside(selfapp_builds, tmp_path, mode):
    """The Windows code path, run here: the running files are never written or replaced in
    place, only renamed aside; the restart starts the new program and waits for it; the
    restarted program removes what was moved aside."""
    site = Site(tmp_path, selfapp_builds, mode)
    site.make_patch()
    running_inode = os.stat(site.exe).st_ino
    proc = site.run("x", env={"SELFAPP_STRATEGY": "windows"})
    assert "update: removed the old" in proc.stdout, proc.stdout
    assert_updated(site, proc, ["x"])
    assert os.stat(site.exe).st_ino != running_inode


@pytest.mark.parametrize("mode", ["onefile", "onedir"])
def test_windows_strategy_leaves_in_use_files_for_the_next_start(selfapp_builds, tmp_path, mode):
    """Where the old files cannot be removed yet (Windows, while the old process lives), the
    next start removes them."""
    site = Site(tmp_path, selfapp_builds, mode)
    patch = os.replace(site.make_patch(), tmp_path / "fix.patch") or tmp_path / "fix.patch"
    inst = selfupdate.find_installation(str(site.exe), str(tmp_path / "_MEIxyz") if mode == "onefile"
                                        else str(site.target / "_internal"))
    selfupdate._apply(inst, str(patch), None, dry_run=False, strategy=selfupdate.WINDOWS)
    assert state(site.target) == state(site.v2)
    aside = sorted(set(os.listdir(site.root)) - {"selfapp", "updates"})
    assert aside == ([".selfapp.pyzpatch-old"] if mode == "onedir" else ["selfapp.pyzpatch-old"])
    proc = site.run("next")
    assert "update: removed the old" in proc.stdout and "working as version 2" in proc.stdout
    assert site.leftovers() == []


def test_signed_patch_is_accepted_with_a_trusted_key(selfapp_builds, tmp_path):
    site = Site(tmp_path, selfapp_builds, "onefile")
    keys = tmp_path / "keys"
    keys.mkdir()
    assert run_cli("keygen", keys / "release.key").returncode == 0
    site.make_patch(None, None, "--sign", keys / "release.key")
    proc = site.run("s", env={"SELFAPP_TRUST": str(keys / "release.key.pub")})
    assert_updated(site, proc, ["s"])


@pytest.mark.parametrize("mode", ["onefile", "onedir"])
def test_unsigned_or_foreign_signed_patch_is_refused_when_keys_are_required(selfapp_builds, tmp_path, mode):
    site = Site(tmp_path, selfapp_builds, mode)
    keys = tmp_path / "keys"
    keys.mkdir()
    assert run_cli("keygen", keys / "release.key").returncode == 0
    assert run_cli("keygen", keys / "other.key").returncode == 0
    trust = {"SELFAPP_TRUST": str(keys / "release.key.pub")}
    site.make_patch()
    assert_refused(site, site.run(env=trust), "not signed")
    os.unlink(site.updates / "fix.patch.rejected")
    site.make_patch(None, None, "--sign", keys / "other.key")
    assert_refused(site, site.run(env=trust), "not among the trusted keys")


@pytest.mark.parametrize("mode", ["onefile", "onedir"])
def test_corrupt_patch_is_refused(selfapp_builds, tmp_path, mode):
    site = Site(tmp_path, selfapp_builds, mode)
    data = bytearray(site.make_patch().read_bytes())
    data[len(data) // 2] ^= 0x40
    site.patch.write_bytes(bytes(data))
    assert_refused(site, site.run(), "checksum")


@pytest.mark.parametrize("mode", ["onefile", "onedir"])
def test_patch_for_another_base_is_refused(selfapp_builds, tmp_path, mode):
    site = Site(tmp_path, selfapp_builds, mode)
    hello2 = variant(HELLO_APP, {"mod1.py": ("hello from mod1 v1", "hello from mod1 v2")})
    site.make_patch(build(HELLO_APP, mode, name="hello"), build(hello2, mode, name="hello"))
    assert_refused(site, site.run(), "not the f")


def test_patch_of_the_wrong_kind_is_refused(selfapp_builds, tmp_path):
    site = Site(tmp_path, selfapp_builds, "onefile")
    site.make_patch(selfapp_builds[("onedir", 1)], selfapp_builds[("onedir", 2)])
    assert_refused(site, site.run(), "is a patch for a folder, but this program is a one-file build")


def test_update_fetched_from_a_url(selfapp_builds, tmp_path):
    site = Site(tmp_path, selfapp_builds, "onefile")
    served = tmp_path / "served"
    served.mkdir()
    site.make_patch()
    os.replace(site.patch, served / "fix.patch")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/fix.patch"
        proc = site.run("u", env={"SELFAPP_UPDATE_URL": url})
        # The restarted program fetches the same patch again and finds itself up to date.
        assert "update: already version 2" in proc.stdout
        assert_updated(site, proc, ["u"])
        # Nothing published any more: the program says so and runs on.
        os.unlink(served / "fix.patch")
        proc = site.run(env={"SELFAPP_UPDATE_URL": url})
        assert "nothing fetched" in proc.stdout and "working as version 2" in proc.stdout
    finally:
        server.shutdown()
        server.server_close()


# --- the worked example as a user runs it (docs/selfupdate.md, README) ------------------------

def keygen(tmp_path):
    """A release key pair made as the docs make it: (private key, public key)."""
    keys = tmp_path / "keys"
    keys.mkdir(exist_ok=True)
    assert run_cli("keygen", keys / "release").returncode == 0
    return keys / "release", keys / "release.pub"


@pytest.mark.parametrize("mode", ["onefile", "onedir"])
def test_worked_example_runs_from_any_working_directory(selfapp_builds, tmp_path, mode):
    """Started from elsewhere with a relative key path: the key and the updates folder are
    found beside the program, not in the working directory."""
    site = Site(tmp_path, selfapp_builds, mode)
    private, public = keygen(tmp_path)
    shutil.copy(public, site.root / "release.pub")
    site.make_patch(None, None, "--sign", private)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = site.run("from", "elsewhere", env={"SELFAPP_TRUST": "release.pub"}, cwd=elsewhere)
    assert "refused" not in proc.stdout, proc.stdout
    assert_updated(site, proc, ["from", "elsewhere"])
    assert os.listdir(elsewhere) == []


@pytest.mark.parametrize("mode", ["onefile", "onedir"])
def test_worked_example_with_the_update_already_applied(selfapp_builds, tmp_path, mode):
    """The same patch found again once it has been applied: not an error, no refusal, and the
    program runs on as the new version."""
    site = Site(tmp_path, selfapp_builds, mode)
    site.make_patch()
    assert_updated(site, site.run("first"), ["first"])
    site.make_patch()  # dropped again
    proc = site.run("again", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == ["selfapp version 2 args=['again']", "update: applying fix.patch",
                                        "update: already version 2", "working as version 2"]
    assert state(site.target) == state(site.v2)
    assert site.leftovers() == []


@pytest.mark.parametrize("mode", ["onefile", "onedir"])
def test_worked_example_with_keys_missing_refuses_and_carries_on(selfapp_builds, tmp_path, mode):
    """SELFAPP_TRUST names a key that is not beside the program (one of that name in the working
    directory is not used), then one that is a folder: each a refusal, one line, and v1 runs on."""
    site = Site(tmp_path, selfapp_builds, mode)
    private, public = keygen(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(public, elsewhere / "release.pub")  # in the working directory only
    site.make_patch(None, None, "--sign", private)
    trust = {"SELFAPP_TRUST": "release.pub"}
    proc = site.run(env=trust, cwd=elsewhere)
    assert_refused(site, proc, f"{site.root / 'release.pub'}: cannot use this trusted key: No such file")
    assert "Traceback" not in proc.stderr
    os.unlink(site.updates / "fix.patch.rejected")
    (site.root / "release.pub").mkdir()  # unreadable as a key
    site.make_patch(None, None, "--sign", private)
    proc = site.run(env=trust, cwd=elsewhere)
    assert_refused(site, proc, f"{site.root / 'release.pub'}: cannot use this trusted key: ")
    assert "Traceback" not in proc.stderr


def documented_snippet(path, heading):
    """The first ```python block after ``heading`` in a document."""
    text = (REPO / path).read_text()
    after = text[text.index(heading):]
    start = after.index("```python\n") + len("```python\n")
    return after[start:after.index("```", start)]


def test_readme_snippet_runs_without_surprises_outside_a_frozen_program(tmp_path):
    """The README's snippet, run as it is by plain Python from another folder: the refusal
    (not frozen) is caught by its own except clause, one line, no traceback."""
    snippet = documented_snippet("README.md", "## A program that updates itself")
    assert 'trusted_keys=["release.pub"]' in snippet and "except selfupdate.AlreadyUpToDate:" in snippet
    proc = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, cwd=tmp_path,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.splitlines() == ["update refused, still the old version: "
                                        f"{sys.executable}: this program is not frozen by PyInstaller: "
                                        "nothing to update itself"]
    assert os.listdir(tmp_path) == []


def test_docs_core_is_the_example_apps_code():
    """docs/selfupdate.md's core of the example uses the same calls and except clauses, in the same
    order, as fixtures/apps/selfapp/prog.py, which the tests run."""
    core = documented_snippet("docs/selfupdate.md", "## The example")
    prog = (SELFAPP_APP / "prog.py").read_text()
    calls = ["selfupdate.cleanup_previous_update()", "selfupdate.apply_update(patch, trusted_keys=",
             "except selfupdate.AlreadyUpToDate:", "except selfupdate.SelfUpdateError as exc:", "if exc.installed:"]
    assert [core.index(c) for c in calls] == sorted(core.index(c) for c in calls)
    assert [prog.index(c) for c in calls] == sorted(prog.index(c) for c in calls)


# --- the library side, without a frozen program ---------------------------------------------

def small_pair(tmp_path):
    """Two small files that make a one-file patch (the fuzzers' base pair): (old, new, patch)."""
    from fuzz import base
    from pyzpatch import make_patch

    (tmp_path / "pair").mkdir()
    old, new = tmp_path / "pair" / "old", tmp_path / "pair" / "new"
    old.write_bytes(base.OLD)
    new.write_bytes(base.NEW)
    patch = tmp_path / "pair" / "fix.patch"
    patch.write_bytes(make_patch(old, new).data)
    return old, new, patch


def test_relative_patch_and_key_paths_are_taken_from_the_installation(tmp_path):
    """A program in site/ checks updates/fix.patch with trusted key release.pub, from another
    working directory that holds files of the same names (which are not used)."""
    old, new, _ = small_pair(tmp_path)
    private, public = keygen(tmp_path)
    site = tmp_path / "site"
    (site / "updates").mkdir(parents=True)
    shutil.copy2(old, site / "prog")
    shutil.copy(public, site / "release.pub")
    assert run_cli("make", old, new, "-o", site / "updates" / "fix.patch", "--sign", private).returncode == 0
    decoy = tmp_path / "cwd"
    (decoy / "updates").mkdir(parents=True)
    (decoy / "updates" / "fix.patch").write_bytes(b"not a patch")
    (decoy / "release.pub").write_bytes(b"not a key")
    code = f"""
import os
from pyzpatch import selfupdate
inst = selfupdate.find_installation({str(site / 'prog')!r}, '/tmp/_MEIrel')
assert inst.home == {str(site)!r} and inst.path("updates/fix.patch") == {str(site / 'updates' / 'fix.patch')!r}
selfupdate.check_update("updates/fix.patch", trusted_keys=["release.pub"], installation=inst)
selfupdate.apply_update("updates/fix.patch", trusted_keys=["release.pub"], restart=False, installation=inst)
try:
    selfupdate.apply_update("updates/fix.patch", trusted_keys=["release.pub"], restart=False, installation=inst)
except selfupdate.AlreadyUpToDate as exc:
    print("already:", exc)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=decoy,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("already: ") and "Traceback" not in proc.stderr
    assert sha256_file(site / "prog") == sha256_file(new)


def test_every_refusal_is_a_selfupdate_error(tmp_path):
    """Keys missing, unreadable, malformed or of the wrong type, a missing patch, a folder given
    as the patch: each a SelfUpdateError naming what is wrong, nothing changed."""
    old, _, patch = small_pair(tmp_path)
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy2(old, site / "prog")
    (site / "garbage.pub").write_bytes(b"-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n")
    (site / "folder.pub").mkdir()
    inst = selfupdate.Installation("onefile", str(site / "prog"), str(site / "prog"))
    before = sha256_file(site / "prog")
    cases = [
        (dict(trusted_keys=["missing.pub"]), f"{site / 'missing.pub'}: cannot use this trusted key: No such file"),
        (dict(trusted_keys=["folder.pub"]), f"{site / 'folder.pub'}: cannot use this trusted key: "),
        (dict(trusted_keys=["garbage.pub"]), f"{site / 'garbage.pub'}: cannot use this trusted key: not an Ed25519"),
        (dict(trusted_keys=[b"junk"]), "trusted key 1 (PEM bytes): cannot use this trusted key"),
        (dict(trusted_keys=[42]), "trusted key 1 (int): cannot use this trusted key"),
        (dict(trusted_keys="release.pub"), "trusted_keys must be a list"),
        (dict(trusted_keys=[]), "trusted_keys is empty"),
    ]
    for kwargs, message in cases:
        for call in (selfupdate.check_update, functools.partial(selfupdate.apply_update, restart=False)):
            with pytest.raises(selfupdate.SelfUpdateError) as info:
                call(patch, installation=inst, **kwargs)
            assert message in str(info.value) and "\n" not in str(info.value), str(info.value)
            assert not info.value.installed
    for bad_patch, name in (("updates/none.patch", str(site / "updates" / "none.patch")), (tmp_path, str(tmp_path))):
        with pytest.raises(selfupdate.SelfUpdateError) as info:
            selfupdate.apply_update(bad_patch, restart=False, installation=inst)
        assert str(info.value).startswith(name + ": ") and not info.value.installed, str(info.value)
    assert sha256_file(site / "prog") == before and sorted(os.listdir(site)) == ["folder.pub", "garbage.pub",
                                                                                "prog"]


def test_a_recursion_error_is_a_selfupdate_error_and_the_next_start_recovers(tmp_path):
    """Issue 11, finding 6: a RecursionError (here from removing a 200-deep old folder after the
    swap, under a low recursion limit) comes out as a SelfUpdateError that says the new version
    is in place; the next start's clean-up removes what was left, and the update is then done."""
    from pyzpatch import make_folder_patch

    for version in ("a", "b"):
        deep = tmp_path / version / "app" / os.path.join(*["d"] * 200)
        deep.mkdir(parents=True)
        (deep / "f").write_text(version * 100)
        (tmp_path / version / "app" / "app").write_text("#!/bin/sh\n")
    patch = tmp_path / "fix.patch"
    patch.write_bytes(make_folder_patch(tmp_path / "a" / "app", tmp_path / "b" / "app").data)
    site = tmp_path / "site"
    shutil.copytree(tmp_path / "a", site, symlinks=True)
    setup = f"""
import sys
from pyzpatch import selfupdate
inst = selfupdate.Installation("onedir", {str(site / 'app' / 'app')!r}, {str(site / 'app')!r})
"""
    low = setup + f"""
selfupdate.prepare()
sys.setrecursionlimit(200)
try:
    selfupdate.apply_update({str(patch)!r}, restart=False, installation=inst)
except selfupdate.SelfUpdateError as exc:
    print("refused:", exc, "installed" if exc.installed else "not installed")
"""
    proc = subprocess.run([sys.executable, "-c", low], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "refused:" in proc.stdout and "RecursionError" in proc.stdout, proc.stdout
    assert proc.stdout.rstrip().endswith(" installed")
    assert state(site / "app") == state(tmp_path / "b" / "app")
    after = setup + f"""
print(selfupdate.cleanup_previous_update(inst))
try:
    selfupdate.apply_update({str(patch)!r}, restart=False, installation=inst)
except selfupdate.AlreadyUpToDate:
    print("already up to date")
"""
    proc = subprocess.run([sys.executable, "-c", after], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "already up to date", proc.stdout
    assert os.listdir(site) == ["app"]


def test_restart_executes_only_a_regular_file_inside_the_installation(tmp_path):
    """Issue 11, finding 1: a new version whose program is a link is not started, even when the
    link's target is a program in the folder: SelfUpdateError, installed=True, nothing executed."""
    for version in (1, 2):
        root = tmp_path / f"v{version}" / "app"
        root.mkdir(parents=True)
        (root / "real").write_text(f"#!/bin/sh\necho executed version {version}\n")
        (root / "real").chmod(0o755)
        if version == 1:
            shutil.copy2(root / "real", root / "app")
        else:
            os.symlink("real", root / "app")
    site = tmp_path / "site" / "app"
    shutil.copytree(tmp_path / "v1" / "app", site, symlinks=True)
    patch = tmp_path / "fix.patch"
    assert run_cli("make", tmp_path / "v1" / "app", tmp_path / "v2" / "app", "-o", patch).returncode == 0
    code = f"""
from pyzpatch import selfupdate
inst = selfupdate.Installation("onedir", {str(site / 'app')!r}, {str(site)!r})
try:
    selfupdate.apply_update({str(patch)!r}, argv=["app"], installation=inst)
except selfupdate.SelfUpdateError as exc:
    print("refused:", exc, "installed" if exc.installed else "not installed")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0, proc.stderr
    assert "executed" not in proc.stdout
    assert proc.stdout.startswith(f"refused: {site / 'app'}: the new version's program is a link"), proc.stdout
    assert proc.stdout.rstrip().endswith(" installed")
    assert os.path.islink(site / "app")


def test_find_installation(tmp_path):
    exe = tmp_path / "dist" / "prog" / "prog"
    exe.parent.mkdir(parents=True)
    exe.write_bytes(b"\x7fELF")
    onedir = selfupdate.find_installation(str(exe), str(exe.parent / "_internal"))
    assert (onedir.kind, onedir.target) == ("onedir", str(exe.parent))
    onedir5 = selfupdate.find_installation(str(exe), str(exe.parent))  # PyInstaller 5 layout
    assert onedir5.kind == "onedir"
    onefile = selfupdate.find_installation(str(exe), "/tmp/_MEI123456")
    assert (onefile.kind, onefile.target) == ("onefile", str(exe))
    with pytest.raises(selfupdate.SelfUpdateError, match="not frozen"):
        selfupdate.find_installation()


def test_sideloaded_and_app_bundles_are_refused(hello_sideload, tmp_path):
    with pytest.raises(selfupdate.SelfUpdateError, match="side-loaded"):
        selfupdate.find_installation(str(hello_sideload), "/tmp/_MEI1")
    app = tmp_path / "Prog.app" / "Contents"
    (app / "MacOS").mkdir(parents=True)
    (app / "MacOS" / "prog").write_bytes(b"x")
    with pytest.raises(selfupdate.SelfUpdateError, match="app bundles"):
        selfupdate.find_installation(str(app / "MacOS" / "prog"), str(app / "Frameworks"))


def test_restart_environment_drops_the_bootloaders_marks():
    env = selfupdate.restart_environment({
        "_PYI_ARCHIVE_FILE": "/a/prog", "_PYI_PARENT_PROCESS_LEVEL": "1", "_MEIPASS2": "/tmp/_MEI1",
        "LD_LIBRARY_PATH": "/tmp/_MEI1:/usr/local/lib", "LD_LIBRARY_PATH_ORIG": "/usr/local/lib",
        "HOME": "/root"})
    assert env == {"LD_LIBRARY_PATH": "/usr/local/lib", "HOME": "/root", "PYINSTALLER_RESET_ENVIRONMENT": "1"}


def test_no_import_after_the_swap_is_allowed():
    guard = selfupdate._NoImportsNow()
    sys.meta_path.insert(0, guard)
    try:
        with pytest.raises(ImportError, match="imported after the new version"):
            import pyzpatch_no_such_module  # noqa: F401
    finally:
        sys.meta_path.remove(guard)


def test_prepare_imports_what_apply_needs():
    code = ("import sys; from pyzpatch import selfupdate; selfupdate.prepare(True); "
            "print(sorted(m for m in ('bsdiff4', 'cryptography', 'pyzpatch.patch.folder', 'pyzpatch.install.moveaside') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.stdout.strip() == "['bsdiff4', 'cryptography', 'pyzpatch.install.moveaside', 'pyzpatch.patch.folder']", \
        out.stderr


def test_prepare_imports_every_module_an_update_uses(tmp_path):
    """After prepare(), applying a file patch and a folder patch imports nothing that was not
    loaded already: after a real swap such an import would read the new program's files."""
    from fuzz import base
    from pyzpatch import make_folder_patch, make_patch

    (tmp_path / "old").write_bytes(base.OLD)
    (tmp_path / "new").write_bytes(base.NEW)
    (tmp_path / "file.patch").write_bytes(make_patch(tmp_path / "old", tmp_path / "new").data)
    for name, data in (("a", base.OLD), ("b", base.NEW)):
        (tmp_path / name / "sub").mkdir(parents=True)
        (tmp_path / name / "sub" / "prog").write_bytes(data)
    (tmp_path / "folder.patch").write_bytes(make_folder_patch(tmp_path / "a", tmp_path / "b").data)
    code = f"""
import sys
from pyzpatch import selfupdate
selfupdate.prepare()
before = set(sys.modules)
from pyzpatch import apply_folder_patch, apply_patch
apply_patch({str(tmp_path / "old")!r}, {str(tmp_path / "file.patch")!r})
apply_folder_patch({str(tmp_path / "a")!r}, {str(tmp_path / "folder.patch")!r})
print(sorted(set(sys.modules) - before))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout
    assert (tmp_path / "old").read_bytes() == base.NEW


def test_selfupdate_imports_without_typer_or_pyinstaller():
    code = ("import sys; from pyzpatch import selfupdate; "
            "print([m for m in ('typer', 'PyInstaller', 'cryptography', 'rich') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.parametrize("mode", ["onefile", "onedir"])
def test_check_update_checks_everything_and_writes_nothing(hello_onefile, hello_v2_onefile, hello_onedir,
                                                           hello_v2_onedir, tmp_path, mode):
    old, new = (hello_onefile, hello_v2_onefile) if mode == "onefile" else (hello_onedir, hello_v2_onedir)
    site = tmp_path / "site"
    site.mkdir()
    if mode == "onefile":
        shutil.copy2(old, site / "hello")
        inst = selfupdate.find_installation(str(site / "hello"), "/tmp/_MEIcheck")
    else:
        shutil.copytree(old, site / "hello", symlinks=True)
        inst = selfupdate.find_installation(str(site / "hello" / "hello"), str(site / "hello" / "_internal"))
    patch = tmp_path / "fix.patch"
    assert run_cli("make", old, new, "-o", patch).returncode == 0
    before = state(inst.target)
    assert selfupdate.check_update(patch, installation=inst) == inst
    assert state(inst.target) == before and os.listdir(site) == ["hello"]
    with pytest.raises(selfupdate.SelfUpdateError, match="not signed"):
        keys = tmp_path / "k"
        assert run_cli("keygen", keys).returncode == 0
        selfupdate.check_update(patch, trusted_keys=[str(keys) + ".pub"], installation=inst)
    with pytest.raises(selfupdate.SelfUpdateError, match="empty"):
        selfupdate.check_update(patch, trusted_keys=[], installation=inst)
    reverse = tmp_path / "reverse.patch"
    assert run_cli("make", new, old, "-o", reverse).returncode == 0
    with pytest.raises(selfupdate.SelfUpdateError) as info:
        selfupdate.check_update(reverse, installation=inst)
    assert not info.value.installed and state(inst.target) == before


def test_an_interrupted_windows_swap_is_finished_by_the_next_start(selfapp_builds, tmp_path):
    """A one-folder update under the Windows strategy, killed half-way through moving files in:
    the next start of the program (a mix of old and new files) finishes the swap, restarts, and
    runs as v2."""
    import signal

    from .test_moveaside import _run_apply
    site = Site(tmp_path, selfapp_builds, "onedir")
    patch = os.replace(site.make_patch(), tmp_path / "fix.patch") or tmp_path / "fix.patch"
    probe = tmp_path / "probe"
    shutil.copytree(site.target, probe / "selfapp", symlinks=True)
    counter = tmp_path / "count"
    proc = _run_apply(probe / "selfapp" / "selfapp", probe / "selfapp" / "_internal", patch,
                      {"PYZPATCH_TEST_COUNT_TO": str(counter)})
    assert proc.returncode == 0, proc.stderr
    total = int(counter.read_text())
    journal = site.root / ".selfapp.pyzpatch-journal"
    for point in range(total - 2, 0, -1):  # the latest kill that leaves the swap half done
        shutil.rmtree(site.target)
        shutil.copytree(site.v1, site.target, symlinks=True)
        for leftover in set(os.listdir(site.root)) - {"selfapp", "updates"}:
            shutil.rmtree(site.root / leftover, ignore_errors=True)
        killed = _run_apply(site.exe, site.target / "_internal", patch, {"PYZPATCH_TEST_KILL_AT": str(point)})
        assert killed.returncode == -signal.SIGKILL
        if journal.exists() and state(site.target) not in (state(site.v1), state(site.v2)):
            break
    else:
        pytest.fail("no kill point left the folder half swapped")
    proc = site.run("after-crash")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "finished moving in the new version" in proc.stderr and "restarting" in proc.stderr
    assert proc.stdout.splitlines()[-2:] == ["selfapp version 2 args=['after-crash']", "working as version 2"]
    assert state(site.target) == state(site.v2)
    assert site.leftovers() == []


def test_key_objects_from_cryptography_are_accepted_by_apply_update(hello_onefile, hello_v2_onefile, tmp_path):
    """A fresh process passing a cryptography key object: turned into raw bytes before the
    import guard goes up (reading it later would need an import the guard refuses)."""
    assert run_cli("keygen", tmp_path / "k").returncode == 0
    patch = tmp_path / "fix.patch"
    assert run_cli("make", hello_onefile, hello_v2_onefile, "-o", patch, "--sign", tmp_path / "k").returncode == 0
    shutil.copy2(hello_onefile, tmp_path / "hello")
    code = f"""
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pyzpatch import selfupdate
from pyzpatch.patchfile import ed25519
raw = ed25519.public_key_from_pem(open({str(tmp_path / 'k.pub')!r}, 'rb').read())
key = Ed25519PublicKey.from_public_bytes(raw)
inst = selfupdate.find_installation({str(tmp_path / 'hello')!r}, '/tmp/_MEIkey')
selfupdate.apply_update({str(patch)!r}, trusted_keys=[key], restart=False, installation=inst)
print('updated')
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.stdout.strip() == "updated", proc.stderr
    assert sha256_file(tmp_path / "hello") == sha256_file(hello_v2_onefile)


def test_restart_after_apply_without_restart_finds_the_new_folder(tmp_path):
    """apply_update(restart=False) from inside the folder it replaces, then restart(): the new
    program starts in the same place inside the new folder (the old one is gone)."""
    versions = []
    for v in (1, 2):
        root = tmp_path / f"v{v}" / "app"
        (root / "sub").mkdir(parents=True)
        (root / "app").write_text(f"#!/bin/sh\necho version {v} in \"$(pwd)\"\n")
        (root / "app").chmod(0o755)
        versions.append(root)
    site = tmp_path / "site" / "app"
    shutil.copytree(versions[0], site, symlinks=True)
    patch = tmp_path / "fix.patch"
    assert run_cli("make", versions[0], versions[1], "-o", patch).returncode == 0
    code = f"""
import os
from pyzpatch import selfupdate
os.chdir({str(site / 'sub')!r})
inst = selfupdate.Installation("onedir", {str(site / 'app')!r}, {str(site)!r})
selfupdate.apply_update({str(patch)!r}, restart=False, installation=inst)
selfupdate.restart(["app"], installation=inst)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"version 2 in {site / 'sub'}"


def test_one_file_program_extracting_beside_itself_is_still_one_file(hello_onefile):
    """--runtime-tmpdir can put the extraction folder inside the executable's own folder."""
    inst = selfupdate.find_installation(str(hello_onefile), str(hello_onefile.parent / "_MEIabc123"))
    assert (inst.kind, inst.target) == ("onefile", str(hello_onefile))


def test_two_instances_never_update_at_once(hello_onefile, hello_v2_onefile, tmp_path):
    """While one instance holds the update lock, another's update is refused and its start-up
    clean-up leaves everything alone (the lock is a POSIX flock on the program's folder)."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy2(hello_onefile, site / "hello")
    (site / "hello.pyzpatch-new").write_bytes(b"being prepared by the other instance")
    patch = tmp_path / "fix.patch"
    assert run_cli("make", hello_onefile, hello_v2_onefile, "-o", patch).returncode == 0
    inst = selfupdate.find_installation(str(site / "hello"), "/tmp/_MEIlock")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(site)!r}, os.O_RDONLY)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert selfupdate.cleanup_previous_update(inst) == []
        assert (site / "hello.pyzpatch-new").exists()
        with pytest.raises(selfupdate.SelfUpdateError, match="another update") as info:
            selfupdate.apply_update(patch, restart=False, installation=inst)
        assert not info.value.installed and sha256_file(site / "hello") == sha256_file(hello_onefile)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert selfupdate.cleanup_previous_update(inst)
    selfupdate.apply_update(patch, restart=False, installation=inst)
    assert sha256_file(site / "hello") == sha256_file(hello_v2_onefile)
    assert sorted(os.listdir(site)) == ["hello"]
