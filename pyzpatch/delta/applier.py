"""Applying a plan (``plan.py``) to the old file: the checks only the old file can answer, and
the memory budget.

The reader has checked everything a patch says on its own; here each plan meets the old bytes
or the old node: keys it removes or changes must be in the base (and removed once), counts
must be the base's, splice runs and bsdiff's reads must lie within the old bytes, a copy must
name a removed sibling, and the rebuilt container may not hold a key twice.

``size_limit`` bounds each piece, and the same amount is the budget for everything applying
allocates together (literals, splice copies, bsdiff results, opened containers, decompressed
and re-compressed content): each allocation is charged before it is made.

A folder's files are independent of one another: with ``defer`` the files of the folder being
applied are not made at once but each when it is written (``Deferred.resolve``), and the budget
what that file's making took is given back once it has been made (the caller writes it and lets
go of it before the next), so memory follows the largest changed file, not the whole change.
"""
from __future__ import annotations

from typing import Optional, Tuple

from ..formats import registry
from ..formats.node import Child, LazyBlob, Node, child_content, materialize
from . import branches, bsdiff, recompress
from .plan import (
    Bcj,
    Bsdiff,
    BytesPlan,
    ChildBytes,
    ChildCopy,
    ChildPlan,
    ChildRecompress,
    ChildSame,
    Literal,
    NodePlan,
    SparseBlock,
    Splice,
    Struct,
    fail,
)
from .plan import Same as SameBytes
from .wire import resolve_value


class Deferred:
    """A folder file's new bytes, not yet made: ``resolve`` makes them (one at a time)."""

    def __init__(self, applier: "Applier", plan: ChildPlan, old: Optional[Child], path: str,
                 donors: Optional[dict]):
        self._applier, self._plan, self._old, self._path, self._donors = applier, plan, old, path, donors

    def resolve(self):
        """The bytes (bytes-like or LazyBlob); the budget they took is free again afterwards."""
        applier = self._applier
        budget = applier.budget
        try:
            return applier.child(self._plan, self._old, self._path, self._donors)[0]
        finally:
            applier.budget = budget


class Applier:
    def __init__(self, size_limit: int, budget: Optional[int] = None, reproduced: Optional[dict] = None):
        self.size_limit = size_limit
        # make's check only: content make itself re-compressed and compared with the stored
        # bytes (recompress.reproduced_key -> those bytes); never given when applying a patch.
        self.reproduced = reproduced
        # Bytes applying may still allocate: what the body and the plan left of the budget.
        self.budget = size_limit if budget is None else budget
        # Decompressed bytes this machine re-compressed: the only part of the result whose
        # size can differ from the build's (another zlib); bounds how far the size may stray.
        self.recompressed = 0

    def _charge(self, size: int, at: int) -> None:
        """Count ``size`` bytes about to be allocated against the memory budget."""
        self.budget -= size
        if self.budget < 0:
            raise fail(at, f"applying it would take more than {self.size_limit} bytes of memory, "
                           "the most its declared size allows")

    # -- bytes ---------------------------------------------------------------------------

    def bytes(self, plan: BytesPlan, old, path: str):
        """The new bytes (a bytes-like object or LazyBlob) that ``plan`` makes of ``old``."""
        if isinstance(plan, SameBytes):
            return old
        if isinstance(plan, Literal):
            self._charge(len(plan.data), plan.at)
            return bytes(plan.data)
        if isinstance(plan, Splice):
            return self._splice(plan, old)
        if isinstance(plan, Bsdiff):
            return self._bsdiff(plan, old)
        if isinstance(plan, Bcj):
            return self._bcj(plan, old)
        if isinstance(plan, Struct):
            node = registry.open_node(plan.kind, self._in_memory(old, plan.at))
            return registry.build_node(self.node(plan.node, node, path))
        raise TypeError(f"not a bytes plan: {plan!r}")

    def _in_memory(self, old, at: int):
        """``old`` as bytes-like: a LazyBlob (a file on disk, a rebuilt container) is read whole,
        charged first."""
        if isinstance(old, LazyBlob):
            self._charge(len(old), at)
            return materialize(old)
        return old

    def _splice(self, plan: Splice, old) -> bytes:
        old = self._in_memory(old, plan.at)
        self._charge(len(old), plan.at)
        out = bytearray(old)
        for offset, run, at in plan:
            if offset + len(run) > len(out):
                raise fail(at, "splice run past the end of its data")
            out[offset:offset + len(run)] = run
        return bytes(out)

    def _bsdiff(self, plan: Bsdiff, old) -> bytes:
        old = self._in_memory(old, plan.at)
        triples = []
        old_pos = 0
        for x, y, z, at in plan:
            if old_pos + x > len(old):
                raise fail(at, "difference run outside the old data")
            old_pos += x + z
            triples.append((x, y, z))
        # The result, the difference block, the extra bytes, and the copy of the old data bsdiff
        # needs where they are not bytes already (a mapped file: the one-file apply, make's check).
        copied = not isinstance(old, bytes)
        self._charge(2 * plan.new_length + (len(old) if copied else 0), plan.at)
        diff = plan.diff.build() if isinstance(plan.diff, SparseBlock) else bytes(plan.diff)
        return bsdiff.patch(bytes(old) if copied else old, plan.new_length, triples, diff, bytes(plan.extra))

    def _bcj(self, plan: Bcj, old) -> bytes:
        old = self._in_memory(old, plan.at)
        # The converted old bytes and their working copy, before bsdiff charges its own.
        self._charge(2 * len(old), plan.at)
        buf = bytearray(old)
        del old  # read whole here (a file of a folder) and no longer needed: two copies at most
        branches.convert(buf, plan.kind, True)
        converted = bytes(buf)
        del buf
        new = self._bsdiff(plan.bsdiff, converted)
        del converted
        self._charge(2 * len(new), plan.at)  # the converted-back bytes and their working copy
        buf = bytearray(new)
        del new  # converted back in place: at most two copies of the new bytes at once
        branches.convert(buf, plan.kind, False)
        return bytes(buf)

    # -- children ------------------------------------------------------------------------

    def child(self, plan: ChildPlan, old: Optional[Child], path: str,
              donors: Optional[dict] = None) -> Tuple[object, Optional[str], Optional[int]]:
        """(new stored bytes, compression, content size) of one child; ``old`` is None for an
        added one, which may copy one of ``donors`` (the removed siblings, by key)."""
        compression = plan.compression
        if isinstance(plan, ChildCopy):
            if old is not None or donors is None or plan.key not in donors:
                raise fail(plan.at, f"copy of {plan.key!r}, which is not a removed sibling")
            donor = donors[plan.key]
            return donor.data, compression, donor.content_size
        if isinstance(plan, ChildRecompress):
            return self._recompress(plan, old, path)
        if isinstance(plan, ChildBytes):
            data = self.bytes(plan.data, old.data if old is not None else b"", path)
            return data, compression, plan.content_size
        # The same stored bytes; for an added child, the same as nothing (a runtime option).
        if old is None:
            return b"", compression, None
        return old.data, compression, old.content_size

    def _recompress(self, plan: ChildRecompress, old: Optional[Child], path: str):
        old_content = b""
        if old is not None:
            # Inflating the old child costs its size as the base file declares it (or, for a
            # PYZ module, which declares none, what inflate's own cap let through).
            if old.content_size is not None:
                self._charge(old.content_size, plan.at)
            old_content = child_content(old, path)
            if old.content_size is None:
                self._charge(len(old_content), plan.at)
        new_content = self.bytes(plan.content, old_content, path)
        if isinstance(new_content, LazyBlob):
            self._charge(len(new_content), plan.end)
        content = materialize(new_content)
        self._charge(len(content), plan.end)  # the compressed copy is at most about this long
        self.recompressed += len(content)
        if self.reproduced:
            known = self.reproduced.get(recompress.reproduced_key(plan.compression, plan.params, content))
            if known is not None:
                return known, plan.compression, len(content)
        return recompress.compress(content, plan.compression, plan.params), plan.compression, len(content)

    # -- containers ----------------------------------------------------------------------

    def node(self, plan: NodePlan, old: Node, path: str, defer: bool = False) -> Node:
        """The node that ``plan`` makes of ``old``; with ``defer``, its added and changed
        children's data are ``Deferred`` (see the module's docstring)."""
        meta = resolve_value(plan.meta, old.meta)
        if plan.removed.count > len(old.children):
            raise fail(plan.removed.at, f"number {plan.removed.count} exceeds the limit {len(old.children)}")
        old_index = {c.key: i for i, c in enumerate(old.children)}
        removed = set()
        donors = {}
        for key, at in plan.removed:
            index = old_index.get(key)
            if index is None:
                raise fail(at, f"removed child {key!r} is not in the base (is this the right file?)")
            if index in removed:
                raise fail(at, f"child {key!r} removed twice")
            removed.add(index)
            donors[key] = old.children[index]
        kept = [c for i, c in enumerate(old.children) if i not in removed]
        if plan.order is not None:
            kept = [kept[i] for i in plan.order.positions(len(kept))]

        total = len(kept) + len(plan.added)
        added = {}
        for entry in plan.added:
            if entry.position >= total:
                raise fail(entry.at, "added child index out of order or range")
            if defer:
                data, compression, size = Deferred(self, entry.child, None, f"{path}/{entry.key}", donors), None, None
            else:
                data, compression, size = self.child(entry.child, None, f"{path}/{entry.key}", donors)
            added[entry.position] = Child(entry.key, entry.attrs, data, compression, size)

        if len(plan.changed) > len(kept):
            raise fail(plan.changed_at, f"number {len(plan.changed)} exceeds the limit {len(kept)}")
        kept_index = {c.key: j for j, c in enumerate(kept)}
        for entry in plan.changed:
            j = kept_index.get(entry.key)
            if j is None:
                raise fail(entry.at, f"changed child {entry.key!r} is not in the base (is this the right file?)")
            child = kept[j]
            attrs = resolve_value(entry.attrs, child.attrs)
            if defer and not isinstance(entry.child, ChildSame):
                data, compression, size = Deferred(self, entry.child, child, f"{path}/{entry.key}", None), None, None
            else:
                data, compression, size = self.child(entry.child, child, f"{path}/{entry.key}")
            kept[j] = Child(entry.key, attrs, data, compression, size)

        it = iter(kept)
        children = [added[i] if i in added else next(it) for i in range(total)]
        keys = [c.key for c in children]
        if len(set(keys)) != len(keys):
            raise fail(plan.end, "the rebuilt container has two children with the same key")
        return Node(plan.kind, meta, children)
