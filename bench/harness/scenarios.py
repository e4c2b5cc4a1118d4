"""What the benchmarks build: scenario and build-spec types, the app variants (edited copies of
the fixture apps), pinned pip targets, and the catalogue of old/new pairs the benchmarks pick
from.

Builds go through fixtures.build (PyInstaller, cached by content in .cache/fixtures/); variant
app directories and pip targets live in .cache/bench/. A variant's directory is named by its
content, so every run builds the same bytes and the fixture cache hits.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional

from fixtures.build import APPS_DIR, BIGAPP_APP, HELLO_APP, build
from fixtures.platforms import build_platform

from .driver import BENCH_CACHE

VARIANTS = BENCH_CACHE / "variants"
DEPS = BENCH_CACHE / "deps"
PLATFORMS_CACHE = BENCH_CACHE / "platforms"
SELFAPP_APP = APPS_DIR / "selfapp"

LINUX_MODES = ("onefile", "onedir")
# Platform mode -> (the Linux mode it is assembled from, fixtures/platforms.py layout).
PLATFORM_MODES = {
    "win": ("onefile", "win-onefile"),
    "win-signed": ("onefile", "win-onefile-signed"),
    "win-onedir": ("onedir", "win-onedir"),
    "mac": ("onefile", "mac-onefile-x86_64"),
    "mac-universal2": ("onefile", "mac-onefile-universal2"),
}
MODES = LINUX_MODES + tuple(PLATFORM_MODES)
# The PyInstaller version whose platform wheel provides the Windows/macOS bootloaders.
PLATFORM_PYI = "6.22.3"


@dataclass
class BuildSpec:
    app_dir: Path
    name: str
    extra_args: tuple = ()
    env: Optional[Dict[str, str]] = None

    def build(self, mode: str) -> Path:
        """Build (cached) and return the executable: for onedir, dist/NAME/NAME; for a platform
        mode, the Linux build and then the Windows/macOS file assembled from it (for win-onedir,
        NAME.exe inside the NAME/ folder)."""
        linux_mode, layout = PLATFORM_MODES.get(mode, (mode, None))
        out = build(self.app_dir, linux_mode, name=self.name, extra_args=self.extra_args, env=self.env)
        if layout is None:
            return out / self.name if mode == "onedir" else out
        result = build_platform(out, layout, PLATFORM_PYI, cache_dir=PLATFORMS_CACHE)
        return result / (self.name + ".exe") if layout == "win-onedir" else result

    def folder(self) -> Path:
        """The whole one-folder build, dist/NAME/."""
        return self.build("onedir").parent


@dataclass
class Scenario:
    name: str
    title: str
    prepare: Callable[[], tuple]  # -> (old BuildSpec, new BuildSpec)
    platform_modes: tuple = ()  # the platform modes (PLATFORM_MODES) this scenario is measured in

    def modes(self, chosen) -> list:
        return [m for m in chosen if m in LINUX_MODES or m in self.platform_modes]


# ---------------------------------------------------------------------------
# Variants and pip targets
# ---------------------------------------------------------------------------


def variant(app: Path, edits: dict) -> Path:
    """A copy of ``app`` with ``edits`` ({relative path: (old text, new text), which must occur
    exactly once, or full new text, or None to delete}), kept at a path named by the app's files
    and the edits, so that the build cache hits across runs and a changed app makes a new copy."""
    h = hashlib.sha256(repr(sorted(edits.items())).encode())
    for path in sorted(app.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(app)).encode() + b"\0" + path.read_bytes())
    dest = VARIANTS / ("%s-%s" % (app.name, h.hexdigest()[:16]))
    if dest.exists():
        return dest
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(app, tmp, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for rel, change in edits.items():
        path = tmp / rel
        if change is None:
            path.unlink()
        elif isinstance(change, tuple):
            text = path.read_text(encoding="utf-8")
            if text.count(change[0]) != 1:
                raise RuntimeError("bench edit: expected exactly one %r in %s, found %d"
                                   % (change[0], rel, text.count(change[0])))
            path.write_text(text.replace(change[0], change[1]), encoding="utf-8")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(change, encoding="utf-8")
    tmp.rename(dest)
    return dest


def pip_target(name: str, requirements) -> Path:
    """Requirements installed (once) with pip --no-deps into their own directory."""
    target = DEPS / name
    if (target / ".bench-complete").is_file():
        return target
    tmp = target.with_name(target.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--no-deps", "--target", str(tmp), *requirements], check=True)
    (tmp / ".bench-complete").write_text("\n".join(requirements) + "\n")
    if target.exists():
        shutil.rmtree(target)
    os.rename(tmp, target)
    return target


def pip_app(scenario: str, app_name: str, prog_text: str, package: str, old_v: str, new_v: str,
            shared=(), extra_args=()) -> tuple:
    """(old, new) BuildSpecs of a one-file app ``prog.py`` using ``package`` at two versions.

    One app directory for both; only the directory holding the package differs. The package
    (and ``shared``, its pinned dependencies, one directory for both) are given as --paths and
    as PYTHONPATH for PyInstaller, so that its hooks' subprocesses also see these versions and
    not the ones installed in site-packages."""
    app = VARIANTS / scenario / app_name
    app.mkdir(parents=True, exist_ok=True)
    prog = app / "prog.py"
    if not prog.is_file() or prog.read_text(encoding="utf-8") != prog_text:
        prog.write_text(prog_text, encoding="utf-8")
    shared_dirs = [str(pip_target("%s-shared-deps" % package, shared))] if shared else []

    def spec(version):
        dirs = [str(pip_target("%s-%s" % (package, version), ["%s==%s" % (package, version)]))] + shared_dirs
        paths = tuple(x for d in dirs for x in ("--paths", d))
        return BuildSpec(app, app_name, paths + tuple(extra_args), {"PYTHONPATH": os.pathsep.join(dirs)})
    return spec(old_v), spec(new_v)


# ---------------------------------------------------------------------------
# The catalogue: (old BuildSpec, new BuildSpec) pairs
# ---------------------------------------------------------------------------


def hello_string():
    new = variant(HELLO_APP, {"mod1.py": ("hello from mod1 v1", "hello from mod1 v2")})
    return BuildSpec(HELLO_APP, "hello"), BuildSpec(new, "hello")


def one_function():
    # TransactionalStore.count_values, line ~922 of the 1,806-line engine.py: one added line
    # (so the line numbers of everything after it shift too, as in a real edit).
    new = variant(BIGAPP_APP, {"bigapp/engine.py": (
        "    def count_values(self, value):\n"
        "        return sum(1 for key in self.keys() if self.get(key) == value)\n",
        "    def count_values(self, value):\n"
        "        matches = [key for key in self.keys() if self.get(key) == value]\n"
        "        return len(matches)\n")})
    return BuildSpec(BIGAPP_APP, "bigapp"), BuildSpec(new, "bigapp")


SEEDED = {"PYTHONHASHSEED": "0"}


def one_function_seeded():
    # The same edit, both versions built with a fixed PYTHONHASHSEED (PyInstaller's documented
    # way to reproducible builds): base_library.zip then keeps its member order, so neither the
    # patch nor apply has to rebuild and re-compress it.
    old, new = one_function()
    return BuildSpec(old.app_dir, old.name, env=SEEDED), BuildSpec(new.app_dir, new.name, env=SEEDED)


EXTRAS_MODULE = '''\
"""A module added in the new version of bigapp (bench add-remove scenario)."""

import zlib


def checksum_line(text="bigapp"):
    return "checksum of %r: %08x" % (text, zlib.crc32(text.encode("utf-8")))
'''


def add_remove():
    # Added: bigapp.extras (imported by the entry script). Removed: bigapp.sub.report (its two
    # functions move into bigapp/sub/__init__.py).
    report = (BIGAPP_APP / "bigapp" / "sub" / "report.py").read_text(encoding="utf-8")
    body = report.split('"""', 2)[2].lstrip("\n")
    main = (BIGAPP_APP / "bigapp_main.py").read_text(encoding="utf-8")
    for old, new in (("from bigapp.sub.report import banner\n", "from bigapp.sub import banner\nfrom bigapp import extras\n"),
                     ('    print("done")\n', '    print(extras.checksum_line())\n    print("done")\n')):
        if main.count(old) != 1:
            raise RuntimeError("bench edit: expected exactly one %r in bigapp_main.py" % old)
        main = main.replace(old, new)
    new = variant(BIGAPP_APP, {
        "bigapp/extras.py": EXTRAS_MODULE,
        "bigapp/sub/report.py": None,
        "bigapp/sub/__init__.py": ("from .report import format_report  # noqa: F401\n", body),
        "bigapp_main.py": main,
    })
    return BuildSpec(BIGAPP_APP, "bigapp"), BuildSpec(new, "bigapp")


def entry_script():
    new = variant(BIGAPP_APP, {"bigapp_main.py": (
        '    print("done")\n', '    print("entry script changed in the new version")\n    print("done")\n')})
    return BuildSpec(BIGAPP_APP, "bigapp"), BuildSpec(new, "bigapp")


# The dependency scenario: a pure-Python package at two versions.
DEP_PACKAGE = "rich"
DEP_OLD, DEP_NEW = "13.3.5", "13.7.1"
# Its dependencies, pinned and shared by both builds (versions both rich versions accept), so
# the scenario does not depend on what happens to be installed in site-packages.
DEP_SHARED = ("markdown-it-py==2.2.0", "mdurl==0.1.2", "pygments==2.17.2")

DEP_PROG = '''\
"""Bench app for the dependency scenario: uses rich, whose version is what changes."""
from rich.console import Console
from rich.panel import Panel
from rich.table import Table


def main():
    table = Table(title="pyzpatch bench")
    table.add_column("module")
    table.add_column("role")
    table.add_row("rich.console", "output")
    table.add_row("rich.table", "tables")
    console = Console(width=60, color_system=None)
    console.print(Panel("dependency scenario"))
    console.print(table)


main()
'''


def dependency():
    # --collect-submodules takes all of the package's modules, as a real app using much of it
    # would. Optional imports that would drag in whatever this machine happens to have in
    # site-packages are excluded: IPython (rich's Jupyter support: jedi, matplotlib...), PIL
    # (pygments' image formatter) and numpy.
    return pip_app("dependency", "richapp", DEP_PROG, DEP_PACKAGE, DEP_OLD, DEP_NEW, shared=DEP_SHARED,
                   extra_args=("--collect-submodules", DEP_PACKAGE, "--exclude-module", "IPython",
                               "--exclude-module", "PIL", "--exclude-module", "numpy"))


# The dependency-added scenario: the two-file hello program becomes one that also imports
# requests and rich (rich at the dependency scenario's new version, with the same pinned
# dependencies; requests and its dependencies pinned here), each given as --paths and
# PYTHONPATH as in pip_app, so the build does not depend on site-packages.
DEPADD_REQUESTS = ("requests==2.32.3", "urllib3==2.2.3", "idna==3.10", "certifi==2024.8.30",
                   "charset-normalizer==3.4.0")

DEPADD_PROG = '''\
import mod1
import requests
from rich.console import Console
from rich.table import Table

mod1.hello()
session = requests.Session()
request = session.prepare_request(requests.Request("GET", "https://example.org/", params={"q": "pyzpatch"}))
table = Table(title="dependency added")
table.add_column("what")
table.add_column("value")
table.add_row("requests", requests.__version__)
table.add_row("url", request.url)
Console(width=60, color_system=None).print(table)
'''


def dependency_added():
    dirs = [str(pip_target("%s-%s" % (DEP_PACKAGE, DEP_NEW), ["%s==%s" % (DEP_PACKAGE, DEP_NEW)])),
            str(pip_target("%s-shared-deps" % DEP_PACKAGE, DEP_SHARED)),
            str(pip_target("requests-stack", DEPADD_REQUESTS))]
    args = tuple(x for d in dirs for x in ("--paths", d)) + (
        "--exclude-module", "IPython", "--exclude-module", "PIL", "--exclude-module", "numpy")
    new = variant(HELLO_APP, {"prog.py": DEPADD_PROG})
    return (BuildSpec(HELLO_APP, "hello"),
            BuildSpec(new, "hello", args, {"PYTHONPATH": os.pathsep.join(dirs)}))


def unchanged():
    return (BuildSpec(BIGAPP_APP, "bigapp"),
            BuildSpec(BIGAPP_APP, "bigapp", env={"PYZPATCH_BENCH_REBUILD": "2"}))


def unrelated():
    return BuildSpec(HELLO_APP, "hello"), BuildSpec(BIGAPP_APP, "bigapp")


# The dependency scenarios with a compiled extension, at two versions. PyYAML's upgrade
# rebuilds its C extension from scratch (6.0.2's wheels come from a newer Cython), the worst
# case for a binary diff; MarkupSafe's keeps the extension's code and changes its Python.
DEPX_PACKAGE = "pyyaml"
DEPX_OLD, DEPX_NEW = "6.0.1", "6.0.2"
DEPM_PACKAGE = "markupsafe"
DEPM_OLD, DEPM_NEW = "2.1.3", "2.1.5"

DEPX_PROG = '''\
"""Bench app for the dependency-ext scenario: uses PyYAML and its C extension (_yaml)."""
import yaml

DOC = """
name: pyzpatch bench
modules: [yaml, yaml._yaml]
nested: {a: 1, b: [true, null, 2.5]}
"""


def main():
    data = yaml.load(DOC, Loader=yaml.CSafeLoader)  # the C extension's loader
    print("yaml", yaml.__version__, "libyaml" if yaml.__with_libyaml__ else "pure")
    print(yaml.dump(data, Dumper=yaml.CSafeDumper, sort_keys=True).strip())
    print(yaml.safe_dump({"pure": [1, 2]}).strip())  # the pure-Python dumper


main()
'''

DEPM_PROG = '''\
"""Bench app for the dependency-ext-markupsafe scenario: uses MarkupSafe and its C extension."""
import markupsafe
from markupsafe import _speedups


def main():
    print("markupsafe", markupsafe.__version__, "speedups" if markupsafe.escape is _speedups.escape else "native")
    print(markupsafe.escape('<a href="x">&</a>'))
    print(markupsafe.Markup("<em>%s</em>") % "<b>")
    print(markupsafe.Markup("<p>a <!-- c --> b</p>").striptags())


main()
'''


def dependency_ext():
    return pip_app("dependency-ext", "yamlapp", DEPX_PROG, DEPX_PACKAGE, DEPX_OLD, DEPX_NEW)


def dependency_ext_markupsafe():
    return pip_app("dependency-ext-markupsafe", "msapp", DEPM_PROG, DEPM_PACKAGE, DEPM_OLD, DEPM_NEW)


# The self-updating example app (README): v2 differs from v1 in its version string.
SELFAPP_V2_EDIT = {"appversion.py": ('VERSION = "1"', 'VERSION = "2"')}


def selfapp():
    return BuildSpec(SELFAPP_APP, "selfapp"), BuildSpec(variant(SELFAPP_APP, SELFAPP_V2_EDIT), "selfapp")


# What `import pyzpatch.selfupdate` adds to a program: the hello app, and the same app importing
# it (the edit tests/conftest.py's HELLO_SELFUPDATE makes; this tree's pyzpatch is bundled and
# PyInstaller finds pyzpatch's hook through its pyinstaller40 entry point).
HELLO_SELFUPDATE_EDIT = {
    "include-packages.txt": "pyzpatch\n",
    "prog.py": ("import mod1\n", "import mod1\nfrom pyzpatch import selfupdate\n\nselfupdate.prepare()\n"),
}
# Empty hooks of the same names in a user hook folder take precedence over pyzpatch's (PyInstaller
# uses one hook per module, the user's first): a build as it was before pyzpatch shipped them.
NO_HOOKS = BENCH_CACHE / "no-pyzpatch-hooks"


def hello_pair():
    """(the hello app, the hello app importing pyzpatch.selfupdate)."""
    return BuildSpec(HELLO_APP, "hello"), BuildSpec(variant(HELLO_APP, HELLO_SELFUPDATE_EDIT), "hello")


def hello_selfupdate(*hidden_imports: str, hooks: bool = True) -> BuildSpec:
    """The hello app importing pyzpatch.selfupdate, with ``--hidden-import`` of each of
    ``hidden_imports``, and without pyzpatch's hooks unless ``hooks``."""
    args = [arg for name in hidden_imports for arg in ("--hidden-import", name)]
    if not hooks:
        NO_HOOKS.mkdir(parents=True, exist_ok=True)
        for name in ("hook-pyzpatch.py", "hook-pyzpatch.cli.py", "hook-bsdiff4.py"):
            (NO_HOOKS / name).write_text("# empty: stands in for pyzpatch's hook of this name\n")
        args += ["--additional-hooks-dir", str(NO_HOOKS)]
    return BuildSpec(variant(HELLO_APP, HELLO_SELFUPDATE_EDIT), "hello", extra_args=tuple(args))
