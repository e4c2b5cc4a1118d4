"""What a patch body says, read once (``reader.py``), then applied (``applier.py``) or explained
(``explainer.py``).

A plan mirrors the operations of docs/patch-format.md. Bytes come as views of the patch's
streams, never copies. Lists whose length a count in the patch gives (the keys a node removes,
splice runs, bsdiff controls, an order written as a list, a sparse difference block) stay
regions of their stream, already checked by the reader, and are decoded when used: an order
only once the old node says how many children it orders, so a count a patch merely claims
never becomes a list. ``at`` fields are positions in the structure stream, so that what the
applier finds wrong is reported where the patch says it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Tuple, Union

from ..errors import FormatError
from ..formats import registry
from . import codes
from .permutations import unrank_permutation
from .recompress import Params
from .wire import Reader, ValueDelta

STRUCTURE = "patch structure"  # the ops stream, as errors name it
DIFFERENCES = "patch difference data"  # the diff stream
LITERALS = "patch literal data"  # the lit stream


def fail(at: int, problem: str) -> FormatError:
    """An error about the structure stream at byte ``at``."""
    return FormatError(STRUCTURE, f"{problem} (at byte {at})")


def read_key(ops: Reader, kind: str) -> str:
    """A child's key: an index into the kind's well-known keys, or its text."""
    code = ops.uint()
    if code % 2 == 0:
        known = registry.known_keys(kind)
        if code // 2 >= len(known):
            raise ops.fail(f"unknown well-known key {code // 2} for {kind}")
        return known[code // 2]
    return bytes(ops.raw(code // 2)).decode("utf-8", "surrogateescape")


def walk_sparse(diff: Reader, size: int, out: Optional[bytearray] = None) -> None:
    """Read a sparse difference block of ``size`` bytes (zero run, nonzero run, nonzero bytes,
    until ``size``), into ``out`` if given.

    A recompiled native library's block holds a million runs: this loop reads the one- and
    two-byte numbers (nearly all of them) inline, and hands anything else to ``Reader.uint``, which
    checks and words every failure the same way."""
    data, end, pos, at = diff.data, len(diff.data), diff.pos, 0
    while at < size:
        if pos < end and data[pos] < 0x80:
            zeros = data[pos]
            pos += 1
            if zeros > size - at:
                diff.pos = pos
                raise diff.fail(f"number {zeros} exceeds the limit {size - at}")
        elif pos + 1 < end and data[pos + 1] < 0x80:  # two bytes
            zeros = (data[pos] & 0x7F) | (data[pos + 1] << 7)
            pos += 2
            if zeros > size - at:
                diff.pos = pos
                raise diff.fail(f"number {zeros} exceeds the limit {size - at}")
        else:
            diff.pos = pos
            zeros = diff.uint(size - at)
            pos = diff.pos
        at += zeros
        if pos < end and data[pos] < 0x80:
            run = data[pos]
            pos += 1
            if run > size - at:
                diff.pos = pos
                raise diff.fail(f"number {run} exceeds the limit {size - at}")
        elif pos + 1 < end and data[pos + 1] < 0x80:  # two bytes
            run = (data[pos] & 0x7F) | (data[pos + 1] << 7)
            pos += 2
            if run > size - at:
                diff.pos = pos
                raise diff.fail(f"number {run} exceeds the limit {size - at}")
        else:
            diff.pos = pos
            run = diff.uint(size - at)
            pos = diff.pos
        if zeros == 0 and run == 0 and at < size:
            diff.pos = pos
            raise diff.fail("sparse difference block makes no progress")
        if run > end - pos:
            diff.pos = pos
            raise diff.fail(f"needs {run} bytes, {end - pos} remain")
        if out is not None:
            out[at:at + run] = data[pos:pos + run]
        pos += run
        at += run
    diff.pos = pos


@dataclass
class Region:
    """Bytes ``start:end`` of a stream, already checked by the reader, to be read again when
    used; positions count as in the whole stream."""

    stream: memoryview
    what: str
    start: int
    end: int

    def reader(self) -> Reader:
        reader = Reader(self.stream[:self.end], self.what)
        reader.pos = self.start
        return reader


# -- bytes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Same:
    """The old bytes."""

    name = codes.OP_NAMES[codes.SAME]


SAME = Same()


@dataclass
class Literal:
    """New bytes, given whole."""

    data: memoryview
    at: int
    name = codes.OP_NAMES[codes.LITERAL]


@dataclass
class Splice:
    """The old bytes with ``count`` runs overwritten; the runs' gaps and lengths are ``runs`` (a
    region of the structure stream), their bytes ``data``, one after the other."""

    count: int
    runs: Region
    data: memoryview
    at: int
    name = codes.OP_NAMES[codes.SPLICE]

    def __iter__(self) -> Iterator[Tuple[int, memoryview, int]]:
        """(offset, new bytes, position just after the run's length) for each run."""
        ops = self.runs.reader()
        pos = used = 0
        for _ in range(self.count):
            pos += ops.uint()
            length = ops.uint()
            yield pos, self.data[used:used + length], ops.pos
            used += length
            pos += length


@dataclass
class SparseBlock:
    """A difference block of ``size`` bytes, mostly zeros, as its encoding in the diff stream."""

    size: int
    encoded: Region

    def build(self) -> bytes:
        out = bytearray(self.size)
        walk_sparse(self.encoded.reader(), self.size, out)
        return bytes(out)


@dataclass
class Bsdiff:
    """bsdiff's patch of the old bytes: ``count`` controls (a region of the structure stream),
    the difference block (bytes, or sparse), and the extra bytes."""

    new_length: int
    count: int
    controls: Region
    diff: Union[memoryview, SparseBlock]
    extra: memoryview
    at: int
    name = codes.OP_NAMES[codes.BSDIFF]

    def __iter__(self) -> Iterator[Tuple[int, int, int, int]]:
        """(x, y, z, position just after z) for each control."""
        ops = self.controls.reader()
        for _ in range(self.count):
            x, y, z = ops.uint(), ops.uint(), ops.sint()
            yield x, y, z, ops.pos


@dataclass
class Struct:
    """The old bytes opened as a container of ``kind`` and changed as ``node`` says."""

    kind: str
    node: "NodePlan"
    at: int
    name = codes.OP_NAMES[codes.STRUCT]


@dataclass
class Bcj:
    """bsdiff's patch of the old bytes with their calls made absolute (converter ``kind``,
    ``branches.py``), converted back."""

    kind: int
    bsdiff: Bsdiff
    at: int
    name = codes.OP_NAMES[codes.BCJ]


BytesPlan = Union[Same, Literal, Splice, Bsdiff, Bcj, Struct]


# -- children ----------------------------------------------------------------------------


@dataclass
class ChildSame:
    """The old child's stored bytes (an added child: none)."""

    compression: Optional[str]
    name = codes.OP_NAMES[codes.SAME]


@dataclass
class ChildCopy:
    """An added child with the stored bytes of the removed sibling ``key``."""

    compression: Optional[str]
    key: str
    at: int
    name = codes.OP_NAMES[codes.COPY]


@dataclass
class ChildRecompress:
    """The old child's decompressed bytes changed as ``content`` says, compressed with
    ``params``. ``at``: before the content's operation; ``end``: after it."""

    compression: str
    params: Params
    content: BytesPlan
    at: int
    end: int
    name = codes.OP_NAMES[codes.RECOMPRESS]


@dataclass
class ChildBytes:
    """The stored bytes changed as ``data`` says; a compressed child's decompressed size."""

    compression: Optional[str]
    data: BytesPlan
    content_size: object


ChildPlan = Union[ChildSame, ChildCopy, ChildRecompress, ChildBytes]


# -- containers --------------------------------------------------------------------------


@dataclass
class KeyList:
    """The keys of the children a node removes, ``count`` of them, as a region of the structure
    stream. ``at``: just after the count."""

    kind: str
    count: int
    keys: Region
    at: int

    def __iter__(self) -> Iterator[Tuple[str, int]]:
        """(key, position just after it) for each."""
        reader = self.keys.reader()
        for _ in range(self.count):
            yield read_key(reader, self.kind), reader.pos


@dataclass
class Order:
    """The new order of a node's kept children. ``count`` is what the patch says; ``positions``
    checks it against the real count before decoding anything of that size. ``at``: just
    after the count."""

    count: int
    at: int

    def positions(self, count: int) -> List[int]:
        """The kept children's old positions, in their new order."""
        if self.count != count:
            raise fail(self.at, f"reorders {self.count} children, the base has {count}")
        return self._decode()

    def _decode(self) -> List[int]:
        raise NotImplementedError


@dataclass
class RankOrder(Order):
    """A Lehmer rank of the whole permutation (``count <= MAX_RANKED``)."""

    rank: int = 0

    def _decode(self) -> List[int]:
        return unrank_permutation(self.rank, self.count)


@dataclass
class RunsOrder(Order):
    """Runs of the old order (starting at ``starts``), moved as the rank of their order says."""

    starts: List[int] = field(default_factory=list)
    rank: int = 0

    def _decode(self) -> List[int]:
        ends = self.starts[1:] + [self.count]
        blocks = unrank_permutation(self.rank, len(self.starts))
        return [i for b in blocks for i in range(self.starts[b], ends[b])]


@dataclass
class ListOrder(Order):
    """Each kept child's old position, as a region of the structure stream."""

    entries: Region = None

    def _decode(self) -> List[int]:
        reader = self.entries.reader()
        order = [reader.uint() for _ in range(self.count)]
        if len(set(order)) != self.count:
            raise fail(self.entries.end, "an order list that is not a permutation")
        return order


@dataclass
class Added:
    """An added child: where it goes in the new list, its key, attrs and bytes. ``patch_bytes``:
    what its bytes take in the body; ``at``: just after its position."""

    position: int
    key: str
    attrs: object
    child: ChildPlan
    patch_bytes: int
    at: int


@dataclass
class Changed:
    """A kept child that changed: its attrs and bytes. ``patch_bytes``: what both take in the
    body; ``at``: just after its key."""

    key: str
    attrs: ValueDelta
    child: ChildPlan
    patch_bytes: int
    at: int


@dataclass
class NodePlan:
    """A node delta. ``changed_at``: just after the count of changed children; ``end``: after
    the whole node delta."""

    kind: str
    meta: ValueDelta
    removed: KeyList
    order: Optional[Order]
    added: List[Added]
    changed: List[Changed]
    changed_at: int
    end: int
