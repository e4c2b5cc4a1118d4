"""make's side of the diff engine: encodes a new byte string relative to an old one.

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
structure), ``diff`` (bsdiff's difference blocks, mostly zeros) and ``lit`` (new bytes). Each
``Change`` it records says which encoding it chose for a part, and why (``reason``).
"""
from __future__ import annotations

import lzma
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ..errors import FormatError
from ..formats import registry
from ..formats.node import DEFLATE, Child, Node, child_content, flatten
from ..workers import Workers
from . import branches, bsdiff, recompress
from . import changes as encodings
from .changes import Change
from .codes import (
    BCJ,
    BSDIFF,
    COMPRESSIONS,
    COPY,
    LITERAL,
    MAX_NESTING,
    MAX_RANKED,
    ORDER_LIST,
    ORDER_RANK,
    ORDER_RUNS,
    ORDER_SAME,
    RECOMPRESS,
    SAME,
    SPLICE,
    STRUCT,
)
from .estimate import WholeFileEstimate
from .permutations import order_runs, permutation_bytes, rank_permutation
from .same import same_at, same_bytes
from .wire import Writer

_SPLICE_CHUNK = 4096
_SPLICE_MAX_RUNS = 256
_MERGE_GAP = 8  # equal bytes between two changed runs cheaper to resend than to skip
_ESTIMATE_LIMIT = 4 * 1024 * 1024  # above this, pick bsdiff vs literal without compressing both
_LZMA_PIECE = 64 * 1024  # _lzma_size compresses this much at a time, to stop early
# Native code (ELF, PE, Mach-O for x86 or ARM64) is diffed with its calls made absolute (BCJ,
# branches.py): 16 % smaller patches of changed .so files, for no more make time or apply memory
# than before it (docs/bench-native.md). bench/native.py and the tests turn it off to compare.
CONVERT_BRANCHES = True
# Larger native files get a plain bsdiff: applying a bcj holds about eight times the file (the
# old bytes, their converted copy, bsdiff's blocks, the new bytes and their converted copy),
# which for up to 16 MiB fits the smallest memory budget (256 MiB) twice over.
_BCJ_MOST = 16 * 1024 * 1024
_ORDER_NAMES = {ORDER_RANK: "a rank", ORDER_RUNS: "runs", ORDER_LIST: "a list"}
# Compressed children of one container whose decompressing and settings search run on a second
# thread (zlib releases the GIL) while this one encodes: only where they hold this many stored
# bytes, at most _AHEAD children and _AHEAD_BYTES stored bytes ahead of the one being encoded
# (bounds the memory held).
_PARALLEL_BYTES = 512 * 1024
_AHEAD = 8
_AHEAD_BYTES = 4 * 1024 * 1024
# Changed native libraries diffed ahead on a second thread (``_LeavesAhead``).
_AHEAD_LEAVES = 2
_AHEAD_LEAF_BYTES = 16 * 1024 * 1024



@dataclass
class Streams:
    ops: Writer = field(default_factory=Writer)
    diff: bytearray = field(default_factory=bytearray)  # bsdiff difference blocks
    lit: bytearray = field(default_factory=bytearray)  # new bytes


@dataclass
class Choice:
    """The encoding make chose for some bytes or a child, and why."""

    encoding: str
    reason: str
    inner: str = ""  # recompress: the encoding of the decompressed bytes
    source: Optional[str] = None  # copy: the removed sibling's key

    def change(self, path: str, action: str, old_size: Optional[int] = None,
               new_size: Optional[int] = None) -> Change:
        return Change(path, action, self.encoding, old_size, new_size, inner=self.inner, source=self.source,
                      reason=self.reason)


def _plural(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def _settings(compression: str, params: recompress.Params) -> str:
    """zlib settings in words: ``zlib level 9``, ``raw deflate level 6, memLevel 9``."""
    words = [f"{'raw deflate' if compression == DEFLATE else 'zlib'} level {params.level}"]
    if params.mem_level != 8:
        words.append(f"memLevel {params.mem_level}")
    if params.strategy:
        words.append(f"strategy {params.strategy}")
    if params.window_bits != 15:
        words.append(f"windowBits {params.window_bits}")
    return ", ".join(words)


def rebuilds_exactly(node: Node, original) -> bool:
    """Does the codec rebuild ``node`` to exactly ``original``? (Checked before relying on it.)"""
    blob = registry.build_node(node)
    if len(blob) != len(original):
        return False
    pos = 0
    for chunk in flatten(blob.chunks()):
        if not same_at(original, pos, chunk):
            return False
        pos += len(chunk)
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
        if same_bytes(a[start:end], b[start:end]):
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
    nonzero bytes where the matched regions differ (an offset, a length). A recompiled native
    library's block has a million runs, so the numbers under 128 (nearly all) are written
    inline; the rest as ``Writer.uint`` writes them."""
    out = Writer()
    buf = out.buf
    append = buf.append
    pos = 0
    limit = len(diff) // 4
    for match in _NONZERO_RUNS.finditer(diff):
        start, end = match.span()
        gap, run = start - pos, end - start
        if gap < 0x80:
            append(gap)
        else:
            out.uint(gap)
        if run < 0x80:
            append(run)
        else:
            out.uint(run)
        buf += diff[start:end]
        pos = end
        if len(buf) > limit:
            return None
    if pos < len(diff):
        out.uint(len(diff) - pos)
        out.uint(0)
    return out.getvalue()


def _native_kind(old, new) -> Optional[int]:
    """The branch converter for a bsdiff of ``new`` against ``old``: both native code of one
    kind (``branches.native_kind``), else None."""
    if not CONVERT_BRANCHES or max(len(old), len(new)) > _BCJ_MOST:
        return None
    kind = branches.native_kind(new)
    return kind if kind is not None and branches.native_kind(old) == kind else None


def _leaf_plan(old, new) -> tuple:
    """What ``bytes_delta`` encodes two leaves by: (changed runs, bytes changed, None) for a
    splice, else (None, 0, ``_leaf_diff``), or (None, 0, None) where either is empty."""
    runs = changed_runs(old, new) if len(old) == len(new) else None
    changed = sum(n for _, n in runs) if runs is not None else 0
    if runs is not None and changed <= max(64, len(new) // 64):
        return runs, changed, None
    if not len(old) or not len(new):
        return None, 0, None
    return None, 0, _leaf_diff(old, new)


def _leaf_diff(old, new) -> tuple:
    """bytes_delta's bsdiff of ``new`` against ``old`` (native code with its calls made absolute
    first), and, up to _ESTIMATE_LIMIT, its size and the literal's after lzma: (native kind or
    None, triples, difference block, extra block, (bsdiff size, literal size) or None, the
    difference block sparse or None)."""
    native = _native_kind(old, new)
    if native is None:
        triples, diff, extra = bsdiff.diff(bytes(old), bytes(new))
    else:
        triples, diff, extra = bsdiff.diff(branches.encode(old, native), branches.encode(new, native))
    sizes = None
    if len(new) <= _ESTIMATE_LIMIT:
        with_bsdiff = _lzma_size(diff, extra) + 3 * len(triples)
        # Only which is smaller matters: the literal's compression stops once it is larger.
        sizes = (with_bsdiff, _lzma_size(new, above=with_bsdiff))
    return native, triples, diff, extra, sizes, sparse_diff(diff)


def _lzma_size(*parts, above: Optional[int] = None) -> int:
    """The size of ``parts`` compressed together (LZMA2 preset 1); with ``above``, compressing
    stops as soon as the output is larger than that, and the size so far is returned: the whole
    would be larger still."""
    comp = lzma.LZMACompressor(lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": 1}])
    size = 0
    for part in parts:
        view = memoryview(part)
        for start in range(0, len(view), _LZMA_PIECE):
            size += len(comp.compress(view[start:start + _LZMA_PIECE]))
            if above is not None and size > above:
                return size
    return size + len(comp.flush())


class Encoder:
    def __init__(self) -> None:
        self.out = Streams()
        self.changes: List[Change] = []
        self.depth = 0  # containers opened around the current position
        # Why bytes that changed were diffed as bytes, by path ("" is the whole file).
        self.unstructured: Dict[str, str] = {}
        # What a whole-file diff would at least cost (see estimate.py), from the compressed
        # parts that changed; parts inside such a part (``_hidden``) are covered by it.
        self.estimate = WholeFileEstimate()
        self._hidden = 0
        # Content that make checked re-compresses to exactly these stored bytes, by
        # ``reproduced_key``: make's own check of the patch need not compress it again.
        self.reproduced: Dict[tuple, object] = {}
        # The children of the container being encoded whose bsdiff a second thread computes
        # ahead (``_LeavesAhead``), by path.
        self._leaves = _NotAhead()

    # -- bytes ---------------------------------------------------------------------------

    def data_delta(self, old, new, path: str) -> Choice:
        """Encode ``new`` relative to ``old``; return the encoding used and why."""
        ops = self.out.ops
        if same_bytes(old, new):
            ops.uint(SAME)
            return Choice(encodings.SAME, "same bytes")
        if self.depth >= MAX_NESTING:
            self.unstructured[path] = f"containers nested more than {MAX_NESTING} deep"
            choice = self.bytes_delta(old, new)
            choice.reason += f"; not opened: {self.unstructured[path]}"
            return choice
        found = registry.recognize(new, lambda fmt, data: _open_pair(fmt, old, data))
        if found.kind is None:
            self.unstructured[path] = found.reason
            choice = self.bytes_delta(old, new, self._leaves.get(path))
            if found.rejected:  # it looked like a container
                choice.reason += f"; not opened: {found.reason}"
            return choice
        old_node, new_node = found.value
        ops.uint(STRUCT)
        ops.uint(registry.wire_id(found.kind))
        self.depth += 1
        try:
            self.node_delta(old_node, new_node, path)
        finally:
            self.depth -= 1
        return Choice(encodings.STRUCT, f"struct: opened as {found.kind}")

    def bytes_delta(self, old, new, ready: Optional[tuple] = None) -> Choice:
        """Encode ``new`` relative to ``old`` as bytes: a splice, a bsdiff or a literal.
        ``ready``: ``_leaf_plan(old, new)``, computed ahead on another thread."""
        ops, out = self.out.ops, self.out
        runs, changed, diffed = ready if ready is not None else _leaf_plan(old, new)
        if runs is not None:
            ops.uint(SPLICE)
            ops.uint(len(runs))
            pos = 0
            for offset, length in runs:
                ops.uint(offset - pos)
                ops.uint(length)
                out.lit += new[offset:offset + length]
                pos = offset + length
            return Choice(encodings.SPLICE, f"splice: {_plural(len(runs), 'run')}, {_plural(changed, 'byte')} changed")
        if not len(old):
            why = "literal: no old bytes"
        elif not len(new):
            why = "literal: no new bytes"
        else:
            native, triples, diff, extra, sizes, sparse = diffed
            if sizes is None:
                use_bsdiff = len(extra) < len(new) // 2
                compared = (f"bsdiff's new bytes ({len(extra)}) {'under' if use_bsdiff else 'at least'} half "
                            f"of {len(new)}, too large to compare compressed")
            else:
                with_bsdiff, with_literal = sizes
                use_bsdiff = with_bsdiff < with_literal
                compared = (f"bsdiff smaller than literal after lzma ({with_bsdiff} < {with_literal} or more)"
                            if use_bsdiff
                            else f"literal no larger than bsdiff after lzma ({with_literal} <= {with_bsdiff})")
            if use_bsdiff:
                if native is None:
                    ops.uint(BSDIFF)
                else:
                    ops.uint(BCJ)
                    ops.uint(native)
                ops.uint(len(new))
                ops.uint(len(triples))
                for x, y, z in triples:
                    ops.uint(x)
                    ops.uint(y)
                    ops.sint(z)
                ops.uint(sparse is not None)
                out.diff += sparse if sparse is not None else diff
                out.lit += extra
                why = compared if compared.startswith("bsdiff") else f"bsdiff: {compared}"
                if native is not None:
                    return Choice(encodings.BCJ, f"{why}; {branches.NAMES[native]} code, calls made absolute first")
                return Choice(encodings.BSDIFF, why)
            why = compared if compared.startswith("literal") else f"literal: {compared}"
        ops.uint(LITERAL)
        ops.uint(len(new))
        out.lit += new
        return Choice(encodings.LITERAL, why)

    # -- children ------------------------------------------------------------------------

    def child_delta(self, old: Optional[Child], new: Child, path: str, donors: Optional[dict] = None,
                    prepared=None) -> Choice:
        """Encode one child; ``donors`` maps removed siblings' bytes to them (for renames);
        ``prepared``: what ``_prepare`` found for it already (on another thread)."""
        ops = self.out.ops
        ops.uint(COMPRESSIONS.index(new.compression))
        if old is not None and same_bytes(old.data, new.data):
            ops.uint(SAME)
            return Choice(encodings.SAME, "same stored bytes: only its attributes changed")
        donor = donors.get(bytes(new.data)) if donors and len(new.data) else None
        if old is None and donor is not None:
            ops.uint(COPY)
            ops.text(donor.key)
            return Choice(encodings.COPY, f"copy: the stored bytes of removed {donor.key}", source=donor.key)
        stored = ""  # why the stored bytes of a compressed child are diffed as they are
        if new.compression and not self._hidden:
            if old is not None:
                self.estimate.changed(old.data, new.data)
            else:
                self.estimate.added(new.data)
        if new.compression:
            found = prepared if prepared is not None else _prepare(old, new, path)
            if isinstance(found, FormatError):
                params = None
                stored = f"; stored bytes diffed: cannot decompress ({found.problem})"
            else:
                new_content, params, old_content = found
            if params is not None:
                ops.uint(RECOMPRESS)
                ops.uint(params.pack())
                self.reproduced[recompress.reproduced_key(new.compression, params, new_content)] = new.data
                self._hidden += 1
                try:
                    inner = self.data_delta(old_content, new_content, path)
                finally:
                    self._hidden -= 1
                return Choice(encodings.RECOMPRESS, f"recompressed: {_settings(new.compression, params)} "
                              f"reproduces the stored bytes; {inner.reason}", inner=inner.encoding)
            stored = stored or "; stored bytes diffed: no zlib settings reproduce them"
        choice = self.data_delta(old.data if old is not None else b"", new.data, path)
        if new.compression:
            ops.value(new.content_size)
        choice.reason += stored
        return choice

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
            self.changes.append(Change(f"{path}/{child.key}", "removed", old_size=len(child.data),
                                       reason="not in the new version"))
        kept = [c for c in old.children if c.key in new_keys]
        kept_index = {c.key: j for j, c in enumerate(kept)}
        order = [kept_index[c.key] for c in new.children if c.key in kept_index]
        why = self.order_delta(order)
        if why:
            self.changes.append(Change(path, "reordered", children=len(order), reason=why))

        added = [i for i, c in enumerate(new.children) if c.key not in kept_index]
        donors = {bytes(c.data): c for c in removed} if added else {}
        changed = []
        for child in new.children:
            old_child = kept[kept_index[child.key]] if child.key in kept_index else None
            if old_child is not None and (old_child.attrs != child.attrs or not same_bytes(old_child.data, child.data)):
                changed.append((old_child, child))
        # Compressed children to decompress and search settings for, in the order they are
        # encoded below: a second thread does that ahead of this one.
        work = [(None, new.children[i], f"{path}/{new.children[i].key}") for i in added
                if not (donors and len(new.children[i].data) and bytes(new.children[i].data) in donors)]
        work += [(o, c, f"{path}/{c.key}") for o, c in changed if not same_bytes(o.data, c.data)]
        work = [w for w in work if w[1].compression]
        prepared = _prepared_ahead(work)
        outer_leaves = self._leaves
        self._leaves = _leaves_ahead([(o.data, c.data, f"{path}/{c.key}") for o, c in changed
                                      if o.compression is None and c.compression is None
                                      and not same_bytes(o.data, c.data)])
        try:
            self._encode_children(new, added, changed, donors, prepared, path)
        finally:
            self._leaves.close()
            self._leaves = outer_leaves
            prepared.close()

    def _encode_children(self, new: Node, added: list, changed: list, donors: dict, prepared, path: str) -> None:
        ops = self.out.ops

        ops.uint(len(added))
        prev = 0
        for i in added:
            child = new.children[i]
            ops.uint(i - prev)
            prev = i
            self.write_key(new.kind, child.key)
            ops.value(child.attrs)
            child_path = f"{path}/{child.key}"
            choice = self.child_delta(None, child, child_path, donors, prepared.get(child_path))
            self.changes.append(choice.change(child_path, "added", new_size=len(child.data)))

        ops.uint(len(changed))
        for old_child, child in changed:
            self.write_key(new.kind, child.key)
            ops.value_delta(old_child.attrs, child.attrs)
            child_path = f"{path}/{child.key}"
            choice = self.child_delta(old_child, child, child_path, prepared=prepared.get(child_path))
            self.changes.append(choice.change(child_path, "changed", len(old_child.data), len(child.data)))

    def order_delta(self, order: List[int]) -> Optional[str]:
        """Encode the new order of the kept children; return why it was encoded as it was, or
        None if the order did not change.

        A rebuild that reorders (PyInstaller 6 writes base_library.zip in module-graph order,
        which varies between builds) mostly moves whole runs of the old order, so runs are
        coded as cut points plus the rank of their permutation, unless a full rank is smaller.
        """
        ops = self.out.ops
        if order == list(range(len(order))):
            ops.uint(ORDER_SAME)
            return None
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
        size, code, encoded = min(candidates, key=lambda c: (c[0], c[1] != ORDER_RANK))  # a tie: the rank
        ops.uint(code)
        ops.uint(len(order))
        ops.raw(encoded)
        why = f"{_plural(len(runs), 'run')} of the old order, written as {_ORDER_NAMES[code]} in " \
              f"{_plural(size, 'byte')}"
        for other_size, other, _ in candidates:
            if other != code:
                why += f"; {_ORDER_NAMES[other]}: {_plural(other_size, 'byte')}"
        if code == ORDER_LIST:
            why += f": too many to rank (more than {MAX_RANKED})"
        return why


def _prepare(old: Optional[Child], new: Child, path: str):
    """A compressed child's (new content, settings that re-compress it or None, old content),
    or the FormatError that kept it from being decompressed."""
    try:
        new_content = child_content(new, path)
        params = recompress.find_params(new_content, new.data, new.compression, new.level_hint)
        old_content = child_content(old, path) if old is not None else b""
    except FormatError as exc:
        return exc
    return new_content, params, old_content


class _Ahead:
    """``_prepare`` of each (old, new, path) in ``work``, on a second thread, at most ``_AHEAD``
    children ahead of the one asked for with ``get(path)`` (asked in order)."""

    def __init__(self, work) -> None:
        self.work = work
        self.next = 0
        self.pending: Dict[str, tuple] = {}  # path -> (future, stored bytes)
        self.pool = Workers(2, "pyzpatch-prepare")

    def _fill(self) -> None:
        while self.next < len(self.work) and (len(self.pending) < 2 or (
                len(self.pending) < _AHEAD and sum(n for _, n in self.pending.values()) < _AHEAD_BYTES)):
            old, new, path = self.work[self.next]
            self.pending[path] = (self.pool.submit(_prepare, old, new, path), len(new.data))
            self.next += 1

    def get(self, path: str):
        self._fill()
        future, _ = self.pending.pop(path, (None, 0))
        if future is None:
            return None
        result = future.result()
        self._fill()
        return result

    def close(self) -> None:
        for future, _ in self.pending.values():
            future.cancel()
        self.pool.shutdown(wait=True)


class _NotAhead:
    def get(self, path: str):
        return None

    def close(self) -> None:
        pass


class _LeavesAhead:
    """``_leaf_plan`` of changed uncompressed children (native libraries of a folder, mostly) on
    _AHEAD_LEAVES threads, in the order this one encodes them: bsdiff4 and lzma release the GIL,
    so a folder's changed libraries take about half the time on two cores. At most
    _AHEAD_LEAVES diffs, of at most _AHEAD_LEAF_BYTES new bytes, are pending at once (a bsdiff
    holds about 17 times its old bytes while it runs)."""

    def __init__(self, work) -> None:
        self.work = work  # (old bytes, new bytes, path), in the order they are encoded
        self.next = 0
        self.pending: Dict[str, tuple] = {}  # path -> (future, new size)
        self.pool = Workers(_AHEAD_LEAVES, "pyzpatch-leaves")
        self._fill()

    def _fill(self) -> None:
        while self.next < len(self.work) and (not self.pending or (
                len(self.pending) < _AHEAD_LEAVES
                and sum(n for _, n in self.pending.values()) < _AHEAD_LEAF_BYTES)):
            old, new, path = self.work[self.next]
            self.pending[path] = (self.pool.submit(_leaf_plan, old, new), len(new))
            self.next += 1

    def get(self, path: str):
        future, _ = self.pending.pop(path, (None, 0))
        self._fill()
        return None if future is None else future.result()

    def close(self) -> None:
        for future, _ in self.pending.values():
            future.cancel()
        self.pool.shutdown(wait=True)


def _diffed_as_leaf(old, new) -> bool:
    """Will ``bytes_delta`` encode these two children as bytes, as far as a cheap look can tell:
    native code of one kind that no format opens as a container, both within what one worker
    may hold."""
    return (0 < len(new) <= _AHEAD_LEAF_BYTES and 0 < len(old) <= _AHEAD_LEAF_BYTES
            and branches.native_kind(new) is not None and not registry.candidates(new))


def _leaves_ahead(pairs):
    work = [(old, new, path) for old, new, path in pairs if _diffed_as_leaf(old, new)]
    if len(work) < 2:  # nothing to overlap with
        return _NotAhead()
    return _LeavesAhead(work)


def _prepared_ahead(work):
    if sum(len(new.data) for _, new, _ in work) < _PARALLEL_BYTES:
        return _NotAhead()
    return _Ahead(work)
