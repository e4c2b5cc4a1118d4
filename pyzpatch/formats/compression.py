"""Bounded zlib decompression: never inflate more than the caller says the data holds."""
from __future__ import annotations

import zlib
from typing import Optional

from ..errors import FormatError

# Decompressed size allowed for a blob whose size no header declares (a PYZ module).
# The largest module in the CPython standard library is under 1 MiB decompressed.
MAX_UNDECLARED_SIZE = 256 * 1024 * 1024


def inflate(data, field: str, expected_size: Optional[int] = None, raw: bool = False,
            max_size: Optional[int] = None) -> bytes:
    """Decompress one zlib stream (``raw``: a bare deflate stream, as in zip members). With
    ``expected_size`` the result must be exactly that long; without it, at most
    ``MAX_UNDECLARED_SIZE``. ``max_size`` (what the caller's budget has left) lowers either
    bound. Trailing bytes after the stream are an error."""
    if expected_size is not None and expected_size < 0:
        raise FormatError(field, f"declares a negative size {expected_size}")
    if max_size is not None and expected_size is not None and expected_size > max_size:
        raise FormatError(field, f"declares {expected_size} bytes decompressed, more than the {max_size} "
                                 "bytes its reader has left")
    limit = MAX_UNDECLARED_SIZE if expected_size is None else expected_size
    if max_size is not None:
        limit = min(limit, max_size)
    inflater = zlib.decompressobj(-15 if raw else 15)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise FormatError(field, f"compressed data is corrupt ({exc})") from None
    if len(out) > limit:
        what = f"the declared {expected_size}" if expected_size is not None else f"the limit of {limit}"
        raise FormatError(field, f"decompresses to more than {what} bytes")
    if not inflater.eof:
        raise FormatError(field, "compressed data is truncated")
    if inflater.unused_data:
        raise FormatError(field, f"{len(inflater.unused_data)} stray bytes after the compressed data")
    if expected_size is not None and len(out) != expected_size:
        raise FormatError(field, f"decompresses to {len(out)} bytes, the TOC says {expected_size}")
    return out
