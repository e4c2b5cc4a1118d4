"""The one walk through a folder that every part of pyzpatch uses: every file, link and folder
below a root, links never followed, each folder's entries in name order before the folders
below it (so parents come before their children), each with its ``lstat``."""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Iterator


@dataclass(frozen=True)
class Found:
    path: str  # relative to the root, "/"-separated
    full: str  # the path on this system
    st: os.stat_result  # from lstat: a link is seen as a link

    @property
    def native(self) -> str:
        """The relative path with this system's separator."""
        return self.path.replace("/", os.sep)


def walk(root: str) -> Iterator[Found]:
    """Everything below ``root``. An entry that vanishes while the walk runs is passed over; a
    folder that cannot be listed raises ``OSError``."""
    pending = [("", root)]
    while pending:
        rel_dir, current = pending.pop(0)
        below = []
        for name in sorted(os.listdir(current)):
            full = os.path.join(current, name)
            try:
                st = os.lstat(full)
            except FileNotFoundError:
                continue
            rel = f"{rel_dir}/{name}" if rel_dir else name
            yield Found(rel, full, st)
            if stat.S_ISDIR(st.st_mode):
                below.append((rel, full))
        pending[0:0] = below  # depth-first, as os.walk goes: this folder's subfolders next
