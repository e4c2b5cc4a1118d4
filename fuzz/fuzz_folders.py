"""atheris harness: folder patches (see docs/security.md and fuzz/folders.py).

    python fuzz/fuzz_folders.py -max_total_time=720 -timeout=300 -rss_limit_mb=2048 fuzz/corpus-folders

Each input drives one case: real old and new folders in a temporary folder (link chains and
loops, ``..`` through links, deep paths, many entries, modes 000 and 0555, set-id bits), made
into a patch by ``make`` or without its checks, or crafted in memory, or mutated; applied as root
or in a forked child without capabilities. Only PyzpatchError may escape make and apply; a
refused apply leaves the folder as it was and nothing beside it but trash; an applied one gives
exactly the folder the patch names, with every link inside it. Needs root (the unprivileged
applies drop root's capabilities) and Linux. One process: cases write to disk.

The run's figures (cases of each kind, applied, refused, known findings met) are written to
the file named by PYZPATCH_FUZZ_STATS (default: pyzpatch-folders-stats.json in the temporary
folder) every 20 cases.
"""
import json
import os
import sys
import tempfile
import time

import atheris

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

with atheris.instrument_imports():
    from fuzz import base, folders

STATS_FILE = os.environ.get("PYZPATCH_FUZZ_STATS",
                            os.path.join(tempfile.gettempdir(), "pyzpatch-folders-stats.json"))
_started = time.time()
_cases = [0]


def _write_stats() -> None:
    with open(STATS_FILE, "w") as fp:
        json.dump({"seconds": round(time.time() - _started), "stats": folders.STATS,
                   "known": folders.KNOWN_SEEN}, fp, indent=1, sort_keys=True)


def target(data: bytes) -> None:
    try:
        folders.folder_target(data)
    finally:
        _cases[0] += 1
        if _cases[0] % 20 == 0:
            _write_stats()


def main() -> None:
    seeds = {f"seed-{folders.KINDS[kind]}-{seed}": folders.case_input(kind, seed)
             for kind in range(len(folders.CASES)) for seed in range(3)}
    base.write_seeds(sys.argv[1:], seeds)
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
