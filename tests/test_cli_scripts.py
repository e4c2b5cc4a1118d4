"""The command line for scripts (issue 12, items 4 and 5): one test per documented exit code,
the --json of make, show, apply, verify and keygen (one description of a patch), apply -o that
refuses to write over the patch or a key, make's warnings, --quiet, and progress that is drawn
on a terminal only. Real processes on real files (fuzz/base.py's synthetic executables: no
PyInstaller build); a terminal is a real pseudo-terminal (``os.openpty``)."""
from __future__ import annotations

import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time

import pytest

from fuzz import base
from pyzpatch.cli import EXIT_CODES

from .conftest import REPO, run_cli

OK, ERROR, USAGE, ALREADY_APPLIED, WRONG_BASE, CORRUPT, SIGNATURE, IO, INTERRUPTED = 0, 1, 2, 3, 4, 5, 6, 7, 130


def failed(result, code: int, *names) -> dict:
    """A failure with exit ``code``: one line on stderr naming ``names``; with --json, the error
    object on stdout (returned, or {} without --json)."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyzpatch: error: "), result.stderr
    for name in names:
        assert name in lines[0], lines[0]
    if not result.stdout.strip():
        return {}
    error = json.loads(result.stdout)["error"]
    assert error["code"] == code and error["message"] in lines[0]
    return error


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """old, new, a file patch between them, a signed one, its keys; two folders and a patch."""
    where = tmp_path_factory.mktemp("scripts")
    (where / "old").write_bytes(base.OLD)
    (where / "new").write_bytes(base.NEW)
    assert run_cli("make", "old", "new", "-o", "file.patch", cwd=where).returncode == 0
    keys = run_cli("keygen", "release", "--json", cwd=where)
    assert keys.returncode == 0, keys.stderr
    assert run_cli("make", "old", "new", "-o", "signed.patch", "--sign", "release", cwd=where).returncode == 0
    for name, text in (("fa", "one\n"), ("fb", "two\n")):
        (where / name).mkdir()
        (where / name / "x").write_text(text)
    assert run_cli("make", "fa", "fb", "-o", "folder.patch", cwd=where).returncode == 0
    (where / "keygen.json").write_text(keys.stdout)
    return where


@pytest.fixture()
def files(made, tmp_path):
    shutil.copytree(made, tmp_path, dirs_exist_ok=True)
    return tmp_path


def test_the_exit_code_table_is_the_documented_one():
    documented = (REPO / "docs" / "cli.md").read_text()
    for _, code, name in EXIT_CODES:
        assert f"| {code} | `{name}` |" in documented, (code, name)
    assert "| 130 | `interrupted` |" in documented


# --- one test per exit code ------------------------------------------------------------------

def test_0_success_with_json_for_apply_and_verify(files):
    verified = run_cli("verify", "old", "file.patch", "--json", cwd=files)
    assert verified.returncode == OK, verified.stderr
    out = json.loads(verified.stdout)
    assert out["result"] == {"target": "old", "output": None, "dry_run": True, "written": False,
                             "byte_identical": True, "new_size": len(base.NEW),
                             "new_sha256": out["new"]["sha256"]}
    applied = run_cli("apply", "old", "file.patch", "--json", cwd=files)
    assert applied.returncode == OK, applied.stderr
    result = json.loads(applied.stdout)["result"]
    assert result["written"] and not result["dry_run"] and result["output"] == str(files / "old")
    assert (files / "old").read_bytes() == base.NEW
    folder = run_cli("apply", "fa", "folder.patch", "--json", cwd=files)
    assert folder.returncode == OK, folder.stderr
    result = json.loads(folder.stdout)["result"]
    assert result["written"] and result["files_written"] == 1 and result["carried"] == []
    assert (files / "fa" / "x").read_text() == "two\n"


def test_1_any_other_failure(files):
    with open(files / "huge.pub", "wb") as fp:
        fp.truncate(1024 ** 2)
    error = failed(run_cli("apply", "old", "file.patch", "--trust", "huge.pub", "--json", cwd=files), ERROR,
                   "huge.pub")
    assert error["kind"] == "error" and error["file"] == "huge.pub"
    assert (files / "old").read_bytes() == base.OLD


def test_2_usage_errors(files):
    click = run_cli("apply", "old", cwd=files)  # the argument parser's own: its message, no JSON
    assert click.returncode == USAGE and "Missing argument" in click.stderr
    failed(run_cli("extract", "old", "-o", "out", cwd=files), USAGE, "--all")
    failed(run_cli("make", "old", "new", "-o", "release", "--sign", "release", cwd=files), USAGE, "release")
    failed(run_cli("apply", "fa", "folder.patch", "-o", "out", cwd=files), USAGE, "-o is for single files")


@pytest.mark.parametrize("over", ["file.patch", "release", "release.pub", "link-to-patch"])
def test_2_apply_o_refuses_to_write_over_the_patch_or_a_key(files, over):
    os.symlink("file.patch", files / "link-to-patch")
    before = {name: (files / name).read_bytes() for name in ("file.patch", "release", "release.pub", "old")}
    args = ["apply", "old", "file.patch", "-o", over, "--json"]
    if over.startswith("release"):
        args = ["apply", "old", "signed.patch", "-o", over, "--trust", "release.pub", "--trust", "release", "--json"]
    error = failed(run_cli(*args, cwd=files), USAGE, over)
    assert error["kind"] == "usage" and "refusing to write the result over it" in error["message"]
    assert {name: (files / name).read_bytes() for name in before} == before


def test_3_already_applied(files):
    assert run_cli("apply", "old", "file.patch", cwd=files).returncode == OK
    error = failed(run_cli("apply", "old", "file.patch", "--json", cwd=files), ALREADY_APPLIED, "old")
    assert error == {"code": 3, "kind": "already-applied", "file": "old",
                     "message": "old: is already the file this patch produces; nothing to do"}
    failed(run_cli("verify", "new", "file.patch", cwd=files), ALREADY_APPLIED, "new")
    assert run_cli("apply", "fa", "folder.patch", cwd=files).returncode == OK
    failed(run_cli("apply", "fa", "folder.patch", cwd=files), ALREADY_APPLIED, "fa")


def test_4_wrong_base(files):
    other = files / "other"
    other.write_bytes(base.OLD[:-1] + bytes([base.OLD[-1] ^ 1]))  # same size, one bit differs
    error = failed(run_cli("apply", other, "file.patch", "--json", cwd=files), WRONG_BASE, "other")
    assert error["kind"] == "wrong-base" and "SHA-256 differs" in error["message"]
    failed(run_cli("apply", "file.patch", "file.patch", "-o", "out", cwd=files), WRONG_BASE, "file.patch")
    assert not (files / "out").exists()
    (files / "fb" / "x").write_text("changed\n")
    failed(run_cli("verify", "fb", "folder.patch", cwd=files), WRONG_BASE, "fb")


def test_5_corrupt_or_unsupported_patch(files):
    data = bytearray((files / "file.patch").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (files / "bad.patch").write_bytes(bytes(data))
    for command in ("apply", "verify"):
        error = failed(run_cli(command, "old", "bad.patch", "--json", cwd=files), CORRUPT, "bad.patch")
        assert error["kind"] == "corrupt" and error["file"] == "bad.patch"
    failed(run_cli("show", "bad.patch", cwd=files), CORRUPT, "bad.patch")
    (files / "notapatch").write_bytes(b"hello, world")
    failed(run_cli("apply", "old", "notapatch", cwd=files), CORRUPT, "not a pyzpatch patch")
    assert (files / "old").read_bytes() == base.OLD


def test_6_signature_refused(files):
    assert run_cli("keygen", "other", cwd=files).returncode == OK
    for patch, trusted, why in (("file.patch", "release.pub", "is not signed"),
                                ("signed.patch", "other.pub", "not among the trusted keys")):
        error = failed(run_cli("apply", "old", patch, "--trust", trusted, "--json", cwd=files), SIGNATURE, why)
        assert error["kind"] == "signature"
    altered = bytearray((files / "signed.patch").read_bytes())
    altered[20] ^= 1
    (files / "altered.patch").write_bytes(bytes(altered))
    failed(run_cli("verify", "old", "altered.patch", "--trust", "release.pub", cwd=files), SIGNATURE,
           "altered after signing")
    (files / "notakey.pub").write_text("not a key\n")
    failed(run_cli("apply", "old", "signed.patch", "--trust", "notakey.pub", cwd=files), SIGNATURE, "notakey.pub")
    assert (files / "old").read_bytes() == base.OLD


def test_7_io_errors(files):
    error = failed(run_cli("apply", "missing", "file.patch", "--json", cwd=files), IO, "missing")
    assert error["kind"] == "io" and error["file"].endswith("missing")
    failed(run_cli("verify", "old", "missing.patch", cwd=files), IO, "missing.patch")
    failed(run_cli("ls", "missing", "--json", cwd=files), IO, "missing")
    failed(run_cli("make", "old", "new", "-o", "no/such/folder/p.patch", cwd=files), IO, "no/such/folder")
    failed(run_cli("keygen", "release", cwd=files), ERROR, "already exists")  # refused, not an I/O error


def test_130_interrupted(tmp_path):
    """SIGINT during work: one line, exit 130, no patch and no temporary left behind."""
    rng = random.Random(5)
    (tmp_path / "a").write_bytes(rng.randbytes(1 << 20))
    (tmp_path / "b").write_bytes(rng.randbytes(1 << 20))
    proc, read = _on_terminal(["make", "a", "b", "-o", "p.patch"], tmp_path)
    seen = read(until=b"making", timeout=60)  # the spinner: the work has begun
    assert b"making" in seen
    proc.send_signal(signal.SIGINT)
    rest = read(timeout=120)
    assert proc.wait(timeout=120) == INTERRUPTED, rest
    assert b"pyzpatch: interrupted" in rest and b"Traceback" not in rest
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]


# --- one description of a patch ---------------------------------------------------------------

def test_make_show_apply_verify_describe_a_patch_alike(files):
    made = json.loads(run_cli("make", "old", "new", "-o", "p.patch", "--json", cwd=files).stdout)
    shown = json.loads(run_cli("show", "p.patch", "--json", cwd=files).stdout)
    verified = json.loads(run_cli("verify", "old", "p.patch", "--json", cwd=files).stdout)
    applied = json.loads(run_cli("apply", "old", "p.patch", "--json", cwd=files).stdout)
    keys = set(shown)
    assert set(made) == keys | {"note", "warnings"} and set(verified) == set(applied) == keys | {"result"}
    for out in (made, verified, applied):
        assert {k: out[k] for k in keys if k != "changes"} == {k: shown[k] for k in keys if k != "changes"}
    for out in (verified, applied):
        assert out["changes"] == shown["changes"]
    # make's changes are the same ones with the same keys; it knows the sizes of both versions and
    # why each was encoded so ("reason"), a patch read back the body bytes each uses (else null).
    same = ("path", "action", "how", "container")
    assert [[c[k] for k in same] for c in made["changes"]] == [[c[k] for k in same] for c in shown["changes"]]
    assert all(set(c) == set(shown["changes"][0]) | {"reason"} and c["reason"] for c in made["changes"])
    assert made["note"] is None and made["warnings"] == []


def test_keygen_prints_the_key_id_that_show_prints(files):
    keys = json.loads((files / "keygen.json").read_text())
    assert keys == {"private_key": "release", "public_key": "release.pub", "key_id": keys["key_id"]}
    assert len(keys["key_id"]) == 16
    shown = run_cli("show", "signed.patch", cwd=files)
    assert f"signed by key {keys['key_id']}" in shown.stdout
    assert json.loads(run_cli("show", "signed.patch", "--json", cwd=files).stdout)["signed_by_key"] == keys["key_id"]
    text = run_cli("keygen", "again", cwd=files)
    assert text.returncode == OK
    kid = text.stdout.strip().splitlines()[-1].split()[2]
    assert run_cli("make", "old", "new", "-o", "again.patch", "--sign", "again", cwd=files).returncode == OK
    assert f"signed by key {kid}" in run_cli("show", "again.patch", cwd=files).stdout


# --- make's warnings ---------------------------------------------------------------------------

def test_make_warns_on_stderr_when_the_patch_is_about_the_new_file(tmp_path):
    rng = random.Random(3)
    (tmp_path / "a").write_bytes(rng.randbytes(20000))
    (tmp_path / "b").write_bytes(rng.randbytes(20000))
    result = run_cli("make", "a", "b", "-o", "p.patch", "--json", cwd=tmp_path)
    assert result.returncode == OK, result.stderr
    out = json.loads(result.stdout)  # stdout is the JSON alone
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 2 and all(w.startswith("pyzpatch: warning: ") for w in warnings)
    assert "b: not a PyInstaller executable, archive or zip: used a whole-file diff" in warnings[0]
    assert "is over half the size of the new version compressed" in warnings[1]
    assert [f"pyzpatch: warning: {w}" for w in out["warnings"]] == warnings
    assert out["note"] == "not a PyInstaller executable, archive or zip: used a whole-file diff"
    quiet = run_cli("make", "a", "b", "-o", "q.patch", "--quiet", cwd=tmp_path)
    assert quiet.returncode == OK and quiet.stderr == "" and "wrote q.patch" in quiet.stdout


def test_a_small_patch_gets_no_warning(files):
    result = run_cli("make", "old", "new", "-o", "p.patch", cwd=files)
    assert result.returncode == OK and result.stderr == ""


# --- progress: on a terminal only ---------------------------------------------------------------

def _on_terminal(args, cwd, extra_env=None):
    """Start ``pyzpatch ARGS`` with its stderr on a pseudo-terminal (stdout a pipe); returns the
    process and ``read(until=None, timeout)``, which gathers what the terminal received."""
    master, slave = os.openpty()
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PYZPATCH_PROGRESS_DELAY="0", TERM="xterm-256color", COLUMNS="100")
    env.update(extra_env or {})
    proc = subprocess.Popen([sys.executable, "-m", "pyzpatch", *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    got = bytearray()

    def read(until=None, timeout=60.0) -> bytes:
        end = time.monotonic() + timeout
        while time.monotonic() < end and not (until and until in got):
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the other end closed (Linux: EIO)
                    break
                if not chunk:
                    break
                got.extend(chunk)
            elif proc.poll() is not None and not until:
                break
        return bytes(got)

    return proc, read


def _run_on_terminal(args, cwd, extra_env=None):
    proc, read = _on_terminal(args, cwd, extra_env)
    terminal = read(timeout=120)
    stdout = proc.stdout.read()
    assert proc.wait(timeout=120) == OK, terminal
    return terminal, stdout


@pytest.mark.parametrize("command", [
    ["make", "old", "new", "-o", "t.patch"],
    ["apply", "old", "file.patch", "-o", "out"],
    ["ls", "old"],
])
def test_progress_is_drawn_on_a_terminal_and_never_into_a_pipe(files, command):
    verb = {"make": b"making", "apply": b"patching", "ls": b"reading"}[command[0]]
    terminal, stdout = _run_on_terminal(command, files)
    assert verb in terminal and b"\x1b[" in terminal  # drawn, then erased
    assert verb not in stdout and b"\x1b" not in stdout
    quiet, _ = _run_on_terminal(command + ["--quiet"], files)
    assert verb not in quiet
    if command[0] == "apply":
        (files / "out").unlink()
    piped = run_cli(*command, cwd=files)  # no terminal at all: nothing drawn
    assert piped.returncode == OK and piped.stderr == ""


def test_short_work_draws_nothing(files):
    terminal, _ = _run_on_terminal(["make", "old", "new", "-o", "t.patch"], files,
                                   {"PYZPATCH_PROGRESS_DELAY": "30"})
    assert b"making" not in terminal
