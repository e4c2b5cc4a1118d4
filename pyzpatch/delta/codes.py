"""The numbers a patch body's ``ops`` stream uses, and the bounds that come with them.

Every code here is part of the patch format (docs/patch-format.md): it never changes meaning.
"""
from __future__ import annotations

from ..formats.node import DEFLATE, ZLIB

# Data operations (and, after a child's compression code, the two child-only operations).
SAME, LITERAL, SPLICE, BSDIFF, STRUCT, RECOMPRESS, COPY = range(7)
# A bsdiff of native code whose calls were made absolute first (``branches.py``): a converter
# id (``branches.X86``, ``branches.ARM64``), then the fields of ``BSDIFF``.
BCJ = 7
OP_NAMES = ("same", "literal", "splice", "bsdiff", "struct", "recompress", "copy", "bcj")

# How the kept children are ordered: as before, by a full Lehmer rank, as runs of the old
# order, or as a plain list of old positions (for orders too large to rank cheaply).
ORDER_SAME, ORDER_RANK, ORDER_RUNS, ORDER_LIST = range(4)

# A child's compression, by code.
COMPRESSIONS = (None, ZLIB, DEFLATE)

# Ranking and unranking cost grows with the square of the count: above this many items a
# permutation is written as a list instead (the reader refuses larger ranks).
MAX_RANKED = 4096
# Containers nest a few levels in real files (folder > executable > archive > PYZ or zip);
# deeper nesting in a patch is refused, and make treats deeper containers as plain bytes.
MAX_NESTING = 12
# bsdiff's seeks are signed 64-bit numbers: anything beyond this cannot be one.
MAX_SEEK = 1 << 62


def op_name(code: int) -> str:
    """The name of an operation code ("?" for one the format does not have)."""
    return OP_NAMES[code] if 0 <= code < len(OP_NAMES) else "?"
