"""How the benchmarks report: number formatting, markdown and text tables, the machine, the
targets table, the patch-size chart (matplotlib, from the ``bench`` extra:
``pip install -e '.[bench]'``)."""
from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path
from typing import List

from .driver import REPO, MiB


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt_bytes(n) -> str:
    return "-" if n is None else "{:,}".format(n)


def fmt_mib(n) -> str:
    return "-" if n is None else "%.1f MiB" % (n / MiB)


def fmt_size(n) -> str:
    if n is None:
        return "-"
    return "%.1f MB" % (n / 1e6) if n >= 10**6 else fmt_bytes(n)


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


IDENTICAL = {True: "yes", False: "**NO**", None: "n/a: old = new"}


# A table is a list of columns: (header, function of a result row -> cell text).


def cells(columns, rows) -> tuple:
    """(header, rows of cell texts) of a table given as columns."""
    return [h for h, _ in columns], [[cell(r) for _, cell in columns] for r in rows]


def key(name, fmt=str):
    """Column cell: ``fmt`` of the row's ``name`` (None where the row has none)."""
    return lambda r: fmt(r.get(name))


def ratio_of(a, b, fmt=None):
    """Column cell: the row's ``a`` / ``b``, as ``fmt_ratio`` (or ``fmt``) formats it."""
    return lambda r: (fmt or fmt_ratio)(ratio(r.get(a), r.get(b)))


def md_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(header, rows) -> str:
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    fmt = lambda row: "  ".join(x.ljust(w) for x, w in zip(row, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def targets_table(header, targets) -> str:
    """``targets``: tuples whose last item is whether the target was met."""
    return md_table(header, [list(t[:-1]) + ["yes" if t[-1] else "**no**"] for t in targets])


def print_targets(targets, sep=": ") -> None:
    """``targets``: (target, [where,] value, met)."""
    print("Targets:")
    for t in targets:
        label = t[0] if len(t) == 3 else "%s -- %s" % (t[0], t[1])
        print("  [%s] %s%s%s" % ("met" if t[-1] else "NOT MET", label, sep, t[-2]))


def publish(report: str, targets, doc: Path, write: bool, table: str = "") -> None:
    """Print a benchmark's report (and ``table``, if any) and its targets; write the report to
    ``doc`` unless the run was asked not to (``--no-docs``)."""
    print()
    print(report)
    print()
    if table:
        print(table)
        print()
    print_targets(targets)
    if write:
        doc.parent.mkdir(exist_ok=True)
        doc.write_text(report, encoding="utf-8")
        print("\nwrote %s" % doc)


# ---------------------------------------------------------------------------
# What a patch is made of (harness/worker.py's make: anatomy and leaf changes)
# ---------------------------------------------------------------------------


def anatomy_text(a) -> str:
    return "-" if not a else "%s + %s B" % (fmt_bytes(a["header"]), fmt_bytes(a["body"]))


def streams_text(a) -> str:
    return "-" if not a else "ops %s, data %s, lit %s" % (fmt_bytes(a["ops"]), fmt_bytes(a["data"]),
                                                          fmt_bytes(a["lit"]))


def top_changes(changes, n=4, code=False, how=False) -> str:
    """The ``n`` changes with the most body bytes: ``path action (N B)``; with ``code``, paths in
    backticks; with ``how``, the way each was patched (``by HOW``)."""
    if not changes:
        return "-"
    ranked = sorted(changes, key=lambda c: c.get("patch_bytes") or 0, reverse=True)[:n]
    out = []
    for c in ranked:
        size = "%s B" % fmt_bytes(c["patch_bytes"]) if c.get("patch_bytes") is not None else None
        out.append("%s %s%s (%s)" % ("`%s`" % c["path"] if code else c["path"], c["action"],
                                     " by " + c["how"] if how and c.get("how") else "",
                                     size or ("-" if how else c.get("how") or "-")))
    return "; ".join(out)


# ---------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------


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


def machine_line(info) -> str:
    return ("Machine: %s CPUs (`nproc`), %s, %s RAM, Linux %s; Python %s, PyInstaller %s, bsdiff4 %s; "
            "pyzpatch at %s." % (info["nproc"], info["cpu"],
                                 "%.0f GiB" % (info["mem"] / 1024**3) if info["mem"] else "?", info["kernel"],
                                 info["python"], info["pyinstaller"], info["bsdiff4"], info["commit"]))


def doc_head(title: str, command: str, info: dict, total_s: float) -> List[str]:
    """A report's first lines: title, how it was generated (``command`` as run), the machine."""
    return ["# " + title, "",
            "Generated by `%s` (with `pip install -e '.[bench]'`) on %s; the whole run took %.0f s." % (
                command, info["date"], total_s), "",
            machine_line(info), ""]


def memory_check(rss_mismatch) -> str:
    """Whether every worker's ru_maxrss agreed with its own VmHWM (driver.rss_mismatches)."""
    return "they agree" if not rss_mismatch else "**they differ for: %s**" % ", ".join(rss_mismatch)


def runs_text(repeats: int) -> str:
    return "%d run%s" % (repeats, "" if repeats == 1 else "s")


def results_section(scenarios, rows, main, detail) -> List[str]:
    """The scenarios measured, then "## Results": ``main`` and ``detail`` are (header, rows)
    tables, the second one of absolute numbers."""
    return (["Scenarios:", ""] +
            ["- `%s`: %s" % (s.name, s.title) for s in scenarios if any(r["scenario"] == s.name for r in rows)] +
            ["", "## Results", "", md_table(*main), "", "Absolute numbers (times are medians, memory peaks):", "",
             md_table(*detail), ""])


# ---------------------------------------------------------------------------
# The chart
# ---------------------------------------------------------------------------


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("the chart needs matplotlib: pip install -e '.[bench]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def size_chart(path: Path, panels, series, ylim_keys) -> None:
    """Bar chart of sizes on a log scale, one panel per (title, labels, rows); ``series``:
    (label, row key, colour); each panel's top is 100x the largest of ``ylim_keys``."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 4.2 * len(panels)), squeeze=False)
    width = 0.27
    for ax, (title, labels, mrows) in zip(axes[:, 0], panels):
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
        ax.set_xticklabels(labels, rotation=20, ha="right", rotation_mode="anchor", fontsize=8)
        ax.set_ylabel("bytes (log scale)")
        ax.set_ylim(top=max(max(r.get(k) or 1 for k in ylim_keys) for r in mrows) * 100)
        ax.set_title(title)
        ax.grid(axis="y", which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="upper center", ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def failures_section(problems) -> list:
    """The report's FAILURES section (nothing when there are none), as lines."""
    return ["## FAILURES", ""] + ["- **%s**" % p for p in problems] + [""] if problems else []


def results_and_targets(scenarios, rows, main, detail, targets) -> list:
    """The results tables, then the targets table, as lines."""
    return results_section(scenarios, rows, cells(main, rows), cells(detail, rows)) + [
        "## Targets",
        "",
        targets_table(["Target", "Measured", "Met"], targets),
        "",
    ]
