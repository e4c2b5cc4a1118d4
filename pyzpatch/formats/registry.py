"""The diff engine's only door into the formats: recognise a container, open it as a Node,
and turn a Node back into (lazy) bytes. Adding a format means adding it here, nowhere else."""
from __future__ import annotations

import struct
from typing import Optional

from ..errors import FormatError
from . import carchive, executable, pyz, ziparchive
from .node import LazyBlob, Node

_CODECS = {
    executable.NODE_KIND: executable,
    carchive.NODE_KIND: carchive,
    pyz.NODE_KIND: pyz,
    ziparchive.NODE_KIND: ziparchive,
}
KINDS = tuple(_CODECS)


def known_keys(kind: str) -> tuple:
    """Child keys a kind always uses, which a patch may name by index (one byte) instead."""
    return getattr(_CODECS.get(kind), "NODE_KEYS", ())


def sniff(buf) -> Optional[str]:
    """The container kind ``buf`` holds, judged by its magic numbers, or None for plain bytes."""
    if len(buf) < 12:
        return None
    if pyz.is_pyz(buf):
        return pyz.NODE_KIND
    if bytes(buf[-carchive.COOKIE.size:-carchive.COOKIE.size + 8]) == carchive.MAGIC:
        return carchive.NODE_KIND
    if executable.find_cookie(buf) != -1:
        return executable.NODE_KIND
    if ziparchive.is_zip(buf):
        return ziparchive.NODE_KIND
    return None


def open_node(kind: str, buf) -> Node:
    """Parse ``buf`` as a container of ``kind``. Raises FormatError when it is not one, or not
    one this codec can take apart and rebuild exactly."""
    if kind == executable.NODE_KIND:
        node = executable.to_node(buf)
    elif kind in _CODECS:
        codec = _CODECS[kind]
        node = codec.to_node(codec.parse(buf))
    else:
        raise FormatError("patch", f"unknown container kind {kind!r}")
    return node


# What a codec raises when a node's meta or attrs are not what it wrote: the node came from a
# patch, so these mean the patch describes a container that cannot exist.
_MALFORMED = (struct.error, TypeError, ValueError, KeyError, IndexError, OverflowError, AttributeError)


def build_node(node: Node) -> LazyBlob:
    """The node's bytes, lazily: nothing is built until the blob's chunks are read."""
    codec = _CODECS.get(node.kind)
    if codec is None:
        raise FormatError("patch", f"unknown container kind {node.kind!r}")
    try:
        model = codec.from_node(node)
        pieces = list(codec.iter_build(model))
        length = sum(len(p) for p in pieces)
    except FormatError:
        raise
    except _MALFORMED as exc:
        raise FormatError("patch", f"describes a {node.kind} that cannot be built ({exc})") from None
    return LazyBlob(length, lambda: pieces)
