"""Shared test fixtures: real PyInstaller builds (cached by content) and a CLI runner."""
from __future__ import annotations

import datetime
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fixtures.build import APPS_DIR, BIGAPP_APP, HELLO_APP, build  # noqa: E402

SELFAPP_APP = APPS_DIR / "selfapp"

PYI5_VENV = REPO / ".venv-pyi5"


class CliResult:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr


def run_cli(*args, cwd=None, timeout=300) -> CliResult:
    """Run ``pyzpatch ARGS`` as a real process: a child forked from this one (``fork_cli``),
    which costs a few milliseconds where a new interpreter costs 0.3 s of CPU (the suite runs
    the command line over a thousand times). ``PYZPATCH_TEST_NEW_INTERPRETER=1`` runs each in a
    new interpreter instead (``run_cli_process``)."""
    if os.environ.get("PYZPATCH_TEST_NEW_INTERPRETER") == "1" or not hasattr(os, "fork"):
        return run_cli_process(*args, cwd=cwd, timeout=timeout)
    return fork_cli(*args, cwd=cwd, timeout=timeout)


def run_cli_process(*args, cwd=None, timeout=300) -> CliResult:
    """Run ``python -m pyzpatch ARGS`` in a new interpreter."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-m", "pyzpatch", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout, env=env)
    return CliResult(proc)


def run_forked(call, env_extra=None, timeout=120, cwd=None) -> CliResult:
    """Run ``call()`` in a child process forked from this one, which has imported pyzpatch
    already: a real process, with its own memory, killed for real by the fault checkpoints, but
    without a new interpreter and its imports each time (0.3 s of CPU a process; the crash
    sweeps start hundreds). ``env_extra`` is set in the child, and the checkpoints re-read it.
    The child's exit status (``-SIGNAL`` when killed), stdout and stderr come back."""
    from pyzpatch.fs import faults
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            code = 1
            try:
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                sys.stdout = open(1, "w", closefd=False)
                sys.stderr = open(2, "w", closefd=False)
                os.environ.update({k: str(v) for k, v in (env_extra or {}).items()})
                if cwd is not None:
                    os.chdir(cwd)
                faults.checkpoint.__init__()
                call()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:
                import traceback
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise AssertionError(f"forked child still running after {timeout} s")
            time.sleep(0.005)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        out.seek(0)
        err.seek(0)
        return CliResult(subprocess.CompletedProcess([], code, out.read().decode("utf-8", "replace"),
                                                     err.read().decode("utf-8", "replace")))


def fork_cli(*args, env_extra=None, timeout=120, cwd=None) -> CliResult:
    """``pyzpatch ARGS`` in a child forked from this process (``run_forked``)."""
    import pyzpatch.cli
    _import_all_of_pyzpatch()

    def call():
        sys.argv = ["pyzpatch", *map(str, args)]
        pyzpatch.cli.main()

    return run_forked(call, env_extra, timeout, cwd)


_ALL_IMPORTED = []


def _import_all_of_pyzpatch() -> None:
    """Import every pyzpatch module (the commands import some when they run) before forking:
    a child should never import, since another thread of this process (pytest-xdist's) may
    have held the import lock when it was forked."""
    if _ALL_IMPORTED:
        return
    import importlib
    import pkgutil

    import pyzpatch
    for info in pkgutil.walk_packages(pyzpatch.__path__, "pyzpatch."):
        if "_pyinstaller" in info.name or info.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except ImportError:  # an optional extra (tufup) that is not installed
            pass
    import click.testing  # noqa: F401  (what typer and rich import lazily, for the same reason)
    _ALL_IMPORTED.append(True)


def run_program(path, *args, timeout=120) -> str:
    proc = subprocess.run([str(path), *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def variant(app: Path, edits: dict) -> Path:
    """A copy of ``app`` with ``edits`` ({relative path: (old text, new text) or full new text or
    None to delete}), kept at a path named by the app's files and the edits, so that the build
    cache hits across runs and a changed app makes a new copy."""
    h = hashlib.sha256(repr(sorted(edits.items())).encode())
    for path in sorted(app.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(app)).encode() + b"\0" + path.read_bytes())
    tag = h.hexdigest()[:16]
    dest = REPO / ".cache" / "variants" / f"{app.name}-{tag}"
    if not dest.exists():
        # A staging folder of its own, renamed into place: two test processes making the same
        # variant at once (pytest-xdist) never share one; the second rename loses, harmlessly.
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".", suffix=".tmp", dir=dest.parent)) / "app"
        shutil.copytree(app, tmp, ignore=shutil.ignore_patterns("__pycache__"))
        for rel, change in edits.items():
            path = tmp / rel
            if change is None:
                path.unlink()
            elif isinstance(change, tuple):
                text = path.read_text()
                assert change[0] in text, (rel, change[0])
                path.write_text(text.replace(change[0], change[1], 1))
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(change)
        try:
            tmp.rename(dest)
        except OSError:
            if not dest.is_dir():
                raise
        shutil.rmtree(tmp.parent, ignore_errors=True)
    return dest


# The longest one fuzzed example may take before Hypothesis fails the test: "no hang" made an
# assertion (real examples take well under a second; the margin is for a loaded CI machine).
NO_HANG = datetime.timedelta(seconds=60)

HELLO_V2 = {"mod1.py": ("hello from mod1 v1", "hello from mod1 v2")}
SELFAPP_V2 = {"appversion.py": ('VERSION = "1"', 'VERSION = "2"')}
BIGAPP_V2 = {"bigapp/__init__.py": ('__version__ = "1"', '__version__ = "2"')}


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fp:
        for block in iter(lambda: fp.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@pytest.fixture(scope="session")
def hello_v2_onefile() -> Path:
    return build(variant(HELLO_APP, HELLO_V2), "onefile", name="hello")


@pytest.fixture(scope="session")
def hello_v2_onedir() -> Path:
    return build(variant(HELLO_APP, HELLO_V2), "onedir", name="hello")


@pytest.fixture(scope="session")
def bigapp_v2_onefile() -> Path:
    return build(variant(BIGAPP_APP, BIGAPP_V2), "onefile", name="bigapp")


@pytest.fixture(scope="session")
def selfapp_builds():
    """The self-updating app (it bundles this tree's pyzpatch), v1 and v2, one-file and one-folder."""
    v2 = variant(SELFAPP_APP, SELFAPP_V2)
    return {(mode, version): build(app, mode, name="selfapp")
            for mode in ("onefile", "onedir") for version, app in ((1, SELFAPP_APP), (2, v2))}


@pytest.fixture(scope="session")
def hello_onefile() -> Path:
    return build(HELLO_APP, "onefile", name="hello")


# The hello app plus `import pyzpatch.selfupdate` (this tree's pyzpatch bundled, built with the
# hook that pyzpatch's pyinstaller40 entry point registers): what self-update adds to a program.
HELLO_SELFUPDATE = {
    "include-packages.txt": "pyzpatch\n",
    "prog.py": ("import mod1\n", "import mod1\nfrom pyzpatch import selfupdate\n\nselfupdate.prepare()\n"),
}


@pytest.fixture(scope="session")
def hello_selfupdate_onefile() -> Path:
    return build(variant(HELLO_APP, HELLO_SELFUPDATE), "onefile", name="hello")


@pytest.fixture(scope="session")
def hello_onedir() -> Path:
    return build(HELLO_APP, "onedir", name="hello")


@pytest.fixture(scope="session")
def hello_sideload() -> Path:
    return build(HELLO_APP, "sideload", name="hello")


@pytest.fixture(scope="session")
def bigapp_onefile() -> Path:
    return build(BIGAPP_APP, "onefile", name="bigapp")


@pytest.fixture(scope="session")
def bigapp_onedir() -> Path:
    return build(BIGAPP_APP, "onedir", name="bigapp")


@pytest.fixture(scope="session")
def pyi5_python() -> str:
    """The Python of the PyInstaller 5.13 virtual environment that the test install step makes."""
    python = PYI5_VENV / "bin" / "python"
    if not python.exists():
        if os.environ.get("PYZPATCH_ALLOW_NO_PYI5"):
            pytest.skip("PyInstaller 5.13 environment not installed (PYZPATCH_ALLOW_NO_PYI5 set)")
        pytest.fail(f"{PYI5_VENV} is missing: run the test install step from README.md "
                    "(python fixtures/build.py --pyi5-venv)")
    return str(python)


@pytest.fixture(scope="session")
def hello_pyi5(pyi5_python) -> Path:
    return build(HELLO_APP, "onefile", name="hello", python=pyi5_python)


@pytest.fixture(scope="session")
def hello_pyi5_onedir(pyi5_python) -> Path:
    return build(HELLO_APP, "onedir", name="hello", python=pyi5_python)


@pytest.fixture(scope="session")
def all_builds(hello_onefile, hello_onedir, hello_sideload, bigapp_onefile, bigapp_onedir):
    """Every current-PyInstaller build, by a readable id."""
    return {
        "hello-onefile": hello_onefile,
        "hello-onedir": hello_onedir,
        "hello-sideload": hello_sideload,
        "bigapp-onefile": bigapp_onefile,
        "bigapp-onedir": bigapp_onedir,
    }


def archive_files(build_path: Path) -> list:
    """The files that hold a CArchive in a build: the executable, or the side-loaded .pkg."""
    if build_path.is_dir():
        exe = build_path / build_path.name
        return [exe]
    pkg = build_path.with_suffix(".pkg")
    return [pkg] if pkg.exists() else [build_path]


# --- Windows and macOS executables assembled from the Linux builds (fixtures/platforms.py) ---

from fixtures import platforms as _platforms  # noqa: E402

PLATFORM_VERSIONS = ("6.22.3", "5.13.2")


@pytest.fixture(scope="session")
def platform_wheels() -> Path:
    """The directory of PyInstaller's Windows and macOS wheels, which the test install step
    downloads (python fixtures/build.py --platform-wheels); tests never download them."""
    missing = _platforms.missing_wheels(PLATFORM_VERSIONS)
    if missing:
        names = ", ".join(f"pyinstaller {version} {tag}" for version, tag in missing)
        if os.environ.get("PYZPATCH_ALLOW_NO_PLATFORM_WHEELS"):
            pytest.skip(f"PyInstaller platform wheels not installed ({names}; "
                        "PYZPATCH_ALLOW_NO_PLATFORM_WHEELS set)")
        pytest.fail(f"PyInstaller platform wheels missing from {_platforms.WHEELS_DIR} ({names}): "
                    "run the test install step from README.md (python fixtures/build.py --platform-wheels)")
    return _platforms.WHEELS_DIR


@pytest.fixture(scope="session")
def platform_build(platform_wheels):
    """``make(source, layout, pyi_version="6.22.3") -> Path``: fixtures.platforms.build_platform
    (cached by content): a Windows or macOS executable assembled from the Linux build ``source``."""

    def make(source, layout: str, pyi_version: str = "6.22.3") -> Path:
        return _platforms.build_platform(source, layout, pyi_version)

    return make


@pytest.fixture(scope="session")
def hello_v2_pyi5(pyi5_python) -> Path:
    return build(variant(HELLO_APP, HELLO_V2), "onefile", name="hello", python=pyi5_python)


@pytest.fixture(scope="session")
def hello_v2_pyi5_onedir(pyi5_python) -> Path:
    return build(variant(HELLO_APP, HELLO_V2), "onedir", name="hello", python=pyi5_python)


def _platform_pairs(make, version, onefile, onedir) -> dict:
    return {layout: tuple(make(src, layout, version) for src in (onedir if layout == "win-onedir" else onefile))
            for layout in _platforms.LAYOUTS}


@pytest.fixture(scope="session")
def platform_pairs_pyi6(platform_build, hello_onefile, hello_v2_onefile, hello_onedir, hello_v2_onedir) -> dict:
    """{layout: (hello v1, hello v2)} for every platform layout, PyInstaller 6.22.3."""
    return _platform_pairs(platform_build, "6.22.3", (hello_onefile, hello_v2_onefile),
                           (hello_onedir, hello_v2_onedir))


@pytest.fixture(scope="session")
def platform_pairs_pyi5(platform_build, hello_pyi5, hello_v2_pyi5, hello_pyi5_onedir, hello_v2_pyi5_onedir) -> dict:
    """{layout: (hello v1, hello v2)} for every platform layout, PyInstaller 5.13.2 (Linux builds
    made with PyInstaller 5.13, bootloaders of the 5.13.2 wheels)."""
    return _platform_pairs(platform_build, "5.13.2", (hello_pyi5, hello_v2_pyi5),
                           (hello_pyi5_onedir, hello_v2_pyi5_onedir))


@pytest.fixture(scope="session")
def platform_pairs(platform_pairs_pyi6, platform_pairs_pyi5) -> dict:
    """{(layout, pyinstaller version): (hello v1, hello v2)} for every layout and both versions.
    A result is ``NAME.exe`` (win-onefile, win-onefile-signed), the folder ``NAME/`` holding
    ``NAME.exe`` and the rest of the Linux folder (win-onedir) or ``NAME`` (mac-onefile-*)."""
    pairs = {(layout, "6.22.3"): pair for layout, pair in platform_pairs_pyi6.items()}
    pairs.update({(layout, "5.13.2"): pair for layout, pair in platform_pairs_pyi5.items()})
    return pairs


# --- the fast tier: every test that needs a PyInstaller build is marked slow ---------------

# Fixtures that build PyInstaller programs (or need a build's environment). A test whose fixture
# closure holds any of them is marked ``slow`` at collection, so that the mark cannot be
# forgotten; ``python -m pytest -m "not slow"`` is the fast tier.
BUILD_FIXTURES = frozenset({
    "hello_onefile", "hello_onedir", "hello_sideload", "hello_v2_onefile", "hello_v2_onedir",
    "bigapp_onefile", "bigapp_onedir", "bigapp_v2_onefile", "selfapp_builds", "hello_selfupdate_onefile",
    "all_builds",
    "pyi5_python", "hello_pyi5", "hello_pyi5_onedir", "hello_v2_pyi5", "hello_v2_pyi5_onedir",
    "platform_build", "platform_pairs", "platform_pairs_pyi6", "platform_pairs_pyi5",
})


def pytest_sessionstart(session):
    """Compile pyzpatch's modules once. Where PYTHONDONTWRITEBYTECODE is set (this machine's
    environment sets it), every pyzpatch process a test starts would otherwise compile them from
    source again: 0.14 s of CPU a process (0.41 s against 0.27 s for ``import pyzpatch.cli``),
    over the suite's hundreds of processes. Imports still read a compiled file when the variable
    is set; it only stops them writing one. Each xdist worker runs this too: it is idempotent."""
    import compileall
    compileall.compile_dir(str(REPO / "pyzpatch"), quiet=1)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if BUILD_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
