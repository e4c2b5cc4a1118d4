"""Where the data blobs of an archive sit, when they do not sit where a writer would put them.

PyInstaller writes an archive's blobs back to back in TOC order, straight after the header, and
the TOC straight after the last blob. Codecs derive offsets from that rule, so a model can be
edited (a blob grown, one added) and rebuilt without anyone computing offsets. An archive laid
out any other way (gaps, another order) keeps a ``FixedLayout`` so that it still rebuilds to the
exact bytes it was parsed from; editing such a model means dropping the layout first.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from ..errors import FormatError


@dataclass
class FixedLayout:
    """Offsets of each blob (in TOC order), the offset of the TOC, and the bytes of every gap
    as ``(offset, bytes)`` pairs, all relative to the same origin as the offsets."""

    offsets: List[int]
    toc_offset: int
    gaps: List[Tuple[int, bytes]]


def contiguous_offsets(start: int, lengths: Sequence[int]) -> List[int]:
    """The offsets a writer gives blobs of these lengths, laid back to back from ``start``."""
    offsets = []
    pos = start
    for length in lengths:
        offsets.append(pos)
        pos += length
    return offsets


def check_regions(field: str, offsets: Sequence[int], lengths: Sequence[int], names: Sequence[str],
                  lo: int, hi: int) -> None:
    """Every blob lies inside ``[lo, hi)`` and no two overlap (empty blobs may sit anywhere)."""
    spans = []
    for offset, length, name in zip(offsets, lengths, names):
        if offset < lo or length < 0 or offset + length > hi:
            raise FormatError(field, f"entry {name!r} at offset {offset} with length {length} "
                                     f"lies outside the data area [{lo}, {hi})")
        if length:
            spans.append((offset, length, name))
    spans.sort()
    for (a_off, a_len, a_name), (b_off, _, b_name) in zip(spans, spans[1:]):
        if a_off + a_len > b_off:
            raise FormatError(field, f"entries {a_name!r} and {b_name!r} overlap")


def detect_layout(buf, start: int, offsets: Sequence[int], lengths: Sequence[int],
                  toc_offset: int) -> Optional[FixedLayout]:
    """None if the blobs are exactly where a writer puts them; else the layout to keep.

    Assumes ``check_regions`` passed, so blobs do not overlap and lie before ``toc_offset``.
    """
    if list(offsets) == contiguous_offsets(start, lengths) and start + sum(lengths) == toc_offset:
        return None
    gaps = []
    pos = start
    for offset, length in sorted((o, n) for o, n in zip(offsets, lengths) if n):
        if offset > pos:
            gaps.append((pos, bytes(buf[pos:offset])))
        pos = max(pos, offset + length)
    if toc_offset > pos:
        gaps.append((pos, bytes(buf[pos:toc_offset])))
    return FixedLayout(list(offsets), toc_offset, gaps)


def place(start: int, blobs: Sequence, layout: Optional[FixedLayout]) -> Tuple[List[int], int, list]:
    """Offsets for ``blobs``, the TOC offset, and the chunks (bytes-like) that fill
    ``[start, toc_offset)`` in file order."""
    lengths = [len(b) for b in blobs]
    if layout is None:
        offsets = contiguous_offsets(start, lengths)
        return offsets, start + sum(lengths), list(blobs)
    if len(layout.offsets) != len(blobs):
        raise FormatError("layout", "a fixed layout no longer matches the entries; drop it first")
    pieces = [(o, b) for o, b in zip(layout.offsets, blobs) if len(b)] + list(layout.gaps)
    pieces.sort(key=lambda p: p[0])
    chunks = []
    pos = start
    for offset, blob in pieces:
        if offset != pos:
            raise FormatError("layout", "a fixed layout no longer matches the entries; drop it first")
        chunks.append(blob)
        pos += len(blob)
    if pos != layout.toc_offset:
        raise FormatError("layout", "a fixed layout no longer matches the entries; drop it first")
    return list(layout.offsets), layout.toc_offset, chunks
