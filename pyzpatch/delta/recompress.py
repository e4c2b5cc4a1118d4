"""Finding the zlib settings that turn decompressed bytes back into the exact stored bytes.

A patch carries a changed module's *decompressed* bytes (diffed), plus the settings that
re-compress them to exactly what the new build stored. ``make`` finds those settings by trying
candidates, the format's own level first; a wrong candidate is usually rejected within its
first output block, because output is compared as it is produced.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Iterator, Optional

from ..errors import FormatError
from ..formats.node import DEFLATE, ZLIB
from .same import same_bytes

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Params:
    level: int
    mem_level: int = 8
    strategy: int = 0
    window_bits: int = 15

    def pack(self) -> int:
        return self.level | self.mem_level << 4 | self.strategy << 8 | (15 - self.window_bits) << 11

    @classmethod
    def unpack(cls, code: int) -> "Params":
        params = cls(code & 0xF, code >> 4 & 0xF, code >> 8 & 0x7, 15 - (code >> 11 & 0x7))
        if (code >> 14 or params.level > 9 or not 1 <= params.mem_level <= 9 or params.strategy > 4
                or params.window_bits < 9):
            raise FormatError("patch body", f"invalid compression settings code {code}")
        return params


def _wbits(compression: str, window_bits: int) -> int:
    return window_bits if compression == ZLIB else -window_bits


def compress(content, compression: str, params: Params) -> bytes:
    comp = zlib.compressobj(params.level, zlib.DEFLATED, _wbits(compression, params.window_bits),
                            params.mem_level, params.strategy)
    return comp.compress(content) + comp.flush()


def reproduced_key(compression: str, params: Params, content) -> tuple:
    """The name under which ``make`` remembers that ``params`` re-compress ``content`` to stored
    bytes it checked (``Encoder.reproduced``), so its check of the finished patch can take those
    bytes instead of compressing the same content with the same settings again.

    Python's own hash of the bytes, not SHA-256: it is make's memo only (apply never has one),
    a collision could only make make's final check of the whole new file fail, never pass, and
    SHA-256 releases the GIL on every call, so with make's other threads busy each of a
    thousand modules waited for it back (0.14 s of a 1.6 s make)."""
    return compression, params.pack(), len(content), hash(content if isinstance(content, bytes) else bytes(content))


def _reproduces(content: memoryview, stored: memoryview, compression: str, params: Params) -> bool:
    comp = zlib.compressobj(params.level, zlib.DEFLATED, _wbits(compression, params.window_bits),
                            params.mem_level, params.strategy)
    pos = 0
    for start in range(0, len(content), _CHUNK):
        out = comp.compress(content[start:start + _CHUNK])
        if out:
            if not same_bytes(stored[pos:pos + len(out)], out):
                return False
            pos += len(out)
    out = comp.flush()
    return same_bytes(stored[pos:], out)


def _candidates(hint: Optional[int]) -> Iterator[Params]:
    levels = ([hint] if hint is not None else []) + [lv for lv in (9, 6, 1, 2, 3, 4, 5, 7, 8, 0) if lv != hint]
    for level in levels:
        yield Params(level)
    for mem_level in (9, 1, 2, 3, 4, 5, 6, 7):
        for level in levels:
            yield Params(level, mem_level)
    for strategy in (1, 2, 3, 4):
        for level in levels:
            yield Params(level, 8, strategy)


def find_params(content, stored, compression: str, level_hint: Optional[int] = None) -> Optional[Params]:
    """Settings under which ``content`` compresses to exactly ``stored``, or None."""
    if compression not in (ZLIB, DEFLATE):
        return None
    content, stored = memoryview(content), memoryview(stored)
    for params in _candidates(level_hint):
        if _reproduces(content, stored, compression, params):
            return params
    return None
