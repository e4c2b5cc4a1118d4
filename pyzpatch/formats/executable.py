"""The file around a CArchive: ``head | archive | tail``.

The bootloader finds its archive by scanning back from the end of the file for the cookie magic;
the archive then starts ``archive_length`` bytes before the cookie's end. What follows the cookie
is the tail: on Linux the ELF section-name table and section headers that ``objcopy`` wrote after
the ``pydata`` section, on macOS the code signature, on Windows nothing. The head is the
bootloader (on Linux its ELF header points at the section headers, so it changes when the archive
length does). A side-loaded build (``append_pkg=False``) carries only ``SIDELOAD_MAGIC`` and keeps
its archive in ``NAME.pkg`` beside the executable.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterator, Optional

from ..errors import FormatError
from . import carchive
from .carchive import COOKIE, MAGIC, SIDELOAD_MAGIC, CArchive
from .node import Child, Node, join


@dataclass
class Executable:
    head: bytes  # any bytes-like object
    archive: CArchive  # or, in a model rebuilt by the diff engine, the archive's bytes (see node.py)
    tail: bytes


_RFIND_WINDOW = 1024 * 1024


def _rfind(buf, needle: bytes) -> int:
    finder = getattr(buf, "rfind", None)  # bytes and mmap scan in C; a memoryview cannot
    if finder:
        return finder(needle)
    # A memoryview (a part of a mapped file): copied a window at a time from the end, never whole.
    view = memoryview(buf)
    end = len(view)
    while end >= len(needle):
        start = max(0, end - _RFIND_WINDOW)
        found = bytes(view[start:end]).rfind(needle)
        if found != -1:
            return start + found
        if start == 0:
            break
        end = start + len(needle) - 1  # a match across the window's start
    return -1


def find_cookie(buf) -> int:
    """Offset of the last cookie magic in ``buf`` (as the bootloader finds it), or -1."""
    return _rfind(buf, MAGIC)


def detect(buf) -> bool:
    """Does ``buf`` hold a PyInstaller archive cookie anywhere (as the bootloader scans for it)?"""
    return find_cookie(buf) != -1


def has_sideload_magic(buf) -> bool:
    return _rfind(buf, SIDELOAD_MAGIC) != -1


def locate_archive(buf) -> tuple:
    """``(start, end)`` of the CArchive inside ``buf``. Raises FormatError if there is none."""
    size = len(buf)
    pos = find_cookie(buf)
    if pos == -1:
        if has_sideload_magic(buf):
            raise FormatError("executable", "archive is side-loaded (no embedded CArchive); "
                                            "open the .pkg file beside it")
        raise FormatError("executable", "no PyInstaller archive cookie found; not a PyInstaller executable")
    end = pos + COOKIE.size
    if end > size:
        raise FormatError("CArchive cookie", f"cookie at offset {pos} is cut off by the end of the file")
    (pkg_len,) = struct.unpack_from("!I", buf, pos + 8)
    if pkg_len < COOKIE.size or pkg_len > end:
        raise FormatError("CArchive cookie", f"archive length {pkg_len} does not fit before the cookie "
                                             f"at offset {pos}")
    return end - pkg_len, end


def python_version(buf) -> Optional[int]:
    """The Python version (``major * 100 + minor``) in the archive's cookie, or None if ``buf``
    holds no PyInstaller archive."""
    try:
        start, end = locate_archive(buf)
    except FormatError:
        return None
    return COOKIE.unpack_from(buf, end - COOKIE.size)[4]


def parse(buf) -> Executable:
    view = memoryview(buf)
    start, end = locate_archive(buf)
    return Executable(head=view[:start], archive=carchive.parse(view[start:end]), tail=view[end:])


def iter_build(exe: Executable) -> Iterator[bytes]:
    yield exe.head
    if isinstance(exe.archive, CArchive):
        yield from carchive.iter_build(exe.archive)
    else:
        yield exe.archive
    yield exe.tail


def build(exe: Executable) -> bytes:
    return join(iter_build(exe))


# --- the generic shape for the diff engine (see node.py) ----------------------------------
# Head, archive and tail are three children; the archive's bytes are a CArchive the engine
# opens in turn. The head holds the bootloader, the tail ELF section headers or a signature.

NODE_KIND = "exe"
NODE_KEYS = ("head", "archive", "tail")


def open_node(buf) -> Node:
    """A node straight from the file's bytes: the archive child is a zero-copy slice."""
    view = memoryview(buf)
    start, end = locate_archive(buf)
    return Node(NODE_KIND, (), [Child("head", (), view[:start]), Child("archive", (), view[start:end]),
                                Child("tail", (), view[end:])])


def from_node(node: Node) -> Executable:
    parts = {c.key: c.data for c in node.children}
    if sorted(parts) != ["archive", "head", "tail"]:
        raise FormatError("executable", "a rebuilt executable needs exactly a head, an archive and a tail")
    return Executable(head=parts["head"], archive=parts["archive"], tail=parts["tail"])
