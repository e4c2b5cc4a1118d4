"""atheris harness: hostile patch bodies against a real base (see docs/security.md).

    python fuzz/fuzz_decoder.py -max_total_time=600 fuzz/corpus-decoder

Each input is a patch body (ops, diff and literal streams); the harness wraps it in a valid
header and checksum, so that mutations reach the decoder instead of the checksum, then
explains it and applies it to the base, streaming the result. Only PyzpatchError may escape.
"""
import os
import sys

import atheris

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

with atheris.instrument_imports():
    from fuzz import base, targets


def main() -> None:
    base.write_seeds(sys.argv[1:], {"seed-real-patch": base.seed_body()})
    atheris.Setup(sys.argv, targets.decoder_target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
