"""Benchmark of pyzpatch as tufup's binary diff (``pyzpatch.tufup.PyzpatchDiff``) against tufup's
default one (bsdiff4), on one-folder builds.

    python bench/tufup.py [--quick] [--scenarios a,b] [--no-docs]

Needs the ``bench`` extra and .venv-tufup (``python fixtures/build.py --tufup-venv``: tufup 0.10
with the bsdiff4 1.2.x it pins, and this working tree's pyzpatch).

For each scenario the old and the new program are built as one-folder builds (cached in
.cache/fixtures/), and tufup's own ``make_gztar_archive`` writes each folder's ``.tar.gz``, as
``Repository.add_bundle`` does. Then, in the same run, each operation in a fresh process of
.venv-tufup (bench/harness/worker.py):

* tufup default: ``Patcher.diff_and_hash`` with ``DefaultBinaryDiff``, i.e. ``bsdiff4.diff`` of
  the two uncompressed tars, the patch tufup's ``add_bundle`` makes by default: its size, time
  (gunzip of both archives and hashing included) and peak memory;
* PyzpatchDiff: the same call with ``binary_diff=PyzpatchDiff``;
* patch: each binary diff's ``patch`` on the old tar, as tufup's client runs it, checked against
  the new tar.

Times are the median of 3 runs (1 with --quick), memory the largest. Writes
.cache/bench/tufup-results.json and docs/bench-tufup.md and prints it. Exits 1 if a patch could
not be made or did not rebuild the new tar. Sizes and times are reported against the issue's
targets, never asserted.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from harness import driver as D
from harness import report as R
from harness import scenarios as S
from harness.scenarios import Scenario

from fixtures.build import TUFUP_VENV, build_tufup_venv

TWORK = D.WORK / "tufup"
DOC = D.DOCS / "bench-tufup.md"
RESULTS_JSON = D.BENCH_CACHE / "tufup-results.json"

SCENARIOS = [
    Scenario("hello-string", "hello (two-file program), printed string in mod1.py changed v1 -> v2", S.hello_string),
    Scenario("dependency", "%s %s -> %s in a small app (%s): the dependency-upgrade one-folder fixture" % (
        S.DEP_PACKAGE, S.DEP_OLD, S.DEP_NEW, "its modules in the PYZ"), S.dependency),
]
TARGET_SCENARIO = "dependency"


def measure(scenario: Scenario, old: Path, new: Path, python: str, repeats: int) -> dict:
    row = {"scenario": scenario.name, "title": scenario.title, "errors": []}
    sdir = TWORK / scenario.name
    D.rm(sdir)
    (sdir / "targets").mkdir(parents=True)
    name = old.name
    archives = []
    for folder, version in ((old, "1.0"), (new, "2.0")):
        made = D.run_worker("tufup-archive", folder, sdir / "targets", name, version, python=python)
        archives.append(Path(made["path"]))
    old_tgz, new_tgz = archives
    row["archive_size"] = new_tgz.stat().st_size
    runs = {"default": [], "pyzpatch": [], "default_patch": [], "pyzpatch_patch": []}
    for i in range(repeats):
        for which in ("default", "pyzpatch"):
            print("[tufup] %s: run %d/%d: %s diff..." % (scenario.name, i + 1, repeats, which), file=sys.stderr,
                  flush=True)
            patch = sdir / ("%s-2.0.%s.patch" % (name, which))
            try:
                runs[which].append(D.run_worker("tufup-diff", old_tgz, new_tgz, patch, which, python=python))
                applied = D.run_worker("tufup-patch", old_tgz, patch, which, new_tgz, python=python)
            except D.WorkerError as exc:
                row["errors"].append("%s: %s" % (which, exc))
                continue
            runs[which + "_patch"].append(applied)
            if not applied["identical"]:
                row["errors"].append("%s: the patched tar is NOT the new tar" % which)
    for which in ("default", "pyzpatch"):
        row["errors"] += D.same_sizes(runs[which], which)
        if runs[which]:
            row[which + "_size"] = runs[which][-1]["size"]
            row["tar_size"] = runs[which][-1]["tar_size"]
    row.update(D.summarize(**runs), runs=repeats)
    return row


MAIN = [
    ("Scenario", R.key("scenario")),
    ("New tar", R.key("tar_size", R.fmt_bytes)),
    ("tufup archive (.tar.gz)", R.key("archive_size", R.fmt_bytes)),
    ("tufup default patch", R.key("default_size", R.fmt_bytes)),
    ("PyzpatchDiff patch", R.key("pyzpatch_size", R.fmt_bytes)),
    ("patch / default", R.ratio_of("pyzpatch_size", "default_size")),
    ("make time / default", R.ratio_of("pyzpatch_s", "default_s")),
    ("make memory / default", R.ratio_of("pyzpatch_rss", "default_rss")),
    ("patch time / default", R.ratio_of("pyzpatch_patch_s", "default_patch_s")),
]

DETAIL = [
    ("Scenario", R.key("scenario")),
    ("default make", R.key("default_s", R.fmt_s)), ("PyzpatchDiff make", R.key("pyzpatch_s", R.fmt_s)),
    ("default make peak", R.key("default_rss", R.fmt_mib)),
    ("PyzpatchDiff make peak", R.key("pyzpatch_rss", R.fmt_mib)),
    ("default patch", R.key("default_patch_s", R.fmt_s)),
    ("PyzpatchDiff patch", R.key("pyzpatch_patch_s", R.fmt_s)),
    ("PyzpatchDiff patch peak", R.key("pyzpatch_patch_rss", R.fmt_mib)),
]


def targets(rows) -> list:
    out = []
    r = next((r for r in rows if r["scenario"] == TARGET_SCENARIO and r.get("pyzpatch_size")), None)
    if r:
        q = R.ratio(r["pyzpatch_size"], r["default_size"])
        out.append(("%s: PyzpatchDiff patch <= 1/8 of tufup's default" % TARGET_SCENARIO, "%s / %s bytes = %s" % (
            R.fmt_bytes(r["pyzpatch_size"]), R.fmt_bytes(r["default_size"]), R.fmt_ratio(q)), q <= 1 / 8))
        t = R.ratio(r["pyzpatch_s"], r["default_s"])
        out.append(("%s: PyzpatchDiff make time <= 1/5 of tufup's default" % TARGET_SCENARIO, "%s / %s = %s" % (
            R.fmt_s(r["pyzpatch_s"]), R.fmt_s(r["default_s"]), R.fmt_ratio(t)), t <= 1 / 5))
    return out


def build_report(res) -> str:
    rows, repeats = res["rows"], res["repeats"]
    command = "python bench/tufup.py" + (" --quick" if repeats == 1 else "") + (
        " --scenarios " + res["scenarios"] if res["scenarios"] else "")
    lines = R.doc_head("pyzpatch as tufup's binary diff", command, res["machine"], res["total_seconds"]) + [
        "tufup %s with bsdiff4 %s (.venv-tufup); see [tufup.md](tufup.md) for how to use it." % (
            res["tufup"], res["bsdiff4"]),
        "",
        "## What is measured",
        "",
        "Each scenario builds an old and a new program as one-folder builds; tufup's "
        "`make_gztar_archive` writes each folder's `.tar.gz` (a PAX tar of the folder, gzip level 9), "
        "as `Repository.add_bundle` does.",
        "",
        "- **tufup default patch**: `Patcher.diff_and_hash(old, new, patch)` with tufup's "
        "`DefaultBinaryDiff`, i.e. `bsdiff4.diff` of the two *uncompressed* tars: the patch tufup "
        "publishes by default.",
        "- **PyzpatchDiff patch**: the same call with `binary_diff=pyzpatch.tufup.PyzpatchDiff`: the "
        "tar codec opens the tar, the executable, its CArchive and PYZ, `base_library.zip` and the "
        "rest, and the patch names only what changed; `make_patch` has applied it and compared the "
        "result with the new tar before it is returned.",
        "- **make time / memory**: each `diff_and_hash` call (gunzip of both archives, the diff, "
        "hashing the new tar), in the same run; memory is peak RSS.",
        "- **patch time**: each binary diff's `patch(src_bytes=old_tar, patch_bytes=...)`, what "
        "tufup's client runs before it checks the result's hash (gunzip and gzip around it not "
        "counted); the result was the new tar exactly every time.",
        "",
        "Each operation runs in its own fresh process; times are taken inside it around the operation "
        "only, peak memory is its `ru_maxrss` from `os.wait4`. Times are the median of %s, memory "
        "the largest. Ratios below 1 favour pyzpatch." % R.runs_text(repeats),
        "",
    ] + R.results_and_targets(SCENARIOS, rows, MAIN, DETAIL, targets(rows))
    lines += R.failures_section(res["problems"])
    return "\n".join(lines)


def main(argv=None) -> int:
    args, chosen, repeats, started = D.parse_run_args(__doc__, SCENARIOS, "docs/bench-tufup.md", argv)
    python = build_tufup_venv()
    if python is None:
        print("bench/tufup.py: %s could not be made (see above)" % TUFUP_VENV, file=sys.stderr)
        return 1
    tufup_v, bsdiff_v = subprocess.run([str(python), "-c", "import tufup, bsdiff4; print(tufup.__version__, "
                                        "bsdiff4.__version__)"], capture_output=True, text=True,
                                       check=True).stdout.split()
    source_at_start = D.pyzpatch_source_digest()
    rows, problems = [], []
    for scenario, old, new in D.built_folders(chosen, problems, "tufup"):
        row = measure(scenario, old, new, str(python), repeats)
        D.record(rows, problems, scenario, row)
        print("[tufup] %s: PyzpatchDiff %s B, default %s B" % (scenario.name, R.fmt_bytes(row.get("pyzpatch_size")),
                                                              R.fmt_bytes(row.get("default_size"))), file=sys.stderr)
    D.close_workers()
    D.source_check(problems, source_at_start)
    res = {"machine": R.machine_info(), "rows": rows, "problems": problems, "repeats": repeats,
           "scenarios": args.scenarios, "total_seconds": time.monotonic() - started, "tufup": tufup_v,
           "bsdiff4": bsdiff_v}
    D.save_results(RESULTS_JSON, **res)
    R.publish(build_report(res), targets(rows), DOC, not args.no_docs)
    return D.exit_code(problems, res["total_seconds"])


if __name__ == "__main__":
    sys.exit(main())
