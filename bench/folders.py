"""Benchmark of whole-folder patches of one-folder PyInstaller builds.

    python bench/folders.py [--quick] [--scenarios a,b] [--no-docs]

For each scenario the old and the new program are built as one-folder builds (dist/NAME/,
cached by content in .cache/fixtures/), and the whole folders are compared:

* folder patch: ``pyzpatch.patch.folder.make_folder_patch(old_dir, new_dir)``, its size, time
  and peak memory;
* tar bsdiff4: both folders as uncompressed tar files (PAX format, entries in sorted path order,
  mtime/uid/gid/uname/gname normalized so that only content differs), then
  ``bsdiff4.diff(old_tar, new_tar)`` (reading both tars included): what a bsdiff-based updater
  that ships a folder as one file would do; its size, time and peak memory;
* folder compressed: ``lzma.compress(new_tar, preset=9)`` (xz -9 of the tar): what sending the
  whole new folder costs;
* apply: ``apply_folder_patch(copy_of_old, patch)`` (crash-safe, in place) against copying the
  old folder with ``shutil.copytree(old, dest, symlinks=True)``, with and without an fsync of
  every copied file and folder; apply's peak memory; and that the patched folder is the new
  build exactly (folder hash over every path, kind, mode, link target and content) and that the
  patched program prints what the new build prints.

Every measured operation runs in a fresh process (this file with ``--worker``, or
bench/worker.py for bsdiff and lzma), started by bench/launcher.py: times are taken inside the
process around the operation only, peak memory is its ru_maxrss from os.wait4. Times are the
median of 3 runs (1 with --quick), memory the largest.

Writes docs/bench-folders.md and prints it. Exits 1 if a patch could not be made or applied or
did not rebuild the new folder exactly. Speed and size are reported against the issue's
targets, never asserted.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # pyzpatch, fixtures


# ---------------------------------------------------------------------------
# Worker: one measured operation in a fresh process (python bench/folders.py --worker ...).
# Kept above the driver's imports so that a worker loads only what its operation needs.
# ---------------------------------------------------------------------------


def _vm_hwm_kib():
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def w_make(old_dir, new_dir, patch_out):
    from pyzpatch.patch.folder import make_folder_patch

    t0 = time.perf_counter()
    made = make_folder_patch(old_dir, new_dir)
    seconds = time.perf_counter() - t0
    with open(patch_out, "wb") as fh:
        fh.write(made.data)
    from pyzpatch.patch.file import describe_patch
    from pyzpatch.patchfile import codec as patchfile

    desc = describe_patch(patch_out)
    leaves = [c for c in desc["changes"] if not (c["action"] == "changed" and c["how"] in ("struct", "recompressed struct"))]
    _, _, _, body_start = patchfile.decode_header(memoryview(made.data)[:-4])
    _, body = patchfile.decode(made.data)
    return {
        "seconds": seconds,
        "size": len(made.data),
        "note": made.note,
        "anatomy": {"header": body_start + 4, "body": len(made.data) - body_start - 4,
                    "ops": len(body.ops), "data": len(body.diff), "lit": len(body.lit)},
        "changes": leaves,
    }


def w_apply(target, patch):
    from pyzpatch.patch.folder import apply_folder_patch

    t0 = time.perf_counter()
    result = apply_folder_patch(target, patch)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "written": result.written, "files_written": result.files_written,
            "files_linked": result.files_linked, "recovered": result.recovered}


def w_copytree(old_dir, dest, fsync):
    t0 = time.perf_counter()
    shutil.copytree(old_dir, dest, symlinks=True)
    if fsync == "fsync":
        # As apply does for what it writes: every file, then every folder, then the parent.
        dirs = []
        for current, _dirs, files in os.walk(dest):
            dirs.append(current)
            for name in files:
                path = os.path.join(current, name)
                if os.path.islink(path):
                    continue
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        dirs.append(os.path.dirname(os.path.abspath(dest)))
        for path in reversed(dirs):
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    return {"seconds": time.perf_counter() - t0}


def w_noop():
    import pyzpatch.patch.folder  # noqa: F401

    return {"seconds": 0.0}


WORKER_OPS = {"make": w_make, "apply": w_apply, "copytree": w_copytree, "noop": w_noop}


def worker_main(argv):
    result_path, op, args = argv[0], argv[1], argv[2:]
    result = WORKER_OPS[op](*args)
    result["vm_hwm_kib"] = _vm_hwm_kib()
    tmp = result_path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(result, fh)
    os.replace(tmp, result_path)
    return 0


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    sys.exit(worker_main(sys.argv[2:]))


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------

import argparse  # noqa: E402
import hashlib  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tarfile  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Callable, Dict, List  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
import run as R  # noqa: E402  (bench/run.py: scenarios' helpers, launcher, formatting)
from run import (  # noqa: E402
    BuildSpec,
    MiB,
    WorkerError,
    _pip_target,
    fmt_bytes,
    fmt_mib,
    fmt_ratio,
    fmt_s,
    fmt_x,
    md_table,
    prep_hello_string,
    prep_unchanged,
    ratio,
    text_table,
)

from pyzpatch.patch.foldernode import FILE, FolderContents, node_hash  # noqa: E402

FWORK = R.WORK / "folders"
DOC = R.DOCS / "bench-folders.md"
RESULTS_JSON = R.BENCH_CACHE / "folders-results.json"
SELF = Path(__file__).resolve()


@dataclass
class Scenario:
    name: str
    title: str
    prepare: Callable[[], tuple]  # -> (old BuildSpec, new BuildSpec)


# The dependency scenarios: a package with a compiled extension, at two versions. PyYAML's
# upgrade rebuilds its C extension from scratch (6.0.2's wheels come from a newer Cython), the
# worst case for a binary diff; MarkupSafe's keeps the extension's code and changes its Python.
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


def _dependency_specs(scenario: str, app_name: str, prog_text: str, package: str, old_v: str, new_v: str):
    # One app directory for both; only the directory holding the package differs, given as
    # --paths and as PYTHONPATH for PyInstaller (so its hooks' subprocesses see that version,
    # not the one in site-packages), as bench/run.py's dependency scenario does.
    app = R.VARIANTS / scenario / app_name
    app.mkdir(parents=True, exist_ok=True)
    prog = app / "prog.py"
    if not prog.is_file() or prog.read_text(encoding="utf-8") != prog_text:
        prog.write_text(prog_text, encoding="utf-8")

    def spec(version):
        d = str(_pip_target("%s-%s" % (package, version), ["%s==%s" % (package, version)]))
        return BuildSpec(app, app_name, ("--paths", d), {"PYTHONPATH": d})
    return spec(old_v), spec(new_v)


def prep_dependency_ext():
    return _dependency_specs("dependency-ext", "yamlapp", DEPX_PROG, DEPX_PACKAGE, DEPX_OLD, DEPX_NEW)


def prep_dependency_ext_markupsafe():
    return _dependency_specs("dependency-ext-markupsafe", "msapp", DEPM_PROG, DEPM_PACKAGE, DEPM_OLD, DEPM_NEW)


SCENARIOS = [
    Scenario("hello-string", "hello (two-file program), printed string in mod1.py changed v1 -> v2",
             prep_hello_string),
    Scenario("dependency-ext", "%s %s -> %s in a small app: its C extension `yaml/_yaml` (2.5 MB, recompiled "
             "throughout) and `yaml/__init__.py` change" % (DEPX_PACKAGE, DEPX_OLD, DEPX_NEW), prep_dependency_ext),
    Scenario("dependency-ext-markupsafe", "%s %s -> %s in a small app: its C extension `markupsafe/_speedups` "
             "(54 KB, a few bytes differ) and `markupsafe/__init__.py` change" % (DEPM_PACKAGE, DEPM_OLD, DEPM_NEW),
             prep_dependency_ext_markupsafe),
    Scenario("unchanged", "unchanged rebuild of bigapp (second build forced by a different env)",
             prep_unchanged),
]


# ---------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------


def _launcher():
    if R._LAUNCHER is None:
        R._LAUNCHER = R.Launcher()
    return R._LAUNCHER


def run_fworker(op: str, *args) -> dict:
    """One folder operation in a fresh process (this file with --worker); its result plus its
    ru_maxrss (KiB) from os.wait4, through bench/launcher.py."""
    FWORK.mkdir(parents=True, exist_ok=True)
    result_path = FWORK / "result.json"
    if result_path.exists():
        result_path.unlink()
    cmd = [sys.executable, str(SELF), "--worker", str(result_path), op, *map(str, args)]
    done = _launcher().run(cmd, FWORK / "worker.stdout", FWORK / "worker.stderr")
    if done["exit"] != 0:
        tail = (FWORK / "worker.stderr").read_text(errors="replace").strip().splitlines()[-15:]
        raise WorkerError("%s failed (exit %d):\n  %s" % (op, done["exit"], "\n  ".join(tail)))
    with open(result_path) as fh:
        result = json.load(fh)
    result["maxrss_kib"] = done["maxrss_kib"]
    return result


def _rm(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def folder_files(folder: Path) -> Dict[str, str]:
    """{relative path: SHA-256} of every file, plus link targets and folders, for counting what
    changed between two folders."""
    out = {}
    with FolderContents(str(folder)) as fc:
        for e in fc.entries:
            if e.kind == FILE:
                out[e.path] = hashlib.sha256(fc.data[e.path]).hexdigest()
    return out


def folder_id(folder: Path) -> tuple:
    """(total file bytes, folder hash hex, number of files)."""
    with FolderContents(str(folder)) as fc:
        size, digest = node_hash(fc.node())
        nfiles = sum(1 for e in fc.entries if e.kind == FILE)
    return size, digest.hex(), nfiles


def make_tar(folder: Path, out: Path) -> None:
    """The folder as an uncompressed PAX tar: entries in sorted path order, times and owners
    normalized, so that two tars differ only where the folders' contents (or modes) do."""

    def norm(ti: tarfile.TarInfo) -> tarfile.TarInfo:
        ti.mtime = 0
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = ""
        return ti

    rels = []
    for current, dirs, files in os.walk(folder):
        for name in dirs + files:
            rels.append(os.path.relpath(os.path.join(current, name), folder).replace(os.sep, "/"))
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(str(folder), arcname=folder.name, recursive=False, filter=norm)
        for rel in sorted(rels):
            tar.add(str(folder / rel), arcname=folder.name + "/" + rel, recursive=False, filter=norm)
    os.replace(tmp, out)


def run_program(exe: Path) -> dict:
    try:
        proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"ok": False, "rc": None, "stdout": "", "stderr": str(exc)}
    return {"ok": proc.returncode == 0, "rc": proc.returncode, "stdout": proc.stdout,
            "stderr": "\n".join(proc.stderr.strip().splitlines()[-5:])}


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pyzpatch", *map(str, args)], cwd=str(REPO),
                          capture_output=True, text=True)


def summarize_changes(old_files: Dict[str, str], new_files: Dict[str, str]) -> dict:
    changed = sorted(p for p in old_files.keys() & new_files.keys() if old_files[p] != new_files[p])
    return {"changed": changed, "added": sorted(new_files.keys() - old_files.keys()),
            "removed": sorted(old_files.keys() - new_files.keys())}


def measure(scenario: Scenario, old: Path, new: Path, repeats: int) -> dict:
    name = old.name
    row = {"scenario": scenario.name, "title": scenario.title, "old_path": str(old), "new_path": str(new),
           "errors": []}
    old_size, old_hash, old_n = folder_id(old)
    new_size, new_hash, new_n = folder_id(new)
    row.update(old_size=old_size, new_size=new_size, old_files=old_n, new_files=new_n,
               identical_builds=old_hash == new_hash)
    row["files_diff"] = summarize_changes(folder_files(old), folder_files(new))

    sdir = FWORK / scenario.name
    sdir.mkdir(parents=True, exist_ok=True)
    old_tar, new_tar = sdir / "old.tar", sdir / "new.tar"
    make_tar(old, old_tar)
    make_tar(new, new_tar)
    row["old_tar_size"], row["new_tar_size"] = old_tar.stat().st_size, new_tar.stat().st_size
    row["lzma_size"] = R.lzma_size(new_tar, R.sha256_file(new_tar))

    patch = sdir / "folder.pyzpatch"
    target = sdir / "apply" / name  # the copy of the old folder that apply patches in place
    copy_dest = sdir / "copy" / name
    new_out = run_program(new / name)
    old_out = run_program(old / name)
    row["new_run"], row["old_run"] = new_out, old_out
    if not new_out["ok"]:
        row["errors"].append("the new build does not run: %s" % new_out)

    makes, bsdiffs, applies, copies, copies_fsync = [], [], [], [], []
    identical, outputs_ok = [], []
    for i in range(repeats):
        print("[folders] %s: run %d/%d: make..." % (scenario.name, i + 1, repeats), file=sys.stderr, flush=True)
        try:
            makes.append(run_fworker("make", old, new, patch))
        except WorkerError as exc:
            row["errors"].append("make: %s" % exc)
            break
        print("[folders] %s: run %d/%d: tar bsdiff4..." % (scenario.name, i + 1, repeats), file=sys.stderr,
              flush=True)
        bsdiffs.append(R.run_worker("bsdiff", old_tar, new_tar))
        if row["identical_builds"]:
            continue  # apply refuses a folder that already is the new one ("nothing to do"): by design
        print("[folders] %s: run %d/%d: apply and copytree..." % (scenario.name, i + 1, repeats),
              file=sys.stderr, flush=True)
        _rm(target.parent)
        target.parent.mkdir(parents=True)
        shutil.copytree(old, target, symlinks=True)
        try:
            res = run_fworker("apply", target, patch)
        except WorkerError as exc:
            row["errors"].append("apply: %s" % exc)
            break
        applies.append(res)
        got_size, got_hash, _ = folder_id(target)
        identical.append((got_size, got_hash) == (new_size, new_hash))
        leftovers = [p.name for p in target.parent.iterdir() if p.name != name]
        if leftovers:
            row["errors"].append("apply left %s beside the folder" % leftovers)
        if i == 0:
            got_out = run_program(target / name)
            row["patched_run"] = got_out
            outputs_ok.append(got_out["ok"] and got_out["stdout"] == new_out["stdout"])
        _rm(target.parent)
        for fsync, runs in (("nofsync", copies), ("fsync", copies_fsync)):
            _rm(copy_dest.parent)
            copy_dest.parent.mkdir(parents=True)
            runs.append(run_fworker("copytree", old, copy_dest, fsync))
            _rm(copy_dest.parent)

    if makes:
        sizes = {m["size"] for m in makes}
        if len(sizes) != 1:
            row["errors"].append("make gave different patch sizes across runs: %s" % sorted(sizes))
        last = makes[-1]
        row.update(patch_size=last["size"], note=last["note"], anatomy=last["anatomy"], changes=last["changes"])
    row["bsdiff_size"] = bsdiffs[-1]["size"] if bsdiffs else None

    if row["identical_builds"]:
        row["applied_identical"] = None
        row["output_ok"] = None
    else:
        row["applied_identical"] = bool(identical) and all(identical) and len(identical) == repeats
        row["output_ok"] = bool(outputs_ok) and all(outputs_ok)
        if makes and not row["applied_identical"]:
            row["errors"].append("the patched folder is NOT the new build (folder hash differs)")
        if makes and not row["output_ok"]:
            row["errors"].append("the patched program does not print what the new build prints: %s" %
                                 row.get("patched_run"))

    # The command line, once: make gives the same patch, apply the same folder.
    if makes:
        cli_patch = sdir / "cli.pyzpatch"
        _rm(cli_patch)
        proc = cli("make", old, new, "-o", cli_patch)
        cli_ok = proc.returncode == 0 and cli_patch.is_file() and cli_patch.read_bytes() == patch.read_bytes()
        if cli_ok and not row["identical_builds"]:
            _rm(target.parent)
            target.parent.mkdir(parents=True)
            shutil.copytree(old, target, symlinks=True)
            proc = cli("apply", target, cli_patch)
            cli_ok = proc.returncode == 0 and folder_id(target)[:2] == (new_size, new_hash)
            _rm(target.parent)
        row["cli_ok"] = cli_ok
        if not cli_ok:
            row["errors"].append("CLI round trip failed: %s" % (proc.stderr or proc.stdout).strip()[-500:])
        show = cli("show", patch)
        row["show"] = show.stdout if show.returncode == 0 else show.stderr
        (sdir / "show.txt").write_text(row["show"])

    def med(runs):
        return statistics.median(r["seconds"] for r in runs) if runs else None

    def peak(runs):
        return max(r["maxrss_kib"] for r in runs) * 1024 if runs else None

    def hwm(runs):
        vals = [r.get("vm_hwm_kib") for r in runs if r.get("vm_hwm_kib")]
        return max(vals) * 1024 if vals else None

    row.update(
        make_s=med(makes), bsdiff_s=med(bsdiffs), apply_s=med(applies), copy_s=med(copies),
        copy_fsync_s=med(copies_fsync),
        make_rss=peak(makes), bsdiff_rss=peak(bsdiffs), apply_rss=peak(applies),
        make_hwm=hwm(makes), bsdiff_hwm=hwm(bsdiffs), apply_hwm=hwm(applies),
        files_written=applies[-1]["files_written"] if applies else None,
        files_linked=applies[-1]["files_linked"] if applies else None,
        runs=len(makes),
    )
    return row


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------


def fmt_size(n) -> str:
    if n is None:
        return "-"
    return "%.1f MB" % (n / 1e6) if n >= 10**6 else fmt_bytes(n)


MAIN_HEADER = ["Scenario", "New folder", "Files", "Folder patch", "tar bsdiff4", "patch / tar bsdiff4",
               "Folder compressed (lzma -9)", "make time / tar bsdiff4", "make memory / tar bsdiff4",
               "apply time / copytree (+fsync)", "apply peak memory", "Result identical"]


def main_rows(rows) -> List[List[str]]:
    out = []
    for r in rows:
        out.append([
            r["scenario"], "%s (%s B)" % (fmt_size(r["new_size"]), fmt_bytes(r["new_size"])),
            str(r["new_files"]), fmt_bytes(r.get("patch_size")), fmt_bytes(r.get("bsdiff_size")),
            fmt_ratio(ratio(r.get("patch_size"), r.get("bsdiff_size"))),
            fmt_bytes(r.get("lzma_size")), fmt_ratio(ratio(r.get("make_s"), r.get("bsdiff_s"))),
            fmt_ratio(ratio(r.get("make_rss"), r.get("bsdiff_rss"))),
            "%s (%s)" % (fmt_x(ratio(r.get("apply_s"), r.get("copy_s"))),
                         fmt_x(ratio(r.get("apply_s"), r.get("copy_fsync_s")))),
            fmt_mib(r.get("apply_rss")),
            {True: "yes", False: "**NO**", None: "n/a: old = new"}[r.get("applied_identical")],
        ])
    return out


DETAIL_HEADER = ["Scenario", "Old folder", "tar old / new", "make", "tar bsdiff4", "make peak",
                 "tar bsdiff4 peak", "apply", "copytree", "copytree+fsync", "apply wrote / linked",
                 "patched program output = new"]


def detail_rows(rows) -> List[List[str]]:
    out = []
    for r in rows:
        out.append([
            r["scenario"], "%s B, %d files" % (fmt_bytes(r["old_size"]), r["old_files"]),
            "%s / %s B" % (fmt_bytes(r["old_tar_size"]), fmt_bytes(r["new_tar_size"])),
            fmt_s(r.get("make_s")), fmt_s(r.get("bsdiff_s")), fmt_mib(r.get("make_rss")),
            fmt_mib(r.get("bsdiff_rss")), fmt_s(r.get("apply_s")), fmt_s(r.get("copy_s")),
            fmt_s(r.get("copy_fsync_s")),
            "-" if r.get("files_written") is None else "%d / %d" % (r["files_written"], r["files_linked"]),
            {True: "yes", False: "**NO**", None: "n/a"}[r.get("output_ok")],
        ])
    return out


def pyz_changes(changes) -> Dict[str, List[str]]:
    """Changes inside archives (the PYZ, base_library.zip), by action."""
    out: Dict[str, List[str]] = {}
    for c in changes or []:
        if ".pyz/" in c["path"] or ".zip/" in c["path"]:
            out.setdefault(c["action"], []).append(c["path"])
    return out


def what_changed(r) -> str:
    fd = r["files_diff"]
    parts = []
    for key in ("changed", "added", "removed"):
        if fd[key]:
            shown = ", ".join("`%s`" % p for p in fd[key][:8]) + (", ..." if len(fd[key]) > 8 else "")
            parts.append("%d file(s) %s: %s" % (len(fd[key]), key, shown))
    inner = pyz_changes(r.get("changes"))
    for action, paths in sorted(inner.items()):
        shown = ", ".join("`%s`" % p for p in paths[:10]) + (", ..." if len(paths) > 10 else "")
        parts.append("%d archive member(s) %s: %s" % (len(paths), action, shown))
    return "; ".join(parts) if parts else "nothing (identical folders)"


def top_changes(changes, n=5) -> str:
    if not changes:
        return "-"
    ranked = sorted(changes, key=lambda c: c.get("patch_bytes") or 0, reverse=True)[:n]
    return "; ".join("`%s` %s%s (%s)" % (c["path"], c["action"], " by " + c["how"] if c.get("how") else "",
                                        "%s B" % fmt_bytes(c["patch_bytes"]) if c.get("patch_bytes") is not None
                                        else "-") for c in ranked)


def targets(rows) -> List[tuple]:
    out = []
    by = {r["scenario"]: r for r in rows if r.get("patch_size") is not None}
    r = by.get("hello-string")
    if r:
        out.append(("hello-string: folder patch under 300 bytes", "%d bytes" % r["patch_size"],
                    r["patch_size"] < 300))
    for name in ("dependency-ext", "dependency-ext-markupsafe"):
        r = by.get(name)
        if not r:
            continue
        q = ratio(r["patch_size"], r["bsdiff_size"])
        out.append(("%s: folder patch <= 1/5 of tar bsdiff4" % name,
                    "%s / %s bytes = %s" % (fmt_bytes(r["patch_size"]), fmt_bytes(r["bsdiff_size"]), fmt_ratio(q)),
                    q <= 1 / 5))
        t = ratio(r["make_s"], r["bsdiff_s"])
        out.append(("%s: make time <= 1/5 of tar bsdiff4's" % name,
                    "%s / %s = %s" % (fmt_s(r["make_s"]), fmt_s(r["bsdiff_s"]), fmt_ratio(t)), t <= 1 / 5))
    r = by.get("unchanged")
    if r:
        out.append(("unchanged: folder patch under 2 KB (2,048 bytes)", "%s bytes" % fmt_bytes(r["patch_size"]),
                    r["patch_size"] < 2048))
    return out


def build_report(rows, info, args, repeats, total_s, noop_folder, noop_run, driver_rss, rss_mismatch,
                 problems) -> str:
    lines = [
        "# pyzpatch folder benchmark: whole one-folder builds",
        "",
        "Generated by `python bench/folders.py%s%s` on %s; the whole run took %.0f s." % (
            " --quick" if args.quick else "", " --scenarios " + args.scenarios if args.scenarios else "",
            info["date"], total_s),
        "",
        "Machine: %s CPUs (`nproc`), %s, %s RAM, Linux %s; Python %s, PyInstaller %s, bsdiff4 %s; "
        "pyzpatch at %s." % (info["nproc"], info["cpu"],
                             "%.0f GiB" % (info["mem"] / 1024**3) if info["mem"] else "?", info["kernel"],
                             info["python"], info["pyinstaller"], info["bsdiff4"], info["commit"]),
        "",
        "## What is measured",
        "",
        "Each scenario builds an old and a new program with PyInstaller as a one-folder build "
        "(`dist/NAME/`: the executable `NAME` and `_internal/`) and compares the whole folders.",
        "",
        "- **Folder patch**: size of `pyzpatch.patch.folder.make_folder_patch(old_dir, new_dir).data` "
        "(the same bytes as `python -m pyzpatch make OLD_DIR NEW_DIR -o P`, checked once per scenario).",
        "- **tar bsdiff4**: the approach of bsdiff-based updaters. Each folder is written as an "
        "uncompressed tar (`tarfile`, PAX format, entries in sorted path order, mtime, uid, gid, uname "
        "and gname set to 0 / empty so that only contents and modes differ); then "
        "`len(bsdiff4.diff(old_tar, new_tar))` (standard BSDIFF40 with bz2). Its time and memory "
        "include reading both tars (`bench/worker.py bsdiff`); making the tars is not counted.",
        "- **Folder compressed (lzma -9)**: `len(lzma.compress(new_tar, preset=9))`, i.e. `tar | xz -9`"
        " of the new folder: what shipping the whole new folder compressed costs.",
        "- **make time / memory vs tar bsdiff4**: `make_folder_patch` (reads, hashes and diffs both "
        "folders, then decodes its own patch to check it) against the tar bsdiff4 run, both measured "
        "in the same run; memory is peak RSS.",
        "- **apply time vs copytree**: `apply_folder_patch(copy_of_old, patch)`, which patches the "
        "folder in place, crash-safely (builds the new folder beside it with unchanged files hard-linked, "
        "fsyncs, checks it, swaps it in with `renameat2(RENAME_EXCHANGE)`, removes the old one), "
        "against `shutil.copytree(old, dest, symlinks=True)` of the old folder; in parentheses against "
        "copytree followed by an fsync of every copied file and folder (apply fsyncs what it writes). "
        "Apply runs on a fresh `copytree` of the old build each time (not timed). All files are in the "
        "page cache (warm) for both.",
        "- **apply peak memory**: peak RSS of the process running `apply_folder_patch`, interpreter "
        "included (a worker that only imports `pyzpatch.patch.folder` peaks at %s; one that imports "
        "pyzpatch and bsdiff4, %s)." % (fmt_mib(noop_folder), fmt_mib(noop_run)),
        "- **Result identical**: after every apply, the patched folder's hash (`pyzpatch.patch.foldernode."
        "node_hash` over every path, kind, mode, link target and content) equals the new build's; and "
        "(column *patched program output = new*) the patched program, run from the patched folder, "
        "exits 0 and prints exactly what the new build prints.",
        "",
        "Each operation runs in its own fresh process; times are taken inside it around the operation "
        "only (not interpreter start-up), peak memory is that process's `ru_maxrss` from `os.wait4`. "
        "Workers are started by `bench/launcher.py`, a tiny process, because on Linux a child's "
        "`ru_maxrss` is at least the peak RSS of the process that exec'd it (this driver peaked at %s); "
        "each worker's `ru_maxrss` was checked against its own `VmHWM` (%s). Times are the median of "
        "%d run%s, memory the largest. Ratios below 1 favour pyzpatch." % (
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
        "## Targets",
        "",
        md_table(["Target", "Measured", "Met"],
                 [[t, v, "yes" if ok else "**no**"] for t, v, ok in targets(rows)]),
        "",
        "## What changed, and what each patch is made of",
        "",
        "Files compared between the two folders by content; archive members as the patch lists them "
        "(`python -m pyzpatch show PATCH`). A patch is a fixed header and one compressed body of three "
        "streams (ops, data, lit; sized before compression).",
        "",
        md_table(["Scenario", "What changed", "patch = header + compressed body", "body streams",
                  "largest changes (body bytes before compression)"],
                 [[r["scenario"], what_changed(r), R.anatomy_text(r.get("anatomy")),
                   R.streams_text(r.get("anatomy")), top_changes(r.get("changes"))] for r in rows]),
        "",
        "Program output (new build; the patched folder printed the same where the table says so):",
        "",
    ]
    for r in rows:
        out = (r.get("new_run") or {}).get("stdout", "").strip().splitlines()
        lines.append("- `%s`: %s" % (r["scenario"], " / ".join("`%s`" % x for x in out[:4]) +
                                      (" ..." if len(out) > 4 else "") if out else "(no output)"))
    lines.append("")
    if problems:
        lines += ["## FAILURES", ""] + ["- **%s**" % p for p in problems] + [""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one run per measurement instead of three")
    parser.add_argument("--scenarios", help="comma-separated subset of: " + ",".join(s.name for s in SCENARIOS))
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/bench-folders.md")
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

    FWORK.mkdir(parents=True, exist_ok=True)
    source_at_start = R.pyzpatch_source_digest()
    noop_folder = max(run_fworker("noop")["maxrss_kib"] for _ in range(2)) * 1024
    noop_run = max(R.run_worker("noop")["maxrss_kib"] for _ in range(2)) * 1024

    rows, problems = [], []
    for scenario in chosen:
        t0 = time.monotonic()
        print("[folders] %s: building..." % scenario.name, file=sys.stderr, flush=True)
        old_spec, new_spec = scenario.prepare()
        try:
            old, new = old_spec.build("onedir").parent, new_spec.build("onedir").parent
        except Exception as exc:  # a build failure is a bench failure, reported, not a crash
            problems.append("%s: build failed: %s" % (scenario.name, exc))
            print("\n!!!!! BENCH FAILURE: %s\n" % problems[-1], file=sys.stderr, flush=True)
            continue
        print("[folders] %s: built in %.0f s, measuring..." % (scenario.name, time.monotonic() - t0),
              file=sys.stderr, flush=True)
        row = measure(scenario, old, new, repeats)
        rows.append(row)
        for err in row["errors"]:
            problems.append("%s: %s" % (scenario.name, err))
            print("\n!!!!! BENCH FAILURE: %s\n" % problems[-1], file=sys.stderr, flush=True)
        print("[folders] %s: folder patch %s B, tar bsdiff4 %s B (%.0f s)" % (
            scenario.name, fmt_bytes(row.get("patch_size")), fmt_bytes(row.get("bsdiff_size")),
            time.monotonic() - t0), file=sys.stderr, flush=True)

    if R._LAUNCHER is not None:
        R._LAUNCHER.close()
        R._LAUNCHER = None
    if R.pyzpatch_source_digest() != source_at_start:
        problems.append("pyzpatch/ sources changed while the benchmark ran: the results mix versions; run it again")
    driver_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rss_mismatch = []
    for r in rows:
        for what in ("make", "bsdiff", "apply"):
            rss, hwm = r.get(what + "_rss"), r.get(what + "_hwm")
            if rss and hwm and rss > hwm * 1.02 + MiB:
                rss_mismatch.append("%s %s" % (r["scenario"], what))

    total_s = time.monotonic() - started
    info = R.machine_info()
    RESULTS_JSON.write_text(json.dumps({"machine": info, "rows": rows, "noop_folder_rss": noop_folder,
                                        "noop_run_rss": noop_run, "driver_rss": driver_rss,
                                        "rss_mismatch": rss_mismatch, "problems": problems,
                                        "total_seconds": total_s}, indent=1))
    report = build_report(rows, info, args, repeats, total_s, noop_folder, noop_run, driver_rss,
                          rss_mismatch, problems)
    print()
    print(report)
    print()
    print(text_table(MAIN_HEADER, main_rows(rows)))
    print()
    print("Targets:")
    for t, v, ok in targets(rows):
        print("  [%s] %s: %s" % ("met" if ok else "NOT MET", t, v))
    if not args.no_docs:
        R.DOCS.mkdir(exist_ok=True)
        DOC.write_text(report, encoding="utf-8")
        print("\nwrote %s" % DOC)
    print("total run time: %.0f s" % total_s)
    if problems:
        print("\n!!!!! %d BENCH FAILURE(S):" % len(problems), file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
