"""Benchmark of whole-folder patches of one-folder PyInstaller builds.

    python bench/folders.py [--quick] [--scenarios a,b] [--no-docs]

Needs the ``bench`` extra: ``pip install -e '.[bench]'``.

For each scenario the old and the new program are built as one-folder builds (dist/NAME/,
cached by content in .cache/fixtures/), and the whole folders are compared:

* folder patch: ``pyzpatch.make_folder_patch(old_dir, new_dir)``, its size, time and peak
  memory;
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

Every measured operation runs in a fresh process (bench/harness/worker.py: folder-make,
folder-apply, copytree, bsdiff, lzma), started by bench/harness/launcher.py: times are taken
inside the process around the operation only, peak memory is its ru_maxrss from os.wait4.
Times are the median of 3 runs (1 with --quick), memory the largest.

Writes .cache/bench/folders-results.json and docs/bench-folders.md and prints it. Exits 1 if a
patch could not be made or applied or did not rebuild the new folder exactly. Speed and size
are reported against the issue's targets, never asserted.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import time
from pathlib import Path
from typing import Dict, List

from harness import driver as D
from harness import report as R
from harness import scenarios as S
from harness.scenarios import Scenario

from pyzpatch.patch.foldernode import FILE, FolderContents, node_hash

FWORK = D.WORK / "folders"
DOC = D.DOCS / "bench-folders.md"
RESULTS_JSON = D.BENCH_CACHE / "folders-results.json"

SCENARIOS = [
    Scenario("hello-string", "hello (two-file program), printed string in mod1.py changed v1 -> v2", S.hello_string),
    Scenario("dependency-ext", "%s %s -> %s in a small app: its C extension `yaml/_yaml` (2.5 MB, recompiled "
             "throughout) and `yaml/__init__.py` change" % (S.DEPX_PACKAGE, S.DEPX_OLD, S.DEPX_NEW),
             S.dependency_ext),
    Scenario("dependency-ext-markupsafe", "%s %s -> %s in a small app: its C extension `markupsafe/_speedups` "
             "(54 KB, a few bytes differ) and `markupsafe/__init__.py` change" % (
                 S.DEPM_PACKAGE, S.DEPM_OLD, S.DEPM_NEW), S.dependency_ext_markupsafe),
    Scenario("unchanged", "unchanged rebuild of bigapp (second build forced by a different env)", S.unchanged),
]


# ---------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------


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
    row["lzma_size"] = D.lzma_size(new_tar, D.sha256_file(new_tar))

    patch = sdir / "folder.pyzpatch"
    target = sdir / "apply" / name  # the copy of the old folder that apply patches in place
    copy_dest = sdir / "copy" / name
    new_out = D.run_program(new / name)
    old_out = D.run_program(old / name)
    row["new_run"], row["old_run"] = new_out, old_out
    if not new_out["ok"]:
        row["errors"].append("the new build does not run: %s" % new_out)

    makes, bsdiffs, applies, copies, copies_fsync = [], [], [], [], []
    identical, outputs_ok = [], []
    for i in range(repeats):
        print("[folders] %s: run %d/%d: make..." % (scenario.name, i + 1, repeats), file=sys.stderr, flush=True)
        try:
            makes.append(D.run_worker("folder-make", old, new, patch))
        except D.WorkerError as exc:
            row["errors"].append("make: %s" % exc)
            break
        print("[folders] %s: run %d/%d: tar bsdiff4..." % (scenario.name, i + 1, repeats), file=sys.stderr,
              flush=True)
        bsdiffs.append(D.run_worker("bsdiff", old_tar, new_tar))
        if row["identical_builds"]:
            continue  # apply refuses a folder that already is the new one ("nothing to do"): by design
        print("[folders] %s: run %d/%d: apply and copytree..." % (scenario.name, i + 1, repeats),
              file=sys.stderr, flush=True)
        D.rm(target.parent)
        target.parent.mkdir(parents=True)
        shutil.copytree(old, target, symlinks=True)
        try:
            res = D.run_worker("folder-apply", target, patch)
        except D.WorkerError as exc:
            row["errors"].append("apply: %s" % exc)
            break
        applies.append(res)
        got_size, got_hash, _ = folder_id(target)
        identical.append((got_size, got_hash) == (new_size, new_hash))
        leftovers = [p.name for p in target.parent.iterdir() if p.name != name]
        if leftovers:
            row["errors"].append("apply left %s beside the folder" % leftovers)
        if i == 0:
            got_out = D.run_program(target / name)
            row["patched_run"] = got_out
            outputs_ok.append(got_out["ok"] and got_out["stdout"] == new_out["stdout"])
        D.rm(target.parent)
        for fsync, runs in (("nofsync", copies), ("fsync", copies_fsync)):
            D.rm(copy_dest.parent)
            copy_dest.parent.mkdir(parents=True)
            runs.append(D.run_worker("copytree", old, copy_dest, fsync))
            D.rm(copy_dest.parent)

    if makes:
        row["errors"] += D.same_sizes(makes)
        last = makes[-1]
        row.update(patch_size=last["size"], note=last["note"], anatomy=last["anatomy"], changes=last["changes"])
    row["bsdiff_size"] = bsdiffs[-1]["size"] if bsdiffs else None

    if row["identical_builds"]:
        row["applied_identical"] = None
        row["output_ok"] = None
    else:
        D.record_applied(row, identical, outputs_ok, repeats, bool(makes))

    # The command line, once: make gives the same patch, apply the same folder.
    if makes:
        cli_patch = sdir / "cli.pyzpatch"
        D.rm(cli_patch)
        proc = D.cli("make", old, new, "-o", cli_patch)
        cli_ok = proc.returncode == 0 and cli_patch.is_file() and cli_patch.read_bytes() == patch.read_bytes()
        if cli_ok and not row["identical_builds"]:
            D.rm(target.parent)
            target.parent.mkdir(parents=True)
            shutil.copytree(old, target, symlinks=True)
            proc = D.cli("apply", target, cli_patch)
            cli_ok = proc.returncode == 0 and folder_id(target)[:2] == (new_size, new_hash)
            D.rm(target.parent)
        row["cli_ok"] = cli_ok
        if not cli_ok:
            row["errors"].append("CLI round trip failed: %s" % (proc.stderr or proc.stdout).strip()[-500:])
        show = D.cli("show", patch)
        row["show"] = show.stdout if show.returncode == 0 else show.stderr
        (sdir / "show.txt").write_text(row["show"])

    row.update(
        D.summarize(make=makes, bsdiff=bsdiffs, apply=applies, copy=copies, copy_fsync=copies_fsync),
        files_written=applies[-1]["files_written"] if applies else None,
        files_linked=applies[-1]["files_linked"] if applies else None,
        runs=len(makes),
    )
    return row


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------


def _apply_vs_copy(r) -> str:
    return "%s (%s)" % (R.fmt_x(R.ratio(r.get("apply_s"), r.get("copy_s"))),
                        R.fmt_x(R.ratio(r.get("apply_s"), r.get("copy_fsync_s"))))


MAIN = [
    ("Scenario", R.key("scenario")),
    ("New folder", lambda r: "%s (%s B)" % (R.fmt_size(r["new_size"]), R.fmt_bytes(r["new_size"]))),
    ("Files", R.key("new_files")), ("Folder patch", R.key("patch_size", R.fmt_bytes)),
    ("tar bsdiff4", R.key("bsdiff_size", R.fmt_bytes)), ("patch / tar bsdiff4", R.ratio_of("patch_size", "bsdiff_size")),
    ("Folder compressed (lzma -9)", R.key("lzma_size", R.fmt_bytes)),
    ("make time / tar bsdiff4", R.ratio_of("make_s", "bsdiff_s")),
    ("make memory / tar bsdiff4", R.ratio_of("make_rss", "bsdiff_rss")),
    ("apply time / copytree (+fsync)", _apply_vs_copy), ("apply peak memory", R.key("apply_rss", R.fmt_mib)),
    ("Result identical", R.key("applied_identical", R.IDENTICAL.get)),
]

DETAIL = [
    ("Scenario", R.key("scenario")),
    ("Old folder", lambda r: "%s B, %d files" % (R.fmt_bytes(r["old_size"]), r["old_files"])),
    ("tar old / new", lambda r: "%s / %s B" % (R.fmt_bytes(r["old_tar_size"]), R.fmt_bytes(r["new_tar_size"]))),
    ("make", R.key("make_s", R.fmt_s)), ("tar bsdiff4", R.key("bsdiff_s", R.fmt_s)),
    ("make peak", R.key("make_rss", R.fmt_mib)), ("tar bsdiff4 peak", R.key("bsdiff_rss", R.fmt_mib)),
    ("apply", R.key("apply_s", R.fmt_s)), ("copytree", R.key("copy_s", R.fmt_s)),
    ("copytree+fsync", R.key("copy_fsync_s", R.fmt_s)),
    ("apply wrote / linked", lambda r: "-" if r.get("files_written") is None else "%d / %d" % (
        r["files_written"], r["files_linked"])),
    ("patched program output = new", R.key("output_ok", {True: "yes", False: "**NO**", None: "n/a"}.get)),
]


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
        q = R.ratio(r["patch_size"], r["bsdiff_size"])
        out.append(("%s: folder patch <= 1/5 of tar bsdiff4" % name,
                    "%s / %s bytes = %s" % (R.fmt_bytes(r["patch_size"]), R.fmt_bytes(r["bsdiff_size"]), R.fmt_ratio(q)),
                    q <= 1 / 5))
        t = R.ratio(r["make_s"], r["bsdiff_s"])
        out.append(("%s: make time <= 1/5 of tar bsdiff4's" % name,
                    "%s / %s = %s" % (R.fmt_s(r["make_s"]), R.fmt_s(r["bsdiff_s"]), R.fmt_ratio(t)), t <= 1 / 5))
    r = by.get("unchanged")
    if r:
        out.append(("unchanged: folder patch under 2 KB (2,048 bytes)", "%s bytes" % R.fmt_bytes(r["patch_size"]),
                    r["patch_size"] < 2048))
    return out


def build_report(res) -> str:
    """docs/bench-folders.md from a results file (what main saves in .cache/bench/folders-results.json)."""
    rows, repeats = res["rows"], res["repeats"]
    command = "python bench/folders.py" + (" --quick" if repeats == 1 else "") + (
        " --scenarios " + res["scenarios"] if res["scenarios"] else "")
    lines = R.doc_head("pyzpatch folder benchmark: whole one-folder builds", command, res["machine"],
                     res["total_seconds"]) + [
        "## What is measured",
        "",
        "Each scenario builds an old and a new program with PyInstaller as a one-folder build "
        "(`dist/NAME/`: the executable `NAME` and `_internal/`) and compares the whole folders.",
        "",
        "- **Folder patch**: size of `pyzpatch.make_folder_patch(old_dir, new_dir).data` "
        "(the same bytes as `python -m pyzpatch make OLD_DIR NEW_DIR -o P`, checked once per scenario).",
        "- **tar bsdiff4**: the approach of bsdiff-based updaters. Each folder is written as an "
        "uncompressed tar (`tarfile`, PAX format, entries in sorted path order, mtime, uid, gid, uname "
        "and gname set to 0 / empty so that only contents and modes differ); then "
        "`len(bsdiff4.diff(old_tar, new_tar))` (standard BSDIFF40 with bz2). Its time and memory "
        "include reading both tars (`bench/harness/worker.py bsdiff`); making the tars is not counted.",
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
        "pyzpatch and bsdiff4, %s)." % (R.fmt_mib(res["noop_folder_rss"]), R.fmt_mib(res["noop_run_rss"])),
        "- **Result identical**: after every apply, the patched folder's hash (`pyzpatch.patch.foldernode."
        "node_hash` over every path, kind, mode, link target and content) equals the new build's; and "
        "(column *patched program output = new*) the patched program, run from the patched folder, "
        "exits 0 and prints exactly what the new build prints.",
        "",
        "Each operation runs in its own fresh process; times are taken inside it around the operation "
        "only (not interpreter start-up), peak memory is that process's `ru_maxrss` from `os.wait4`. "
        "Workers are started by `bench/harness/launcher.py`, a tiny process, because on Linux a child's "
        "`ru_maxrss` is at least the peak RSS of the process that exec'd it (this driver peaked at %s); "
        "each worker's `ru_maxrss` was checked against its own `VmHWM` (%s). Times are the median of "
        "%s, memory the largest. Ratios below 1 favour pyzpatch." % (
            R.fmt_mib(res["driver_rss"]), R.memory_check(res["rss_mismatch"]), R.runs_text(repeats)),
        "",
    ] + R.results_and_targets(SCENARIOS, rows, MAIN, DETAIL, targets(rows)) + [
        "## What changed, and what each patch is made of",
        "",
        "Files compared between the two folders by content; archive members as the patch lists them "
        "(`python -m pyzpatch show PATCH`). A patch is a fixed header and one compressed body of three "
        "streams (ops, data, lit; sized before compression).",
        "",
        R.md_table(["Scenario", "What changed", "patch = header + compressed body", "body streams",
                  "largest changes (body bytes before compression)"],
                 [[r["scenario"], what_changed(r), R.anatomy_text(r.get("anatomy")),
                   R.streams_text(r.get("anatomy")), R.top_changes(r.get("changes"), n=5, code=True, how=True)] for r in rows]),
        "",
        "Program output (new build; the patched folder printed the same where the table says so):",
        "",
    ]
    for r in rows:
        out = (r.get("new_run") or {}).get("stdout", "").strip().splitlines()
        lines.append("- `%s`: %s" % (r["scenario"], " / ".join("`%s`" % x for x in out[:4]) +
                                      (" ..." if len(out) > 4 else "") if out else "(no output)"))
    lines.append("")
    lines += R.failures_section(res["problems"])
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def main(argv=None) -> int:
    args, chosen, repeats, started = D.parse_run_args(__doc__, SCENARIOS, "docs/bench-folders.md", argv)

    FWORK.mkdir(parents=True, exist_ok=True)
    source_at_start = D.pyzpatch_source_digest()
    noop_folder = D.noop_rss("folder-noop")
    noop_run = D.noop_rss("noop")

    rows, problems = [], []
    for scenario, old, new in D.built_folders(chosen, problems, "folders"):
        t0 = time.monotonic()
        row = measure(scenario, old, new, repeats)
        D.record(rows, problems, scenario, row)
        print("[folders] %s: folder patch %s B, tar bsdiff4 %s B (measured in %.0f s)" % (
            scenario.name, R.fmt_bytes(row.get("patch_size")), R.fmt_bytes(row.get("bsdiff_size")),
            time.monotonic() - t0), file=sys.stderr, flush=True)

    D.close_workers()
    D.source_check(problems, source_at_start)
    res = {"machine": R.machine_info(), "rows": rows, "noop_folder_rss": noop_folder, "noop_run_rss": noop_run,
           "driver_rss": D.driver_rss(), "rss_mismatch": D.rss_mismatches(rows, lambda r: r["scenario"]),
           "problems": problems, "total_seconds": time.monotonic() - started, "repeats": repeats,
           "scenarios": args.scenarios}
    D.save_results(RESULTS_JSON, **res)
    R.publish(build_report(res), targets(rows), DOC, not args.no_docs, R.text_table(*R.cells(MAIN, rows)))
    return D.exit_code(problems, res["total_seconds"])


if __name__ == "__main__":
    sys.exit(main())
