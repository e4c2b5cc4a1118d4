"""One line of what a patch does: ``make``'s report and ``show``'s explanation share it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

# Encodings a change can name (the operation names of docs/patch-format.md).
SAME, LITERAL, SPLICE, BSDIFF, STRUCT = "same", "literal", "splice", "bsdiff", "struct"
RECOMPRESS, COPY = "recompress", "copy"
BCJ = "bcj"  # a bsdiff of native code with its calls made absolute (delta/branches.py)
ATTRIBUTES_ONLY = "same bytes, other attributes"


@dataclass
class Change:
    """What happened to one path: ``added``, ``removed``, ``changed`` or ``reordered``.

    An added or changed child names its ``encoding``; a re-compressed one also the ``inner``
    encoding of its decompressed bytes, and a copy the removed sibling it copies (``source``).
    A reorder says how many ``children`` it orders. ``reason`` is why ``make`` chose the
    encoding (a patch read back does not know: it is empty there)."""

    path: str
    action: str  # added, removed, changed, reordered
    encoding: str = ""
    old_size: Optional[int] = None
    new_size: Optional[int] = None
    patch_bytes: Optional[int] = None  # bytes of the (uncompressed) patch body this change uses
    inner: str = ""
    source: Optional[str] = None
    children: Optional[int] = None
    reason: str = ""

    @property
    def how(self) -> str:
        """The encoding in one phrase, as ``make`` and ``show`` print it."""
        if self.action == "reordered":
            return f"{self.children} children"
        if self.encoding == COPY:
            return f"copy of {self.source}"
        if self.encoding == RECOMPRESS:
            return f"recompressed {self.inner}"
        if self.attributes_only:
            return ATTRIBUTES_ONLY
        return self.encoding

    @property
    def attributes_only(self) -> bool:
        """The same bytes with other attributes (a mode, a tar member's time or owner)."""
        return self.action == "changed" and self.encoding == SAME

    @property
    def container(self) -> bool:
        """Only says that a container's parts changed (each changed part has its own change)."""
        return self.action == "changed" and (self.encoding == STRUCT or
                                             (self.encoding == RECOMPRESS and self.inner == STRUCT))
