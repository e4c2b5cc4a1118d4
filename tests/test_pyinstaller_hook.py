"""pyzpatch's PyInstaller hook (pyzpatch/_pyinstaller/): found by PyInstaller through the
``pyinstaller40`` entry point, and what it keeps out of a frozen program that imports
``pyzpatch.selfupdate`` (docs/selfupdate.md, "What it adds to a program")."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import REPO, run_cli

HOOK_DIR = REPO / "pyzpatch" / "_pyinstaller"
# What a frozen program importing pyzpatch.selfupdate must not carry (top-level names).
UNWANTED = ("unittest", "typer", "rich", "click", "cryptography", "_cffi_backend", "PyInstaller")
# The ceiling on what `import pyzpatch.selfupdate` adds to a one-file program (issue 12).
MAX_ADDED = 400_000


def test_pyinstaller_finds_the_hooks_through_the_entry_point():
    """PyInstaller's own discovery (the isolated subprocess every build runs) lists the folder
    holding pyzpatch's hooks: nothing has to be passed on the command line."""
    code = ("import json; from PyInstaller.building.build_main import discover_hook_directories; "
            "print(json.dumps(discover_hook_directories()))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    found = [os.path.realpath(path) for path, _priority in json.loads(proc.stdout.strip().splitlines()[-1])]
    assert os.path.realpath(HOOK_DIR) in found
    assert {p.name for p in HOOK_DIR.glob("hook-*.py")} == {"hook-bsdiff4.py", "hook-pyzpatch.py",
                                                           "hook-pyzpatch.cli.py"}


def archive_names(build: Path) -> set:
    """Every module and archive entry name in a build, as ``pyzpatch ls --json`` lists them, plus
    the paths of a one-folder build's files."""
    result = run_cli("ls", "--json", build)
    assert result.returncode == 0, result.stderr
    desc = json.loads(result.stdout)
    names = {entry["name"] for entry in desc["archive"]["entries"]}
    names |= {module["name"] for pyz in desc["pyz"] for module in pyz["modules"]}
    if build.is_dir():
        names |= {str(p.relative_to(build)) for p in build.rglob("*")}
    return names


def unwanted_in(names: set, unwanted=UNWANTED) -> list:
    bad = []
    for name in names:
        dotted = [part for piece in name.replace("\\", "/").split("/") for part in piece.split(".")]
        if "test_all" in dotted and "bsdiff4" in dotted or any(u in dotted for u in unwanted):
            bad.append(name)
    return sorted(bad)


def test_import_of_selfupdate_adds_little_to_a_program(hello_onefile, hello_selfupdate_onefile):
    """The hello app with and without `from pyzpatch import selfupdate; selfupdate.prepare()`,
    both built with PyInstaller as a user would (the hook comes from the entry point): the
    difference stays under the ceiling, the program runs, and prepare() finds every module an
    update needs."""
    added = os.path.getsize(hello_selfupdate_onefile) - os.path.getsize(hello_onefile)
    assert added <= MAX_ADDED, f"import pyzpatch.selfupdate adds {added:,} bytes (ceiling {MAX_ADDED:,})"
    proc = subprocess.run([str(hello_selfupdate_onefile)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout == "hello from mod1 v1\n", proc.stdout + proc.stderr
    names = archive_names(hello_selfupdate_onefile)
    assert "pyzpatch.selfupdate" in names and any(n.startswith("bsdiff4/core.") for n in names)
    # ctypes too (0.29 MB): only the one-step folder exchange uses it, and the hello app does not.
    assert unwanted_in(names, UNWANTED + ("ctypes", "_ctypes")) == []


def test_self_updating_app_carries_no_tests_typer_rich_or_cryptography(selfapp_builds):
    """The example app (built without any --exclude-module) in both modes."""
    for (mode, version), build in selfapp_builds.items():
        names = archive_names(build)
        assert "pyzpatch.selfupdate" in names, (mode, version)
        assert unwanted_in(names) == [], (mode, version)
