"""The command line with the lowest versions pyproject.toml declares.

``.venv-lowest`` (made by the test install step: ``python fixtures/build.py --lowest-venv``) holds
``fixtures.build.LOWEST_PINS`` (typer 0.16.0 with the lowest click and rich it accepts, 8.0.0 and
10.11.0, bsdiff4 1.2.0 and cryptography 3.1), made with Python 3.9 where there is one; this working tree's
pyzpatch runs in it through PYTHONPATH. The main environment has the newest versions: so the
suite runs pyzpatch with both ends of every range it declares.

Each test runs one interpreter of that venv (``DRIVER``), which imports pyzpatch's command line
once and runs each command in a child forked from it (a real process, as conftest.py's
``fork_cli`` does), or, for the steps marked ``fresh``, as ``python -m pyzpatch`` in a new
interpreter. Inputs are small real files made here: no PyInstaller build.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
import stat
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from fixtures.build import LOWEST_PINS, LOWEST_VENV
from fuzz.base import NEW as EXE_NEW
from fuzz.base import OLD as EXE_OLD
from pyzpatch import apply_patch, make_patch
from pyzpatch.patchfile.signing import generate_keys, load_private_key, load_public_key

from .conftest import REPO, sha256_file

# A support check against a side environment (.venv-lowest): the whole suite runs it.
pytestmark = pytest.mark.slow

LOWEST_PYTHON = LOWEST_VENV / "bin" / "python"
COMMANDS = ("ls", "extract", "make", "apply", "verify", "keygen", "show")

# Runs in .venv-lowest: argv[1] is a JSON file of steps ({"args", "cwd", "fresh", "pty"}); prints
# one JSON list of {"rc", "out", "err"}, and the versions it ran with.
DRIVER = r'''
import json, os, pty, subprocess, sys, tempfile
import importlib.metadata as metadata
import pyzpatch.cli
import pyzpatch.patch.file, pyzpatch.patch.folder, pyzpatch.patchfile.signing, pyzpatch.delta.encoder
import cryptography.hazmat.primitives.asymmetric.ed25519, cryptography.hazmat.primitives.serialization

def forked(args, cwd):
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.dup2(out.fileno(), 1); os.dup2(err.fileno(), 2)
                sys.stdout = open(1, "w", closefd=False); sys.stderr = open(2, "w", closefd=False)
                os.chdir(cwd)
                sys.argv = ["pyzpatch", *args]
                pyzpatch.cli.main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:
                import traceback; traceback.print_exc()
            finally:
                sys.stdout.flush(); sys.stderr.flush(); os._exit(code)
        _, status = os.waitpid(pid, 0)
        out.seek(0); err.seek(0)
        return {"rc": os.waitstatus_to_exitcode(status), "out": out.read().decode("utf-8", "replace"),
                "err": err.read().decode("utf-8", "replace")}

def fresh(args, cwd, on_pty):
    cmd = [sys.executable, "-m", "pyzpatch", *args]
    if not on_pty:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
        return {"rc": proc.returncode, "out": proc.stdout, "err": proc.stderr}
    main, sub = pty.openpty()  # stderr a terminal: progress is drawn (rich permitting)
    proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=sub,
                            env=dict(os.environ, PYZPATCH_PROGRESS_DELAY="0"))
    os.close(sub)
    err = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        err += chunk
    out = proc.stdout.read()
    return {"rc": proc.wait(timeout=120), "out": out.decode(), "err": err.decode("utf-8", "replace")}

with open(sys.argv[1]) as fp:
    steps = json.load(fp)
results = [fresh(s["args"], s["cwd"], s.get("pty", False)) if s.get("fresh") else forked(s["args"], s["cwd"])
           for s in steps]
versions = {name: metadata.version(name) for name in ("typer", "click", "rich", "bsdiff4", "cryptography")}
versions["python"] = "%d.%d" % sys.version_info[:2]
print(json.dumps({"results": results, "versions": versions}))
'''


@pytest.fixture(scope="session")
def lowest_python() -> str:
    if not LOWEST_PYTHON.exists():
        pytest.skip(f"{LOWEST_VENV} is missing (the lowest declared versions: {', '.join(LOWEST_PINS)}): run the "
                    "test install step from README.md (python fixtures/build.py --lowest-venv)")
    return str(LOWEST_PYTHON)


class Step:
    def __init__(self, *args, cwd=None, fresh=False, pty=False):
        self.args, self.cwd, self.fresh, self.pty = [str(a) for a in args], cwd, fresh, pty


def run_lowest(python: str, work: Path, steps) -> list:
    """Run ``steps`` (Step or argument tuples) with .venv-lowest's interpreter; their results
    ({"rc", "out", "err"}) in order. No step may print a traceback."""
    steps = [s if isinstance(s, Step) else Step(*s) for s in steps]
    plan = work / "steps.json"
    plan.write_text(json.dumps([{"args": s.args, "cwd": str(s.cwd or work), "fresh": s.fresh, "pty": s.pty}
                                for s in steps]))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # keep the venv Python's compiled pyzpatch between runs
    proc = subprocess.run([python, "-c", DRIVER, plan], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    pins = dict(pin.split("==") for pin in LOWEST_PINS)
    assert {name: out["versions"][name] for name in pins} == pins, out["versions"]
    for step, result in zip(steps, out["results"]):
        assert "Traceback" not in result["err"] + result["out"], (step.args, result)
    return out["results"]


def ok(result) -> dict:
    assert result["rc"] == 0, result
    return result


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- inputs: small real files of every kind make reads, and a folder of them ------------------

def _zip(version: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(12):
            text = f"# module {i}\n" + "value = %d\n" % (i * version if i == 5 else i) * 40
            zf.writestr(f"pkg/m{i}.py", text)
    return buf.getvalue()


def _tar(version: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for i in range(8):
            data = (f"file {i} " + ("v%d " % version if i == 3 else "") + "x" * 3000).encode()
            info = tarfile.TarInfo(f"app/f{i}.txt")
            info.size, info.mtime, info.mode = len(data), 1_700_000_000, 0o644
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


BLOB_OLD = random.Random(7).randbytes(64 * 1024)
BLOB_NEW = BLOB_OLD[:20_000] + b"inserted bytes" + BLOB_OLD[20_000:50_000] + BLOB_OLD[50_010:]

# name: (old, new, structural), and the end of a changed part's path in make's changes
CHANGED = {"exe": "PYZ.pyz/mod1", "zip": "pkg/m5.py", "tar": "app/f3.txt"}
PAIRS = {
    "exe": (EXE_OLD, EXE_NEW, True),  # an executable around a CArchive with a PYZ and a zip (fuzz/base.py)
    "zip": (_zip(1), _zip(2), True),
    "tar": (_tar(1), _tar(2), True),
    "blob": (BLOB_OLD, BLOB_NEW, False),  # no structure: a whole-file bsdiff
}


def _folder(root: Path, version: int) -> Path:
    (root / "_internal" / "empty").mkdir(parents=True)
    (root / "prog").write_bytes(EXE_OLD if version == 1 else EXE_NEW)
    (root / "prog").chmod(0o755)
    (root / "_internal" / "lib.zip").write_bytes(_zip(version))
    (root / "_internal" / "data.bin").write_bytes(BLOB_OLD if version == 1 else BLOB_NEW)
    (root / "_internal" / "same.txt").write_text("unchanged\n" * 100)
    (root / "_internal" / ("old-only.txt" if version == 1 else "new-only.txt")).write_text(f"v{version}\n")
    os.symlink("_internal/lib.zip", root / "lib-link")
    return root


def tree(root: Path) -> dict:
    """{relative path: (kind, mode, SHA-256 or link target)} of everything under ``root``."""
    out = {}
    for current, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(current, name)
            st = path.lstat()
            rel = path.relative_to(root).as_posix()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", 0, os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode), "")
            else:
                out[rel] = ("file", stat.S_IMODE(st.st_mode), sha256_file(path))
    return out


@pytest.fixture
def work(tmp_path) -> Path:
    for name, (old, new, _) in PAIRS.items():
        (tmp_path / f"{name}-old").write_bytes(old)
        (tmp_path / f"{name}-new").write_bytes(new)
    return tmp_path


# --- tests ------------------------------------------------------------------------------------

def test_help_of_every_command_and_the_version(lowest_python, tmp_path):
    """typer 0.16 with rich 10.11 renders help its own way: every page renders, names its options, and
    exits 0; --version prints the version and a missing argument is a usage error (2)."""
    results = run_lowest(lowest_python, tmp_path, [
        ("--help",), *[(c, "--help") for c in COMMANDS], ("--version",), (), ("make", "only-one"),
        Step("--help", fresh=True)])
    top, pages, (version, bare, usage, fresh_top) = results[0], results[1:8], results[8:]
    assert "Usage:" in ok(top)["out"] and all(c in top["out"] for c in COMMANDS), top
    expected = {"ls": ["--json", "--filter", "--quiet"], "extract": ["--output", "--all"],
                "make": ["--output", "--json", "--sign", "--quiet"],
                "apply": ["--output", "--dry-run", "--trust", "--json"], "verify": ["--trust", "--json"],
                "keygen": ["--json"], "show": ["--json", "--max-memory"]}
    for command, page in zip(COMMANDS, pages):
        usage_line = next(line for line in ok(page)["out"].splitlines() if "Usage:" in line)
        assert f" {command} " in usage_line, page
        assert all(option in page["out"] for option in expected[command]), (command, page["out"])
    assert ok(version)["out"].startswith("pyzpatch ") and version["out"].count("\n") == 1, version
    assert bare["rc"] in (0, 2) and "Usage:" in bare["out"] + bare["err"], bare  # no_args_is_help
    assert usage["rc"] == 2 and "Missing argument" in usage["err"], usage
    # python -m pyzpatch in a new interpreter: the same page.
    assert "Commands" in ok(fresh_top)["out"] and all(c in fresh_top["out"] for c in COMMANDS), fresh_top


def test_make_apply_verify_show_ls_on_real_files(lowest_python, work):
    """make, show, verify and apply (in place and with -o), with and without --json, on an
    executable, a zip, a tar and a plain file: every result is the new file byte for byte; ls
    lists the containers; patches cross between bsdiff4 1.2.0 (here) and the main environment's."""
    steps = []
    for name in PAIRS:
        old, new, p, pj = (work / f"{name}-{s}" for s in ("old", "new", "p.patch", "pj.patch"))
        for suffix in ("inplace", "json"):
            shutil.copyfile(old, work / f"{name}-{suffix}")
        main_patch = make_patch(old, new)  # the main environment's bsdiff4 1.3.x
        (work / f"{name}-main.patch").write_bytes(main_patch.data)
        shutil.copyfile(old, work / f"{name}-main-target")
        steps += [("make", old, new, "-o", p), ("make", old, new, "-o", pj, "--json"),
                  ("show", p), ("show", p, "--json"), ("verify", old, p), ("verify", old, p, "--json"),
                  ("apply", old, p, "-o", work / f"{name}-out"), ("apply", work / f"{name}-inplace", p),
                  ("apply", work / f"{name}-json", pj, "--json"), ("apply", work / f"{name}-main-target",
                                                                   work / f"{name}-main.patch"),
                  ("ls", old), ("ls", old, "--json")]
    steps.append(("extract", work / "exe-old", "--all", "-o", work / "extracted"))
    results = iter(run_lowest(lowest_python, work, steps))
    for name, (old_bytes, new_bytes, structural) in PAIRS.items():
        made, made_json, shown, shown_json, verified, verified_json, out, inplace, applied_json, main_applied, \
            listed, listed_json = (next(results) for _ in range(12))
        new_hash = sha256(new_bytes)
        assert ok(made)["out"].startswith(f"wrote {work / f'{name}-p.patch'}: "), made
        assert ("whole-file diff" in made["err"]) is not structural, made
        desc = json.loads(ok(made_json)["out"])
        assert desc["new"] == {"size": len(new_bytes), "sha256": new_hash}, desc
        assert desc["old"]["sha256"] == sha256(old_bytes) and desc["structural"] is structural, desc
        assert ("structural: each changed part" if structural else "whole-file diff") in ok(shown)["out"], shown
        if structural:  # the changed member is named, inside its container
            assert any(c["path"].endswith(CHANGED[name]) for c in desc["changes"]), (name, desc["changes"])
        shown_desc = json.loads(ok(shown_json)["out"])
        assert shown_desc["new"]["sha256"] == new_hash and shown_desc["signed_by_key"] is None, shown_desc
        assert "byte-identical" in ok(verified)["out"], verified
        assert json.loads(ok(verified_json)["out"])["result"]["written"] is False
        for result in (out, inplace, main_applied):
            assert "byte-identical" in ok(result)["out"], result
        result = json.loads(ok(applied_json)["out"])["result"]
        assert result["byte_identical"] and result["new_sha256"] == new_hash, result
        for path in ("out", "inplace", "json", "main-target"):
            assert sha256_file(work / f"{name}-{path}") == new_hash, (name, path)
        assert sha256_file(work / f"{name}-old") == sha256(old_bytes)  # apply -o left it alone
        # The patch made here (bsdiff4 1.2.0) applies with the main environment's bsdiff4.
        shutil.copyfile(work / f"{name}-old", work / f"{name}-here")
        assert apply_patch(work / f"{name}-here", work / f"{name}-p.patch").byte_identical
        assert sha256_file(work / f"{name}-here") == new_hash
        if name == "blob":  # not an archive: ls says so (exit 5)
            assert listed["rc"] == 5 and listed["err"].startswith("pyzpatch: error: "), listed
            assert json.loads(listed_json["out"])["error"]["kind"] == "corrupt", listed_json
        else:
            assert ok(listed)["out"].startswith(f"{work / f'{name}-old'}: "), listed
            assert json.loads(ok(listed_json)["out"])["path"] == str(work / f"{name}-old")
    extracted = next(results)
    assert ok(extracted)["out"].splitlines()[-1].startswith("extracted "), extracted
    assert (work / "extracted" / "data.txt").read_bytes().startswith(b"data file contents 1 ")
    assert next(results, None) is None


def test_failures_have_their_exit_codes_and_leave_the_target(lowest_python, work):
    """Already applied (3), a wrong base (4), a corrupt or truncated patch (5), a missing file
    (7), each in one line on stderr, with --json an error object, the target untouched."""
    patch = make_patch(work / "exe-old", work / "exe-new").data
    (work / "p.patch").write_bytes(patch)
    corrupt = bytearray(patch)
    corrupt[len(corrupt) // 2] ^= 0xFF
    (work / "corrupt.patch").write_bytes(bytes(corrupt))
    (work / "short.patch").write_bytes(patch[:-20])
    target = work / "exe-target"
    shutil.copyfile(work / "exe-old", target)
    results = run_lowest(lowest_python, work, [
        ("apply", work / "exe-new", "p.patch"), ("apply", work / "zip-old", "p.patch"),
        ("apply", work / "zip-old", "p.patch", "--json"), ("verify", work / "tar-old", "p.patch"),
        ("apply", target, "corrupt.patch"), ("apply", target, "corrupt.patch", "--json"),
        ("apply", target, "short.patch"), ("show", "corrupt.patch"), ("apply", target, "missing.patch")])
    expected = [(3, "already-applied"), (4, "wrong-base"), (4, "wrong-base"), (4, "wrong-base"), (5, "corrupt"),
                (5, "corrupt"), (5, "corrupt"), (5, "corrupt"), (7, "io")]
    for (code, kind), result in zip(expected, results):
        assert result["rc"] == code, (code, result)
        assert result["err"].startswith("pyzpatch: error: ") and result["err"].count("\n") == 1, result
        if result["out"]:
            assert json.loads(result["out"])["error"]["kind"] == kind, result
    assert results[2]["out"] and results[5]["out"]  # the --json ones
    for path, data in (("exe-new", EXE_NEW), ("zip-old", PAIRS["zip"][0]), ("tar-old", PAIRS["tar"][0]),
                       ("exe-target", EXE_OLD)):
        assert sha256_file(work / path) == sha256(data), path


def test_signed_patches_with_cryptography_3_1(lowest_python, work):
    """keygen, make --sign and apply --trust with cryptography 3.1; an unsigned patch, one signed
    by another key and one altered after signing are refused (6) and the target left alone. A
    patch the main environment's cryptography signed checks here too."""
    generate_keys(work / "main")
    signed_in_main = make_patch(work / "exe-old", work / "exe-new", sign_key=load_private_key(work / "main")).data
    (work / "m.patch").write_bytes(signed_in_main)
    altered = bytearray(signed_in_main)
    altered[40] ^= 1
    (work / "a.patch").write_bytes(bytes(altered))
    for name in ("t-signed", "t-unsigned", "t-other", "t-altered", "t-main"):
        shutil.copyfile(work / "exe-old", work / name)
    results = run_lowest(lowest_python, work, [
        ("keygen", "release"), ("keygen", "other", "--json"),
        ("make", "exe-old", "exe-new", "-o", "s.patch", "--sign", "release"),
        ("make", "exe-old", "exe-new", "-o", "u.patch"), ("show", "s.patch", "--json"), ("show", "s.patch"),
        ("verify", "t-signed", "s.patch", "--trust", "release.pub"),
        ("apply", "t-signed", "s.patch", "--trust", "other.pub", "--trust", "release.pub", "--json"),
        ("apply", "t-unsigned", "u.patch", "--trust", "release.pub"),
        ("apply", "t-other", "s.patch", "--trust", "other.pub", "--json"),
        ("apply", "t-altered", "a.patch", "--trust", "main.pub"), ("apply", "t-main", "m.patch", "--trust", "main.pub")])
    keygen, keygen_json, signed, unsigned, shown_json, shown, verified, applied, refused, other, altered, main = results
    key_id = ok(keygen)["out"].split("key id ")[1].split()[0]
    assert (work / "release").stat().st_mode & 0o077 == 0
    assert set(json.loads(ok(keygen_json)["out"])) == {"private_key", "public_key", "key_id"}
    ok(signed), ok(unsigned)
    assert json.loads(ok(shown_json)["out"])["signed_by_key"] == key_id
    assert f"signed by key {key_id}" in ok(shown)["out"]
    assert "byte-identical" in ok(verified)["out"]
    assert json.loads(ok(applied)["out"])["result"]["new_sha256"] == sha256(EXE_NEW)
    assert refused["rc"] == 6 and "is not signed" in refused["err"], refused
    assert other["rc"] == 6 and json.loads(other["out"])["error"]["kind"] == "signature", other
    assert "not among the trusted keys" in other["err"], other
    assert altered["rc"] == 6 and "altered after signing" in altered["err"], altered
    assert "byte-identical" in ok(main)["out"], main
    for name in ("t-signed", "t-main"):
        assert sha256_file(work / name) == sha256(EXE_NEW), name
    for name in ("t-unsigned", "t-other", "t-altered"):
        assert sha256_file(work / name) == sha256(EXE_OLD), name
    # The main environment checks what cryptography 3.1 signed.
    shutil.copyfile(work / "exe-old", work / "t-here")
    assert apply_patch(work / "t-here", work / "s.patch", trusted_keys=[load_public_key(work / "release.pub")])
    assert sha256_file(work / "t-here") == sha256(EXE_NEW)


def test_folder_round_trip_old_patches_and_progress(lowest_python, tmp_path):
    """A folder patch made and applied here gives the new folder exactly (files, modes, links,
    empty folders); patches written by pyzpatch 0.1.0 still apply; and on a terminal, where
    progress is drawn with the lowest rich, make works."""
    old, new = _folder(tmp_path / "old", 1), _folder(tmp_path / "new", 2)
    target = tmp_path / "app"
    shutil.copytree(old, target, symlinks=True)
    data = REPO / "tests" / "data" / "compat-0.1.0"
    shutil.copyfile(data / "prog-old", tmp_path / "prog")
    shutil.copytree(data / "folder-old", tmp_path / "compat", symlinks=True)
    for current, dirs, files in os.walk(tmp_path / "compat"):  # the modes it had (test_compat.py)
        os.chmod(current, 0o755)
        for name in files:
            os.chmod(os.path.join(current, name), 0o755 if name == "prog" else 0o644)
    (tmp_path / "blob-old").write_bytes(BLOB_OLD)
    (tmp_path / "blob-new").write_bytes(BLOB_NEW)
    results = run_lowest(lowest_python, tmp_path, [
        ("make", old, new, "-o", "f.patch"), ("show", "f.patch", "--json"), ("verify", target, "f.patch"),
        ("apply", target, "f.patch", "--json"), ("apply", target, "f.patch"),
        ("apply", "prog", data / "prog.patch"), ("apply", "compat", data / "folder.patch"),
        Step("make", "blob-old", "blob-new", "-o", "blob.patch", fresh=True, pty=True)])
    made, shown, verified, applied, again, prog, compat, on_terminal = results
    assert ok(made)["out"].startswith("wrote f.patch: "), made
    desc = json.loads(ok(shown)["out"])
    assert desc["folder"] and desc["structural"], desc
    changes = {c["path"]: c["action"] for c in desc["changes"] if not c["container"]}
    assert changes.get("_internal/new-only.txt") == "added" and changes.get("_internal/old-only.txt") == "removed"
    assert "exactly the folder" in ok(verified)["out"], verified
    result = json.loads(ok(applied)["out"])["result"]
    assert result["written"] and result["files_written"] >= 3, result
    assert tree(target) == tree(new)
    assert again["rc"] == 3, again
    assert "byte-identical" in ok(prog)["out"]
    assert sha256_file(tmp_path / "prog") == sha256_file(data / "prog-new")
    ok(compat)
    for name in ("prog", "_internal/base_library.zip", "_internal/data.txt"):
        assert sha256_file(tmp_path / "compat" / name) == sha256_file(data / "folder-new" / name), name
    assert ok(on_terminal)["out"].startswith("wrote blob.patch: "), on_terminal
    assert "whole-file diff" in on_terminal["err"]  # the warning still reaches the terminal
    assert apply_patch(tmp_path / "blob-old", tmp_path / "blob.patch").byte_identical
    assert sha256_file(tmp_path / "blob-old") == sha256(BLOB_NEW)
