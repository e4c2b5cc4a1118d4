"""Self-update benchmark: what pyzpatch adds to a frozen program, and what an update costs it.

    python bench/selfupdate.py [--repeats N] [--out docs/bench-selfupdate.md]

Needs the ``bench`` extra: ``pip install -e '.[bench]'``.

Builds the self-updating example app (fixtures/apps/selfapp, v1 and v2, one-file and
one-folder; cached) and measures, in this run:

- footprint: the stored (compressed) bytes the app's archive spends on pyzpatch's modules, on
  bsdiff4, and on cryptography (needed only to check signatures), against the whole program;
- patch size: the pyzpatch patch against a whole-file bsdiff4 of the executable (one-file);
- time: a run of v1 that finds the patch, applies it, restarts and runs as v2, against a plain
  run of v1 (no patch) plus a plain copy of the new program into place (``shutil.copy2`` or
  ``copytree``), the cheapest way to replace a program that has already arrived whole.

Times of the program runs are medians of wall-clock runs of the real executables, each on a
fresh copy; make, bsdiff4 and the copy run in fresh worker processes (bench/harness/worker.py).
Writes .cache/bench/selfupdate-results.json and the report.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import scenarios as S
from harness.driver import BENCH_CACHE, DOCS, close_workers, run_worker, save_results
from harness.report import doc_head, machine_info, runs_text

from pyzpatch import describe, open_bundle

RESULTS_JSON = BENCH_CACHE / "selfupdate-results.json"
MODES = ("onefile", "onedir")


def builds() -> dict:
    """{(mode, version): the executable (onefile) or the folder (onedir)}."""
    v1, v2 = S.selfapp()
    return {(mode, version): spec.build(mode) if mode == "onefile" else spec.folder()
            for mode in MODES for version, spec in ((1, v1), (2, v2))}


def footprint(exe: Path) -> dict:
    """Stored bytes by owner: pyzpatch, bsdiff4, cryptography, everything."""
    with open_bundle(exe) as bundle:
        info = describe(bundle, [])
    groups = {"pyzpatch": 0, "bsdiff4": 0, "cryptography": 0}
    for entry in info["archive"]["entries"]:
        for owner in groups:
            if entry["name"].startswith((owner + "/", owner + ".")) or (
                    owner == "cryptography" and entry["name"].startswith("_cffi_backend")):
                groups[owner] += entry["stored_length"]
    for pyz in info["pyz"]:
        for module in pyz["modules"]:
            top = module["name"].split(".")[0]
            if top in groups:
                groups[top] += module["stored_length"]
            elif top == "_cffi_backend":
                groups["cryptography"] += module["stored_length"]
    groups["program"] = os.path.getsize(exe)
    return groups


def install(src: Path, dest_root: Path) -> Path:
    dest_root.mkdir(parents=True)
    (dest_root / "updates").mkdir()
    if src.is_dir():
        shutil.copytree(src, dest_root / "selfapp", symlinks=True)
        return dest_root / "selfapp" / "selfapp"
    shutil.copy2(src, dest_root / "selfapp")
    return dest_root / "selfapp"


def timed_run(exe: Path, cwd: Path) -> tuple:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SELFAPP_")}
    started = time.perf_counter()
    proc = subprocess.run([str(exe), "bench"], capture_output=True, text=True, env=env, cwd=cwd)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{exe} failed: {proc.stderr}")
    return seconds, proc.stdout


def measure(mode: str, b: dict, repeats: int, work: Path) -> dict:
    v1, v2 = b[(mode, 1)], b[(mode, 2)]
    patch = work / f"{mode}.patch"
    made = run_worker("folder-make" if mode == "onedir" else "make", v1, v2, patch)
    plain, update, copy = [], [], []
    for i in range(repeats):
        root = work / f"{mode}-plain-{i}"
        exe = install(v1, root)
        plain.append(timed_run(exe, root)[0])
        root = work / f"{mode}-update-{i}"
        exe = install(v1, root)
        shutil.copy(patch, root / "updates" / "fix.patch")
        seconds, out = timed_run(exe, root)
        if "working as version 2" not in out or "selfapp version 1" not in out:
            raise SystemExit(f"the update did not happen:\n{out}")
        update.append(seconds)
        dest = work / f"{mode}-copy-{i}"
        copied = run_worker("copytree", v2, dest, "nofsync") if v2.is_dir() else run_worker("copy2", v2, dest)
        copy.append(copied["seconds"])
    result = {"patch": made["size"], "plain": statistics.median(plain), "update": statistics.median(update),
              "copy": statistics.median(copy)}
    if mode == "onefile":
        diff = run_worker("bsdiff", v1, v2)
        result["bsdiff4"], result["bsdiff4_seconds"] = diff["size"], diff["seconds"]
    return result


def report(res) -> str:
    fp, fp_crypto, results, info = res["footprint"], res["footprint_crypto"], res["results"], res["machine"]
    lines = doc_head("pyzpatch self-update benchmark", "python bench/selfupdate.py", info, res["total_seconds"]) + [
        "The app is `fixtures/apps/selfapp` (the README's example): at start it looks for "
        "`updates/fix.patch`, applies it to itself with `pyzpatch.selfupdate.apply_update` and "
        "restarts; v2 differs from v1 in its version string.",
        "",
        "## What pyzpatch adds to a frozen program",
        "",
        "Stored (compressed) bytes in the one-file executable:",
        "",
        "| Part | Bytes | Share of the program |",
        "|---|---|---|",
    ]
    for owner, note in (("pyzpatch", "pyzpatch's modules"), ("bsdiff4", "bsdiff4 (C extension)")):
        lines.append(f"| {note} | {fp[owner]:,} | {fp[owner] / fp['program']:.1%} |")
    lines.append(f"| the whole program (signatures checked by `pyzpatch.patchfile.ed25519`) | {fp['program']:,} | 100% |")
    lines += [
        f"| *for comparison:* cryptography, if bundled (`_rust`, cffi, its modules) | {fp_crypto['cryptography']:,} "
        f"| {fp_crypto['cryptography'] / fp_crypto['program']:.1%} of that build ({fp_crypto['program']:,} bytes) |",
        "",
        "pyzpatch and bsdiff4 are what every self-updating program carries. Signatures are checked "
        "by pyzpatch's own Ed25519 verifier when cryptography is absent, so the example app is built "
        "with `--exclude-module cryptography` (PyInstaller would otherwise collect it, because "
        "`pyzpatch.patchfile.signing` can import it for keygen and signing).",
        "",
        "## What an update costs",
        "",
        f"Median of {runs_text(res['repeats'])} each. *Update run*: v1 started with the patch in `updates/`; "
        "it applies the patch (checks the base's SHA-256, rebuilds, verifies, swaps atomically), "
        "restarts, and runs as v2, all in one invocation. *Plain run*: v1 without a patch. "
        "*Copy*: copying the whole new program into place (`shutil.copy2` / `copytree`).",
        "",
        "| Build | Patch | Whole-file bsdiff4 | Plain run | Update run | Copy | update run / (plain run + copy) |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode, r in results.items():
        bs = f"{r['bsdiff4']:,} B ({r['bsdiff4_seconds']:.1f} s)" if "bsdiff4" in r else "n/a (folder)"
        lines.append(f"| {mode} | {r['patch']:,} B | {bs} | {r['plain']:.2f} s | {r['update']:.2f} s | "
                     f"{r['copy']:.3f} s | {r['update'] / (r['plain'] + r['copy']):.2f}x |")
    lines += [
        "",
        "An update run costs about one extra start of the program (the restart) plus the apply; "
        "for the one-file build the restart also re-extracts the program to a new temporary folder.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(DOCS / "bench-selfupdate.md"))
    args = parser.parse_args(argv)
    started = time.monotonic()
    b = builds()
    fp = footprint(b[("onefile", 1)])
    # The same app without --exclude-module cryptography: what checking signatures through
    # cryptography would cost.
    fp_crypto = footprint(S.selfapp_with_cryptography().build("onefile"))
    with tempfile.TemporaryDirectory(prefix="pyzpatch-bench-self-") as tmp:
        results = {mode: measure(mode, b, args.repeats, Path(tmp)) for mode in MODES}
    close_workers()
    res = {"machine": machine_info(), "footprint": fp, "footprint_crypto": fp_crypto, "results": results,
           "repeats": args.repeats, "total_seconds": time.monotonic() - started}
    save_results(RESULTS_JSON, **res)
    text = report(res)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
