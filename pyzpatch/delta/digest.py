"""A digest of what a file *means*: every part's key and decompressed bytes, containers opened.

Two executables with the same content digest hold the same bytes in every entry and module once
decompressed, in the same places; they differ at most in how a zlib compressed them. ``apply``
falls back to this when its result is not byte-identical to the build (another zlib on the
device re-compressed a changed module differently): such a result is still the same program.
"""
from __future__ import annotations

import hashlib
import zlib
from typing import Optional

from ..errors import FormatError
from ..formats import registry
from ..formats.node import DEFLATE, child_content

_MAX_DEPTH = 6
DIGEST_SIZE = 8  # bytes of the SHA-256 a patch header keeps


class _OverBudget(Exception):
    pass


def content_digest(buf, budget: Optional[int] = None) -> Optional[bytes]:
    """The digest of ``buf``'s content; None if a part cannot be inflated, or if reading it
    would inflate or hash more than ``budget`` bytes in all. ``apply`` computes it on bytes a patch wrote, so a zip nested six
    deep whose members declare gigabytes must cost no more than the file's own size allows."""
    h = hashlib.sha256()
    left = [budget if budget is not None else -1]
    try:
        _walk(buf, h, 0, left)
    except _OverBudget:
        return None
    return h.digest()[:DIGEST_SIZE]


def _spend(left: list, size: int) -> None:
    if left[0] >= 0:
        left[0] -= size
        if left[0] < 0:
            raise _OverBudget()


# A part declaring at least this much content is inflated into one buffer of that size, a piece
# at a time (``inflate`` in one call holds its output twice for a moment: 46 MB for libpython).
_IN_PLACE = 4 * 1024 * 1024
_PIECE = 1024 * 1024
_PIECE_IN = 64 * 1024


def _inflate_in_place(child) -> bytearray:
    """``child``'s content, exactly its declared size (already charged), in one buffer; a
    FormatError if the stream is corrupt, ends early, or holds more. Input goes in by pieces
    too (a decompressor keeps what it could not take as a copy)."""
    size = child.content_size
    out = bytearray(size)
    pos = 0
    inflater = zlib.decompressobj(-15 if child.compression == DEFLATE else 15)
    view = memoryview(child.data)
    try:
        for start in range(0, len(view), _PIECE_IN):
            data = view[start:start + _PIECE_IN]
            while data and not inflater.eof:
                piece = inflater.decompress(data, _PIECE)
                data = inflater.unconsumed_tail
                if pos + len(piece) > size:
                    raise FormatError(child.key, f"decompresses to more than the declared {size} bytes")
                out[pos:pos + len(piece)] = piece
                pos += len(piece)
            if inflater.eof:
                if start + _PIECE_IN < len(view) or inflater.unused_data:
                    raise FormatError(child.key, "stray bytes after the compressed data")
                break
    except zlib.error as exc:
        raise FormatError(child.key, f"compressed data is corrupt ({exc})") from None
    if not inflater.eof or pos != size:
        raise FormatError(child.key, "compressed data does not hold exactly its declared size")
    return out


def _walk(buf, h, depth: int, left: list) -> None:
    _spend(left, len(buf))  # parsing and hashing it reads it once
    found = registry.open_any_node(buf) if depth < _MAX_DEPTH else registry.Recognition()
    kind, node = found.kind, found.value
    if node is None:
        h.update(b"B%d:" % len(buf))
        h.update(hashlib.sha256(buf).digest())
        return
    h.update(b"N" + kind.encode() + b"%d:" % len(node.children))
    for child in node.children:
        key = child.key.encode("utf-8", "surrogateescape")
        h.update(b"%d:" % len(key) + key)
        if child.compression is not None:
            # Charged before inflating: a declared size up front, else at most what is left.
            if child.content_size is not None:
                _spend(left, child.content_size)
            try:
                if child.content_size is not None and child.content_size >= _IN_PLACE:
                    content = _inflate_in_place(child)
                else:
                    content = child_content(child, child.key, max_size=None if left[0] < 0 else left[0])
            except FormatError:  # corrupt or over the budget: no digest to compare with
                raise _OverBudget() from None
            if child.content_size is None:
                _spend(left, len(content))
        else:
            content = child.data
        _walk(content, h, depth + 1, left)
