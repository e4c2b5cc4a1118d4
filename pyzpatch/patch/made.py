"""What ``make`` hands back, for a file or a folder alike, and signing it."""
from __future__ import annotations

import os
import stat
import zlib
from dataclasses import dataclass
from typing import Iterator, List, Optional

from ..delta.changes import Change
from ..patchfile.codec import Header


@dataclass
class MadePatch:
    data: bytes
    header: Header
    changes: List[Change]
    structural: bool
    note: Optional[str] = None  # why a whole-file diff was used, if it was
    # For a large structural patch: make's estimate of the least a whole-file bsdiff4 patch would
    # take ("estimate", bytes), and whether a real one was made to compare ("checked", with its
    # size as "whole_size"); None when the patch was small enough not to ask.
    whole_file: Optional[dict] = None


def signed(made: MadePatch, sign_key) -> MadePatch:
    """``made`` with a signature trailer appended to its data, if a key is given."""
    if sign_key is not None:
        from ..patchfile import signing
        made.data = signing.sign(made.data, sign_key)
    return made


def size_warning(made: MadePatch, new_path) -> Optional[str]:
    """``make``'s warning when the patch is over half the size of the new file (or folder)
    compressed with zlib (level 6, the folder's regular files one after the other): shipping
    the new version whole would cost little more. None otherwise. The new version is compressed
    only until it is clearly larger than that, so a small patch costs almost nothing here."""
    bound = 2 * len(made.data)
    size = _compressed_size(os.fspath(new_path), stop_above=bound)
    if size is None or size >= bound:
        return None
    return (f"the patch ({len(made.data):,} bytes) is over half the size of the new version compressed "
            f"({size:,} bytes with zlib): sending the new version whole costs little more")


def _compressed_size(path: str, stop_above: int) -> Optional[int]:
    """The zlib-compressed size of ``path``'s bytes, or of a folder's regular files; a number
    above ``stop_above`` as soon as the output passes it; None if it cannot be read."""
    compressor = zlib.compressobj(6)
    size = 0
    try:
        for block in _blocks(path):
            size += len(compressor.compress(block))
            if size > stop_above:
                return size
        return size + len(compressor.flush())
    except OSError:
        return None


def _blocks(path: str) -> Iterator[bytes]:
    if os.path.isdir(path):
        for root, folders, files in os.walk(path):
            folders.sort()
            for name in sorted(files):
                child = os.path.join(root, name)
                if stat.S_ISREG(os.lstat(child).st_mode):
                    yield from _file_blocks(child)
    else:
        yield from _file_blocks(path)


def _file_blocks(path: str) -> Iterator[bytes]:
    with open(path, "rb") as fp:
        for block in iter(lambda: fp.read(1 << 20), b""):
            yield block
