"""Benchmark of a big one-folder build: a data-science app (numpy, scipy, pandas, matplotlib,
pyarrow; about 400 MB in about 2,000 files) whose pandas and matplotlib are upgraded.

    python bench/bigbundle.py [--quick] [--with-bsdiff] [--build-only] [--no-docs]

Needs the ``bench`` extra (``pip install -e '.[bench]'``), network access to PyPI (for the two
build venvs, once), and ``xdelta3`` (Debian/Ubuntu: ``apt-get install -y xdelta3``) and ``zstd``
(``apt-get install -y zstd``) on PATH for the references; a missing tool leaves its reference out.

Builds (heavy: minutes each; cached by content in .cache/bigbundle/, never part of the test
suite): two venvs made with ``python3 -m venv`` from this interpreter, each with a fully pinned
requirement list (numpy, scipy, pyarrow and every other dependency the same in both; old: pandas
2.2.2 and matplotlib 3.9.2, new: pandas 2.2.3 and matplotlib 3.9.3; PyInstaller and
pyinstaller-hooks-contrib at the versions of the environment running this bench), and in each a
small app (APP_SOURCE: imports the five, prints their versions and a computed value, writes a PNG
with matplotlib's Agg backend to a temporary folder) built ``--onedir --noconfirm`` with the
venv's PyInstaller. A build is keyed by the pinned requirement list, the app source, the
PyInstaller version and the Python version; it is rebuilt only when its key changes. Each build
is timed once, when it is made, and that time is reported.

Measured, each operation in a fresh process (bench/harness/worker.py, started by
bench/harness/launcher.py: times inside the process around the operation only, peak memory the
process's ru_maxrss from os.wait4, interpreter included):

* ``pyzpatch.make_folder_patch(old_dir, new_dir)``: the patch's size, make's time and peak memory;
* ``pyzpatch.apply_folder_patch(copy_of_old, patch)`` on a fresh copy of the old folder each run:
  time and peak memory; the patched folder must equal the new build (folder hash over every path,
  kind, mode, link target and content) and the patched program must print what the new build
  prints;
* the largest changed (or added) file, for the target on apply's memory;
* references on uncompressed tars of both folders (sorted, metadata normalized as in
  bench/folders.py): ``xdelta3 -9 -e -s old.tar new.tar OUT`` and
  ``zstd -19 --long=31 --patch-from=old.tar new.tar -o OUT`` (size, time, peak memory; each
  decoded once and checked against the new tar), and ``lzma.compress(new_tar, preset=9)`` (xz -9;
  size only, cached by content);
* with ``--with-bsdiff`` only: ``bsdiff4.diff(old_tar, new_tar)``. Off by default: bsdiff's
  suffix sort of a 400 MB tar needs gigabytes of memory and hours.

Times are the median of 3 runs (1 with --quick), memory the largest. Writes
.cache/bench/bigbundle-results.json and docs/bench-bigbundle.md and prints it. Exits 1 if a
patch could not be made or applied or did not rebuild the new folder exactly; the targets (make
under 30 s, the patch at most 1/2.5 of xdelta3 -9's, apply's peak memory at most 64 MiB plus 4
times the largest changed file) are reported, never asserted. pyzpatch's source digest is taken
at the start and the end; a run during which pyzpatch/ changed is flagged.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path
from typing import List, Optional

from folders import folder_files, folder_id, make_tar, summarize_changes, what_changed
from harness import driver as D
from harness import report as R

CACHE = D.REPO / ".cache" / "bigbundle"
BWORK = D.WORK / "bigbundle"
DOC = D.DOCS / "bench-bigbundle.md"
RESULTS_JSON = D.BENCH_CACHE / "bigbundle-results.json"
APP_NAME = "dsapp"
MiB = D.MiB

# Everything both venvs hold, pinned (the closure pip resolves for the old set; the new set
# resolves to the same), so that the two builds differ only by the upgrade.
COMMON = [
    "numpy==1.26.4", "scipy==1.13.1", "pyarrow==17.0.0",
    "contourpy==1.3.0", "cycler==0.12.1", "fonttools==4.54.1", "kiwisolver==1.4.7", "packaging==24.1",
    "pillow==10.4.0", "pyparsing==3.1.4", "python-dateutil==2.9.0.post0", "six==1.16.0",
    "pytz==2024.2", "tzdata==2024.2", "altgraph==0.17.5", "setuptools==84.2.1",
]
OLD_PINS = ["pandas==2.2.2", "matplotlib==3.9.2"]
NEW_PINS = ["pandas==2.2.3", "matplotlib==3.9.3"]

APP_SOURCE = '''\
"""pyzpatch bench/bigbundle.py: a tiny data-science app (numpy, scipy, pandas, matplotlib, pyarrow)."""
import os
import tempfile

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import scipy  # noqa: E402
import scipy.linalg  # noqa: E402
import scipy.special  # noqa: E402


def main():
    for mod in (np, scipy, pd, matplotlib, pa):
        print("%-10s %s" % (mod.__name__, mod.__version__))
    df = pd.DataFrame({"x": np.arange(1, 6, dtype=float), "y": scipy.special.gamma(np.arange(1, 6))})
    table = pa.Table.from_pandas(df)
    det = scipy.linalg.det(np.array([[2.0, 1.0], [1.0, 3.0]]))
    value = float((df["x"] * df["y"]).sum()) + det + table.num_rows
    print("value      %.6f" % value)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "plot.png")
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot(df["x"], df["y"])
        fig.savefig(path)
        plt.close(fig)
        with open(path, "rb") as fh:
            print("png        %s" % (fh.read(8) == b"\\x89PNG\\r\\n\\x1a\\n"))


if __name__ == "__main__":
    main()
'''


# ---------------------------------------------------------------------------
# Builds: two venvs and two one-folder builds, cached by content
# ---------------------------------------------------------------------------


def tool_pins() -> List[str]:
    """PyInstaller and its hooks at the versions of the environment running this bench."""
    return ["pyinstaller==%s" % version("pyinstaller"),
            "pyinstaller-hooks-contrib==%s" % version("pyinstaller-hooks-contrib")]


def requirements(which: str) -> List[str]:
    return sorted(COMMON + (OLD_PINS if which == "old" else NEW_PINS) + tool_pins())


def build_key(reqs: List[str], app_source: str, pyinstaller: str, python: str) -> str:
    """The content key of a build: the pinned requirement list, the app source, the PyInstaller
    version and the Python version (a change to any of them means a rebuild)."""
    blob = json.dumps({"requirements": sorted(reqs), "app": app_source, "pyinstaller": pyinstaller,
                       "python": python}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _venv(reqs: List[str]) -> tuple:
    """(venv dir, seconds spent installing it now or None if cached); keyed by requirements and Python."""
    key = hashlib.sha256(json.dumps([sorted(reqs), platform.python_version(), sys.executable]).encode()).hexdigest()
    venv = CACHE / ("venv-" + key[:16])
    marker = venv / "pyzpatch-bench.json"
    if marker.is_file():
        return venv, None
    D.rm(venv)
    CACHE.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    proc = subprocess.run([str(py), "-m", "pip", "install", "--disable-pip-version-check", "--only-binary=:all:",
                           *reqs], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("pip install into %s failed:\n%s" % (venv, (proc.stdout + proc.stderr)[-3000:]))
    seconds = time.monotonic() - t0
    marker.write_text(json.dumps({"requirements": sorted(reqs), "seconds": seconds}, indent=1))
    return venv, seconds


def build(which: str) -> dict:
    """The ``which`` ("old"/"new") build, cached: {folder, key, requirements, build_s, venv_s, cached}."""
    reqs = requirements(which)
    key = build_key(reqs, APP_SOURCE, version("pyinstaller"), platform.python_version())
    bdir = CACHE / ("build-" + key[:16])
    marker = bdir / "build.json"
    folder = bdir / "dist" / APP_NAME
    if marker.is_file() and (folder / APP_NAME).is_file():
        info = json.loads(marker.read_text())
        return dict(info, folder=folder, cached=True)
    print("[bigbundle] %s: building (venv, then PyInstaller; minutes)..." % which, file=sys.stderr, flush=True)
    venv, venv_s = _venv(reqs)
    D.rm(bdir)
    (bdir / "src").mkdir(parents=True)
    script = bdir / "src" / (APP_NAME + ".py")
    script.write_text(APP_SOURCE)
    t0 = time.monotonic()
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "PyInstaller", "--onedir", "--noconfirm",
                           "--name", APP_NAME, "--distpath", str(bdir / "dist"), "--workpath", str(bdir / "work"),
                           "--specpath", str(bdir / "src"), str(script)], capture_output=True, text=True,
                          cwd=str(bdir))
    build_s = time.monotonic() - t0
    (bdir / "pyinstaller.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0 or not (folder / APP_NAME).is_file():
        raise RuntimeError("PyInstaller failed for the %s build (see %s):\n%s" % (
            which, bdir / "pyinstaller.log", proc.stderr[-3000:]))
    D.rm(bdir / "work")
    info = {"which": which, "key": key, "requirements": reqs, "build_s": build_s, "venv_s": venv_s,
            "built_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    marker.write_text(json.dumps(info, indent=1))
    return dict(info, folder=folder, cached=False)


# ---------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------


def tool_version(cmd: List[str]) -> Optional[str]:
    if not shutil.which(cmd[0]):
        return None
    proc = subprocess.run(cmd, capture_output=True, text=True)
    text = (proc.stdout + proc.stderr).strip().splitlines()
    return text[0] if text else "?"


def reference_cmds(old_tar: Path, new_tar: Path, out: Path) -> dict:
    """name -> (encode command, decode command writing ``out``.check) of each tar-delta reference."""
    check = str(out) + ".check"
    return {
        "xdelta3": (["xdelta3", "-9", "-e", "-f", "-s", str(old_tar), str(new_tar), str(out)],
                    ["xdelta3", "-d", "-f", "-s", str(old_tar), str(out), check]),
        "zstd": (["zstd", "-19", "--long=31", "-f", "-q", "--patch-from=%s" % old_tar, str(new_tar), "-o", str(out)],
                 ["zstd", "-d", "--long=31", "-f", "-q", "--patch-from=%s" % old_tar, str(out), "-o", check]),
    }


def largest_changed(new: Path, diff: dict, n: int = 5) -> List[tuple]:
    """[(path, size in the new build)] of the ``n`` largest files that changed or were added,
    largest first."""
    sizes = sorted(((new / p).stat().st_size, p) for p in diff["changed"] + diff["added"])[::-1]
    return [(p, size) for size, p in sizes[:n]]


def measure(old: Path, new: Path, repeats: int, with_bsdiff: bool) -> dict:
    row = {"scenario": "bigbundle", "old_path": str(old), "new_path": str(new), "errors": [], "notes": []}
    old_size, old_hash, old_n = folder_id(old)
    new_size, new_hash, new_n = folder_id(new)
    row.update(old_size=old_size, new_size=new_size, old_files=old_n, new_files=new_n)
    row["files_diff"] = diff = summarize_changes(folder_files(old), folder_files(new))
    row["largest_changed"] = largest_changed(new, diff)
    row["largest_changed_path"], row["largest_changed_size"] = (row["largest_changed"] or [(None, 0)])[0]
    row["changed_bytes"] = sum((new / p).stat().st_size for p in diff["changed"] + diff["added"])

    BWORK.mkdir(parents=True, exist_ok=True)
    old_tar, new_tar = BWORK / "old.tar", BWORK / "new.tar"
    print("[bigbundle] writing the tars...", file=sys.stderr, flush=True)
    make_tar(old, old_tar)
    make_tar(new, new_tar)
    row["old_tar_size"], row["new_tar_size"] = old_tar.stat().st_size, new_tar.stat().st_size
    new_tar_sha = D.sha256_file(new_tar)
    print("[bigbundle] lzma -9 of the new tar (cached by content)...", file=sys.stderr, flush=True)
    row["lzma_size"] = D.lzma_size(new_tar, new_tar_sha)

    patch = BWORK / "folder.pyzpatch"
    target = BWORK / "apply" / APP_NAME
    new_out = D.run_program(new / APP_NAME, timeout=300)
    row["new_run"] = new_out
    row["old_run"] = D.run_program(old / APP_NAME, timeout=300)
    if not new_out["ok"]:
        row["errors"].append("the new build does not run: %s" % new_out)

    refs = reference_cmds(old_tar, new_tar, BWORK / "ref.out")
    tools = {name: shutil.which(cmds[0][0]) is not None for name, cmds in refs.items()}
    for name, ok in tools.items():
        if not ok:
            row["notes"].append("%s is not installed: its reference is left out" % name)
    runs = {"make": [], "apply": [], "xdelta3": [], "zstd": [], "bsdiff": []}
    identical, outputs_ok = [], []
    for i in range(repeats):
        step = "[bigbundle] run %d/%d: " % (i + 1, repeats)
        print(step + "make...", file=sys.stderr, flush=True)
        try:
            runs["make"].append(D.run_worker("folder-make", old, new, patch))
        except D.WorkerError as exc:
            row["errors"].append("make: %s" % exc)
            break
        print(step + "apply (%.1f s make)..." % runs["make"][-1]["seconds"], file=sys.stderr, flush=True)
        D.rm(target.parent)
        target.parent.mkdir(parents=True)
        shutil.copytree(old, target, symlinks=True)
        try:
            runs["apply"].append(D.run_worker("folder-apply", target, patch))
        except D.WorkerError as exc:
            row["errors"].append("apply: %s" % exc)
            break
        got_size, got_hash, _ = folder_id(target)
        identical.append((got_size, got_hash) == (new_size, new_hash))
        leftovers = [p.name for p in target.parent.iterdir() if p.name != APP_NAME]
        if leftovers:
            row["errors"].append("apply left %s beside the folder" % leftovers)
        if i == 0:
            got_out = D.run_program(target / APP_NAME, timeout=300)
            row["patched_run"] = got_out
            outputs_ok.append(got_out["ok"] and got_out["stdout"] == new_out["stdout"])
        D.rm(target.parent)
        for name, (enc, dec) in refs.items():
            if not tools[name]:
                continue
            print(step + "%s..." % name, file=sys.stderr, flush=True)
            out = Path(enc[-1])
            try:
                runs[name].append(D.run_worker("external", out, *enc))
            except D.WorkerError as exc:
                row["notes"].append("%s failed: %s" % (name, exc))
                tools[name] = False
                continue
            if i == 0:  # the reference must decode to the new tar, or its size means nothing
                check = Path(dec[-1])
                proc = subprocess.run(dec, capture_output=True, text=True)
                ok = proc.returncode == 0 and D.sha256_file(check) == new_tar_sha
                row[name + "_roundtrip_ok"] = ok
                if not ok:
                    row["notes"].append("%s's delta did not decode to the new tar: %s" % (name, proc.stderr[-500:]))
                D.rm(check)
            D.rm(out)
        if with_bsdiff:
            print(step + "tar bsdiff4 (slow)...", file=sys.stderr, flush=True)
            runs["bsdiff"].append(D.run_worker("bsdiff", old_tar, new_tar))

    makes = runs["make"]
    if makes:
        row["errors"] += D.same_sizes(makes)
        last = makes[-1]
        row.update(patch_size=last["size"], note=last["note"], anatomy=last["anatomy"], changes=last["changes"])
        show = D.cli("show", patch)
        (BWORK / "show.txt").write_text(show.stdout if show.returncode == 0 else show.stderr)
    for name in ("xdelta3", "zstd", "bsdiff"):
        row[name + "_size"] = runs[name][-1]["size"] if runs[name] else None
    D.record_applied(row, identical, outputs_ok, repeats, bool(makes))
    row.update(D.summarize(**runs), runs=len(makes))
    if runs["apply"]:
        last = runs["apply"][-1]
        row.update(files_written=last["files_written"], files_linked=last["files_linked"])
    D.rm(old_tar)
    D.rm(new_tar)
    return row


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------


def apply_rss_limit(r) -> Optional[int]:
    return 64 * MiB + 4 * r["largest_changed_size"] if r.get("largest_changed_size") is not None else None


def targets(r) -> List[tuple]:
    out = []
    if r.get("patch_size") is None:
        return out
    out.append(("make under 30 s", R.fmt_s(r.get("make_s")), r.get("make_s") is not None and r["make_s"] < 30))
    q = R.ratio(r["patch_size"], r.get("xdelta3_size"))
    out.append(("patch at most 1/2.5 (0.4) of `xdelta3 -9`'s",
                "%s / %s bytes = %s" % (R.fmt_bytes(r["patch_size"]), R.fmt_bytes(r.get("xdelta3_size")),
                                        R.fmt_ratio(q)), q is not None and q <= 1 / 2.5))
    out.append(("byte-exact: the patched folder is the new build, and prints what it prints",
                "folder hash %s, output %s" % ("equal" if r["applied_identical"] else "DIFFERS",
                                               "equal" if r["output_ok"] else "DIFFERS"),
                bool(r["applied_identical"] and r["output_ok"])))
    limit = apply_rss_limit(r)
    out.append(("apply peak memory at most 64 MiB + 4 x the largest changed file",
                "%s; limit %s (largest changed file %s B)" % (
                    R.fmt_mib(r.get("apply_rss")), R.fmt_mib(limit), R.fmt_bytes(r.get("largest_changed_size"))),
                r.get("apply_rss") is not None and limit is not None and r["apply_rss"] <= limit))
    return out


def _ref_cells(r, name, label) -> list:
    size = r.get(name + "_size")
    return [label, R.fmt_bytes(size), R.fmt_ratio(R.ratio(r.get("patch_size"), size)),
            R.fmt_s(r.get(name + "_s")), R.fmt_mib(r.get(name + "_rss"))]


def _short(tool_version_line: Optional[str]) -> Optional[str]:
    """"Xdelta version 3.0.11, Copyright ..." -> "Xdelta version 3.0.11"."""
    return tool_version_line and tool_version_line.strip("* ").split(",")[0]


def build_report(res) -> str:
    r, repeats = res["row"], res["repeats"]
    command = "python bench/bigbundle.py" + (" --quick" if repeats == 1 else "") + (
        " --with-bsdiff" if res["with_bsdiff"] else "")
    builds = res["builds"]
    lines = R.doc_head("pyzpatch big-bundle benchmark: a 400 MB data-science one-folder build", command,
                       res["machine"], res["total_seconds"])
    lines += [
        "References: %s; %s. pyzpatch source digest %s at the start, %s at the end%s." % (
            _short(res["tools"].get("xdelta3")) or "xdelta3 not installed",
            _short(res["tools"].get("zstd")) or "zstd not installed",
            res["source_at_start"], res["source_at_end"],
            "" if res["source_at_start"] == res["source_at_end"] else " (**pyzpatch/ changed during the run**)"),
        "",
        "## The builds",
        "",
        "A small app (`APP_SOURCE` in `bench/bigbundle.py`: imports numpy, scipy, pandas, matplotlib "
        "and pyarrow, prints their versions and a computed value, writes a PNG with matplotlib's Agg "
        "backend to a temporary folder) built `--onedir --noconfirm` with PyInstaller in two venvs "
        "(`python3 -m venv`, Python %s) that differ only by the upgrade: **old** pandas 2.2.2 and "
        "matplotlib 3.9.2, **new** pandas 2.2.3 and matplotlib 3.9.3; both hold, pinned, %s." % (
            res["machine"]["python"], ", ".join("`%s`" % p for p in sorted(COMMON + tool_pins()))),
        "Each build is cached in `.cache/bigbundle/` under a key over its pinned requirement list, "
        "the app source, the PyInstaller version and the Python version, and rebuilt only when that "
        "key changes; it is timed once, when made:",
        "",
        R.md_table(["Build", "key", "venv install", "PyInstaller build", "made", "this run"],
                   [[b["which"], "`%s`" % b["key"][:16], R.fmt_s(b.get("venv_s")), R.fmt_s(b.get("build_s")),
                     b.get("built_at", "-"), "cached" if b["cached"] else "built"] for b in builds]),
        "",
        "## What is measured",
        "",
        "- **Folder patch**: size of `pyzpatch.make_folder_patch(old_dir, new_dir).data`; make's time "
        "and peak memory.",
        "- **apply**: `apply_folder_patch(copy_of_old, patch)` on a fresh `copytree` of the old build "
        "each run (not timed): time and peak memory (interpreter included; a worker that only imports "
        "`pyzpatch.patch.folder` peaks at %s). After every apply the patched folder's hash "
        "(`pyzpatch.patch.foldernode.node_hash` over every path, kind, mode, link target and content) "
        "must equal the new build's, and after the first the patched program must exit 0 and print "
        "exactly what the new build prints." % R.fmt_mib(res["noop_folder_rss"]),
        "- **Largest changed file**: the largest file of the new build that differs from (or is not in) "
        "the old one; apply's memory target is 64 MiB plus 4 times its size.",
        "- **References**, on uncompressed tars of both folders (`tarfile`, PAX, entries in sorted "
        "path order, mtime/uid/gid/uname/gname normalized, as in `bench/folders.py`; making them is "
        "not timed): `xdelta3 -9 -e -s old.tar new.tar OUT` (xdelta3's default source window) and "
        "`zstd -19 --long=31 --patch-from=old.tar new.tar -o OUT` (`--long=31`: a window that covers "
        "the whole old tar; decoding needs `--long=31` too), each run as a program from a fresh worker "
        "(time around the program, peak memory the program's), each decoded once and checked against "
        "the new tar (the tools: `apt-get install -y xdelta3 zstd` on Debian/Ubuntu; a missing one "
        "leaves its row out); and `lzma.compress(new_tar, preset=9)` (xz -9 of the new folder: what shipping "
        "it whole costs; size only).",
        "- **tar bsdiff4** (`bsdiff4.diff(old_tar, new_tar)`) only with `--with-bsdiff`: it is off by "
        "default because bsdiff's suffix sort of a 400 MB tar needs gigabytes of memory (about 9 bytes "
        "per byte of the old tar, plus both tars) and hours on this machine.%s" % (
            "" if res["with_bsdiff"] else " Not run this time."),
        "",
        "Each operation runs in its own fresh process started by `bench/harness/launcher.py`; times "
        "are taken inside it around the operation only, peak memory is its `ru_maxrss` from `os.wait4` "
        "(this driver peaked at %s; each worker's `ru_maxrss` was checked against its own `VmHWM`: %s). "
        "Times are the median of %s, memory the largest." % (
            R.fmt_mib(res["driver_rss"]), R.memory_check(res["rss_mismatch"]), R.runs_text(repeats)),
        "",
        "## Results",
        "",
        "Old folder %s B in %s files; new folder %s B (%s) in %s files; tars %s / %s B; the new "
        "folder compressed (lzma -9 of its tar): %s B." % (
            R.fmt_bytes(r["old_size"]), R.fmt_bytes(r["old_files"]), R.fmt_bytes(r["new_size"]),
            R.fmt_size(r["new_size"]), R.fmt_bytes(r["new_files"]), R.fmt_bytes(r["old_tar_size"]),
            R.fmt_bytes(r["new_tar_size"]), R.fmt_bytes(r.get("lzma_size"))),
        "",
    ]
    rows = [["pyzpatch folder patch", R.fmt_bytes(r.get("patch_size")), "1", R.fmt_s(r.get("make_s")),
             R.fmt_mib(r.get("make_rss"))],
            _ref_cells(r, "xdelta3", "tar `xdelta3 -9`"), _ref_cells(r, "zstd", "tar `zstd -19 --long=31 --patch-from`")]
    if res["with_bsdiff"]:
        rows.append(_ref_cells(r, "bsdiff", "tar bsdiff4"))
    rows.append(["whole new folder, lzma -9", R.fmt_bytes(r.get("lzma_size")),
                 R.fmt_ratio(R.ratio(r.get("patch_size"), r.get("lzma_size"))), "-", "-"])
    lines += [R.md_table(["Making the update", "size (bytes)", "pyzpatch / this", "time", "peak memory"], rows), ""]
    lines += [
        R.md_table(["Applying the pyzpatch patch", "measured"], [
            ["apply time", R.fmt_s(r.get("apply_s"))],
            ["apply peak memory", R.fmt_mib(r.get("apply_rss"))],
            ["largest changed files", "; ".join("`%s` %s B" % (p, R.fmt_bytes(size))
                                                for p, size in r.get("largest_changed") or [])],
            ["changed or added files, total", "%s B" % R.fmt_bytes(r.get("changed_bytes"))],
            ["apply wrote / linked (files)", "-" if r.get("files_written") is None else "%d / %d" % (
                r["files_written"], r["files_linked"])],
            ["patched folder = new build (folder hash)", R.IDENTICAL.get(r.get("applied_identical"))],
            ["patched program output = new", {True: "yes", False: "**NO**"}.get(r.get("output_ok"))],
        ]),
        "",
        "## Targets",
        "",
        R.targets_table(["Target", "Measured", "Met"], targets(r)),
        "",
        "## What changed, and what the patch is made of",
        "",
        what_changed(r) + ".",
        "",
        "The patch: %s (fixed header + compressed body); body streams before compression: %s. "
        "Largest changes (body bytes before compression): %s." % (
            R.anatomy_text(r.get("anatomy")), R.streams_text(r.get("anatomy")),
            R.top_changes(r.get("changes"), n=8, code=True, how=True)),
        "",
        "Program output (new build; the patched folder printed the same where the table says so):",
        "",
        "```",
        (r.get("new_run") or {}).get("stdout", "").rstrip() or "(no output)",
        "```",
        "",
    ]
    if r.get("notes"):
        lines += ["Notes:", ""] + ["- %s" % n for n in r["notes"]] + [""]
    lines += R.failures_section(res["problems"])
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one run per measurement instead of three")
    parser.add_argument("--with-bsdiff", action="store_true", help="also bsdiff4 the tars (gigabytes, hours)")
    parser.add_argument("--build-only", action="store_true", help="make (or find cached) the two builds and stop")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/bench-bigbundle.md")
    args = parser.parse_args(argv)
    repeats, started = 1 if args.quick else 3, time.monotonic()

    problems: List[str] = []
    try:
        # The two builds at once: PyInstaller's analysis runs on one core.
        with ThreadPoolExecutor(2) as pool:
            builds = list(pool.map(build, ("old", "new")))
    except Exception as exc:
        D.failure(problems, "build failed: %s" % exc)
        return D.exit_code(problems, None)
    for b in builds:
        print("[bigbundle] %s build: %s (%s; built in %s)" % (b["which"], b["folder"], "cached" if b["cached"] else "new",
                                                              R.fmt_s(b["build_s"])), file=sys.stderr, flush=True)
    if args.build_only:
        return 0

    BWORK.mkdir(parents=True, exist_ok=True)
    source_at_start = D.pyzpatch_source_digest()
    noop_folder = D.noop_rss("folder-noop")
    row = measure(builds[0]["folder"], builds[1]["folder"], repeats, args.with_bsdiff)
    D.record([], problems, argparse.Namespace(name="bigbundle"), row)
    D.close_workers()
    source_at_end = D.pyzpatch_source_digest()
    D.source_check(problems, source_at_start)
    res = {"machine": R.machine_info(), "row": row, "builds": [dict(b, folder=str(b["folder"])) for b in builds],
           "tools": {"xdelta3": tool_version(["xdelta3", "-V"]), "zstd": tool_version(["zstd", "--version"])},
           "noop_folder_rss": noop_folder, "driver_rss": D.driver_rss(),
           "rss_mismatch": D.rss_mismatches([row], lambda r: "bigbundle", whats=("make", "apply")),
           "source_at_start": source_at_start, "source_at_end": source_at_end, "problems": problems,
           "total_seconds": time.monotonic() - started, "repeats": repeats, "with_bsdiff": args.with_bsdiff}
    D.save_results(RESULTS_JSON, **res)
    R.publish(build_report(res), targets(row), DOC, not args.no_docs)
    return D.exit_code(problems, res["total_seconds"])


if __name__ == "__main__":
    sys.exit(main())
