"""What ``make`` hands back, for a file or a folder alike, and signing it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

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
