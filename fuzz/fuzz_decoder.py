"""atheris harness: hostile patch bodies against a real base (see docs/security.md).

    python fuzz/fuzz_decoder.py -max_total_time=600 fuzz/corpus-decoder

Each input is a patch body (ops, data and literal streams); the harness wraps it in a valid
header and checksum, so that mutations reach the decoder instead of the checksum, then
describes it and applies it to the base, streaming the result. Only PyzpatchError may escape.
"""
import os
import sys

import atheris

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

with atheris.instrument_imports():
    from pyzpatch.delta import patchfile
    from pyzpatch.delta.engine import Decoder
    from pyzpatch.errors import PyzpatchError
    from pyzpatch.formats.node import flatten
    from pyzpatch.patching import piece_limit

import base  # noqa: E402

HEADER = base.patch_header()


def one_input(data: bytes) -> None:
    try:
        blob = patchfile.encode(HEADER, _split(data))
        header, body = patchfile.decode(blob)
        limit = piece_limit(header)
        Decoder(body.ops, body.data, body.lit, limit).describe()
        decoder = Decoder(body.ops, body.data, body.lit, limit)
        piece = decoder.data_apply(base.OLD, "")
        decoder.finish()
        size = 0
        for chunk in flatten([piece]):
            size += len(chunk)
            if size > 4 * len(base.NEW) + 4096:
                break
    except PyzpatchError:
        pass


def _split(data: bytes):
    from pyzpatch.delta.patchfile import Body
    from pyzpatch.delta.wire import Reader
    r = Reader(data)
    try:
        ops = bytes(r.raw(r.uint(r.remaining)))
        more = bytes(r.raw(r.uint(r.remaining)))
        return Body(ops, more, bytes(r.raw(r.remaining)))
    except PyzpatchError:
        return Body(bytes(data), b"", b"")


def main() -> None:
    corpus = [a for a in sys.argv[1:] if not a.startswith("-")]
    for folder in corpus:
        os.makedirs(folder, exist_ok=True)
        seed = os.path.join(folder, "seed-real-patch")
        if not os.path.exists(seed):
            with open(seed, "wb") as fp:
                fp.write(base.seed_body())
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
