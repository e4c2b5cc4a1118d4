"""The error types pyzpatch raises on purpose.

Every failure a user can cause surfaces as a ``PyzpatchError`` whose ``str()`` is one line
naming the file and the problem, so the CLI can print it and exit non-zero without a traceback.
Its subclasses say what kind of failure it is (wrong base, corrupt patch, signature, file
access...); the command line maps each kind to an exit code in one table (cli.py, docs/cli.md).
"""
from __future__ import annotations

from typing import Optional


class PyzpatchError(Exception):
    """Base class of every error pyzpatch raises deliberately."""

    def __init__(self, problem: str, *, source: Optional[str] = None):
        super().__init__(problem)
        self.problem = problem
        self.source = source

    def with_source(self, source: str) -> "PyzpatchError":
        """Name the file the error is about, unless an inner layer already named one."""
        if self.source is None:
            self.source = str(source)
        return self

    def __str__(self) -> str:
        return f"{self.source}: {self.problem}" if self.source else self.problem


class CorruptError(PyzpatchError):
    """A patch (or an archive read as input) that is corrupt, malformed, or of a format or
    version this pyzpatch does not read; also a patch whose result is not what it declares."""


class FormatError(CorruptError):
    """Bytes that do not form a valid archive of the kind expected.

    ``field`` names the structure that is wrong (``"CArchive cookie"``, ``"PYZ TOC entry 3"``),
    so the message says where the problem is, not just that there is one.
    """

    def __init__(self, field: str, detail: str, *, source: Optional[str] = None):
        super().__init__(f"{field}: {detail}", source=source)
        self.field = field
        self.detail = detail

    def within(self, context: str) -> "FormatError":
        """The same error, said of a structure nested in ``context`` (an entry of an outer archive)."""
        return FormatError(f"{context}: {self.field}", self.detail, source=self.source)


class NotFoundError(PyzpatchError):
    """A name asked for (an entry, a module) is not in the archive."""


class AlreadyAppliedError(PyzpatchError):
    """The target already is what the patch produces: nothing to do (not a failure for a
    program that checks for updates, which is why it has its own type)."""


class WrongBaseError(PyzpatchError):
    """The target is not the file or folder the patch was made from (another version, or one
    changed since), or holds something the new version needs the place of."""


class SignatureError(PyzpatchError):
    """A patch refused by its signature (unsigned, signed by a key not trusted, altered after
    signing), or a key file that holds no usable key."""


class FileAccessError(PyzpatchError):
    """A file or folder that cannot be read or written: missing, not a regular file, no
    permission, disk full, or any other refusal of the operating system."""
