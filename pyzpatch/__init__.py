"""pyzpatch: small, verified, byte-exact patches for PyInstaller executables.

The Python API (importable without typer or PyInstaller):

- ``open_bundle(path)``: parse an executable, one-folder build, side-loaded build, ``.pkg`` or
  ``.pyz`` into a ``Bundle`` (use it as a context manager).
- ``describe(bundle, patterns)``: what ``pyzpatch ls --json`` prints, as data.
- ``extract(bundle, out_dir, names, everything)``: what ``pyzpatch extract`` writes.
- ``make_patch`` / ``apply_patch`` / ``describe_patch`` (files) and ``make_folder_patch`` /
  ``apply_folder_patch`` (folders): see docs/api.md.
- ``pyzpatch.formats.{carchive, pyz, executable}``: the byte codecs, ``parse`` and ``build``.
- Errors: every deliberate failure is a ``PyzpatchError`` (``FormatError`` for malformed bytes).
"""
__version__ = "0.1.0"

from .errors import AlreadyAppliedError, FormatError, NotFoundError, PyzpatchError  # noqa: E402
from .inspect.bundle import Bundle, open_bundle  # noqa: E402
from .patch.file import apply_patch, describe_patch, make_patch  # noqa: E402
from .patch.folder import apply_folder_patch, make_folder_patch  # noqa: E402


def __getattr__(name: str):
    """``describe`` and ``extract``, imported on first use: a frozen program that updates itself
    has no use for them, and pyzpatch's PyInstaller hook leaves them out (docs/selfupdate.md)."""
    if name == "describe":
        from .inspect.listing import describe
        return describe
    if name == "extract":
        from .inspect.extract import extract
        return extract
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["Bundle", "open_bundle", "describe", "extract", "make_patch", "apply_patch", "describe_patch",
           "make_folder_patch", "apply_folder_patch", "PyzpatchError", "FormatError", "NotFoundError",
           "AlreadyAppliedError",
           "__version__"]
