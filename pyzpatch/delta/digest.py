"""A digest of what a file *means*: every part's key and decompressed bytes, containers opened.

Two executables with the same content digest hold the same bytes in every entry and module once
decompressed, in the same places; they differ at most in how a zlib compressed them. ``apply``
falls back to this when its result is not byte-identical to the build (another zlib on the
device re-compressed a changed module differently): such a result is still the same program.
"""
from __future__ import annotations

import hashlib

from ..formats import registry
from ..formats.node import child_content

_MAX_DEPTH = 6
DIGEST_SIZE = 8  # bytes of the SHA-256 a patch header keeps


def content_digest(buf) -> bytes:
    h = hashlib.sha256()
    _walk(buf, h, 0)
    return h.digest()[:DIGEST_SIZE]


def _walk(buf, h, depth: int) -> None:
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
        _walk(child_content(child, child.key), h, depth + 1)
