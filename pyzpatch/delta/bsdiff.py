"""bsdiff4's raw blocks (control, difference, extra) the same way whichever bsdiff4 is installed.

``bsdiff4.core`` changed how it passes the control block between 1.2 and 1.3: 1.2.x gives and
takes a list of ``(x, y, z)`` tuples, 1.3.x a bytes object of 24-byte records (three
``encode_int64`` numbers each). tufup 0.10 pins ``bsdiff4==1.2.*``, and pyzpatch runs beside
it, so the engine speaks in triples and this module converts at the boundary. Which form the
installed bsdiff4 uses is asked of bsdiff4 itself (one tiny diff), not read from its version.
"""
from __future__ import annotations

from typing import List, Tuple

import bsdiff4.core

Triple = Tuple[int, int, int]

# True when bsdiff4.core passes the control block as a list of triples (bsdiff4 1.2.x).
CONTROL_AS_LIST = isinstance(bsdiff4.core.diff(b"ab", b"ab")[0], list)


def diff(old: bytes, new: bytes) -> Tuple[List[Triple], bytes, bytes]:
    """bsdiff of ``new`` against ``old``: (control triples, difference block, extra block)."""
    control, difference, extra = bsdiff4.core.diff(old, new)
    if CONTROL_AS_LIST:
        return [tuple(t) for t in control], difference, extra
    decode = bsdiff4.core.decode_int64
    triples = [(decode(control[i:i + 8]), decode(control[i + 8:i + 16]), decode(control[i + 16:i + 24]))
               for i in range(0, len(control), 24)]
    return triples, difference, extra


def patch(old: bytes, new_length: int, triples: List[Triple], difference: bytes, extra: bytes) -> bytes:
    """bsdiff4's patch of ``old`` by the three blocks: ``new_length`` bytes."""
    if CONTROL_AS_LIST:
        return bsdiff4.core.patch(old, new_length, list(triples), difference, extra)
    encode = bsdiff4.core.encode_int64
    control = b"".join(encode(x) + encode(y) + encode(z) for x, y, z in triples)
    return bsdiff4.core.patch(old, new_length, control, difference, extra)
