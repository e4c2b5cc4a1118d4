"""The diff engine: encodes a new byte string relative to an old one, and decodes it back.

It knows no format. Through ``formats.registry`` it recognises containers, opens both versions
as generic nodes, pairs children by key, and encodes only what changed:

- a child whose bytes are unchanged costs nothing;
- a changed compressed child is encoded as its decompressed bytes' delta plus the zlib settings
  that ``make`` verified re-compress them to the exact stored bytes (``RECOMPRESS``);
- a changed container inside (a PYZ in a CArchive, a zip in a compressed entry) is opened and
  diffed the same way (``STRUCT``);
- other bytes are a splice of changed runs, a bsdiff, or a literal, whichever is smaller;
- an added child whose bytes equal a removed sibling's (a renamed module) is a ``COPY`` of it.

The encoding goes to three streams, compressed together later by the patch file: ``ops`` (the
structure), ``data`` (bsdiff's difference blocks, mostly zeros) and ``lit`` (new bytes).
"""
from __future__ import annotations

import lzma
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import bsdiff4.core

from ..errors import FormatError
from ..formats import registry
from ..formats.node import DEFLATE, ZLIB, Child, LazyBlob, Node, child_content, flatten, materialize
from . import recompress
from .permutations import order_runs, permutation_bytes, rank_permutation, unrank_permutation
from .wire import Reader, Writer

SAME, LITERAL, SPLICE, BSDIFF, STRUCT, RECOMPRESS, COPY = range(7)
# How the kept children are ordered: as before, by a full Lehmer rank, as runs of the old
# order, or as a plain list of old positions (for orders too large to rank cheaply).
ORDER_SAME, ORDER_RANK, ORDER_RUNS, ORDER_LIST = range(4)
# Ranking and unranking cost grows with the square of the count: above this many items a
# permutation is written as a list instead (the decoder refuses larger ranks).
MAX_RANKED = 4096
# Containers nest a few levels in real files (folder > executable > archive > PYZ or zip);
# deeper nesting in a patch is refused, and make treats deeper containers as plain bytes.
MAX_NESTING = 12
OP_NAMES = ["same", "literal", "splice", "bsdiff", "struct", "recompress", "copy"]


def op_name(code: int) -> str:
    """The name of an operation code (a peek before decoding it, which rejects unknown codes)."""
    return OP_NAMES[code] if 0 <= code < len(OP_NAMES) else "?"
COMPRESSIONS = (None, ZLIB, DEFLATE)

_SPLICE_CHUNK = 4096
_SPLICE_MAX_RUNS = 256
_MERGE_GAP = 8  # equal bytes between two changed runs cheaper to resend than to skip
_ESTIMATE_LIMIT = 4 * 1024 * 1024  # above this, pick bsdiff vs literal without compressing both


@dataclass
class Streams:
    ops: Writer = field(default_factory=Writer)
    data: bytearray = field(default_factory=bytearray)
    lit: bytearray = field(default_factory=bytearray)


@dataclass
class Change:
    """One line of what a patch does, for ``show`` and ``make``'s report."""

    path: str
    action: str  # added, removed, changed, reordered
    how: str = ""  # the encoding of a changed or added child
    old_size: Optional[int] = None
    new_size: Optional[int] = None
    patch_bytes: Optional[int] = None  # bytes of the (uncompressed) patch body this change uses

    @property
    def container(self) -> bool:
        """Only says that a container's parts changed (each changed part has its own change)."""
        return self.action == "changed" and self.how in ("struct", "recompressed struct")


def same_bytes(a, b) -> bool:
    return len(a) == len(b) and memoryview(a) == memoryview(b)


def rebuilds_exactly(node: Node, original) -> bool:
    """Does the codec rebuild ``node`` to exactly ``original``? (Checked before relying on it.)"""
    blob = registry.build_node(node)
    if len(blob) != len(original):
        return False
    view = memoryview(original)
    pos = 0
    for chunk in flatten(blob.chunks()):
        size = len(chunk)
        if view[pos:pos + size] != memoryview(chunk):
            return False
        pos += size
    return pos == len(original)


def _open_pair(fmt, old, new) -> Tuple[Node, Node]:
    """Both versions opened as containers of the format ``fmt`` (a row of ``registry.FORMATS``),
    if each rebuilds to exactly its bytes; else FormatError saying why not (``registry.recognize``
    then tries the next format)."""
    if not len(old) or not fmt.codec.detect(old):
        raise FormatError("the old version", f"is not a {fmt.title}")
    new_node = fmt.codec.open_node(new)
    try:
        old_node = fmt.codec.open_node(old)
    except FormatError as exc:
        raise FormatError("the old version", exc.problem) from None
    for node, original, which in ((new_node, new, "new"), (old_node, old, "old")):
        if not rebuilds_exactly(node, original):
            raise FormatError(f"the {which} version", f"the {fmt.title} does not rebuild to the same bytes")
    return old_node, new_node


def changed_runs(old, new) -> Optional[List[Tuple[int, int]]]:
    """(offset, length) runs where equal-length ``old`` and ``new`` differ, or None if too many."""
    a, b = memoryview(old), memoryview(new)
    runs: List[Tuple[int, int]] = []
    for start in range(0, len(a), _SPLICE_CHUNK):
        end = min(start + _SPLICE_CHUNK, len(a))
        if a[start:end] == b[start:end]:
            continue
        sa, sb = bytes(a[start:end]), bytes(b[start:end])
        i = 0
        while i < len(sa):
            if sa[i] == sb[i]:
                i += 1
                continue
            j = i
            while j < len(sa) and sa[j] != sb[j]:
                j += 1
            offset = start + i
            if runs and offset - (runs[-1][0] + runs[-1][1]) <= _MERGE_GAP:
                runs[-1] = (runs[-1][0], offset + (j - i) - runs[-1][0])
            else:
                runs.append((offset, j - i))
                if len(runs) > _SPLICE_MAX_RUNS:
                    return None
            i = j
    return runs


_NONZERO_RUNS = re.compile(rb"[^\x00]+")


def sparse_diff(diff: bytes) -> Optional[bytes]:
    """bsdiff's difference block as (zero run, nonzero run, nonzero bytes) triples, if smaller.

    The block holds new-minus-old byte differences over matched regions: mostly zeros, with
    nonzero bytes where the matched regions differ (an offset, a length)."""
    out = Writer()
    pos = 0
    limit = len(diff) // 4
    for match in _NONZERO_RUNS.finditer(diff):
        start, end = match.span()
        out.uint(start - pos)
        out.uint(end - start)
        out.raw(match.group())
        pos = end
        if len(out) > limit:
            return None
    if pos < len(diff):
        out.uint(len(diff) - pos)
        out.uint(0)
    return out.getvalue()


def _lzma_size(*parts) -> int:
    comp = lzma.LZMACompressor(lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": 1}])
    size = 0
    for part in parts:
        size += len(comp.compress(part))
    return size + len(comp.flush())


class Encoder:
    def __init__(self) -> None:
        self.out = Streams()
        self.changes: List[Change] = []
        self.depth = 0  # containers opened around the current position
        # Why bytes that changed were diffed as bytes, by path ("" is the whole file).
        self.unstructured: Dict[str, str] = {}

    # -- bytes ---------------------------------------------------------------------------

    def data_delta(self, old, new, path: str) -> str:
        """Encode ``new`` relative to ``old``; return the name of the encoding used."""
        ops = self.out.ops
        if same_bytes(old, new):
            ops.uint(SAME)
            return "same"
        if self.depth >= MAX_NESTING:
            self.unstructured[path] = f"containers nested more than {MAX_NESTING} deep"
            return self.bytes_delta(old, new)
        found = registry.recognize(new, lambda fmt, data: _open_pair(fmt, old, data))
        if found.kind is None:
            self.unstructured[path] = found.reason
            return self.bytes_delta(old, new)
        old_node, new_node = found.value
        ops.uint(STRUCT)
        ops.uint(registry.wire_id(found.kind))
        self.depth += 1
        try:
            self.node_delta(old_node, new_node, path)
        finally:
            self.depth -= 1
        return "struct"

    def bytes_delta(self, old, new) -> str:
        ops, out = self.out.ops, self.out
        runs = changed_runs(old, new) if len(old) == len(new) else None
        if runs is not None and sum(n for _, n in runs) <= max(64, len(new) // 64):
            ops.uint(SPLICE)
            ops.uint(len(runs))
            pos = 0
            for offset, length in runs:
                ops.uint(offset - pos)
                ops.uint(length)
                out.lit += new[offset:offset + length]
                pos = offset + length
            return "splice"
        if len(old) and len(new):
            control, diff, extra = bsdiff4.core.diff(bytes(old), bytes(new))
            triples = [tuple(bsdiff4.core.decode_int64(control[i + k:i + k + 8]) for k in (0, 8, 16))
                       for i in range(0, len(control), 24)]
            if len(new) > _ESTIMATE_LIMIT:
                use_bsdiff = len(extra) < len(new) // 2
            else:
                use_bsdiff = _lzma_size(diff, extra) + 3 * len(triples) < _lzma_size(bytes(new))
            if use_bsdiff:
                ops.uint(BSDIFF)
                ops.uint(len(new))
                ops.uint(len(triples))
                for x, y, z in triples:
                    ops.uint(x)
                    ops.uint(y)
                    ops.sint(z)
                sparse = sparse_diff(diff)
                ops.uint(sparse is not None)
                out.data += sparse if sparse is not None else diff
                out.lit += extra
                return "bsdiff"
        ops.uint(LITERAL)
        ops.uint(len(new))
        out.lit += new
        return "literal"

    # -- children ------------------------------------------------------------------------

    def child_delta(self, old: Optional[Child], new: Child, path: str, donors: Optional[dict] = None) -> str:
        """Encode one child; ``donors`` maps removed siblings' bytes to their keys (for renames)."""
        ops = self.out.ops
        ops.uint(COMPRESSIONS.index(new.compression))
        if old is not None and same_bytes(old.data, new.data):
            ops.uint(SAME)
            return "same"
        donor = donors.get(bytes(new.data)) if donors and len(new.data) else None
        if old is None and donor is not None:
            ops.uint(COPY)
            ops.text(donor.key)
            return f"copy of {donor.key}"
        if new.compression:
            try:
                new_content = child_content(new, path)
                params = recompress.find_params(new_content, new.data, new.compression, new.level_hint)
                old_content = child_content(old, path) if old is not None else b""
            except FormatError:
                params = None
            if params is not None:
                ops.uint(RECOMPRESS)
                ops.uint(params.pack())
                return "recompressed " + self.data_delta(old_content, new_content, path)
        how = self.data_delta(old.data if old is not None else b"", new.data, path)
        if new.compression:
            ops.value(new.content_size)
        return how

    def write_key(self, kind: str, key: str) -> None:
        """A child's key: an index into the format's well-known keys, or its text."""
        known = registry.known_keys(kind)
        if key in known:
            self.out.ops.uint(2 * known.index(key))
        else:
            raw = key.encode("utf-8", "surrogateescape")
            self.out.ops.uint(2 * len(raw) + 1)
            self.out.ops.raw(raw)

    def node_delta(self, old: Node, new: Node, path: str) -> None:
        """Children are named by key, so a patch says what it changes without the old file."""
        ops = self.out.ops
        ops.value_delta(old.meta, new.meta)
        new_keys = {c.key for c in new.children}
        removed = [c for c in old.children if c.key not in new_keys]
        ops.uint(len(removed))
        for child in removed:
            self.write_key(new.kind, child.key)
            self.changes.append(Change(f"{path}/{child.key}", "removed", old_size=len(child.data)))
        kept = [c for c in old.children if c.key in new_keys]
        kept_index = {c.key: j for j, c in enumerate(kept)}
        order = [kept_index[c.key] for c in new.children if c.key in kept_index]
        if self.order_delta(order):
            self.changes.append(Change(path, "reordered", f"{len(order)} children"))

        added = [i for i, c in enumerate(new.children) if c.key not in kept_index]
        donors = {bytes(c.data): c for c in removed} if added else {}
        ops.uint(len(added))
        prev = 0
        for i in added:
            child = new.children[i]
            ops.uint(i - prev)
            prev = i
            self.write_key(new.kind, child.key)
            ops.value(child.attrs)
            how = self.child_delta(None, child, f"{path}/{child.key}", donors)
            self.changes.append(Change(f"{path}/{child.key}", "added", how, new_size=len(child.data)))

        changed = []
        for child in new.children:
            old_child = kept[kept_index[child.key]] if child.key in kept_index else None
            if old_child is not None and (old_child.attrs != child.attrs or not same_bytes(old_child.data, child.data)):
                changed.append((old_child, child))
        ops.uint(len(changed))
        for old_child, child in changed:
            self.write_key(new.kind, child.key)
            ops.value_delta(old_child.attrs, child.attrs)
            child_path = f"{path}/{child.key}"
            how = self.child_delta(old_child, child, child_path)
            self.changes.append(Change(child_path, "changed", how, len(old_child.data), len(child.data)))

    def order_delta(self, order: List[int]) -> bool:
        """Encode the new order of the kept children; return whether it changed.

        A rebuild that reorders (PyInstaller 6 writes base_library.zip in module-graph order,
        which varies between builds) mostly moves whole runs of the old order, so runs are
        coded as cut points plus the rank of their permutation, unless a full rank is smaller.
        """
        ops = self.out.ops
        if order == list(range(len(order))):
            ops.uint(ORDER_SAME)
            return False
        candidates = []  # (size, code, encoded bytes after the count)
        runs = order_runs(order)
        if len(runs) <= MAX_RANKED:
            by_start = sorted(runs)
            block_of = {start: b for b, (start, _) in enumerate(by_start)}
            runs_writer = Writer()
            runs_writer.uint(len(runs))
            prev = 0
            for start, _ in by_start[1:]:
                runs_writer.uint(start - prev)
                prev = start
            rank, n = rank_permutation([block_of[start] for start, _ in runs])
            runs_writer.raw(rank.to_bytes(permutation_bytes(n), "little"))
            candidates.append((len(runs_writer), ORDER_RUNS, runs_writer.getvalue()))
        if len(order) <= MAX_RANKED:
            rank, n = rank_permutation(order)
            candidates.append((permutation_bytes(n), ORDER_RANK, rank.to_bytes(permutation_bytes(n), "little")))
        if not candidates:
            list_writer = Writer()
            for index in order:
                list_writer.uint(index)
            candidates.append((len(list_writer), ORDER_LIST, list_writer.getvalue()))
        _, code, encoded = min(candidates, key=lambda c: (c[0], c[1] != ORDER_RANK))  # a tie: the rank
        ops.uint(code)
        ops.uint(len(order))
        ops.raw(encoded)
        return True


class Decoder:
    """Rebuilds new bytes from old ones and a patch's streams.

    Every count and length in the streams is checked against what remains and against
    ``size_limit``, which bounds each piece and also everything the decoder allocates
    together (its memory budget). With ``old=None`` throughout (``describe``), it walks the
    same streams without any old file, allocating nothing of the sizes they name, recording in
    ``changes`` what the patch does, for ``show``.
    """

    def __init__(self, ops: bytes, data: bytes, lit: bytes, size_limit: int):
        self.ops = Reader(ops, "patch structure")
        self.data = Reader(data, "patch difference data")
        self.lit = Reader(lit, "patch literal data")
        self.size_limit = size_limit
        self.budget = size_limit  # bytes the decoder may still allocate
        self.depth = 0  # containers opened around the current position
        self.changes: List[Change] = []
        # Decompressed bytes this machine re-compressed: the only part of the result whose
        # size can differ from the build's (another zlib); bounds how far the size may stray.
        self.recompressed = 0

    def finish(self) -> None:
        for reader in (self.ops, self.data, self.lit):
            reader.expect_end()

    def _charge(self, size: int) -> None:
        """Count ``size`` bytes about to be allocated against the memory budget."""
        self.budget -= size
        if self.budget < 0:
            raise self.ops.fail(f"applying it would take more than {self.size_limit} bytes of memory, "
                                "the most its declared size allows")

    def describe_node(self, kind: str) -> None:
        """Like ``describe``, for a patch whose root is a container's children (a folder)."""
        self.node_apply(None, "", kind)
        self.finish()

    def describe(self) -> str:
        """Walk the whole patch without the old file; return the root encoding's name."""
        mark = self.ops.pos
        how = op_name(self.ops.uint()) if self.ops.remaining else "?"
        self.ops.pos = mark
        self.data_apply(None, "")
        self.finish()
        return how

    # -- bytes ---------------------------------------------------------------------------

    def data_apply(self, old, path: str):
        """The new bytes (a bytes-like object or LazyBlob); None when describing."""
        ops = self.ops
        op = ops.uint()
        if op == SAME:
            return old
        if op == LITERAL:
            size = ops.uint(self.size_limit)
            if old is None:
                return self.lit.raw(size)  # describing: a view of the patch, for its length
            self._charge(size)
            return bytes(self.lit.raw(size))
        if op == SPLICE:
            return self._splice(old)
        if op == BSDIFF:
            return self._bsdiff(old)
        if op == STRUCT:
            kind_id = ops.uint()
            kind = registry.kind_of_wire_id(kind_id)
            if kind is None:
                raise ops.fail(f"unknown container kind {kind_id}")
            if self.depth >= MAX_NESTING:
                raise ops.fail(f"containers nested more than {MAX_NESTING} deep")
            self.depth += 1
            try:
                if old is None:
                    self.node_apply(None, path, kind)
                    return None
                if isinstance(old, LazyBlob):
                    self._charge(len(old))
                    old = materialize(old)
                node = registry.open_node(kind, old)
                return registry.build_node(self.node_apply(node, path, kind))
            finally:
                self.depth -= 1
        raise ops.fail(f"unknown operation {op}")

    def _splice(self, old):
        ops = self.ops
        if old is not None:
            self._charge(len(old))
        out = bytearray(old) if old is not None else None
        bound = len(out) if out is not None else self.size_limit
        pos = 0
        for _ in range(ops.uint(ops.remaining)):
            pos += ops.uint(bound)
            length = ops.uint(bound)
            if pos + length > bound:
                raise ops.fail("splice run past the end of its data")
            run = self.lit.raw(length)
            if out is not None:
                out[pos:pos + length] = run
            pos += length
        return bytes(out) if out is not None else None

    def _bsdiff(self, old):
        ops = self.ops
        new_len = ops.uint(self.size_limit)
        count = ops.uint(ops.remaining // 3)
        control = bytearray()
        total_diff = total_extra = 0
        old_pos = 0
        for _ in range(count):
            x, y, z = ops.uint(new_len), ops.uint(new_len), ops.sint()
            if not -(1 << 62) <= z < (1 << 62):
                raise ops.fail(f"difference seek {z} out of range")
            total_diff += x
            total_extra += y
            if old is not None and (old_pos < 0 or old_pos + x > len(old)):
                raise ops.fail("difference run outside the old data")
            old_pos += x + z
            control += bsdiff4.core.encode_int64(x) + bsdiff4.core.encode_int64(y) + bsdiff4.core.encode_int64(z)
        if total_diff + total_extra != new_len:
            raise ops.fail("difference runs do not add up to the new size")
        sparse = ops.uint(1)
        if old is None:  # describing: walk the data without building anything
            self._sparse_block(total_diff, build=False) if sparse else self.data.raw(total_diff)
            self.lit.raw(total_extra)
            return None
        # The result, the difference block, the extra bytes and bsdiff's copy of the old data.
        self._charge(2 * new_len + len(old))
        diff = self._sparse_block(total_diff) if sparse else bytes(self.data.raw(total_diff))
        extra = bytes(self.lit.raw(total_extra))
        return bsdiff4.core.patch(bytes(old), new_len, bytes(control), diff, extra)

    def _sparse_block(self, size: int, build: bool = True) -> Optional[bytes]:
        out = bytearray(size) if build else None
        pos = 0
        while pos < size:
            zeros = self.data.uint(size - pos)
            pos += zeros
            run = self.data.uint(size - pos)
            if zeros == 0 and run == 0 and pos < size:
                raise self.data.fail("sparse difference block makes no progress")
            block = self.data.raw(run)
            if out is not None:
                out[pos:pos + run] = block
            pos += run
        return bytes(out) if out is not None else None

    # -- children ------------------------------------------------------------------------

    def _position(self) -> int:
        return self.ops.pos + self.data.pos + self.lit.pos

    def child_apply(self, old: Optional[Child], path: str, describing: bool,
                    donors: Optional[dict] = None) -> Tuple[object, Optional[str], Optional[int], str]:
        """(new stored data, compression, content size, encoding name) of one child.
        ``donors`` are the removed siblings, by key, that an added child may copy."""
        ops = self.ops
        tag = ops.uint()
        if tag >= len(COMPRESSIONS):
            raise ops.fail(f"unknown compression {tag}")
        compression = COMPRESSIONS[tag]
        mark = ops.pos
        op = ops.uint()
        if op == COPY:
            key = ops.text()
            if describing:
                return None, compression, None, f"copy of {key}"
            if old is not None or donors is None or key not in donors:
                raise ops.fail(f"copy of {key!r}, which is not a removed sibling")
            donor = donors[key]
            return donor.data, compression, donor.content_size, f"copy of {key}"
        if op == SAME:  # for an added child: the same as nothing, i.e. empty (a runtime option)
            if old is None:
                return (None if describing else b""), compression, None, "same"
            return old.data, compression, old.content_size, "same"
        if op == RECOMPRESS:
            if compression is None:
                raise ops.fail("re-compression of an uncompressed child")
            params = recompress.Params.unpack(ops.uint())
            mark = ops.pos
            inner = op_name(ops.uint()) if ops.remaining else "?"
            ops.pos = mark
            if describing:
                self.data_apply(None, path)
                return None, compression, None, f"recompressed {inner}"
            old_content = b""
            if old is not None:
                # Inflating the old child costs its size as the base file declares it (or, for
                # a PYZ module, which declares none, what inflate's own cap let through).
                if old.content_size is not None:
                    self._charge(old.content_size)
                old_content = child_content(old, path)
                if old.content_size is None:
                    self._charge(len(old_content))
            new_content = self.data_apply(old_content, path)
            if isinstance(new_content, LazyBlob):
                self._charge(len(new_content))
            content = materialize(new_content)
            self._charge(len(content))  # the compressed copy is at most about this long
            self.recompressed += len(content)
            return recompress.compress(content, compression, params), compression, len(content), \
                f"recompressed {inner}"
        ops.pos = mark
        data = self.data_apply(None if describing else (old.data if old is not None else b""), path)
        content_size = ops.value() if compression else None
        if content_size is not None and not (isinstance(content_size, int) and 0 <= content_size <= self.size_limit):
            raise ops.fail("content size is not a number within the limit")
        return data, compression, content_size, op_name(op)

    def _next_index(self, n: int, previous: int, bound: int, what: str) -> int:
        """The n-th of strictly increasing indices below ``bound``, stored as a gap."""
        gap = self.ops.uint(bound)
        pos = gap if n == 0 else previous + gap
        if (n and gap == 0) or pos >= bound:
            raise self.ops.fail(f"{what} index out of order or range")
        return pos

    def _order(self, count: Optional[int]):
        """The new order of ``count`` kept children: a list of old positions. When describing
        (count None), the streams are walked the same way but only the length matters, so a
        ``range`` stands in for the order: a count the patch chose never becomes a list."""
        ops = self.ops
        how = ops.uint()
        if how == ORDER_SAME:
            return None
        if how not in (ORDER_RANK, ORDER_RUNS, ORDER_LIST):
            raise ops.fail(f"unknown order encoding {how}")
        n = ops.uint(ops.remaining * 8 if count is None else count)
        if count is not None and n != count:
            raise ops.fail(f"reorders {n} children, the base has {count}")
        if how == ORDER_LIST:
            if n > ops.remaining:
                raise ops.fail("an order list longer than the patch")
            if count is None:
                for _ in range(n):
                    ops.uint(n - 1)
                return range(n)
            order = [ops.uint(n - 1) for _ in range(n)]
            if len(set(order)) != n:
                raise ops.fail("an order list that is not a permutation")
            return order
        if how == ORDER_RANK:
            if n > MAX_RANKED:
                raise ops.fail(f"a ranked order of {n} items (at most {MAX_RANKED})")
            raw = ops.raw(permutation_bytes(n))
            return unrank_permutation(int.from_bytes(raw, "little"), n)
        n_runs = ops.uint(min(n, MAX_RANKED))
        if n_runs == 0 and n:
            raise ops.fail("an order with no runs")
        starts = [0] * n_runs
        for b in range(1, n_runs):
            starts[b] = starts[b - 1] + ops.uint(n)
            if starts[b] <= starts[b - 1] or starts[b] >= n:
                raise ops.fail("run starts out of order or range")
        ends = starts[1:] + [n]
        raw = ops.raw(permutation_bytes(n_runs))
        blocks = unrank_permutation(int.from_bytes(raw, "little"), n_runs)
        if count is None:
            return range(n)
        return [i for b in blocks for i in range(starts[b], ends[b])]

    def read_key(self, kind: str) -> str:
        code = self.ops.uint()
        if code % 2 == 0:
            known = registry.known_keys(kind)
            if code // 2 >= len(known):
                raise self.ops.fail(f"unknown well-known key {code // 2} for {kind}")
            return known[code // 2]
        return bytes(self.ops.raw(code // 2)).decode("utf-8", "surrogateescape")

    def _key(self, kind: str, index: Optional[dict], what: str) -> Tuple[str, Optional[int]]:
        key = self.read_key(kind)
        if index is None:
            return key, None
        if key not in index:
            raise self.ops.fail(f"{what} {key!r} is not in the base (is this the right file?)")
        return key, index[key]

    def node_apply(self, old: Optional[Node], path: str, kind: str) -> Optional[Node]:
        ops = self.ops
        describing = old is None
        meta = ops.value_delta(None if describing else old.meta)
        old_count = None if describing else len(old.children)
        old_index = None if describing else {c.key: i for i, c in enumerate(old.children)}
        removed = set()
        donors = {}
        for _ in range(ops.uint(ops.remaining if describing else old_count)):
            key, index = self._key(kind, old_index, "removed child")
            if index in removed and not describing:
                raise ops.fail(f"child {key!r} removed twice")
            removed.add(index)
            if not describing:
                donors[key] = old.children[index]
            self.changes.append(Change(f"{path}/{key}", "removed"))
        kept = [] if describing else [c for i, c in enumerate(old.children) if i not in removed]
        order = self._order(None if describing else len(kept))
        if order is not None:
            self.changes.append(Change(path, "reordered", f"{len(order)} children"))
            if not describing:
                kept = [kept[i] for i in order]
        added_count = ops.uint(ops.remaining)
        total = (ops.remaining * 8 + added_count) if describing else len(kept) + added_count
        added = {}
        pos = -1
        for n in range(added_count):
            pos = self._next_index(n, pos, total, "added child")
            key = self.read_key(kind)
            attrs = ops.value()
            start = self._position()
            data, compression, size, how = self.child_apply(None, f"{path}/{key}", describing, donors)
            added[pos] = Child(key, attrs, data, compression, size)
            self.changes.append(Change(f"{path}/{key}", "added", how, new_size=None if data is None else len(data),
                                       patch_bytes=self._position() - start))
        kept_index = None if describing else {c.key: j for j, c in enumerate(kept)}
        changed = set()
        for _ in range(ops.uint(ops.remaining if describing else len(kept))):
            key, pos = self._key(kind, kept_index, "changed child")
            if key in changed:
                raise ops.fail(f"child {key!r} changed twice")
            changed.add(key)
            child = None if describing else kept[pos]
            start = self._position()
            attrs = ops.value_delta(None if describing else child.attrs)
            data, compression, size, how = self.child_apply(child, f"{path}/{key}", describing)
            self.changes.append(Change(f"{path}/{key}", "changed", how,
                                       old_size=None if describing else len(child.data),
                                       new_size=None if data is None else len(data),
                                       patch_bytes=self._position() - start))
            if not describing:
                kept[pos] = Child(key, attrs, data, compression, size)
        if describing:
            return None
        it = iter(kept)
        children = [added[i] if i in added else next(it) for i in range(len(kept) + added_count)]
        keys = [c.key for c in children]
        if len(set(keys)) != len(keys):
            raise ops.fail("the rebuilt container has two children with the same key")
        return Node(kind, meta, children)
