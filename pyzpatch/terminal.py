"""Text that reaches a person's terminal, made safe to print.

Names in archives, patches and folders are data from whoever made them, and so are the paths a
user types or a shell expands. Printed raw, an escape sequence in a name can recolour or clear
the terminal, move the cursor over earlier lines, set the window title or, on some terminals,
answer back into the input; a newline can forge a line of output; a bidirectional override can
show a name in another order than it has; and a name that is not valid UTF-8 (Python keeps its
bytes as lone surrogates) makes printing itself fail. The command line passes every line it
prints through ``printable``, so each of these is shown as a visible escape (``\\x1b``,
``\\u202e``) instead. JSON output needs nothing more: ``json.dumps`` escapes them already.
"""
from __future__ import annotations

import re

# C0 and C1 controls and DEL, the Unicode line and paragraph separators, the bidirectional
# marks, embeddings, overrides and isolates, and lone surrogates (undecodable bytes).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: "re.Match[str]") -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"  # the byte that was not UTF-8, as surrogateescape kept it
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every character that could act on a terminal, break the line or not be
    printable at all shown as an escape; one line in, one line out."""
    return _UNSAFE.sub(_escape, text)
