"""The one place that decides what a file is.

``FORMATS`` is an ordered table. Each codec owns its detection (``detect``: a cheap look at
magic numbers), its parsing (``parse`` into a model, for ``ls`` and ``extract``; ``open_node``
into the generic node the diff engine sees) and its rebuilding (``from_node``/``iter_build``).
Each row gives the format a fixed wire id that patches record; ids are listed in
docs/patch-format.md and never change or get reused, whatever order the table is in.

Recognition tries every format whose ``detect`` accepts the bytes, in table order, and falls
through to the next when parsing fails, so that bytes that look like one format but are another
(a Windows or macOS executable ends with a CArchive cookie, as a bare CArchive does; a stored zip
may contain cookie bytes) end up as what they are. ``ls``/``extract``, ``make``/``apply``, the
content digest and ``selfupdate`` all recognise files through ``recognize`` here.

Adding a format means writing its codec and adding it to ``FORMATS``; nothing else changes.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from types import ModuleType
from typing import Callable, List, Optional, Tuple

from ..errors import FormatError
from . import carchive, executable, pyz, tar, ziparchive
from .node import LazyBlob, Node


@dataclass(frozen=True)
class Format:
    codec: ModuleType  # detect, parse, open_node, from_node, iter_build (and NODE_KEYS)
    wire_id: int  # written into patches: never change or reuse one (docs/patch-format.md)
    title: str  # what the kind is called in messages

    @property
    def kind(self) -> str:
        return self.codec.NODE_KIND


# Tried in this order: formats anchored at a fixed place first, the scan for a cookie last.
FORMATS: Tuple[Format, ...] = (
    Format(pyz, 2, "PYZ archive"),                   # "PYZ\0" at the start
    # A ustar header at the start. Before the cookie scans: a tar of a one-folder build holds an
    # executable, so it holds a cookie too.
    Format(tar, 4, "tar archive"),
    Format(carchive, 1, "CArchive"),                 # a cookie at the very end, as long as the file
    Format(ziparchive, 3, "zip archive"),            # an end record reaching exactly to the end
    Format(executable, 0, "PyInstaller executable"),  # a cookie anywhere: head | archive | tail
)

_BY_KIND = {f.kind: f for f in FORMATS}
_BY_WIRE_ID = {f.wire_id: f for f in FORMATS}
assert len(_BY_WIRE_ID) == len(FORMATS), "two formats share a wire id"


@dataclass
class Recognition:
    """What ``recognize`` found: the format that opened the bytes (None: plain bytes), what it
    opened them into, and why each earlier candidate was turned down."""

    kind: Optional[str] = None
    value: object = None
    rejected: List[Tuple[str, FormatError]] = field(default_factory=list)

    @property
    def reason(self) -> str:
        """Why no format (or no earlier format) took the bytes, in one line."""
        if not self.rejected:
            return "no known format's magic numbers"
        return "; ".join(err.problem for _, err in self.rejected)


def candidates(buf) -> List[str]:
    """The kinds whose detection accepts ``buf``, in the order they are tried."""
    return [f.kind for f in FORMATS if f.codec.detect(buf)]


def recognize(buf, opener: Callable[[Format, object], object] = None) -> Recognition:
    """Open ``buf`` as the first candidate format that parses it. ``opener(format, buf)`` says
    what opening means (default: the codec's model, ``format.codec.parse``)."""
    opener = opener or (lambda fmt, data: fmt.codec.parse(data))
    found = Recognition()
    for kind in candidates(buf):
        try:
            found.value = opener(_BY_KIND[kind], buf)
        except FormatError as exc:
            found.rejected.append((kind, exc))
            continue
        found.kind = kind
        return found
    return found


def open_any_node(buf) -> Recognition:
    """``recognize`` for the diff engine: the value is a generic Node."""
    return recognize(buf, lambda fmt, data: fmt.codec.open_node(data))


def wire_id(kind: str) -> int:
    return _BY_KIND[kind].wire_id


def kind_of_wire_id(value: int) -> Optional[str]:
    fmt = _BY_WIRE_ID.get(value)
    return fmt.kind if fmt else None


def known_keys(kind: str) -> tuple:
    """Child keys a kind always uses, which a patch may name by index (one byte) instead."""
    fmt = _BY_KIND.get(kind)
    return getattr(fmt.codec, "NODE_KEYS", ()) if fmt else ()


def open_node(kind: str, buf) -> Node:
    """Parse ``buf`` as a container of ``kind`` (named by a patch). Raises FormatError when it is
    not one, or not one this codec can take apart and rebuild exactly."""
    fmt = _BY_KIND.get(kind)
    if fmt is None:
        raise FormatError("patch", f"unknown container kind {kind!r}")
    return fmt.codec.open_node(buf)


# What a codec raises when a node's meta or attrs are not what it wrote: the node came from a
# patch, so these mean the patch describes a container that cannot exist.
_MALFORMED = (struct.error, TypeError, ValueError, KeyError, IndexError, OverflowError, AttributeError)


def build_node(node: Node) -> LazyBlob:
    """The node's bytes, lazily: nothing is built until the blob's chunks are read."""
    fmt = _BY_KIND.get(node.kind)
    if fmt is None:
        raise FormatError("patch", f"unknown container kind {node.kind!r}")
    try:
        model = fmt.codec.from_node(node)
        pieces = list(fmt.codec.iter_build(model))
        length = sum(len(p) for p in pieces)
    except FormatError:
        raise
    except _MALFORMED as exc:
        raise FormatError("patch", f"describes a {node.kind} that cannot be built ({exc})") from None
    return LazyBlob(length, lambda: pieces)
