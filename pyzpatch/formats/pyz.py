"""PyInstaller's PYZ (ZlibArchive): one zlib-compressed, marshalled code object per module.

Layout: ``PYZ\\0`` | 4-byte Python bytecode magic | ``!i`` TOC offset | unused header bytes |
module blobs back to back | TOC (see ``marshal_toc``). A namespace package has an empty blob.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Iterator, List, Optional

from ..errors import FormatError
from . import marshal_toc
from .compression import inflate
from .layout import FixedLayout, check_regions, detect_layout, place
from .marshal_toc import TocStyle
from .node import ZLIB, Child, Node, join

MAGIC = b"PYZ\0"
# Header as PyInstaller 6 writes it: magic, bytecode magic, TOC offset, then 5 unused bytes.
DEFAULT_HEADER_LENGTH = 12 + 5

MODULE, PACKAGE, DATA, NAMESPACE = 0, 1, 2, 3
TYPE_NAMES = {MODULE: "module", PACKAGE: "package", DATA: "data", NAMESPACE: "namespace package"}


@dataclass
class PyzEntry:
    name: str
    typecode: int
    data: bytes  # the stored (zlib-compressed) bytes; any bytes-like object; empty for namespaces

    @property
    def kind(self) -> str:
        return TYPE_NAMES.get(self.typecode, f"unknown ({self.typecode})")


@dataclass
class Pyz:
    pymagic: bytes
    entries: List[PyzEntry]
    header_extra: bytes = b"\0" * (DEFAULT_HEADER_LENGTH - 12)  # bytes after the TOC offset field
    # How to encode the TOC. ``None`` when no known style reproduced the parsed TOC: then the
    # original TOC bytes are kept in ``toc_raw`` and used as long as the rows are unchanged.
    toc_style: Optional[TocStyle] = field(default_factory=TocStyle)
    toc_raw: Optional[bytes] = None
    trailer: bytes = b""  # bytes after the TOC, if any
    layout: Optional[FixedLayout] = None

    def __post_init__(self):
        self._raw_rows = None  # rows that toc_raw encodes (set by parse)

    def entry(self, name: str) -> Optional[PyzEntry]:
        for entry in self.entries:
            if entry.name == name:
                return entry
        return None


def module_content(entry: PyzEntry) -> bytes:
    """The module's marshalled code object, decompressed (empty for a namespace package)."""
    if entry.typecode == NAMESPACE or not len(entry.data):
        return b""
    return inflate(entry.data, f"PYZ module {entry.name!r}")


def detect(buf) -> bool:
    """Does ``buf`` start like a PYZ archive?"""
    return len(buf) >= 12 and bytes(buf[:4]) == MAGIC


def parse(buf) -> Pyz:
    """Parse a whole PYZ archive held in ``buf`` (bytes, memoryview or mmap).

    Entry data are zero-copy slices of ``buf`` when it is a memoryview or mmap.
    """
    view = memoryview(buf)
    size = len(view)
    if size < 12:
        raise FormatError("PYZ header", f"archive is {size} bytes, shorter than the 12-byte header")
    if bytes(view[:4]) != MAGIC:
        raise FormatError("PYZ header", f"magic is {bytes(view[:4])!r}, expected {MAGIC!r}")
    pymagic = bytes(view[4:8])
    (toc_offset,) = struct.unpack_from("!i", view, 8)
    if not 12 <= toc_offset < size:
        raise FormatError("PYZ header", f"TOC offset {toc_offset} lies outside the archive (size {size})")

    rows, used, strings = marshal_toc.read_toc_with_names(view[toc_offset:])
    names = [r[0] for r in rows]
    offsets = [r[2] for r in rows]
    lengths = [r[3] for r in rows]
    for i, (name, typecode, offset, length) in enumerate(rows):
        if length < 0 or offset < 0:
            raise FormatError(f"PYZ TOC entry {i} ({name!r})", f"negative offset {offset} or length {length}")
    # The header ends where the first blob starts (PyInstaller 6: byte 17).
    data_start = min([o for o, n in zip(offsets, lengths) if n] or [toc_offset])
    if data_start < 12:
        raise FormatError("PYZ TOC", f"an entry starts at offset {data_start}, inside the header")
    check_regions("PYZ TOC", offsets, lengths, names, data_start, toc_offset)
    seen = set()
    for name in names:
        if name in seen:
            raise FormatError("PYZ TOC", f"module {name!r} is listed more than once")
        seen.add(name)

    entries = [PyzEntry(name, typecode, view[o:o + n]) for (name, typecode, o, n) in rows]
    layout = detect_layout(view, data_start, offsets, lengths, toc_offset)
    toc_bytes = view[toc_offset:toc_offset + used]
    style = marshal_toc.detect_style(toc_bytes, rows, strings)
    pyz = Pyz(
        pymagic=pymagic,
        entries=entries,
        header_extra=bytes(view[12:data_start]),
        toc_style=style,
        toc_raw=None if style else bytes(toc_bytes),
        trailer=bytes(view[toc_offset + used:]),
        layout=layout,
    )
    if style is None:
        pyz._raw_rows = rows
    return pyz


def _toc_bytes(pyz: Pyz, rows) -> bytes:
    if pyz.toc_style is None and pyz.toc_raw is not None and rows == pyz._raw_rows:
        return pyz.toc_raw
    return marshal_toc.write_toc(rows, pyz.toc_style or TocStyle())


def entry_offsets(pyz: Pyz) -> List[int]:
    """Each module's blob offset, relative to the archive's start, as ``build`` places it."""
    return place(12 + len(pyz.header_extra), [e.data for e in pyz.entries], pyz.layout)[0]


def iter_build(pyz: Pyz) -> Iterator[bytes]:
    """The archive's bytes as a sequence of chunks (entry data are yielded as they are)."""
    start = 12 + len(pyz.header_extra)
    offsets, toc_offset, chunks = place(start, [e.data for e in pyz.entries], pyz.layout)
    rows = [(e.name, e.typecode, o, len(e.data)) for e, o in zip(pyz.entries, offsets)]
    yield MAGIC + pyz.pymagic + struct.pack("!i", toc_offset) + pyz.header_extra
    yield from chunks
    yield _toc_bytes(pyz, rows)
    if pyz.trailer:
        yield pyz.trailer


def build(pyz: Pyz) -> bytes:
    return join(iter_build(pyz))


# --- the generic shape for the diff engine (see node.py) ----------------------------------

NODE_KIND = "pyz"
LEVEL = 6  # PyInstaller's ZlibArchiveWriter compresses modules with zlib level 6


def _style_to_wire(style: TocStyle) -> tuple:
    return (style.list_ref, style.str_ref, style.str_interned, style.small_int_ref, style.last_row_ref,
            tuple(style.name_exceptions))


def _style_from_wire(value) -> TocStyle:
    list_ref, str_ref, str_interned, small_int_ref, last_row_ref, exceptions = value
    return TocStyle(list_ref, str_ref, str_interned, small_int_ref, last_row_ref,
                    tuple((str(n), bool(i), bool(f)) for n, i, f in exceptions))


def open_node(buf) -> Node:
    return to_node(parse(buf))


def to_node(model: Pyz) -> Node:
    if model.toc_style is None or model.layout is not None:
        raise FormatError("PYZ", "TOC encoding or layout is not PyInstaller's; it can only be diffed as bytes")
    children = [Child(e.name, (e.typecode,), e.data,
                      compression=ZLIB if len(e.data) and e.typecode != NAMESPACE else None, level_hint=LEVEL)
                for e in model.entries]
    meta = (model.pymagic, model.header_extra, model.trailer, _style_to_wire(model.toc_style))
    return Node(NODE_KIND, meta, children)


def from_node(node: Node) -> Pyz:
    pymagic, header_extra, trailer, style = node.meta
    entries = [PyzEntry(c.key, c.attrs[0], c.data) for c in node.children]
    return Pyz(pymagic=pymagic, entries=entries, header_extra=header_extra, toc_style=_style_from_wire(style),
               trailer=trailer)
