"""pyzpatch as tufup's patch engine: ``PyzpatchDiff``, a ``tufup.common.BinaryDiff``.

tufup (0.10 and later) finds, downloads, verifies and installs updates; its patches are binary
diffs of the whole *uncompressed* tar of a bundle, made and applied by a swappable class with
``diff(*, src_bytes, dst_bytes)`` and ``patch(*, src_bytes, patch_bytes)``. ``PyzpatchDiff``
makes those patches with pyzpatch instead of bsdiff: the tar codec opens the tar, the executable,
its CArchive and PYZ, ``base_library.zip`` and the rest, so a patch names only what changed.
Pass the class as ``binary_diff=`` to ``tufup.repo.Repository`` and to ``tufup.client.Client``
(see docs/tufup.md).

Both directions go through pyzpatch's own ``make_patch`` and ``apply_patch``: ``diff`` applies
its patch in memory and compares it with the new tar before returning it, and ``patch`` checks
that the tar it is given is the one the patch was made from (size and SHA-256) and that what it
produces is exactly the new tar (size and SHA-256), before tufup checks that hash once more.

tufup is imported only when ``PyzpatchDiff`` is first used (``import pyzpatch`` never imports
it); the functions ``diff`` and ``patch`` need no tufup at all. Install with
``pip install 'pyzpatch[tufup]'``.
"""
from __future__ import annotations

import os
import tempfile

from .errors import AlreadyAppliedError
from .patch.file import apply_patch, make_patch

__all__ = ["PyzpatchDiff", "diff", "patch"]  # noqa: F822 (PyzpatchDiff: module __getattr__)


def _write(path: str, data) -> str:
    with open(path, "wb") as fp:
        fp.write(data)
    return path


def diff(*, src_bytes: bytes, dst_bytes: bytes) -> bytes:
    """A verified pyzpatch patch that turns the tar ``src_bytes`` into the tar ``dst_bytes``."""
    with tempfile.TemporaryDirectory(prefix="pyzpatch-tufup-") as tmp:
        old = _write(os.path.join(tmp, "old.tar"), src_bytes)
        new = _write(os.path.join(tmp, "new.tar"), dst_bytes)
        return make_patch(old, new).data


def patch(*, src_bytes: bytes, patch_bytes: bytes) -> bytes:
    """The tar that ``patch_bytes`` makes of ``src_bytes``, checked as ``pyzpatch apply`` checks
    it. Raises ``PyzpatchError`` (tufup then marks the patch failed and falls back to the full
    archive) if ``src_bytes`` is not the tar the patch was made from, or the patch is damaged."""
    with tempfile.TemporaryDirectory(prefix="pyzpatch-tufup-") as tmp:
        old = _write(os.path.join(tmp, "old.tar"), src_bytes)
        patch_path = _write(os.path.join(tmp, "update.pyzpatch"), patch_bytes)
        new = os.path.join(tmp, "new.tar")
        try:
            apply_patch(old, patch_path, output=new)
        except AlreadyAppliedError:  # two releases with the same tar: the patch changes nothing
            return src_bytes
        with open(new, "rb") as fp:
            return fp.read()


_CLASS = None


def _binary_diff_class():
    """``PyzpatchDiff``, made on first use, when tufup is imported."""
    global _CLASS
    if _CLASS is None:
        try:
            from tufup.common import BinaryDiff
        except ImportError as exc:
            raise ImportError(f"pyzpatch.tufup.PyzpatchDiff needs tufup ({exc}): "
                              "pip install 'pyzpatch[tufup]'") from None

        class PyzpatchDiff(BinaryDiff):
            """tufup's binary diff, made and applied by pyzpatch (see the module's docstring)."""

            diff = staticmethod(diff)
            patch = staticmethod(patch)

        # tufup's repository config names the class by module and name, and imports it from there.
        PyzpatchDiff.__module__, PyzpatchDiff.__qualname__ = __name__, "PyzpatchDiff"
        _CLASS = PyzpatchDiff
    return _CLASS


def __getattr__(name: str):
    if name == "PyzpatchDiff":
        return _binary_diff_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
