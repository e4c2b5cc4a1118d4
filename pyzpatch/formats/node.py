"""The one shape every container takes for the diff engine, which knows no format.

A container (an executable, a CArchive, a PYZ, a zip) becomes a ``Node``: a kind, a tuple of
``meta`` values (whatever the format needs to rebuild besides its children), and an ordered list
of ``Child`` objects. A child has a unique key, a tuple of ``attrs`` (typecodes, flags, header
fields: anything but offsets and lengths, which the codec derives), its stored bytes, and, when
those bytes are compressed, the compression, so the engine can diff what is inside.

Meta and attrs hold only wire values: int, bool, str, bytes, None, and tuples of them.

A child's data may be a ``LazyBlob``: bytes not built yet, with a known length. Codecs'
``iter_build`` yields such pieces as they are; ``flatten`` expands them only when the bytes are
written, so rebuilding an executable never holds it whole in memory, and the length of a rebuilt
container is the sum of its pieces' lengths, known without building anything.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, List, Optional, Tuple

from .compression import inflate


class LazyBlob:
    """Bytes produced on demand by ``chunks()``, whose total length is known in advance."""

    def __init__(self, length: int, chunks: Callable[[], Iterable]):
        self._length = length
        self._chunks = chunks

    def __len__(self) -> int:
        return self._length

    def chunks(self) -> Iterator:
        """The pieces, which may themselves be LazyBlobs; ``flatten`` gives plain bytes."""
        return iter(self._chunks())


def flatten(pieces: Iterable) -> Iterator:
    """Plain bytes-like chunks of a sequence of pieces, expanding LazyBlobs depth-first."""
    for piece in pieces:
        if isinstance(piece, LazyBlob):
            yield from flatten(piece.chunks())
        else:
            yield piece


def materialize(data) -> bytes:
    """All the bytes of a piece (a LazyBlob, or any bytes-like object) in memory."""
    if isinstance(data, LazyBlob):
        return b"".join(bytes(c) for c in flatten(data.chunks()))
    return data if isinstance(data, bytes) else bytes(data)


def join(pieces: Iterable) -> bytes:
    return b"".join(bytes(c) for c in flatten(pieces))


# Compression tags a child can carry.
ZLIB = "zlib"  # a zlib stream (header, deflate, adler32)
DEFLATE = "deflate"  # a raw deflate stream, as in zip members


@dataclass
class Child:
    key: str
    attrs: Tuple
    data: object  # bytes-like or LazyBlob: the stored bytes
    compression: Optional[str] = None  # ZLIB, DEFLATE or None
    content_size: Optional[int] = None  # decompressed size when the format records it
    level_hint: Optional[int] = None  # compression level the format's writer uses, tried first


def child_content(child: "Child", field: str, max_size: Optional[int] = None) -> bytes:
    """A child's bytes once decompressed (its stored bytes if it is not compressed); with
    ``max_size``, FormatError rather than inflate more than that."""
    if child.compression is None:
        return child.data
    return inflate(child.data, field, child.content_size, raw=child.compression == DEFLATE, max_size=max_size)


@dataclass
class Node:
    kind: str
    meta: Tuple
    children: List[Child] = field(default_factory=list)


def unique_keys(names: Iterable[str]) -> List[str]:
    """Keys for names that may repeat (CArchive options): later repeats get ``\\0`` and a count."""
    seen = {}
    keys = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        keys.append(name if count == 0 else f"{name}\0{count}")
    return keys
