"""The driver side of a benchmark: workers in fresh processes, repeats, medians and peaks.

Every measured operation runs in a fresh process (harness/worker.py), started by a tiny
long-lived launcher (harness/launcher.py) so that the worker's ru_maxrss from os.wait4 is its
own: on Linux a child's ru_maxrss includes the peak RSS of whatever process exec'd it.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

REPO = Path(__file__).resolve().parents[2]

BENCH_CACHE = REPO / ".cache" / "bench"
WORK = BENCH_CACHE / "work"
DOCS = REPO / "docs"
LZMA_CACHE = BENCH_CACHE / "lzma-sizes.json"
WORKER = Path(__file__).resolve().parent / "worker.py"
LAUNCHER = Path(__file__).resolve().parent / "launcher.py"
MiB = 1024 * 1024


class WorkerError(RuntimeError):
    pass


class Launcher:
    """harness/launcher.py: starts each worker from a tiny process, so that the worker's
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


_launcher: Optional[Launcher] = None


def run_worker(op: str, *args, python: Optional[str] = None) -> dict:
    """Run one operation (a name in harness/worker.py's OPS) in a fresh process (of ``python``,
    default this interpreter); its result plus its ru_maxrss (KiB, from os.wait4) as ``maxrss_kib``."""
    global _launcher
    if _launcher is None:
        _launcher = Launcher()
    WORK.mkdir(parents=True, exist_ok=True)
    result_path = WORK / "result.json"
    if result_path.exists():
        result_path.unlink()
    cmd = [python or sys.executable, str(WORKER), str(result_path), op, *map(str, args)]
    done = _launcher.run(cmd, WORK / "worker.stdout", WORK / "worker.stderr")
    if done["exit"] != 0:
        tail = (WORK / "worker.stderr").read_text(errors="replace").strip().splitlines()[-15:]
        raise WorkerError("%s failed (exit %d):\n  %s" % (op, done["exit"], "\n  ".join(tail)))
    with open(result_path) as fh:
        result = json.load(fh)
    result["maxrss_kib"] = done["maxrss_kib"]
    return result


def close_workers() -> None:
    global _launcher
    if _launcher is not None:
        _launcher.close()
        _launcher = None


def noop_rss(op: str = "noop") -> int:
    """Peak memory (bytes) of a worker that only imports: the floor under every measurement."""
    return max(run_worker(op)["maxrss_kib"] for _ in range(2)) * 1024


def driver_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ---------------------------------------------------------------------------
# Repeats: medians of times, peaks of memory
# ---------------------------------------------------------------------------


def median_s(runs) -> Optional[float]:
    return statistics.median(r["seconds"] for r in runs) if runs else None


def peak_rss(runs) -> Optional[int]:
    return max(r["maxrss_kib"] for r in runs) * 1024 if runs else None


def peak_hwm(runs) -> Optional[int]:
    vals = [r.get("vm_hwm_kib") for r in runs if r.get("vm_hwm_kib")]
    return max(vals) * 1024 if vals else None


def record_applied(row: dict, identical: list, outputs_ok: list, repeats: int, made: bool) -> None:
    """Into ``row``: whether every apply rebuilt the new folder exactly and the patched program
    printed what the new build prints, with an error for each that did not (folder benches)."""
    row["applied_identical"] = bool(identical) and all(identical) and len(identical) == repeats
    row["output_ok"] = bool(outputs_ok) and all(outputs_ok)
    if made and not row["applied_identical"]:
        row["errors"].append("the patched folder is NOT the new build (folder hash differs)")
    if made and not row["output_ok"]:
        row["errors"].append("the patched program does not print what the new build prints: %s" %
                             row.get("patched_run"))


def summarize(**runs) -> dict:
    """For each named list of worker results: NAME_s (median seconds), NAME_rss (peak ru_maxrss,
    bytes), NAME_hwm (peak VmHWM, bytes)."""
    out = {}
    for name, rs in runs.items():
        out.update({name + "_s": median_s(rs), name + "_rss": peak_rss(rs), name + "_hwm": peak_hwm(rs)})
    return out


def rss_mismatches(rows, label, whats=("make", "bsdiff", "apply")) -> List[str]:
    """Sanity check of the memory measurement: a worker's ru_maxrss includes the peak RSS of the
    process that exec'd it (the launcher, kept tiny), so it should equal the worker's VmHWM."""
    out = []
    for r in rows:
        for what in whats:
            rss, hwm = r.get(what + "_rss"), r.get(what + "_hwm")
            if rss and hwm and rss > hwm * 1.02 + MiB:
                out.append("%s %s" % (label(r), what))
                print("[bench] note: %s %s ru_maxrss %.1f MiB > VmHWM %.1f MiB" % (
                    label(r), what, rss / MiB, hwm / MiB), file=sys.stderr)
    return out


def same_sizes(runs, what="make") -> List[str]:
    """An error if the runs' outputs differ in size (make must be deterministic)."""
    sizes = {r["size"] for r in runs}
    return [] if len(sizes) <= 1 else ["%s gave different patch sizes across runs: %s" % (what, sorted(sizes))]


# ---------------------------------------------------------------------------
# Files, programs, the CLI
# ---------------------------------------------------------------------------


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(MiB), b""):  # small reads: keep this process lean
            h.update(block)
    return h.hexdigest()


def lzma_size(path: Path, digest: str) -> int:
    """len(lzma.compress(file, preset=9)), computed once per content (cached by SHA-256)."""
    cache = json.loads(LZMA_CACHE.read_text()) if LZMA_CACHE.is_file() else {}
    if digest not in cache:
        cache[digest] = run_worker("lzma", path)["size"]
        LZMA_CACHE.parent.mkdir(parents=True, exist_ok=True)
        LZMA_CACHE.write_text(json.dumps(cache, indent=1, sort_keys=True))
    return cache[digest]


def run_program(exe: Path, *args, timeout=120) -> dict:
    """Run a built program once: {ok (exit 0), rc, stdout, stderr (its last lines)}."""
    try:
        proc = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"ok": False, "rc": None, "stdout": "", "stderr": str(exc)}
    return {"ok": proc.returncode == 0, "rc": proc.returncode, "stdout": proc.stdout,
            "stderr": "\n".join(proc.stderr.strip().splitlines()[-5:])}


def cli(*args) -> subprocess.CompletedProcess:
    """``python -m pyzpatch ARGS`` from the repo."""
    return subprocess.run([sys.executable, "-m", "pyzpatch", *map(str, args)], cwd=str(REPO),
                          capture_output=True, text=True)


def rm(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def pyzpatch_source_digest() -> str:
    """A digest of pyzpatch's sources, to notice them changing while the benchmark runs."""
    h = hashlib.sha256()
    for path in sorted((REPO / "pyzpatch").rglob("*.py")):
        h.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------
# A benchmark's command line and its end
# ---------------------------------------------------------------------------


def arg_parser(doc: str, scenarios, doc_names: str) -> argparse.ArgumentParser:
    """--quick, --scenarios, --no-docs, as every benchmark takes them."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one run per measurement instead of three")
    parser.add_argument("--scenarios", help="comma-separated subset of: " + ",".join(s.name for s in scenarios))
    parser.add_argument("--no-docs", action="store_true", help="do not write " + doc_names)
    return parser


def chosen_scenarios(parser, args, scenarios) -> list:
    if not args.scenarios:
        return list(scenarios)
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    known = {s.name: s for s in scenarios}
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error("unknown scenario(s) %s; choose from %s" % (", ".join(unknown), ", ".join(known)))
    return [s for s in scenarios if s.name in names]


def parse_run_args(doc: str, scenarios, doc_names: str, argv=None):
    """The usual start of a benchmark's main: (args, the scenarios chosen, repeats per
    measurement, the start time)."""
    parser = arg_parser(doc, scenarios, doc_names)
    args = parser.parse_args(argv)
    return args, chosen_scenarios(parser, args, scenarios), 1 if args.quick else 3, time.monotonic()


def built_folders(chosen, problems: List[str], tag: str):
    """(scenario, old folder, new folder) for each chosen scenario whose two builds succeed; a
    build failure is a bench failure, reported, not a crash."""
    for scenario in chosen:
        print("[%s] %s: building..." % (tag, scenario.name), file=sys.stderr, flush=True)
        old_spec, new_spec = scenario.prepare()
        try:
            old, new = old_spec.folder(), new_spec.folder()
        except Exception as exc:
            failure(problems, "%s: build failed: %s" % (scenario.name, exc))
            continue
        yield scenario, old, new


def record(rows: list, problems: List[str], scenario, row: dict) -> None:
    """Keep a measured row, and its errors as failures."""
    rows.append(row)
    for err in row["errors"]:
        failure(problems, "%s: %s" % (scenario.name, err))


def failure(problems: List[str], msg: str) -> None:
    problems.append(msg)
    print("\n!!!!! BENCH FAILURE: %s\n" % msg, file=sys.stderr, flush=True)


def source_check(problems: List[str], at_start: str) -> None:
    if pyzpatch_source_digest() != at_start:
        msg = ("pyzpatch/ sources changed while the benchmark ran: the results mix versions "
               "(and a make that differs between runs may be only that); run it again")
        problems.append(msg)
        print("\n!!!!! BENCH WARNING: %s\n" % msg, file=sys.stderr, flush=True)


def save_results(path: Path, **results) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1))


def exit_code(problems: List[str], total_s: Optional[float]) -> int:
    if total_s is not None:
        print("total run time: %.0f s" % total_s)
    if problems:
        print("\n!!!!! %d BENCH FAILURE(S):" % len(problems), file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        return 1
    return 0
