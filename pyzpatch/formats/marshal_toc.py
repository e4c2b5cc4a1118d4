"""A bounded reader and an exact writer for the marshal subset a PYZ table of contents uses.

PyInstaller writes a PYZ TOC as ``marshal.dumps([(name, (typecode, offset, length)), ...])``.
``marshal.loads`` on file data is unsafe and tied to the running Python, so this module reads the
few object types a TOC can hold (list, tuple, str, int, back-references) with every count checked
against the bytes that remain, and nothing else.

Writing is harder than reading: marshal's output depends on the *reference counts* of the objects
when ``dumps`` ran. Objects shared elsewhere get ``FLAG_REF`` and later occurrences become
back-references; objects only the TOC holds do not. In PyInstaller's TOC that works out as: the
list is flagged, names are flagged (they are also dict keys), small ints (-5..256, cached by
CPython) are flagged and re-used by value, larger ints are not flagged, tuples are not flagged,
except the last row's outer tuple (PyInstaller's loop variable still holds it during ``dumps``).
Whether a name is interned (``Z`` rather than ``z``) depends on where the string came from
(CPython's one-character strings are always interned), so a style records the names that differ
from the majority.
``TocStyle`` captures those choices; ``detect_style`` finds the style that reproduces a given TOC
exactly, so a changed PYZ gets the TOC bytes PyInstaller itself would have written.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

from ..errors import FormatError

FLAG_REF = 0x80
_MAX_DEPTH = 8
_SMALL_INT_MIN, _SMALL_INT_MAX = -5, 256

# (name, typecode, offset, length): one PYZ TOC row, flattened.
TocRow = Tuple[str, int, int, int]


class _Placeholder:
    """Stands in a reference slot while its container is still being read."""


_I32 = struct.Struct("<i")


def _short(field: str, kind: str, n: int, left: int) -> FormatError:
    return FormatError(field, f"object of type {kind!r} needs {n} bytes, {left} remain")


def _read_object(buf: memoryview, pos: int, refs: list, depth: int, field: str, strings: list):
    """Read one object at ``pos``; return ``(obj, new_pos)``. Raises FormatError on anything
    outside the subset or any count that the remaining bytes cannot hold. (Written without
    helper closures: it runs once per object, thousands of times per TOC.)"""
    end = len(buf)
    if depth > _MAX_DEPTH:
        raise FormatError(field, "objects nested too deeply")
    if pos >= end:
        raise FormatError(field, "ends in the middle of an object")
    code = buf[pos]
    pos += 1
    flag = code & FLAG_REF
    kind = chr(code & ~FLAG_REF)

    if kind in "ri[(aAut":  # types followed by a 4-byte number
        if pos + 4 > end:
            raise _short(field, kind, 4, end - pos)
        number = _I32.unpack_from(buf, pos)[0]
        pos += 4
        if kind == "r":
            if not 0 <= number < len(refs) or isinstance(refs[number], _Placeholder):
                raise FormatError(field, f"back-reference {number} to an object not yet read")
            return refs[number], pos
        if kind == "i":
            if flag:
                refs.append(number)
            return number, pos
    elif kind in ")zZ":  # types followed by a 1-byte count
        if pos + 1 > end:
            raise _short(field, kind, 1, end - pos)
        number = buf[pos]
        pos += 1
    else:
        raise FormatError(field, f"marshal type {kind!r} (0x{code:02x}) is not allowed in a TOC")

    if kind in "[()":
        # Every element takes at least one byte, so a larger count is a lie.
        if number < 0 or number > end - pos:
            raise FormatError(field, f"container claims {number} items, only {end - pos} bytes remain")
        slot = None
        if flag:
            slot = len(refs)
            refs.append(_Placeholder())
        items = []
        for _ in range(number):
            item, pos = _read_object(buf, pos, refs, depth + 1, field, strings)
            items.append(item)
        obj = items if kind == "[" else tuple(items)
        if slot is not None:
            refs[slot] = obj
        return obj, pos

    # A string of ``number`` bytes.
    if number < 0 or pos + number > end:
        raise _short(field, kind, number, end - pos)
    obj = _decode_text(buf[pos:pos + number], "ascii" if kind in "zZaA" else "utf-8", field)
    pos += number
    strings.append((obj, kind in "ZAt", bool(flag)))
    if flag:
        refs.append(obj)
    return obj, pos


def _decode_text(raw, encoding: str, field: str) -> str:
    try:
        return bytes(raw).decode(encoding, "surrogatepass" if encoding == "utf-8" else "strict")
    except UnicodeDecodeError as exc:
        raise FormatError(field, f"string is not valid {encoding}: {exc.reason}") from None


def read_toc(buf, field: str = "PYZ TOC") -> Tuple[List[TocRow], int]:
    """Read a PYZ TOC from the start of ``buf``. Returns the rows and the number of bytes used."""
    rows, used, _ = read_toc_with_names(buf, field)
    return rows, used


def read_toc_with_names(buf, field: str = "PYZ TOC"):
    """Like ``read_toc``, plus how each string was encoded: ``(text, interned, flagged)``,
    which ``detect_style`` needs."""
    view = memoryview(buf)
    strings: list = []
    obj, used = _read_object(view, 0, [], 0, field, strings)
    if not isinstance(obj, list):
        raise FormatError(field, f"is a {type(obj).__name__}, expected a list")
    rows: List[TocRow] = []
    for i, item in enumerate(obj):
        ok = (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
              and isinstance(item[1], tuple) and len(item[1]) == 3
              and all(isinstance(v, int) for v in item[1]))
        if not ok:
            raise FormatError(f"{field} entry {i}", "is not (name, (typecode, offset, length))")
        rows.append((item[0], item[1][0], item[1][1], item[1][2]))
    return rows, used, strings


@dataclass(frozen=True)
class TocStyle:
    """How ``marshal.dumps`` flagged the objects of one TOC (see the module docstring)."""

    list_ref: bool = True
    str_ref: bool = True
    str_interned: bool = False
    small_int_ref: bool = True
    last_row_ref: bool = True
    # (name, interned, flagged) for names encoded unlike str_interned / str_ref.
    name_exceptions: Tuple[Tuple[str, bool, bool], ...] = ()


# Most likely first: what PyInstaller 6 on CPython 3.11 writes. (Name encodings are read off
# the TOC itself, so only these container and int choices need trying.)
_CANDIDATE_FLAGS: Sequence[Tuple[bool, bool, bool]] = tuple(
    (lr, ir, tr) for ir in (True, False) for lr in (True, False) for tr in (True, False)
)


def write_toc(rows: Iterable[TocRow], style: TocStyle) -> bytes:
    """Encode rows the way marshal.dumps would have with the given style."""
    rows = list(rows)
    out = bytearray()
    next_ref = 0
    small_int_refs = {}

    def w_code(kind: str, flagged: bool) -> None:
        nonlocal next_ref
        out.append(ord(kind) | (FLAG_REF if flagged else 0))
        if flagged:
            next_ref += 1

    def w_int(value: int) -> None:
        if not -2**31 <= value < 2**31:
            raise FormatError("PYZ TOC", f"value {value} does not fit a 32-bit marshal int")
        is_small = _SMALL_INT_MIN <= value <= _SMALL_INT_MAX
        if style.small_int_ref and is_small:
            if value in small_int_refs:
                out.extend(b"r" + struct.pack("<i", small_int_refs[value]))
                return
            small_int_refs[value] = next_ref
            w_code("i", True)
        else:
            w_code("i", False)
        out.extend(struct.pack("<i", value))

    exceptions = {name: (interned, flagged) for name, interned, flagged in style.name_exceptions}

    def w_str(text: str) -> None:
        interned, flagged = exceptions.get(text, (style.str_interned, style.str_ref))
        try:
            raw = text.encode("ascii")
            ascii_ = True
        except UnicodeEncodeError:
            raw = text.encode("utf-8", "surrogatepass")
            ascii_ = False
        if ascii_ and len(raw) < 256:
            w_code("Z" if interned else "z", flagged)
            out.append(len(raw))
        else:
            kind = ("A" if interned else "a") if ascii_ else ("t" if interned else "u")
            w_code(kind, flagged)
            out.extend(struct.pack("<i", len(raw)))
        out.extend(raw)

    w_code("[", style.list_ref)
    out.extend(struct.pack("<i", len(rows)))
    for index, (name, typecode, offset, length) in enumerate(rows):
        w_code(")", style.last_row_ref and index == len(rows) - 1)
        out.append(2)
        w_str(name)
        out += b")\x03"
        w_int(typecode)
        w_int(offset)
        w_int(length)
    return bytes(out)


def detect_style(raw, rows: Optional[List[TocRow]] = None, strings: Optional[list] = None) -> Optional[TocStyle]:
    """The style whose output equals the TOC ``raw``, or None if none does. ``rows`` and
    ``strings`` are what ``read_toc_with_names`` read from it (read again if not given)."""
    raw = bytes(raw)
    if rows is None or strings is None:
        rows, _, strings = read_toc_with_names(raw)
    if [s[0] for s in strings] != [r[0] for r in rows]:
        return None  # a name written as a back-reference: not something PyInstaller does
    encodings = [(interned, flagged) for _, interned, flagged in strings]
    common = max(set(encodings), key=encodings.count) if encodings else (False, True)
    exceptions = tuple(s for s in strings if (s[1], s[2]) != common)
    for list_ref, small_int_ref, last_row_ref in _CANDIDATE_FLAGS:
        style = TocStyle(list_ref=list_ref, str_ref=common[1], str_interned=common[0],
                         small_int_ref=small_int_ref, last_row_ref=last_row_ref, name_exceptions=exceptions)
        try:
            if write_toc(rows, style) == raw:
                return style
        except FormatError:
            return None
    return None
