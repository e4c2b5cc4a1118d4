"""The command line on hostile or odd input: one line and a non-zero exit (or a clean success),
never a traceback, a hang or an unbounded read, and nothing left that blocks the next run
(issue 11, finding 8). Real processes, real FIFOs and devices, real files."""
from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys

import pytest

from fuzz import base

from .conftest import REPO
from .test_extract_clashes import make_pkg

# What a wrong run may cost before the test stops it: an unbounded read of /dev/zero fails here
# in seconds (MemoryError, a traceback) instead of taking the machine's memory.
_MEMORY_CAP = 2 * 1024 ** 3
_TIMEOUT = 60

ESC = "\x1b]0;owned\x07\x1b[2J\x1b[31m"  # set the window title, clear the screen, turn red


class Run:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.returncode, self.stdout, self.stderr = proc.returncode, proc.stdout, proc.stderr


def cli(*args, cwd=None) -> Run:
    """``python -m pyzpatch ARGS`` as a real process, with its memory capped."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (_MEMORY_CAP, _MEMORY_CAP))

    proc = subprocess.run([sys.executable, "-m", "pyzpatch", *map(str, args)], capture_output=True, text=True,
                          errors="surrogateescape", cwd=cwd, timeout=_TIMEOUT, env=env, preexec_fn=cap)
    return Run(proc)


def one_line(result: Run, *names, code=None) -> str:
    """The one error line of a failed run; ``code``: the exit code it must have (docs/cli.md)."""
    assert result.returncode not in (0, 130), (result.stdout, result.stderr)
    if code is not None:
        assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pyzpatch: error: ")
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A base, its new version, a file patch between them, and a folder patch (made once)."""
    where = tmp_path_factory.mktemp("made")
    (where / "old").write_bytes(base.OLD)
    (where / "new").write_bytes(base.NEW)
    assert cli("make", "old", "new", "-o", "file.patch", cwd=where).returncode == 0
    for name, text in (("fa", "one\n"), ("fb", "two\n")):
        (where / name).mkdir()
        (where / name / "x").write_text(text)
    assert cli("make", "fa", "fb", "-o", "folder.patch", cwd=where).returncode == 0
    return where


@pytest.fixture()
def files(made, tmp_path):
    """A fresh copy of ``made`` for one test, with a FIFO beside it."""
    shutil.copytree(made, tmp_path, dirs_exist_ok=True)
    os.mkfifo(tmp_path / "fifo")
    return tmp_path


# --- inputs that are not regular files: refused at once, never read or waited on ------------

NOT_FILES = ["fifo", "/dev/zero", "folder"]


@pytest.mark.parametrize("what", NOT_FILES)
@pytest.mark.parametrize("command", [
    ("show", "{}"),
    ("show", "--json", "{}"),
    ("apply", "old", "{}"),
    ("verify", "old", "{}"),
    ("apply", "old", "file.patch", "--trust", "{}"),
    ("make", "old", "new", "-o", "signed.patch", "--sign", "{}"),
    ("ls", "{}"),
    ("make", "{}", "new", "-o", "p.patch"),
    ("apply", "{}", "file.patch"),
])
def test_a_fifo_a_device_or_a_folder_named_as_a_file(files, what, command):
    name = {"folder": "fa"}.get(what, what)
    if command[0] in ("make", "ls") and what == "folder":
        pytest.skip("a folder is a valid argument there")
    args = [a.replace("{}", name) for a in command]
    line = one_line(cli(*args, cwd=files), name, code=7)  # I/O: not a file it can read
    assert ("not a regular file" in line) if what != "folder" else ("is a folder" in line)


def test_missing_files(files):
    for args in (["show", "nope"], ["show", "--json", "nope"], ["apply", "old", "nope"],
                 ["apply", "old", "file.patch", "--trust", "nope"], ["keygen", "no/such/folder/key"],
                 ["make", "old", "new", "-o", "no/such/folder/p.patch"]):
        one_line(cli(*args, cwd=files), "no", code=7)


def test_a_patch_or_key_that_is_too_large_is_refused_before_it_is_read(files):
    key = files / "huge.pub"
    with open(key, "wb") as fp:
        fp.truncate(1024 ** 3)  # sparse: 1 GiB that takes no disk
    line = one_line(cli("apply", "old", "file.patch", "--trust", key, cwd=files), "huge.pub")
    assert "more than a key file may be" in line


# --- the root of the file system: refused, and nothing in the working folder touched --------

@pytest.mark.parametrize("root", ["/", "//", "/."])
def test_apply_to_the_root_touches_nothing_in_the_working_folder(files, root):
    work = files / "work"
    (work / "..pyzpatch-new").mkdir(parents=True)
    (work / "..pyzpatch-new" / "keep").write_text("mine")
    (work / "..pyzpatch-old").mkdir()
    result = cli("apply", root, files / "folder.patch", cwd=work)
    assert (work / "..pyzpatch-new" / "keep").read_text() == "mine"  # it used to be removed
    assert (work / "..pyzpatch-old").is_dir()
    assert "no name of its own" in one_line(result, root.rstrip(".") or "/")


# --- failures no command caught: one line, nothing left behind ------------------------------

def test_make_into_a_folder_leaves_no_temporary(files):
    (files / "out").mkdir()
    one_line(cli("make", "old", "new", "-o", "out", cwd=files), "out", code=2)  # a usage error
    assert not [n for n in os.listdir(files) if n.endswith(".pyzpatch-tmp")]
    assert os.listdir(files / "out") == []
    assert cli("make", "old", "new", "-o", "out/p.patch", cwd=files).returncode == 0  # and the next run works


def test_extract_into_a_file(files):
    one_line(cli("extract", "old", "--all", "-o", "new", cwd=files), "new")
    assert (files / "new").read_bytes() == base.NEW


# --- control characters in names are shown escaped, never sent to the terminal --------------

def no_control(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text, repr(text)


def test_ls_shows_escapes_in_entry_names(tmp_path):
    pkg = tmp_path / "a.pkg"
    make_pkg(pkg, [(f"data{ESC}.txt", "x", b"x"), ("line\nbreak", "x", b"y")])
    result = cli("ls", pkg)
    assert result.returncode == 0, result.stderr
    no_control(result.stdout)
    assert "data\\x1b]0;owned\\x07\\x1b[2J\\x1b[31m.txt" in result.stdout
    assert "line\\x0abreak" in result.stdout  # a newline in a name cannot forge a line of output
    extract = cli("extract", pkg, f"data{ESC}.txt", "-o", tmp_path / "out")
    assert extract.returncode == 0, extract.stderr
    no_control(extract.stdout)


def test_make_show_apply_messages_show_escapes(tmp_path):
    old, new = tmp_path / f"old{ESC}", tmp_path / f"new{ESC}"
    for folder, text in ((old, "one\n"), (new, "two\n")):
        folder.mkdir()
        (folder / f"file{ESC}").write_text(text)
        (folder / "bad-\udcff-utf8").write_text(text)  # a name that is not UTF-8
    patch = tmp_path / f"p{ESC}.patch"
    runs = [cli("make", old, new, "-o", patch), cli("show", patch), cli("apply", old, patch, "--dry-run"),
            cli("apply", old, patch)]
    for result in runs:
        assert result.returncode == 0, result.stderr
        no_control(result.stdout)
        assert "\\x1b" in result.stdout
    assert "bad-\\xff-utf8" in runs[0].stdout
    failed = cli("apply", old, patch)  # now already applied: an error naming the folder
    no_control(failed.stderr)
    assert "\\x1b" in one_line(failed)
    missing = cli("show", tmp_path / f"gone{ESC}")
    no_control(missing.stderr)
    assert "gone\\x1b" in one_line(missing)
