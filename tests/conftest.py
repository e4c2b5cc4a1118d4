"""Shared test fixtures: real PyInstaller builds (cached by content) and a CLI runner."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fixtures.build import BIGAPP_APP, HELLO_APP, build  # noqa: E402

PYI5_VENV = REPO / ".venv-pyi5"


class CliResult:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr


def run_cli(*args, cwd=None, timeout=300) -> CliResult:
    """Run ``python -m pyzpatch ARGS`` as a real process."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-m", "pyzpatch", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout, env=env)
    return CliResult(proc)


def run_program(path, *args, timeout=120) -> str:
    proc = subprocess.run([str(path), *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="session")
def hello_onefile() -> Path:
    return build(HELLO_APP, "onefile", name="hello")


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
