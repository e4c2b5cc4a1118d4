"""Self-update benchmark: what pyzpatch adds to a frozen program, and what an update costs it.

    python bench/selfupdate.py [--repeats N] [--out docs/bench-selfupdate.md]

Needs the ``bench`` extra: ``pip install -e '.[bench]'``.

Builds (cached) the hello app without and with ``import pyzpatch.selfupdate``, and the
self-updating example app (fixtures/apps/selfapp, v1 and v2, one-file and one-folder), and
measures, in this run:

- footprint: how much larger a one-file program gets by importing ``pyzpatch.selfupdate``
  (whole executables compared, so everything pyzpatch drags in counts), and where those bytes
  go; the same without pyzpatch's PyInstaller hook, and with what the hook leaves out put back
  (ctypes, cryptography). The target: at most 400,000 bytes with the hook;
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
# The most `import pyzpatch.selfupdate` may add to a one-file program (issue 12).
MAX_ADDED = 400_000
# The builds of the hello app importing pyzpatch.selfupdate, by key: (title, hidden imports, hooks).
FOOTPRINT_BUILDS = {
    "hook": ("`import pyzpatch.selfupdate`, with pyzpatch's hook (as users build)", (), True),
    "nohook": ("the same without pyzpatch's hook (as before it was shipped)", (), False),
    "ctypes": ("with the hook, plus `--hidden-import ctypes` (one-step folder exchange)", ("ctypes",), True),
    "crypto": ("with the hook, plus `--hidden-import cryptography.hazmat.primitives.asymmetric.ed25519`",
               ("cryptography.hazmat.primitives.asymmetric.ed25519",), True),
}


def builds() -> dict:
    """{(mode, version): the executable (onefile) or the folder (onedir)}."""
    v1, v2 = S.selfapp()
    return {(mode, version): spec.build(mode) if mode == "onefile" else spec.folder()
            for mode in MODES for version, spec in ((1, v1), (2, v2))}


def stored(exe: Path) -> dict:
    """{archive entry or PYZ module name: stored bytes} of a one-file program."""
    with open_bundle(exe) as bundle:
        info = describe(bundle, [])
    names = {"entry:" + e["name"]: e["stored_length"] for e in info["archive"]["entries"] if e["typecode"] != "z"}
    names.update({"module:" + m["name"]: m["stored_length"] for pyz in info["pyz"] for m in pyz["modules"]})
    return names


def owner(name: str) -> str:
    kind, _, rest = name.partition(":")
    top = rest.replace("/", ".").split(".")[0]
    if top in ("pyzpatch", "bsdiff4"):
        return top
    if top in ("cryptography", "_cffi_backend"):
        return "cryptography"
    return "stdlib"


def footprint() -> dict:
    """Sizes of the hello app and of each FOOTPRINT_BUILDS variant, and where the bytes that the
    import with the hook adds go."""
    plain_spec, _ = S.hello_pair()
    plain = plain_spec.build("onefile")
    result = {"plain": os.path.getsize(plain), "builds": {}}
    for key, (_title, hidden, hooks) in FOOTPRINT_BUILDS.items():
        exe = S.hello_selfupdate(*hidden, hooks=hooks).build("onefile")
        result["builds"][key] = os.path.getsize(exe)
        if key == "hook":
            before, after = stored(plain), stored(exe)
            parts = {"pyzpatch": 0, "bsdiff4": 0, "stdlib": 0, "cryptography": 0}
            added_stdlib = []
            for name, size in after.items():
                if name not in before:
                    parts[owner(name)] += size
                    if owner(name) == "stdlib" and not name.endswith(":prog"):
                        added_stdlib.append(name.partition(":")[2])
            result["parts"] = parts
            result["stdlib_names"] = sorted(added_stdlib)
    return result


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
    fp, results, info = res["footprint"], res["results"], res["machine"]
    added = fp["builds"]["hook"] - fp["plain"]
    lines = doc_head("pyzpatch self-update benchmark", "python bench/selfupdate.py", info, res["total_seconds"]) + [
        "## What `import pyzpatch.selfupdate` adds to a program",
        "",
        "The hello app (`fixtures/apps/hello`, two modules that print a line) built as a one-file program, and "
        "the same app with `from pyzpatch import selfupdate; selfupdate.prepare()` added (`prepare()` imports "
        "every module an update needs, so a build that left one out would fail to run). Whole executables are "
        "compared, so everything pyzpatch drags in counts. PyInstaller finds pyzpatch's hook "
        "(`pyzpatch/_pyinstaller/`) through its `pyinstaller40` entry point; nothing is passed on the command line.",
        "",
        "| Build | Program | Added to the hello app |",
        "|---|---|---|",
        f"| the hello app | {fp['plain']:,} | |",
    ]
    for key, (title, _hidden, _hooks) in FOOTPRINT_BUILDS.items():
        size = fp["builds"][key]
        lines.append(f"| {title} | {size:,} | {size - fp['plain']:+,} |")
    parts = fp["parts"]
    rest = added - sum(parts.values())
    lines += [
        "",
        f"Target: `import pyzpatch.selfupdate` adds at most {MAX_ADDED:,} bytes to a one-file program: "
        f"{added:,} bytes, **{'met' if added <= MAX_ADDED else 'NOT met'}**.",
        "",
        "Where the bytes added with the hook go (stored, compressed bytes in the archive):",
        "",
        "| Part | Bytes |",
        "|---|---|",
        f"| pyzpatch's modules | {parts['pyzpatch']:,} |",
        f"| bsdiff4 (its C extension and modules) | {parts['bsdiff4']:,} |",
        f"| standard-library modules and extensions the hello app does not use | {parts['stdlib']:,} |",
        f"| the rest (larger tables, `base_library.zip`, the script) | {rest:,} |",
        "",
        "The standard-library parts: " + ", ".join(f"`{n}`" for n in fp["stdlib_names"]) + ".",
        "",
        "What the hook keeps out of pyzpatch's imports (a program that imports one of them itself still gets it): "
        "`bsdiff4.test_all`, bsdiff4's test suite, which `bsdiff4.test()` imports and which pulls in unittest, "
        "asyncio, http and ssl; typer, rich and click (the command line's); cryptography (only making keys and "
        "signing need it: signatures are checked by `pyzpatch.patchfile.ed25519`); and ctypes, which only the "
        "one-step exchange of two folders uses (without it a one-folder update swaps by two renames; see "
        "docs/selfupdate.md).",
        "",
        "## What an update costs",
        "",
        "The app is `fixtures/apps/selfapp` (the README's example): at start it looks for "
        "`updates/fix.patch`, applies it to itself with `pyzpatch.selfupdate.apply_update` and "
        "restarts; v2 differs from v1 in its version string.",
        "",
        f"Median of {runs_text(res['repeats'])} each. *Update run*: v1 started with the patch in `updates/`; "
        "it applies the patch (checks the base's SHA-256, rebuilds, verifies, swaps), "
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
    fp = footprint()
    b = builds()
    with tempfile.TemporaryDirectory(prefix="pyzpatch-bench-self-") as tmp:
        results = {mode: measure(mode, b, args.repeats, Path(tmp)) for mode in MODES}
    close_workers()
    res = {"machine": machine_info(), "footprint": fp, "results": results,
           "repeats": args.repeats, "total_seconds": time.monotonic() - started}
    save_results(RESULTS_JSON, **res)
    text = report(res)
    Path(args.out).write_text(text)
    print(text)
    added = fp["builds"]["hook"] - fp["plain"]
    if added > MAX_ADDED:
        print(f"target missed: import pyzpatch.selfupdate adds {added:,} bytes (at most {MAX_ADDED:,})",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
