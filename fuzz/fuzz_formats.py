"""atheris harness: hostile archives (executables, CArchives, PYZs, zips).

    python fuzz/fuzz_formats.py -max_total_time=600 fuzz/corpus-formats

Each input is parsed by every codec that recognises it (the way `ls` opens files), every entry
and module is decompressed, and every parsed model is rebuilt. Only PyzpatchError may escape.
"""
import os
import sys

import atheris

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

with atheris.instrument_imports():
    from fuzz import base, targets


def main() -> None:
    base.write_seeds(sys.argv[1:], {"seed-exe": base.OLD, "seed-exe-new": base.NEW})
    atheris.Setup(sys.argv, targets.formats_target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
