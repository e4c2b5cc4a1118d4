"""Branch converters for native code (BCJ, as xz's filters): call targets made absolute before
bsdiff and relative again after patching, so that calls into code that only moved diff as
unchanged (operation 7, ``bcj``: docs/patch-format.md; measured in docs/bench-native.md).

Exactly invertible on any bytes: whether a position is converted depends only on bytes neither
direction changes.

- ``X86``: ``E8`` (call) and a 32-bit displacement whose top byte is 0x00 or 0xFF, converted
  modulo 2**25 and sign-extended from bit 24 (the top byte stays 0x00 or 0xFF). The scan goes on
  after a converted call's displacement, or at a rejected one's fourth byte (so no later call
  changes the byte it was judged by). Jumps stay relative: they mostly stay within a function.
- ``ARM64``: ``BL`` (top six bits ``100101``) at 4-byte aligned offsets, imm26 modulo 2**26.
"""
from __future__ import annotations

import re
import struct
from typing import Optional

X86, ARM64 = 1, 2  # part of the patch format (docs/patch-format.md, operation 7)
NAMES = {X86: "x86", ARM64: "arm64"}

_X86_ARCHES = {"x86", "x86-64", "x86_64", "i386"}
_ARM64_ARCHES = {"aarch64", "arm64"}
_BL = re.compile(rb"[\x94-\x97]")
_I32, _U32 = struct.Struct("<i"), struct.Struct("<I")


def native_kind(data) -> Optional[int]:
    """The converter for ``data`` if it is native code pyzpatch can convert (an ELF, PE or
    Mach-O file for x86 or 64-bit ARM; a universal file only if all its slices are one of
    them), else None."""
    if len(data) < 64 or bytes(data[:2]) not in (b"\x7fE", b"MZ", b"\xcf\xfa", b"\xce\xfa", b"\xca\xfe"):
        return None
    from ..formats import binary  # make's side only: apply needs none of it

    layout = binary.inspect(data, len(data), len(data))
    arches = set(layout.arches)
    if layout.system == binary.UNKNOWN or not arches:
        return None
    if arches <= _X86_ARCHES:
        return X86
    if arches <= _ARM64_ARCHES:
        return ARM64
    return None


def encode(data, kind: int) -> bytes:
    """``data`` with its branches' targets made absolute."""
    buf = bytearray(data)
    convert(buf, kind, True)
    return bytes(buf)


def decode(data, kind: int) -> bytes:
    """The inverse of ``encode``."""
    buf = bytearray(data)
    convert(buf, kind, False)
    return bytes(buf)


def convert(buf: bytearray, kind: int, forward: bool) -> None:
    """``encode`` (``forward``) or ``decode`` in place: no copy beyond ``buf`` itself. Each
    decision reads bytes at or after the scan position, which no earlier step has changed."""
    _CONVERTERS[kind](buf, forward)


def _x86(buf: bytearray, forward: bool) -> None:
    find = buf.find
    unpack, pack = _I32.unpack_from, _I32.pack_into  # no slice objects: three times faster
    end = max(0, len(buf) - 4)  # a call needs its four displacement bytes
    pos = 0
    while True:
        i = find(b"\xe8", pos, end)
        if i < 0:
            return
        top = buf[i + 4]
        if top != 0 and top != 0xFF:
            pos = i + 4
            continue
        value = unpack(buf, i + 1)[0]
        value = value + (i + 5) if forward else value - (i + 5)
        pack(buf, i + 1, ((value + 0x1000000) & 0x1FFFFFF) - 0x1000000)
        pos = i + 5


def _arm64(buf: bytearray, forward: bool) -> None:
    # The opcode bits decide and are never changed, so one scan of the bytes as they were is right.
    unpack, pack = _U32.unpack_from, _U32.pack_into
    for match in _BL.finditer(buf, 0, len(buf) & ~3):
        i = match.start()
        if i & 3 != 3:
            continue
        start = i - 3
        word = unpack(buf, start)[0]
        w = start >> 2
        imm = word + w if forward else word - w
        pack(buf, start, (word & 0xFC000000) | (imm & 0x3FFFFFF))


_CONVERTERS = {X86: _x86, ARM64: _arm64}
