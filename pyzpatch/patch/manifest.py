"""A folder patch's manifest: which entries the old build had, and which the new build has.

With it, apply can tell a build's own entries from what the program added to its folder later
(a log, an ``updates/`` folder, a key): the patch's old hash names the build's entries only
(``foldernode.node_hash`` of those), the rest is carried into the new folder untouched, and a
build entry that was changed is named by its short digest (see docs/folder-apply.md).

Encoding (inside the patch body, ahead of the operations; patchfile/codec.py flag
``HAS_MANIFEST``; varints as everywhere in the format):

    digest size | root folder's mode | count | removed count | removed indices (each as the gap
    after the previous one) | added count | count + added count paths | count digests

The paths are the old build's entries in path order (``str`` order, as ``node_hash`` sorts
them), then the added ones in path order, each as UTF-8 (``surrogateescape``) ended by a NUL:
plain text compresses better in the body than front-coded paths (the hello build's 49 names:
345 bytes deflated against 384). A digest is the first ``digest size`` bytes
of SHA-256 over the entry's kind, mode, link target and the SHA-256 of its bytes: enough to
name an entry that changed, never used to accept one (the old hash does that). ``removed`` are
the indices of the old entries the new build lacks; ``added`` the new build's entries the old
one lacked, so the new build's names are known before the body's
operations are decoded: for a clash with what the program added, and for "already applied".
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, Dict, List

from ..delta.wire import Reader, Writer
from ..errors import FormatError
from ..formats.node import Node

# Two bytes name a changed entry correctly but for one chance in 65,536 (it is then not named).
DIGEST_SIZE = 2
_MAX_DIGEST_SIZE = 32
# What one decoded entry may cost in memory (a str and a bytes object and a list slot), charged
# to the patch's memory budget: a manifest may not list more entries than that budget holds.
ENTRY_COST = 256

_WHAT = "patch manifest"


def entry_digest(attrs: tuple, content_sha256: bytes, size: int = DIGEST_SIZE) -> bytes:
    kind, mode, target = attrs
    h = hashlib.sha256(b"%s\0%o\0" % (kind.encode(), mode))
    h.update(target.encode("utf-8", "surrogateescape") + b"\0" + content_sha256)
    return h.digest()[:size]


@dataclass
class Manifest:
    root_mode: int
    paths: List[str]  # the old build's entries, in path order
    digests: List[bytes]  # one per path
    removed: List[int] = field(default_factory=list)  # indices into paths, increasing
    added: List[str] = field(default_factory=list)  # in path order
    digest_size: int = DIGEST_SIZE

    def new_paths(self) -> List[str]:
        """The new build's entries, in path order."""
        gone = set(self.removed)
        return sorted([p for i, p in enumerate(self.paths) if i not in gone] + self.added)


def _sha256(child) -> bytes:
    return hashlib.sha256(child.data).digest()


def of_nodes(old: Node, new: Node, content_hash: Callable = _sha256) -> Manifest:
    """The manifest of a patch from the folder node ``old`` to ``new``."""
    children = sorted(old.children, key=lambda c: c.key)
    paths = [c.key for c in children]
    new_keys = {c.key for c in new.children}
    old_keys = set(paths)
    return Manifest(
        root_mode=old.meta[0], paths=paths,
        digests=[entry_digest(c.attrs, content_hash(c)) for c in children],
        removed=[i for i, p in enumerate(paths) if p not in new_keys],
        added=sorted(k for k in new_keys if k not in old_keys))


def _write_paths(w: Writer, paths: List[str]) -> None:
    for path in paths:
        w.raw(path.encode("utf-8", "surrogateescape") + b"\0")


def encode(m: Manifest) -> bytes:
    w = Writer()
    w.uint(m.digest_size)
    w.uint(m.root_mode)
    w.uint(len(m.paths))
    w.uint(len(m.removed))
    prev = -1
    for index in m.removed:
        w.uint(index - prev - 1)
        prev = index
    w.uint(len(m.added))
    _write_paths(w, m.paths)
    _write_paths(w, m.added)
    for digest in m.digests:
        w.raw(digest)
    return w.getvalue()


def _read_paths(data: bytes, r: Reader, count: int) -> List[str]:
    paths: List[str] = []
    for _ in range(count):
        end = data.find(b"\0", r.pos)
        if end < 0:
            raise FormatError(_WHAT, f"path at byte {r.pos} has no end")
        raw = bytes(r.raw(end - r.pos))
        r.raw(1)
        if not raw:
            raise FormatError(_WHAT, f"empty path at byte {r.pos}")
        path = raw.decode("utf-8", "surrogateescape")
        if paths and not paths[-1] < path:
            raise FormatError(_WHAT, f"path {path!r} is out of order (at byte {r.pos})")
        paths.append(path)
    return paths


def decode(data, limit: int) -> Manifest:
    """The manifest in ``data``; FormatError if it is malformed or lists more entries than
    ``limit`` bytes of memory hold."""
    data = bytes(data)
    r = Reader(memoryview(data), _WHAT)
    digest_size = r.uint(_MAX_DIGEST_SIZE)
    if digest_size < 1:
        raise FormatError(_WHAT, "digest size 0")
    root_mode = r.uint(0o7777)
    count = r.uint(r.remaining // (2 + digest_size))  # a name, its NUL and its digest at least
    removed = []
    prev = -1
    for _ in range(r.uint(count)):
        prev += 1 + r.uint(count)
        if prev >= count:
            raise FormatError(_WHAT, f"removed index {prev} beyond the {count} entries")
        removed.append(prev)
    added_count = r.uint(r.remaining // 2)
    if (count + added_count + 1) * ENTRY_COST + len(data) > limit:
        raise FormatError(_WHAT, f"{count + added_count} entries need more than the {limit} bytes the patch may use")
    paths = _read_paths(data, r, count)
    added = _read_paths(data, r, added_count)
    digests = [bytes(r.raw(digest_size)) for _ in range(count)]
    if r.remaining:
        raise FormatError(_WHAT, f"{r.remaining} stray bytes after the manifest")
    known = set(paths)
    for path in added:
        if path in known:
            raise FormatError(_WHAT, f"added path {path!r} is already an old entry")
    return Manifest(root_mode, paths, digests, removed, added, digest_size)


def differences(m: Manifest, node: Node, content_hash: Callable = _sha256) -> List[str]:
    """What in the folder ``node`` differs from the build the manifest lists, as short phrases
    naming the entries ('x' changed, 'y' missing), in path order."""
    found: List[str] = []
    if node.meta[0] != m.root_mode:
        found.append(f"the folder's own mode ({node.meta[0]:o}, was {m.root_mode:o})")
    by_key: Dict[str, object] = {c.key: c for c in node.children}
    for path, digest in zip(m.paths, m.digests):
        child = by_key.get(path)
        if child is None:
            found.append(f"{path!r} missing")
        elif entry_digest(child.attrs, content_hash(child), m.digest_size) != digest:
            found.append(f"{path!r} changed")
    return found

