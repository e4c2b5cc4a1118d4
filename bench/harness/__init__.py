"""The bench harness, one for every benchmark (bench/run.py files, bench/folders.py folders,
bench/selfupdate.py self-update):

- ``driver``: workers in fresh processes (through ``launcher``), medians and peaks of repeats,
  the command line and exit code every benchmark shares;
- ``worker``: the one worker entry point, a registry of measured operations;
- ``scenarios``: scenario and build-spec types, app variants, pinned pip targets, and the
  catalogue of old/new builds the benchmarks pick from;
- ``report``: formatting, markdown tables, machine info, the targets table, the chart.
"""
import sys
from pathlib import Path

_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)  # pyzpatch, fixtures
