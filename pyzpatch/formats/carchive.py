"""PyInstaller's CArchive (PKG): the archive the bootloader reads.

Layout, offsets relative to the archive's first byte: entry blobs back to back | TOC | cookie.
Cookie (big-endian ``!8sIIII64s``): magic, archive length, TOC offset, TOC length, Python
version, Python library name. TOC entry (``!IIIIBc``): entry length, blob offset, stored
length, uncompressed length, compression flag, typecode; then the UTF-8 name, NUL-padded so
every entry's length is a multiple of 16.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterator, List, Optional

from ..errors import FormatError
from .compression import inflate
from .layout import FixedLayout, check_regions, detect_layout, place
from .node import ZLIB, Child, Node, join, unique_keys

MAGIC = b"MEI\014\013\012\013\016"
SIDELOAD_MAGIC = b"MEI\015\013\012\013\016"
COOKIE = struct.Struct("!8sIIII64s")
TOC_ENTRY = struct.Struct("!IIIIBc")

# Entry typecodes, named as PyInstaller names them (PyInstaller/archive/readers.py).
PKG_ITEM_BINARY = "b"  # a shared library or extension module
PKG_ITEM_DEPENDENCY = "d"  # a reference to a file in another program's archive (no data)
PKG_ITEM_PYZ = "z"  # the PYZ archive of pure-Python modules (stored uncompressed)
PKG_ITEM_ZIPFILE = "Z"  # a zip of Python modules (old builds)
PKG_ITEM_PYPACKAGE = "M"  # a package's code, run by the bootloader
PKG_ITEM_PYMODULE = "m"  # a module's code, run by the bootloader
PKG_ITEM_PYSOURCE = "s"  # a script: the entry point or a runtime hook (marshalled code)
PKG_ITEM_DATA = "x"  # a data file
PKG_ITEM_RUNTIME_OPTION = "o"  # an option for the bootloader (no data; may repeat)
PKG_ITEM_SPLASH = "l"  # splash-screen resources
PKG_ITEM_SYMLINK = "n"  # a symbolic link to create on extraction

TYPE_NAMES = {
    PKG_ITEM_BINARY: "binary", PKG_ITEM_DEPENDENCY: "dependency", PKG_ITEM_PYZ: "PYZ archive",
    PKG_ITEM_ZIPFILE: "zipfile", PKG_ITEM_PYPACKAGE: "package", PKG_ITEM_PYMODULE: "module",
    PKG_ITEM_PYSOURCE: "script", PKG_ITEM_DATA: "data", PKG_ITEM_RUNTIME_OPTION: "runtime option",
    PKG_ITEM_SPLASH: "splash", PKG_ITEM_SYMLINK: "symlink",
}
PYZ_TYPECODE = PKG_ITEM_PYZ


@dataclass
class CEntry:
    name: str
    typecode: str
    compressed: bool
    uncompressed_length: int
    data: bytes  # stored bytes (zlib stream when compressed); any bytes-like object
    # The raw name field when it is not the canonical NUL padding of ``name`` (else None).
    name_field: Optional[bytes] = None

    @property
    def kind(self) -> str:
        return TYPE_NAMES.get(self.typecode, "unknown")


@dataclass
class CArchive:
    entries: List[CEntry]
    python_version: int
    pylib_name: bytes  # the raw 64-byte field, NUL-padded
    layout: Optional[FixedLayout] = None
    toc_trailer: bytes = b""  # bytes between the TOC and the cookie, if any

    def entries_of_type(self, typecode: str) -> List[CEntry]:
        return [e for e in self.entries if e.typecode == typecode]

    @property
    def pylib(self) -> str:
        return self.pylib_name.rstrip(b"\0").decode("utf-8", "replace")


def detect(buf) -> bool:
    """Is ``buf`` a bare CArchive: a cookie in its last bytes whose length field is the whole of
    ``buf``? (An executable also ends with the cookie on Windows and macOS, but its archive is
    shorter than the file.)"""
    if len(buf) < COOKIE.size or bytes(buf[-COOKIE.size:-COOKIE.size + 8]) != MAGIC:
        return False
    return struct.unpack_from("!I", buf, len(buf) - COOKIE.size + 8)[0] == len(buf)


def embeds_python_library(archive: "CArchive") -> bool:
    """Does the archive carry the Python shared library itself? A one-file build's does; a
    one-folder build's leaves it in the folder beside the executable."""
    return any(e.typecode == PKG_ITEM_BINARY and e.name == archive.pylib for e in archive.entries)


def entry_content(entry: CEntry) -> bytes:
    """The entry's bytes as the bootloader extracts them (decompressed when stored compressed)."""
    if entry.compressed:
        return inflate(entry.data, f"CArchive entry {entry.name!r}", entry.uncompressed_length)
    return bytes(entry.data)


def _canonical_name_field(name: str) -> bytes:
    raw = name.encode("utf-8") + b"\0"
    pad = -(TOC_ENTRY.size + len(raw)) % 16
    return raw + b"\0" * pad


def _parse_toc(toc: memoryview, toc_offset: int) -> list:
    rows = []
    pos = 0
    index = 0
    while pos < len(toc):
        field = f"CArchive TOC entry {index} (at TOC offset {pos})"
        if len(toc) - pos < TOC_ENTRY.size:
            raise FormatError(field, f"only {len(toc) - pos} bytes left, an entry needs {TOC_ENTRY.size}")
        entry_len, offset, length, ulength, flag, typecode = TOC_ENTRY.unpack_from(toc, pos)
        if entry_len < TOC_ENTRY.size or pos + entry_len > len(toc):
            raise FormatError(field, f"entry length {entry_len} does not fit the TOC "
                                     f"({len(toc) - pos} bytes remain)")
        if flag not in (0, 1):
            raise FormatError(field, f"compression flag is {flag}, expected 0 or 1")
        name_field = bytes(toc[pos + TOC_ENTRY.size:pos + entry_len])
        try:
            name = name_field.split(b"\0", 1)[0].decode("utf-8")
            code = typecode.decode("ascii")
        except UnicodeDecodeError:
            raise FormatError(field, "name or typecode is not valid text") from None
        rows.append((name, code, bool(flag), offset, length, ulength, name_field))
        pos += entry_len
        index += 1
    return rows


def parse(buf) -> CArchive:
    """Parse a whole CArchive held in ``buf`` (bytes, memoryview or mmap); the cookie must be its
    last 88 bytes. Entry data are zero-copy slices of ``buf`` when it is a memoryview or mmap."""
    view = memoryview(buf)
    size = len(view)
    if size < COOKIE.size:
        raise FormatError("CArchive cookie", f"archive is {size} bytes, shorter than the cookie")
    magic, pkg_len, toc_offset, toc_len, pyver, pylib = COOKIE.unpack_from(view, size - COOKIE.size)
    if magic != MAGIC:
        raise FormatError("CArchive cookie", "magic not found at the end of the archive")
    if pkg_len != size:
        raise FormatError("CArchive cookie", f"archive length field is {pkg_len}, but the archive is {size} bytes")
    cookie_start = size - COOKIE.size
    if toc_offset > cookie_start or toc_len > cookie_start - toc_offset:
        raise FormatError("CArchive cookie", f"TOC at offset {toc_offset} with length {toc_len} "
                                             f"runs past the cookie at {cookie_start}")
    rows = _parse_toc(view[toc_offset:toc_offset + toc_len], toc_offset)
    names = [r[0] for r in rows]
    offsets = [r[3] for r in rows]
    lengths = [r[4] for r in rows]
    check_regions("CArchive TOC", offsets, lengths, names, 0, toc_offset)
    entries = []
    for name, code, flag, offset, length, ulength, name_field in rows:
        entries.append(CEntry(
            name=name, typecode=code, compressed=flag, uncompressed_length=ulength,
            data=view[offset:offset + length],
            name_field=None if name_field == _canonical_name_field(name) else name_field,
        ))
    return CArchive(
        entries=entries,
        python_version=pyver,
        pylib_name=pylib,
        layout=detect_layout(view, 0, offsets, lengths, toc_offset),
        toc_trailer=bytes(view[toc_offset + toc_len:cookie_start]),
    )


def entry_offsets(archive: CArchive) -> List[int]:
    """Each entry's blob offset, relative to the archive's start, as ``build`` places it."""
    return place(0, [e.data for e in archive.entries], archive.layout)[0]


def iter_build(archive: CArchive) -> Iterator[bytes]:
    """The archive's bytes as a sequence of chunks (entry data are yielded as they are)."""
    offsets, toc_offset, chunks = place(0, [e.data for e in archive.entries], archive.layout)
    yield from chunks
    toc = bytearray()
    for entry, offset in zip(archive.entries, offsets):
        name_field = entry.name_field if entry.name_field is not None else _canonical_name_field(entry.name)
        toc += TOC_ENTRY.pack(TOC_ENTRY.size + len(name_field), offset, len(entry.data),
                              entry.uncompressed_length, int(entry.compressed),
                              entry.typecode.encode("ascii"))
        toc += name_field
    yield bytes(toc)
    if archive.toc_trailer:
        yield archive.toc_trailer
    pkg_len = toc_offset + len(toc) + len(archive.toc_trailer) + COOKIE.size
    yield COOKIE.pack(MAGIC, pkg_len, toc_offset, len(toc), archive.python_version, archive.pylib_name)


def build(archive: CArchive) -> bytes:
    return join(iter_build(archive))


# --- the generic shape for the diff engine (see node.py) ----------------------------------

NODE_KIND = "carchive"
LEVEL = 9  # PyInstaller's CArchiveWriter compresses entries with zlib level 9


def open_node(buf) -> Node:
    return to_node(parse(buf))


def to_node(model: CArchive) -> Node:
    """Children are keyed ``typecode:name`` (repeats, as options may be, get a count)."""
    if model.layout is not None:
        raise FormatError("CArchive", "layout is not PyInstaller's; it can only be diffed as bytes")
    keys = unique_keys(f"{e.typecode}:{e.name}" for e in model.entries)
    children = [Child(key, (e.compressed, e.name_field or b""), e.data,
                      compression=ZLIB if e.compressed else None,
                      content_size=e.uncompressed_length, level_hint=LEVEL)
                for key, e in zip(keys, model.entries)]
    return Node(NODE_KIND, (model.python_version, model.pylib_name, model.toc_trailer), children)


def from_node(node: Node) -> CArchive:
    python_version, pylib_name, toc_trailer = node.meta
    entries = []
    for child in node.children:
        typecode, name = child.key.split("\0", 1)[0].split(":", 1)
        compressed, name_field = child.attrs
        size = child.content_size if compressed else len(child.data)
        entries.append(CEntry(name=name, typecode=typecode, compressed=compressed, uncompressed_length=size,
                              data=child.data, name_field=name_field or None))
    return CArchive(entries=entries, python_version=python_version, pylib_name=pylib_name,
                    toc_trailer=toc_trailer)
