"""Primitive encodings of the patch body: varints, tagged values, and value deltas.

Every read is bounded: a length is checked against the bytes that remain before anything is
allocated, nesting is limited, and any inconsistency raises ``FormatError`` about the patch.

A value delta is read without the value it changes (``Reader.value_delta`` gives a
``KeepValue``, a ``NewValue`` or a ``FieldChanges``); ``resolve_value`` applies it to the old
value, checking what only the old value can tell.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

from ..errors import FormatError

_MAX_DEPTH = 8
_MAX_VARINT_BYTES = 10

# Value tags.
_NONE, _FALSE, _TRUE, _INT, _BYTES, _STR, _TUPLE = range(7)
# Value-delta tags.
_SAME, _FIELDS, _WHOLE = range(3)


@dataclass(frozen=True)
class KeepValue:
    """The old value, unchanged."""


@dataclass(frozen=True)
class NewValue:
    """A whole new value."""

    value: object


@dataclass(frozen=True)
class FieldChanges:
    """Some fields of a tuple changed: ``fields`` holds (index, value delta) for each bit set in
    ``mask``. ``what`` and ``at`` place it in its stream, for errors found when it is resolved."""

    mask: int
    fields: Tuple[Tuple[int, "ValueDelta"], ...]
    what: str
    at: int


ValueDelta = Union[KeepValue, NewValue, FieldChanges]
KEEP = KeepValue()


def resolve_value(delta: ValueDelta, old):
    """The value ``delta`` makes of ``old``."""
    if isinstance(delta, KeepValue):
        return old
    if isinstance(delta, NewValue):
        return delta.value
    if not isinstance(old, tuple):
        raise FormatError(delta.what, f"field changes for a value that has no fields (at byte {delta.at})")
    if delta.mask >> len(old):
        raise FormatError(delta.what, f"field change beyond the value's fields (at byte {delta.at})")
    items = list(old)
    for i, field in delta.fields:
        items[i] = resolve_value(field, old[i])
    return tuple(items)


class Writer:
    def __init__(self) -> None:
        self.buf = bytearray()

    def uint(self, value: int) -> None:
        if value < 0:
            raise ValueError(f"negative value {value} for an unsigned varint")
        while value >= 0x80:
            self.buf.append((value & 0x7F) | 0x80)
            value >>= 7
        self.buf.append(value)

    def sint(self, value: int) -> None:
        self.uint(value * 2 if value >= 0 else -value * 2 - 1)

    def raw(self, data) -> None:
        self.buf += data

    def blob(self, data) -> None:
        self.uint(len(data))
        self.buf += data

    def text(self, value: str) -> None:
        self.blob(value.encode("utf-8", "surrogateescape"))

    def value(self, value, depth: int = 0) -> None:
        if depth > _MAX_DEPTH:
            raise ValueError("value nested too deeply")
        if value is None:
            self.uint(_NONE)
        elif value is False:
            self.uint(_FALSE)
        elif value is True:
            self.uint(_TRUE)
        elif isinstance(value, int):
            self.uint(_INT)
            self.sint(value)
        elif isinstance(value, (bytes, bytearray, memoryview)):
            self.uint(_BYTES)
            self.blob(bytes(value))
        elif isinstance(value, str):
            self.uint(_STR)
            self.text(value)
        elif isinstance(value, tuple):
            self.uint(_TUPLE)
            self.uint(len(value))
            for item in value:
                self.value(item, depth + 1)
        else:
            raise TypeError(f"cannot encode {type(value).__name__} in a patch")

    def value_delta(self, old, new, depth: int = 0) -> None:
        """``new`` relative to ``old``: nothing if equal, changed fields of same-length tuples."""
        if type(old) is type(new) and old == new:
            self.uint(_SAME)
        elif isinstance(old, tuple) and isinstance(new, tuple) and len(old) == len(new) and depth < _MAX_DEPTH:
            self.uint(_FIELDS)
            changed = [i for i, (a, b) in enumerate(zip(old, new)) if not (type(a) is type(b) and a == b)]
            self.uint(sum(1 << i for i in changed))
            for i in changed:
                self.value_delta(old[i], new[i], depth + 1)
        else:
            self.uint(_WHOLE)
            self.value(new)

    def __len__(self) -> int:
        return len(self.buf)

    def getvalue(self) -> bytes:
        return bytes(self.buf)


class Reader:
    def __init__(self, data, what: str = "patch body"):
        self.data = memoryview(data)
        self.pos = 0
        self.what = what

    def fail(self, problem: str) -> FormatError:
        return FormatError(self.what, f"{problem} (at byte {self.pos})")

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def uint(self, limit: Optional[int] = None) -> int:
        pos = self.pos
        if pos < len(self.data) and self.data[pos] < 0x80:  # one byte: most numbers
            value = self.data[pos]
            self.pos = pos + 1
            if limit is not None and value > limit:
                raise self.fail(f"number {value} exceeds the limit {limit}")
            return value
        value = shift = 0
        for _ in range(_MAX_VARINT_BYTES):
            if self.pos >= len(self.data):
                raise self.fail("ends in the middle of a number")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if limit is not None and value > limit:
                    raise self.fail(f"number {value} exceeds the limit {limit}")
                return value
            shift += 7
        raise self.fail("number too long")

    def sint(self) -> int:
        raw = self.uint()
        return raw // 2 if raw % 2 == 0 else -(raw + 1) // 2

    def raw(self, size: int) -> memoryview:
        if size < 0 or size > self.remaining:
            raise self.fail(f"needs {size} bytes, {self.remaining} remain")
        out = self.data[self.pos:self.pos + size]
        self.pos += size
        return out

    def blob(self) -> bytes:
        return bytes(self.raw(self.uint(self.remaining)))

    def text(self) -> str:
        return self.blob().decode("utf-8", "surrogateescape")

    def value(self, depth: int = 0):
        if depth > _MAX_DEPTH:
            raise self.fail("value nested too deeply")
        tag = self.uint()
        if tag == _NONE:
            return None
        if tag == _FALSE:
            return False
        if tag == _TRUE:
            return True
        if tag == _INT:
            return self.sint()
        if tag == _BYTES:
            return self.blob()
        if tag == _STR:
            return self.text()
        if tag == _TUPLE:
            count = self.uint(self.remaining)  # every item takes at least one byte
            return tuple(self.value(depth + 1) for _ in range(count))
        raise self.fail(f"unknown value tag {tag}")

    def value_delta(self, depth: int = 0) -> ValueDelta:
        """A value delta, read without the value it changes (see ``resolve_value``). A field
        mask names at most 70 fields (a varint's bits), each read as a delta in turn."""
        if depth > _MAX_DEPTH:
            raise self.fail("value nested too deeply")
        tag = self.uint()
        if tag == _SAME:
            return KEEP
        if tag == _FIELDS:
            mask = self.uint()
            at = self.pos
            fields = tuple((i, self.value_delta(depth + 1)) for i in range(mask.bit_length()) if mask >> i & 1)
            return FieldChanges(mask, fields, self.what, at)
        if tag == _WHOLE:
            return NewValue(self.value())
        raise self.fail(f"unknown value-delta tag {tag}")

    def expect_end(self) -> None:
        if self.remaining:
            raise self.fail(f"{self.remaining} unexpected bytes at the end")
