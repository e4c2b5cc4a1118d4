"""Benchmark of pyzpatch against whole-file bsdiff4, lzma and a plain copy.

    python bench/run.py [--quick] [--scenarios a,b] [--modes onefile,onedir,win,...] [--no-docs]

Builds each scenario's old and new executable with PyInstaller (cached by content in
.cache/fixtures/; variant app directories live in .cache/bench/variants/), then, for one-file
and one-folder builds (for one-folder, only the executable dist/NAME/NAME), measures:

* patch size: pyzpatch, whole-file bsdiff4, lzma (preset 9) of the new file, the new file;
* make: pyzpatch make_patch against bsdiff4.diff of the whole files, time and peak memory;
* apply: pyzpatch apply_patch against copying the file (shutil.copyfile + os.fsync of the
  copy), time, and apply's peak memory; and that the patched file is the new build, byte for
  byte (SHA-256).

Platform modes (only in the scenarios that list them in Scenario.platform_modes): the Linux
build is turned into a Windows or macOS executable by fixtures/platforms.py (assembled as
PyInstaller's EXE.assemble does, from the bootloaders of PyInstaller's platform wheels; cached
in .cache/bench/platforms/): win (win-onefile), win-signed (win-onefile-signed), win-onedir
(NAME.exe of the win-onedir folder, from the one-folder build), mac (mac-onefile-x86_64),
mac-universal2 (mac-onefile-universal2). They cannot run here: no smoke run; apply is checked
byte for byte against the assembled new file like every other row. Each platform row is also
compared with the Linux row it was made from (patch size, make time), and a platform patch
that is not structural is a failure (the layout was not recognised).

Every operation runs in a fresh worker process (bench/worker.py): times are taken inside the
worker around the operation only, peak memory is the worker's ru_maxrss from os.wait4. Times
are the median of 3 runs (1 with --quick), memory the largest of them.

Writes docs/bench.md and docs/bench.png (needs matplotlib) and prints the table. Exits 1 if
any patch could not be made or applied, or did not rebuild the new file exactly. Nothing is
asserted about speed or size: the issue's targets are reported, met or not.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fixtures.build import BIGAPP_APP, HELLO_APP, build  # noqa: E402
from fixtures.platforms import build_platform  # noqa: E402

BENCH_CACHE = REPO / ".cache" / "bench"
VARIANTS = BENCH_CACHE / "variants"
DEPS = BENCH_CACHE / "deps"
WORK = BENCH_CACHE / "work"
LZMA_CACHE = BENCH_CACHE / "lzma-sizes.json"
RESULTS_JSON = BENCH_CACHE / "results.json"
MATPLOTLIB_DIR = BENCH_CACHE / "matplotlib"
WORKER = REPO / "bench" / "worker.py"
LAUNCHER = REPO / "bench" / "launcher.py"
DOCS = REPO / "docs"

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
PLATFORMS_CACHE = BENCH_CACHE / "platforms"
# Platform targets, against the Linux row of the same scenario: patch size within this many
# bytes (plus, for win-signed, the new file's certificate table) and make time ratio at most.
PLATFORM_SIZE_SLACK = 64
PLATFORM_MAKE_RATIO = 1.25
MiB = 1024 * 1024

# The dependency scenario: a pure-Python package at two versions.
DEP_PACKAGE = "rich"
DEP_OLD, DEP_NEW = "13.3.5", "13.7.1"
# Its dependencies, pinned and shared by both builds (versions both rich versions accept), so
# the scenario does not depend on what happens to be installed in site-packages.
DEP_SHARED = ("markdown-it-py==2.2.0", "mdurl==0.1.2", "pygments==2.17.2")


# ---------------------------------------------------------------------------
# Scenario inputs: which app directories to build, and how
# ---------------------------------------------------------------------------


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


@dataclass
class Scenario:
    name: str
    title: str
    prepare: Callable[[], tuple]  # -> (old BuildSpec, new BuildSpec)
    platform_modes: tuple = ()  # the platform modes (PLATFORM_MODES) this scenario is measured in

    def modes(self, chosen) -> list:
        return [m for m in chosen if m in LINUX_MODES or m in self.platform_modes]


def _replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    count = text.count(old)
    if count != 1:
        raise RuntimeError("bench edit: expected exactly one %r in %s, found %d" % (old, path, count))
    path.write_text(text.replace(old, new), encoding="utf-8")


def _variant(scenario: str, base: Path, edit: Callable[[Path], None]) -> Path:
    """A fresh copy of ``base`` at a stable place, edited; same content on every run, so the
    fixture cache (keyed by the files' content) hits."""
    dest = VARIANTS / scenario / base.name
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(base, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    edit(dest)
    return dest


def prep_hello_string():
    def edit(d):
        _replace_once(d / "mod1.py", "hello from mod1 v1", "hello from mod1 v2")
    return BuildSpec(HELLO_APP, "hello"), BuildSpec(_variant("hello-string", HELLO_APP, edit), "hello")


def prep_one_function():
    # TransactionalStore.count_values, line ~922 of the 1,806-line engine.py: one added line
    # (so the line numbers of everything after it shift too, as in a real edit).
    def edit(d):
        _replace_once(
            d / "bigapp" / "engine.py",
            "    def count_values(self, value):\n"
            "        return sum(1 for key in self.keys() if self.get(key) == value)\n",
            "    def count_values(self, value):\n"
            "        matches = [key for key in self.keys() if self.get(key) == value]\n"
            "        return len(matches)\n",
        )
    return BuildSpec(BIGAPP_APP, "bigapp"), BuildSpec(_variant("one-function", BIGAPP_APP, edit), "bigapp")


EXTRAS_MODULE = '''\
"""A module added in the new version of bigapp (bench add-remove scenario)."""

import zlib


def checksum_line(text="bigapp"):
    return "checksum of %r: %08x" % (text, zlib.crc32(text.encode("utf-8")))
'''


SEEDED = {"PYTHONHASHSEED": "0"}


def prep_one_function_seeded():
    # The same edit, both versions built with a fixed PYTHONHASHSEED (PyInstaller's documented
    # way to reproducible builds): base_library.zip then keeps its member order, so neither the
    # patch nor apply has to rebuild and re-compress it.
    old, new = prep_one_function()
    return (BuildSpec(old.app_dir, old.name, env=SEEDED), BuildSpec(new.app_dir, new.name, env=SEEDED))


def prep_add_remove():
    # Added: bigapp.extras (imported by the entry script). Removed: bigapp.sub.report (its two
    # functions move into bigapp/sub/__init__.py).
    def edit(d):
        (d / "bigapp" / "extras.py").write_text(EXTRAS_MODULE, encoding="utf-8")
        report = d / "bigapp" / "sub" / "report.py"
        body = report.read_text(encoding="utf-8").split('"""', 2)[2]
        report.unlink()
        sub_init = d / "bigapp" / "sub" / "__init__.py"
        _replace_once(sub_init, "from .report import format_report  # noqa: F401\n", body.lstrip("\n"))
        main = d / "bigapp_main.py"
        _replace_once(main, "from bigapp.sub.report import banner\n", "from bigapp.sub import banner\n"
                      "from bigapp import extras\n")
        _replace_once(main, '    print("done")\n', '    print(extras.checksum_line())\n    print("done")\n')
    return BuildSpec(BIGAPP_APP, "bigapp"), BuildSpec(_variant("add-remove", BIGAPP_APP, edit), "bigapp")


def prep_entry_script():
    def edit(d):
        _replace_once(d / "bigapp_main.py", '    print("done")\n',
                      '    print("entry script changed in the new version")\n    print("done")\n')
    return BuildSpec(BIGAPP_APP, "bigapp"), BuildSpec(_variant("entry-script", BIGAPP_APP, edit), "bigapp")


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


def _pip_target(name: str, requirements) -> Path:
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


def prep_dependency():
    # The same app directory for both; only the directory holding the package differs. The
    # package and its (shared, pinned) dependencies are given as --paths and as PYTHONPATH for
    # PyInstaller, so that its hooks' subprocesses also see these versions and not the ones
    # installed in site-packages. --collect-submodules takes all of the package's modules, as a
    # real app using much of it would. Optional imports that would drag in whatever this machine
    # happens to have in site-packages are excluded: IPython (rich's Jupyter support: jedi,
    # matplotlib...), PIL (pygments' image formatter) and numpy.
    app = VARIANTS / "dependency" / "richapp"
    app.mkdir(parents=True, exist_ok=True)
    prog = app / "prog.py"
    if not prog.is_file() or prog.read_text(encoding="utf-8") != DEP_PROG:
        prog.write_text(DEP_PROG, encoding="utf-8")

    shared = str(_pip_target("%s-shared-deps" % DEP_PACKAGE, DEP_SHARED))

    def spec(version):
        d = str(_pip_target("%s-%s" % (DEP_PACKAGE, version), ["%s==%s" % (DEP_PACKAGE, version)]))
        return BuildSpec(app, "richapp",
                         ("--paths", d, "--paths", shared, "--collect-submodules", DEP_PACKAGE,
                          "--exclude-module", "IPython", "--exclude-module", "PIL",
                          "--exclude-module", "numpy"),
                         {"PYTHONPATH": os.pathsep.join([d, shared])})
    return spec(DEP_OLD), spec(DEP_NEW)


def prep_unchanged():
    return (BuildSpec(BIGAPP_APP, "bigapp"),
            BuildSpec(BIGAPP_APP, "bigapp", env={"PYZPATCH_BENCH_REBUILD": "2"}))


def prep_unrelated():
    return BuildSpec(HELLO_APP, "hello"), BuildSpec(BIGAPP_APP, "bigapp")


SCENARIOS = [
    Scenario("hello-string", "two-file program, printed string changed", prep_hello_string,
             tuple(PLATFORM_MODES)),
    Scenario("one-function", "one function edited in the middle of engine.py", prep_one_function,
             tuple(PLATFORM_MODES)),
    Scenario("one-function-seeded", "the same edit, both built with PYTHONHASHSEED=0",
             prep_one_function_seeded),
    Scenario("add-remove", "one module added, one removed", prep_add_remove),
    Scenario("entry-script", "entry-point script changed", prep_entry_script),
    Scenario("dependency", "%s %s -> %s" % (DEP_PACKAGE, DEP_OLD, DEP_NEW), prep_dependency,
             tuple(PLATFORM_MODES)),
    Scenario("unchanged", "unchanged rebuild of bigapp", prep_unchanged),
    Scenario("unrelated", "unrelated executables: hello -> bigapp", prep_unrelated),
]


# ---------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------


class WorkerError(RuntimeError):
    pass


class Launcher:
    """bench/launcher.py: starts each worker from a tiny process, so that the worker's
    ru_maxrss (which on Linux includes the peak RSS of whatever process exec'd it) is the
    worker's own and not this driver's."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-S", str(LAUNCHER)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1, cwd=str(REPO))

    def run(self, cmd, stdout, stderr) -> dict:
        req = {"cmd": [str(c) for c in cmd], "cwd": str(REPO), "stdout": str(stdout), "stderr": str(stderr)}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise WorkerError("the bench launcher died")
        return json.loads(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


_LAUNCHER: Optional[Launcher] = None


def run_worker(op: str, *args) -> dict:
    """Run one operation in a fresh process; its result plus its ru_maxrss (KiB)."""
    global _LAUNCHER
    if _LAUNCHER is None:
        _LAUNCHER = Launcher()
    WORK.mkdir(parents=True, exist_ok=True)
    result_path = WORK / "result.json"
    if result_path.exists():
        result_path.unlink()
    cmd = [sys.executable, str(WORKER), str(result_path), op, *map(str, args)]
    done = _LAUNCHER.run(cmd, WORK / "worker.stdout", WORK / "worker.stderr")
    if done["exit"] != 0:
        tail = (WORK / "worker.stderr").read_text(errors="replace").strip().splitlines()[-15:]
        raise WorkerError("%s failed (exit %d):\n  %s" % (op, done["exit"], "\n  ".join(tail)))
    with open(result_path) as fh:
        result = json.load(fh)
    result["maxrss_kib"] = done["maxrss_kib"]  # the worker's ru_maxrss from os.wait4, KiB on Linux
    return result


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(MiB), b""):  # small reads: keep this process lean
            h.update(block)
    return h.hexdigest()


def lzma_size(path: Path, digest: str) -> int:
    cache = json.loads(LZMA_CACHE.read_text()) if LZMA_CACHE.is_file() else {}
    if digest not in cache:
        cache[digest] = run_worker("lzma", path)["size"]
        LZMA_CACHE.parent.mkdir(parents=True, exist_ok=True)
        LZMA_CACHE.write_text(json.dumps(cache, indent=1, sort_keys=True))
    return cache[digest]


def smoke_run(exe: Path) -> dict:
    """Run a built executable once: does it start and exit 0?"""
    try:
        proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"ok": False, "detail": str(exc)}
    lines = (proc.stdout or "").strip().splitlines()
    return {"ok": proc.returncode == 0, "rc": proc.returncode,
            "last_line": lines[-1] if lines else "",
            "stderr_tail": (proc.stderr or "").strip().splitlines()[-5:]}


def pe_security_dir(path: Path) -> tuple:
    """(file offset, size) of a PE file's certificate table: data directory 4
    (IMAGE_DIRECTORY_ENTRY_SECURITY) of the optional header; (0, 0) when unsigned."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    (e_lfanew,) = struct.unpack_from("<I", head, 0x3C)
    if head[:2] != b"MZ" or head[e_lfanew:e_lfanew + 4] != b"PE\0\0":
        raise ValueError("%s is not a PE file" % path)
    opt = e_lfanew + 4 + 20  # PE signature, COFF file header
    (magic,) = struct.unpack_from("<H", head, opt)
    dirs = opt + {0x20B: 112, 0x10B: 96}[magic]  # PE32+ / PE32
    return struct.unpack_from("<II", head, dirs + 4 * 8)


def measure(scenario: Scenario, mode: str, old: Path, new: Path, repeats: int) -> dict:
    row = {"scenario": scenario.name, "title": scenario.title, "mode": mode,
           "old_path": str(old), "new_path": str(new),
           "old_size": old.stat().st_size, "new_size": new.stat().st_size, "errors": []}
    if mode in PLATFORM_MODES:
        row["linux_mode"], row["layout"] = PLATFORM_MODES[mode]
        if row["layout"].startswith("win-"):
            row["new_cert_table"] = list(pe_security_dir(new))  # [file offset, size]
    new_sha = sha256_file(new)
    row["new_sha256"] = new_sha
    patch = WORK / ("%s-%s.pyzpatch" % (scenario.name, mode))
    out = WORK / ("%s-%s.out" % (scenario.name, mode))

    makes, bsdiffs, applies, copies = [], [], [], []
    for _ in range(repeats):
        try:
            makes.append(run_worker("make", old, new, patch))
        except WorkerError as exc:
            row["errors"].append("make: %s" % exc)
            break
        bsdiffs.append(run_worker("bsdiff", old, new))
    if makes:
        sizes = {m["size"] for m in makes}
        if len(sizes) != 1:
            row["errors"].append("make gave different patch sizes across runs: %s" % sorted(sizes))
        last = makes[-1]
        row.update(pyzpatch_size=last["size"], structural=last["structural"], note=last["note"],
                   changes=last["changes"], anatomy=last.get("anatomy"))
    row["bsdiff_size"] = bsdiffs[-1]["size"] if bsdiffs else None

    identical = []
    row["applied_identical"] = False
    row["identical_builds"] = sha256_file(old) == new_sha
    if row["identical_builds"]:
        # apply refuses a target that already is the new file ("nothing to do"): by design.
        row["applied_identical"] = None
    elif makes:
        for _ in range(repeats):
            if out.exists():
                out.unlink()
            try:
                res = run_worker("apply", old, patch, out)
            except WorkerError as exc:
                row["errors"].append("apply: %s" % exc)
                break
            got = sha256_file(out) if out.exists() else None
            identical.append(got == new_sha and res["byte_identical"] and res["new_sha256"] == new_sha)
            applies.append(res)
            out.unlink()
            copies.append(run_worker("copy", old, out))
            out.unlink()
        row["applied_identical"] = bool(identical) and all(identical)
    if makes and row["applied_identical"] is False:
        row["errors"].append("the patched file is NOT byte-identical to the new build (SHA-256 differs)")
    if mode in PLATFORM_MODES and makes and not row["structural"]:
        row["errors"].append("the %s patch is NOT structural (the layout was not recognised); note: %s"
                             % (row["layout"], row.get("note")))

    def med(runs):
        return statistics.median(r["seconds"] for r in runs) if runs else None

    def peak(runs):
        return max(r["maxrss_kib"] for r in runs) * 1024 if runs else None

    def hwm(runs):
        vals = [r.get("vm_hwm_kib") for r in runs if r.get("vm_hwm_kib")]
        return max(vals) * 1024 if vals else None

    row.update(
        make_s=med(makes), bsdiff_s=med(bsdiffs), apply_s=med(applies), copy_s=med(copies),
        make_rss=peak(makes), bsdiff_rss=peak(bsdiffs), apply_rss=peak(applies), copy_rss=peak(copies),
        make_hwm=hwm(makes), bsdiff_hwm=hwm(bsdiffs), apply_hwm=hwm(applies),
        runs=len(makes),
    )
    row["lzma_size"] = lzma_size(new, new_sha)
    return row


def pyzpatch_source_digest() -> str:
    """A digest of pyzpatch's sources, to notice them changing while the benchmark runs."""
    h = hashlib.sha256()
    for path in sorted((REPO / "pyzpatch").rglob("*.py")):
        h.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def ratio(a, b):
    return a / b if a is not None and b else None


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------


def fmt_bytes(n) -> str:
    return "-" if n is None else "{:,}".format(n)


def fmt_mib(n) -> str:
    return "-" if n is None else "%.1f MiB" % (n / MiB)


def fmt_ratio(r) -> str:
    if r is None:
        return "-"
    if r < 0.5:
        return "%.3f (1/%.0f)" % (r, 1 / r) if r > 0 else "0"
    if r < 1:
        return "%.3f" % r
    return "%.2f" % r


def fmt_x(r) -> str:
    return "-" if r is None else "%.2fx" % r


def fmt_s(s) -> str:
    return "-" if s is None else ("%.3f s" % s if s < 10 else "%.1f s" % s)


def change_summary(changes) -> str:
    if not changes:
        return "-"
    counts: Dict[str, int] = {}
    pyz: Dict[str, int] = {}
    for c in changes:
        counts[c["action"]] = counts.get(c["action"], 0) + 1
        if ".pyz/" in c["path"] or c["path"].endswith(".pyz"):
            pyz[c["action"]] = pyz.get(c["action"], 0) + 1
    total = ", ".join("%d %s" % (v, k) for k, v in sorted(counts.items()))
    pyzs = ", ".join("%d %s" % (v, k) for k, v in sorted(pyz.items()))
    return total + ("; in PYZ: " + pyzs if pyzs else "")


def top_changes(changes, n=4) -> str:
    if not changes:
        return "-"
    ranked = sorted(changes, key=lambda c: c.get("patch_bytes") or 0, reverse=True)[:n]
    return "; ".join("%s %s (%s)" % (c["path"], c["action"], "%s B" % fmt_bytes(c["patch_bytes"])
                                     if c.get("patch_bytes") is not None else c.get("how") or "-")
                     for c in ranked)


def anatomy_text(a) -> str:
    return "-" if not a else "%s + %s B" % (fmt_bytes(a["header"]), fmt_bytes(a["body"]))


def streams_text(a) -> str:
    return "-" if not a else "ops %s, data %s, lit %s" % (fmt_bytes(a["ops"]), fmt_bytes(a["data"]),
                                                          fmt_bytes(a["lit"]))


MAIN_HEADER = ["Scenario", "Mode", "New file", "pyzpatch", "bsdiff4 (whole file)", "pyzpatch / bsdiff4",
               "lzma -9 of new file", "make time / bsdiff4", "make memory / bsdiff4",
               "apply time / copy", "apply peak memory", "applied byte-identical"]


def main_rows(rows) -> List[List[str]]:
    out = []
    for r in rows:
        out.append([
            r["scenario"], r["mode"], fmt_bytes(r["new_size"]), fmt_bytes(r.get("pyzpatch_size")),
            fmt_bytes(r.get("bsdiff_size")), fmt_ratio(ratio(r.get("pyzpatch_size"), r.get("bsdiff_size"))),
            fmt_bytes(r.get("lzma_size")), fmt_ratio(ratio(r.get("make_s"), r.get("bsdiff_s"))),
            fmt_ratio(ratio(r.get("make_rss"), r.get("bsdiff_rss"))),
            fmt_x(ratio(r.get("apply_s"), r.get("copy_s"))), fmt_mib(r.get("apply_rss")),
            {True: "yes", False: "**NO**", None: "n/a: old = new"}[r.get("applied_identical")],
        ])
    return out


DETAIL_HEADER = ["Scenario", "Mode", "Old file", "structural", "make", "bsdiff4", "make peak", "bsdiff4 peak",
                 "apply", "copy", "what changed (leaf changes)"]


def detail_rows(rows) -> List[List[str]]:
    out = []
    for r in rows:
        out.append([
            r["scenario"], r["mode"], fmt_bytes(r["old_size"]),
            {True: "yes", False: "no", None: "-"}[r.get("structural")],
            fmt_s(r.get("make_s")), fmt_s(r.get("bsdiff_s")), fmt_mib(r.get("make_rss")),
            fmt_mib(r.get("bsdiff_rss")), fmt_s(r.get("apply_s")), fmt_s(r.get("copy_s")),
            change_summary(r.get("changes")),
        ])
    return out


def md_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(header, rows) -> str:
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    fmt = lambda row: "  ".join(x.ljust(w) for x, w in zip(row, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def platform_pairs(rows) -> List[dict]:
    """Each measured platform row with the Linux row of the same scenario and run that it was
    assembled from: patch size difference and its allowance, make time ratio."""
    out = []
    for r in rows:
        if r["mode"] not in PLATFORM_MODES or r.get("pyzpatch_size") is None:
            continue
        lin = next((x for x in rows if x["scenario"] == r["scenario"] and x["mode"] == r["linux_mode"]
                    and x.get("pyzpatch_size") is not None), None)
        cert = (r.get("new_cert_table") or [0, 0])[1] if r["layout"] == "win-onefile-signed" else 0
        pair = {"row": r, "linux": lin, "cert": cert, "allowance": PLATFORM_SIZE_SLACK + cert,
                "diff": None, "size_ok": None, "time_ratio": None, "time_ok": None}
        if lin is not None:
            pair["diff"] = r["pyzpatch_size"] - lin["pyzpatch_size"]
            pair["size_ok"] = abs(pair["diff"]) <= pair["allowance"]
            pair["time_ratio"] = ratio(r.get("make_s"), lin.get("make_s"))
            pair["time_ok"] = pair["time_ratio"] is not None and pair["time_ratio"] <= PLATFORM_MAKE_RATIO
        out.append(pair)
    return out


def allowance_text(p) -> str:
    if not p["cert"]:
        return "%d" % p["allowance"]
    return "%s (%d + certificate table %s)" % (fmt_bytes(p["allowance"]), PLATFORM_SIZE_SLACK, fmt_bytes(p["cert"]))


PLATFORM_HEADER = ["Scenario", "Layout", "patch", "Linux patch", "difference (bytes)", "allowance",
                   "make time / Linux make time"]


def platform_rows(rows) -> List[List[str]]:
    out = []
    for p in platform_pairs(rows):
        r, lin = p["row"], p["linux"]
        out.append([
            r["scenario"], "%s (%s, against %s)" % (r["mode"], r["layout"], r["linux_mode"]),
            fmt_bytes(r["pyzpatch_size"]) + ("" if r.get("structural") else " (NOT structural)"),
            fmt_bytes(lin["pyzpatch_size"]) if lin else "- (not measured)",
            "-" if p["diff"] is None else "%+d" % p["diff"], allowance_text(p),
            "-" if p["time_ratio"] is None else "%.2f (%s / %s)" % (
                p["time_ratio"], fmt_s(r.get("make_s")), fmt_s(lin.get("make_s"))),
        ])
    return out


def targets(rows) -> List[tuple]:
    """(target, row label, value, met) for the issue's targets."""
    out = []

    def find(scenario, mode):
        for r in rows:
            if r["scenario"] == scenario and r["mode"] == mode and r.get("pyzpatch_size") is not None:
                return r
        return None

    for mode in MODES:
        r = find("one-function", mode)
        if r:
            q = ratio(r["pyzpatch_size"], r["bsdiff_size"])
            out.append(("one-function patch <= 1/30 of bsdiff4", mode, fmt_ratio(q), q <= 1 / 30))
        r = find("dependency", mode)
        if r:
            q = ratio(r["pyzpatch_size"], r["bsdiff_size"])
            out.append(("dependency upgrade patch <= 1/8 of bsdiff4", mode, fmt_ratio(q), q <= 1 / 8))
        r = find("unchanged", mode)
        if r:
            out.append(("unchanged rebuild patch <= 200 bytes", mode, "%d bytes" % r["pyzpatch_size"],
                        r["pyzpatch_size"] <= 200))
        r = find("hello-string", mode)
        if r:
            out.append(("two-file program patch < bsdiff4", mode,
                        "%s vs %s bytes" % (fmt_bytes(r["pyzpatch_size"]), fmt_bytes(r["bsdiff_size"])),
                        r["pyzpatch_size"] < r["bsdiff_size"]))
    for r in rows:
        # Not for unrelated executables: there is no structure to share, and no target for them.
        if r["mode"] != "onefile" or r.get("make_s") is None or r["scenario"] == "unrelated":
            continue
        t = ratio(r["make_s"], r["bsdiff_s"])
        m = ratio(r["make_rss"], r["bsdiff_rss"])
        out.append(("one-file make <= 1/3 of bsdiff4's time and less memory", r["scenario"],
                    "time %s, memory %s" % (fmt_ratio(t), fmt_ratio(m)), t <= 1 / 3 and m < 1))
    for r in rows:
        if r.get("apply_s") is None:
            continue
        t = ratio(r["apply_s"], r["copy_s"])
        out.append(("apply <= 3x a plain copy", "%s/%s" % (r["scenario"], r["mode"]), fmt_x(t), t <= 3))
    for r in rows:
        if r["mode"] == "onefile" and r.get("apply_rss") is not None:
            out.append(("apply peak memory < 100 MiB (one-file, %.1f MiB file)" % (r["new_size"] / MiB),
                        r["scenario"], fmt_mib(r["apply_rss"]), r["apply_rss"] < 100 * MiB))
    for p in platform_pairs(rows):
        r, lin = p["row"], p["linux"]
        if lin is None:  # the Linux row was not measured in this run (--modes): nothing to compare
            continue
        where = "%s/%s vs %s" % (r["scenario"], r["mode"], lin["mode"])
        out.append(("platform patch within %s bytes of the Linux patch" % (
            PLATFORM_SIZE_SLACK if not p["cert"] else "%d + certificate table" % PLATFORM_SIZE_SLACK),
            where, "%s vs %s bytes (%+d, allowed %s)" % (
                fmt_bytes(r["pyzpatch_size"]), fmt_bytes(lin["pyzpatch_size"]), p["diff"], fmt_bytes(p["allowance"])),
            p["size_ok"]))
        out.append(("platform make time <= %.2fx the Linux make time" % PLATFORM_MAKE_RATIO, where,
                    "-" if p["time_ratio"] is None else "%.2fx (%s vs %s)" % (
                        p["time_ratio"], fmt_s(r.get("make_s")), fmt_s(lin.get("make_s"))),
                    bool(p["time_ok"])))
        out.append(("platform patch is structural", where,
                    "yes" if r.get("structural") else "no: %s" % (r.get("note") or "-"), bool(r.get("structural"))))
    return out


def machine_info() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    except OSError:
        nproc = str(len(os.sched_getaffinity(0)))
    from importlib.metadata import version
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                             text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "pyzpatch"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        rev = rev + (" (pyzpatch/ modified)" if dirty else "")
    except OSError:
        rev = "unknown"
    return {
        "nproc": nproc, "cpu": cpu, "mem": mem,
        "python": platform.python_version(), "pyinstaller": version("pyinstaller"),
        "bsdiff4": version("bsdiff4"), "kernel": platform.release(), "commit": rev,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def copy_rate(rows) -> str:
    rates = [r["new_size"] / r["copy_s"] / 1e6 for r in rows if r.get("copy_s")]
    return "{:,.0f}".format(statistics.median(rates)) if rates else "?"


def write_markdown(path: Path, rows, info, args, repeats, total_s, noop, driver_rss, rss_mismatch, problems,
                   smoke):
    lines = [
        "# pyzpatch benchmark",
        "",
        "Generated by `python bench/run.py%s` on %s; the whole run took %.0f s." % (
            " --quick" if args.quick else "", info["date"], total_s),
        "",
        "Machine: %s CPUs (`nproc`), %s, %s RAM, Linux %s; Python %s, PyInstaller %s, bsdiff4 %s; "
        "pyzpatch at %s." % (info["nproc"], info["cpu"],
                             "%.0f GiB" % (info["mem"] / 1024**3) if info["mem"] else "?", info["kernel"],
                             info["python"], info["pyinstaller"], info["bsdiff4"], info["commit"]),
        "",
        "## What is measured",
        "",
        "For each scenario the old and the new program are built with PyInstaller as a one-file "
        "executable (`onefile`) and as a one-folder build (`onedir`; only its executable "
        "`dist/NAME/NAME` is diffed, not the folder).",
        "",
    ]
    if any(r["mode"] in PLATFORM_MODES for r in rows):
        lines += [platform_paragraph(rows), ""]
    lines += [
        "- **pyzpatch**: size of the patch from `pyzpatch.make_patch(old, new)`.",
        "- **bsdiff4 (whole file)**: `len(bsdiff4.diff(old, new))` of the two whole files "
        "(standard BSDIFF40 with bz2).",
        "- **lzma -9 of new file**: `len(lzma.compress(new, preset=9))`: what sending the whole new "
        "file compressed would cost.",
        "- **make time / bsdiff4, make memory / bsdiff4**: `make_patch` against whole-file "
        "`bsdiff4.diff` in the same run (each includes reading both files); memory is peak RSS.",
        "- **apply time / copy**: `apply_patch(old, patch, output=new_file)` against a plain copy "
        "of the old file, `shutil.copyfile` followed by `os.fsync` of the copy. apply also fsyncs "
        "what it writes (and, unlike the baseline, also the directory), so a copy with fsync is the "
        "fair baseline. Files are in the page cache (warm) for both; on this machine the copy ran at "
        "%s MB/s (median over the rows), so apply's fixed costs (hashing the old and the new file, "
        "re-compressing changed entries) weigh a lot against it." % copy_rate(rows),
        "- **apply peak memory**: peak RSS of the process running `apply_patch`, Python interpreter "
        "included (a worker that only imports pyzpatch and bsdiff4 peaks at %s)." % fmt_mib(noop),
        "- **applied byte-identical**: the patched file's SHA-256 equals the new build's, on every run.",
        "",
        "Each operation runs in its own fresh process (`bench/worker.py`); times are taken inside it "
        "around the operation only (not interpreter start-up), peak memory is that process's "
        "`ru_maxrss` from `os.wait4`. Workers are started by a tiny launcher process "
        "(`bench/launcher.py`), because on Linux a child's `ru_maxrss` is at least the peak RSS of "
        "the process that exec'd it (the benchmark driver peaked at %s); each worker's `ru_maxrss` "
        "was checked against its own `VmHWM` (%s). Times are the median of %d run%s, memory the "
        "largest. Ratios below 1 favour pyzpatch for size and make; apply is compared with a copy." % (
            fmt_mib(driver_rss), "they agree" if not rss_mismatch else
            "**they differ for: %s**" % ", ".join(rss_mismatch), repeats, "" if repeats == 1 else "s"),
        "",
        "Scenarios:",
        "",
    ]
    for s in SCENARIOS:
        if any(r["scenario"] == s.name for r in rows):
            lines.append("- `%s`: %s" % (s.name, s.title))
    lines += [
        "",
        "## Results",
        "",
        md_table(MAIN_HEADER, main_rows(rows)),
        "",
        "Absolute numbers (times are medians, memory peaks):",
        "",
        md_table(DETAIL_HEADER, detail_rows(rows)),
        "",
    ]
    if platform_pairs(rows):
        lines += [
            "### Platform layouts against Linux",
            "",
            "Each Windows/macOS row against the Linux row of the same scenario in this run that it "
            "was assembled from (`onefile` for the one-file layouts, `onedir` for `win-onedir`). "
            "Targets: patch size within %d bytes of the Linux patch (for `win-signed`, %d bytes plus "
            "the size of the new file's certificate table, read from its PE security data "
            "directory), and `make` time at most %.2fx the Linux `make` time (medians of the same "
            "number of runs)." % (PLATFORM_SIZE_SLACK, PLATFORM_SIZE_SLACK, PLATFORM_MAKE_RATIO),
            "",
            md_table(PLATFORM_HEADER, platform_rows(rows)),
            "",
        ]
    lines += [
        "## The issue's targets",
        "",
        md_table(["Target", "Where", "Measured", "Met"],
                 [[t, w, v, "yes" if ok else "**no**"] for t, w, v, ok in targets(rows)]),
        "",
        "## Largest parts of each patch",
        "",
        "What a patch is made of: a fixed header (sizes, both files' SHA-256, an 8-byte content "
        "digest, CRC-32) and one compressed body holding three streams (ops: structure, orders, "
        "bsdiff controls; data: difference bytes; lit: literal bytes), sized below before "
        "compression. Changes are listed as `pyzpatch show` lists them, largest body first.",
        "",
        md_table(["Scenario", "Mode", "patch = header + compressed body", "body streams before compression",
                  "note", "largest changes (body bytes before compression)"],
                 [[r["scenario"], r["mode"], anatomy_text(r.get("anatomy")), streams_text(r.get("anatomy")),
                   r.get("note") or "-", top_changes(r.get("changes"))] for r in rows]),
        "",
    ]
    bad_smoke = [p for p, s in smoke.items() if s["ok"] is False]
    lines.append("Every built Linux executable was run once and exited 0." if not bad_smoke else
                 "**Built executables that did not run:** " + ", ".join(bad_smoke))
    lines.append("")
    lines += [md_table(["Mode", "distinct executables built", "smoke run"], smoke_rows(smoke)), ""]
    if problems:
        lines += ["## FAILURES", ""] + ["- **%s**" % p for p in problems] + [""]
    lines += ["![patch sizes](bench.png)", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def platform_paragraph(rows) -> str:
    used = [m for m in PLATFORM_MODES if any(r["mode"] == m for r in rows)]
    scen = [s.name for s in SCENARIOS if any(r["scenario"] == s.name and r["mode"] in PLATFORM_MODES
                                             for r in rows)]
    return (
        "Windows and macOS layouts (modes %s; scenarios %s): the Linux build of the scenario is "
        "turned into a Windows or macOS executable by `fixtures/platforms.py`, exactly as "
        "PyInstaller's `EXE.assemble` assembles one on those systems, from the bootloaders in "
        "PyInstaller %s's own platform wheels and the Linux build's PKG. `win` is `NAME.exe` "
        "(`Windows-64bit-intel/run.exe` + PKG, then the PE build timestamp set and the PE checksum "
        "recomputed with PyInstaller's `winutils`); `win-signed` is that file Authenticode-signed "
        "with `osslsigncode` (a certificate table appended after the PKG, the security data "
        "directory pointing at it, the checksum recomputed); `win-onedir` is `NAME.exe` of a "
        "Windows one-folder build, from the Linux one-folder build; `mac` is the x86_64 slice of "
        "the macOS bootloader and `mac-universal2` the whole fat (x86_64 + arm64) one, each with "
        "a new Mach-O UUID (`LC_UUID`, PyInstaller's `update_exe_identifier`) and the PKG "
        "appended, with `__LINKEDIT` and the string table grown to cover it "
        "(`fix_exe_for_code_signing`; the final `codesign` step is not reproduced). These files cannot be executed here, so apply is checked "
        "byte for byte against the assembled new file (SHA-256), as every other row is. A "
        "platform patch that is not structural counts as a failure: it would mean pyzpatch did "
        "not recognise the layout." % (
            ", ".join("`%s` (`%s`)" % (m, PLATFORM_MODES[m][1]) for m in used),
            ", ".join("`%s`" % n for n in scen), PLATFORM_PYI))


def smoke_rows(smoke) -> List[List[str]]:
    out = []
    for mode in MODES:
        runs = [s for s in smoke.values() if s.get("mode") == mode]
        if not runs:
            continue
        if mode in PLATFORM_MODES:
            what = "not runnable here (%s)" % ("Windows" if mode.startswith("win") else "macOS")
        else:
            bad = sum(1 for s in runs if s["ok"] is False)
            what = "all exited 0" if not bad else "**%d did not run**" % bad
        out.append([mode, str(len(runs)), what])
    return out


def write_chart(path: Path, rows) -> None:
    try:
        import matplotlib
    except ImportError:
        # Or matplotlib installed apart from site-packages, for this driver process only:
        # pip install --target .cache/bench/matplotlib matplotlib
        if not MATPLOTLIB_DIR.is_dir():
            raise
        sys.path.append(str(MATPLOTLIB_DIR))
        import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # One panel per Linux mode, one for all platform rows (labelled scenario / mode).
    panels = [(m, [r for r in rows if r["mode"] == m]) for m in LINUX_MODES]
    panels.append(("platform", [r for r in rows if r["mode"] in PLATFORM_MODES]))  # scenario by scenario
    panels = [(m, prow) for m, prow in panels if prow]
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 4.2 * len(panels)), squeeze=False)
    series = [("pyzpatch", "pyzpatch_size", "#1b7837"), ("bsdiff4 (whole file)", "bsdiff_size", "#2166ac"),
              ("lzma -9 of new file", "lzma_size", "#b2182b")]
    width = 0.27
    titles = {"onefile": "one-file executables",
              "onedir": "one-folder builds' executables (dist/NAME/NAME)",
              "platform": "Windows and macOS executables (assembled from the Linux builds)"}
    for ax, (mode, mrows) in zip(axes[:, 0], panels):
        xs = range(len(mrows))
        for i, (label, key, color) in enumerate(series):
            vals = [max(r.get(key) or 0, 1) for r in mrows]
            bars = ax.bar([x + (i - 1) * width for x in xs], vals, width, label=label, color=color)
            for b, v in zip(bars, vals):
                text = "%d B" % v if v < 10_000 else ("%.0f KB" % (v / 1000) if v < 10**6 else "%.1f MB" % (v / 1e6))
                ax.annotate(text, (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom",
                            fontsize=6.5, rotation=90, xytext=(0, 2), textcoords="offset points")
        ax.set_yscale("log")
        ax.set_xticks(list(xs))
        # Slanted labels: long scenario names would run into each other.
        labels = [r["scenario"] if mode != "platform" else "%s / %s" % (r["scenario"], r["mode"]) for r in mrows]
        ax.set_xticklabels(labels, rotation=20, ha="right", rotation_mode="anchor", fontsize=8)
        ax.set_ylabel("bytes (log scale)")
        ax.set_ylim(top=max(max(r.get("lzma_size") or 1, r.get("bsdiff_size") or 1) for r in mrows) * 100)
        ax.set_title("Patch size per scenario: %s" % titles[mode])
        ax.grid(axis="y", which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="upper center", ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one run per measurement instead of three")
    parser.add_argument("--scenarios", help="comma-separated subset of: " + ",".join(s.name for s in SCENARIOS))
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of " + ",".join(MODES)
                        + " (platform modes only run in the scenarios that list them)")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/bench.md and docs/bench.png")
    args = parser.parse_args(argv)

    started = time.monotonic()
    repeats = 1 if args.quick else 3
    chosen = SCENARIOS
    if args.scenarios:
        names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
        known = {s.name: s for s in SCENARIOS}
        unknown = [n for n in names if n not in known]
        if unknown:
            parser.error("unknown scenario(s) %s; choose from %s" % (", ".join(unknown), ", ".join(known)))
        chosen = [s for s in SCENARIOS if s.name in names]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if any(m not in MODES for m in modes):
        parser.error("--modes takes a subset of: " + ", ".join(MODES))

    WORK.mkdir(parents=True, exist_ok=True)
    source_at_start = pyzpatch_source_digest()
    noop = max(run_worker("noop")["maxrss_kib"] for _ in range(2)) * 1024

    rows, problems, smoke = [], [], {}
    for scenario in chosen:
        old_spec, new_spec = scenario.prepare()
        for mode in scenario.modes(modes):
            t0 = time.monotonic()
            print("[bench] %s/%s: building..." % (scenario.name, mode), file=sys.stderr, flush=True)
            old, new = old_spec.build(mode), new_spec.build(mode)
            for exe in (old, new):
                if str(exe) in smoke:
                    continue
                if mode in PLATFORM_MODES:  # a Windows/macOS executable: cannot run here
                    smoke[str(exe)] = {"ok": None, "mode": mode, "detail": "not runnable here"}
                else:
                    smoke[str(exe)] = dict(smoke_run(exe), mode=mode)
                    if not smoke[str(exe)]["ok"]:
                        print("[bench] WARNING: %s did not run: %s" % (exe, smoke[str(exe)]), file=sys.stderr)
            print("[bench] %s/%s: built in %.0f s, measuring..." % (scenario.name, mode, time.monotonic() - t0),
                  file=sys.stderr, flush=True)
            row = measure(scenario, mode, old, new, repeats)
            rows.append(row)
            for err in row["errors"]:
                msg = "%s/%s: %s" % (scenario.name, mode, err)
                problems.append(msg)
                print("\n!!!!! BENCH FAILURE: %s\n" % msg, file=sys.stderr, flush=True)
            print("[bench] %s/%s: pyzpatch %s B, bsdiff4 %s B (%.0f s)" % (
                scenario.name, mode, fmt_bytes(row.get("pyzpatch_size")), fmt_bytes(row.get("bsdiff_size")),
                time.monotonic() - t0), file=sys.stderr, flush=True)

    if _LAUNCHER is not None:
        _LAUNCHER.close()
    if pyzpatch_source_digest() != source_at_start:
        msg = ("pyzpatch/ sources changed while the benchmark ran: the results mix versions "
               "(and a make that differs between runs may be only that); run it again")
        problems.append(msg)
        print("\n!!!!! BENCH WARNING: %s\n" % msg, file=sys.stderr, flush=True)
    # Sanity check of the memory measurement: a child's ru_maxrss includes the peak RSS of the
    # process that exec'd it (the launcher, kept tiny), so it should equal the worker's VmHWM.
    driver_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rss_mismatch = []
    for r in rows:
        for what in ("make", "bsdiff", "apply"):
            rss, hwm = r.get(what + "_rss"), r.get(what + "_hwm")
            if rss and hwm and rss > hwm * 1.02 + MiB:
                rss_mismatch.append("%s/%s %s" % (r["scenario"], r["mode"], what))
                print("[bench] note: %s/%s %s ru_maxrss %s > VmHWM %s" % (
                    r["scenario"], r["mode"], what, fmt_mib(rss), fmt_mib(hwm)), file=sys.stderr)

    total_s = time.monotonic() - started
    info = machine_info()
    RESULTS_JSON.write_text(json.dumps({"machine": info, "rows": rows, "noop_rss": noop,
                                        "driver_rss": driver_rss, "rss_mismatch": rss_mismatch, "smoke": smoke, "problems": problems,
                                        "total_seconds": total_s}, indent=1))

    print()
    print("pyzpatch benchmark: %s CPUs, %s, Python %s, PyInstaller %s, %s; %d run(s) per measurement" % (
        info["nproc"], info["cpu"], info["python"], info["pyinstaller"], info["date"], repeats))
    print()
    print(text_table(MAIN_HEADER, main_rows(rows)))
    print()
    print(text_table(DETAIL_HEADER, detail_rows(rows)))
    print()
    if platform_pairs(rows):
        print("Platform layouts against Linux:")
        print(text_table(PLATFORM_HEADER, platform_rows(rows)))
        print()
    print("Targets:")
    for t, w, v, ok in targets(rows):
        print("  [%s] %s -- %s: %s" % ("met" if ok else "NOT MET", t, w, v))
    if not args.no_docs:
        DOCS.mkdir(exist_ok=True)
        write_markdown(DOCS / "bench.md", rows, info, args, repeats, total_s, noop, driver_rss, rss_mismatch,
                       problems, smoke)
        try:
            write_chart(DOCS / "bench.png", rows)
            print("\nwrote %s and %s" % (DOCS / "bench.md", DOCS / "bench.png"))
        except ImportError:
            print("\nwrote %s; matplotlib is not installed: %s not written (pip install matplotlib, or "
                  "pip install --target %s matplotlib)" % (DOCS / "bench.md", DOCS / "bench.png",
                                                           MATPLOTLIB_DIR.relative_to(REPO)), file=sys.stderr)
    print("total run time: %.0f s" % total_s)
    if problems:
        print("\n!!!!! %d BENCH FAILURE(S):" % len(problems), file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
