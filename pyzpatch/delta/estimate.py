"""What a whole-file binary diff of the same two files would at least cost, estimated from the
parts that changed, so that ``make`` runs a real whole-file diff only where it might win.

A compressed part that changed (or was added) has stored bytes that a byte-level diff of the
whole files cannot find in the old file: a deflate stream changed anywhere differs from there
on (new Huffman tables, shifted bits), and an added part's stream is simply new. Between their
common prefix and suffix such bytes are *novel*: a whole-file bsdiff must carry them in its
extra block, which bz2 cannot shrink much. Their total, scaled by what bz2 and bsdiff really
make of samples of them, is the estimate; uncompressed parts count nothing (a whole-file diff
may find them anywhere), so the estimate leans low, which is the safe side: a low estimate only
makes ``make`` check with a real whole-file diff more often.

Measured on samples, not assumed:

- bz2 of up to ``SAMPLE_BYTES`` of novel bytes, taken evenly across them, gives the ratio bz2
  achieves on the rest;
- bsdiff of up to ``SAMPLE_PAIRS`` changed parts (old stored bytes against new, smallest first,
  at most ``SAMPLE_PAIR_BYTES`` in all) gives the share of their novel bytes a diff still has to
  carry (below 1 where a changed stream kept some byte-aligned runs).

Nothing here knows a format: parts are stored bytes with a ``compressed`` flag.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

from . import bsdiff
from .same import same_bytes

SAMPLE_BYTES = 256 * 1024


def _bz2():
    """bz2, imported when an estimate is made: only ``make`` makes one, and pyzpatch's
    PyInstaller hook leaves bz2 out of a frozen program, which applies patches."""
    import bz2
    return bz2
_SAMPLE_PIECES = 32
SAMPLE_PAIRS = 16
SAMPLE_PAIR_BYTES = 1024 * 1024
_CHUNK = 4096


def common_prefix(a, b) -> int:
    a, b = memoryview(a), memoryview(b)
    n = min(len(a), len(b))
    pos = 0
    while pos < n and same_bytes(a[pos:pos + _CHUNK], b[pos:pos + _CHUNK]):
        pos += _CHUNK
    end = min(pos + _CHUNK, n)
    while pos < end and a[pos] == b[pos]:
        pos += 1
    return min(pos, n)


def common_suffix(a, b, limit: int) -> int:
    """Equal bytes at the ends of ``a`` and ``b``, at most ``limit``."""
    a, b = memoryview(a), memoryview(b)
    la, lb = len(a), len(b)
    n = 0
    while n + _CHUNK <= limit and same_bytes(a[la - n - _CHUNK:la - n], b[lb - n - _CHUNK:lb - n]):
        n += _CHUNK
    while n < limit and a[la - n - 1] == b[lb - n - 1]:
        n += 1
    return n


class WholeFileEstimate:
    """Fed by the encoder, one call per changed or added compressed part outside another
    compressed part; ``lower_bound()`` is the estimate, in bytes of a whole-file bsdiff4 patch."""

    def __init__(self) -> None:
        self.novel = 0  # bytes, all parts
        self.regions: List[Tuple[memoryview, int, int]] = []  # (new stored bytes, start, end)
        self.pairs: List[Tuple[memoryview, memoryview, int]] = []  # changed: (old, new, novel)
        self.parts = 0

    def changed(self, old, new) -> None:
        prefix = common_prefix(old, new)
        suffix = common_suffix(old, new, min(len(old), len(new)) - prefix)
        self._add(new, prefix, len(new) - suffix)
        self.pairs.append((memoryview(old), memoryview(new), len(new) - suffix - prefix))

    def added(self, new) -> None:
        self._add(new, 0, len(new))

    def _add(self, new, start: int, end: int) -> None:
        if end > start:
            self.parts += 1
            self.novel += end - start
            self.regions.append((memoryview(new), start, end))

    def bz2_ratio(self) -> float:
        """What bz2 (bsdiff4's compressor) makes of the novel bytes, from an even sample."""
        if not self.novel:
            return 1.0
        piece = max(1, min(SAMPLE_BYTES, self.novel) // _SAMPLE_PIECES)
        step = max(piece, self.novel // _SAMPLE_PIECES)
        sample = bytearray()
        skip = 0  # novel bytes to pass over before the next piece
        for view, start, end in self.regions:
            pos = start + skip
            while pos < end and len(sample) < SAMPLE_BYTES:
                take = min(piece, end - pos)
                sample += view[pos:pos + take]
                pos += step
            skip = pos - end if pos > end else 0
            if len(sample) >= SAMPLE_BYTES:
                break
        if not sample:
            return 1.0
        return len(_bz2().compress(bytes(sample), 9)) / len(sample)

    def diff_share(self) -> float:
        """The share of changed parts' novel bytes a diff of each against its old version still
        carries (bz2 of difference and extra blocks, 24 bytes a control triple), from a sample."""
        chosen, total = [], 0
        for old, new, novel in sorted(self.pairs, key=lambda p: len(p[0]) + len(p[1])):
            if len(chosen) >= SAMPLE_PAIRS or total + len(old) + len(new) > SAMPLE_PAIR_BYTES:
                break
            if novel > 0:
                chosen.append((old, new, novel))
                total += len(old) + len(new)
        if not chosen:
            return 1.0
        diffs, extras, triples, novel = bytearray(), bytearray(), 0, 0
        for old, new, n in chosen:
            control, diff, extra = bsdiff.diff(bytes(old), bytes(new))
            triples += len(control)
            diffs += diff
            extras += extra
            novel += n
        bz2 = _bz2()
        cost = len(bz2.compress(bytes(diffs), 9)) + len(bz2.compress(bytes(extras), 9)) + 24 * triples
        return min(1.0, cost / novel)

    def lower_bound(self, margin: float = 0.9) -> int:
        """The estimate: novel bytes x what bz2 makes of them x the share a diff still carries
        (changed parts only), times ``margin``."""
        if not self.novel:
            return 0
        ratio = self.bz2_ratio()
        changed = sum(n for _, _, n in self.pairs)
        share = self.diff_share() if changed else 1.0
        return int(margin * ratio * (changed * share + (self.novel - changed)))

    def describe(self, bound: Optional[int] = None) -> str:
        bound = self.lower_bound() if bound is None else bound
        return (f"{self.novel} novel compressed bytes in {self.parts} parts: "
                f"a whole-file diff needs at least about {bound} bytes")
