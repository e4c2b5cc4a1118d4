# pyzpatch in a frozen program (self-update, the Python API): leave out what only the command
# line and signing use, so that `import pyzpatch.selfupdate` costs the program little
# (docs/selfupdate.md). Applies to imports made by pyzpatch's own modules only: a program that
# imports any of these itself still gets it, and hook-pyzpatch.cli.py puts them back for a
# frozen command line.
excludedimports = [
    # The command line's.
    "typer",
    "rich",
    "click",
    "pyzpatch.cli",
    "pyzpatch.__main__",
    "pyzpatch._pyinstaller",
    "PyInstaller",
    # Making keys and signing only: signatures are checked by pyzpatch.patchfile.ed25519.
    "cryptography",
    # Only the one-step exchange of two folders (renameat2) uses it; without it a one-folder
    # update swaps by two renames (docs/selfupdate.md). About 0.29 MB; --hidden-import ctypes
    # (or any use of ctypes by the program) keeps it.
    "ctypes",
    # Making patches: the encoder, its estimate of a whole-file diff and the bz2 that uses
    # (imported when make runs). A frozen program applies patches; one that makes them too
    # keeps them with --hidden-import pyzpatch.delta.encoder --hidden-import bz2.
    "pyzpatch.delta.encoder",
    "pyzpatch.delta.estimate",
    "bz2",
    # make's threads: applying needs none.
    "pyzpatch.workers",
    # What `pyzpatch ls` and `extract` do (pyzpatch.describe and pyzpatch.extract, imported on
    # first use): about 20 KB a self-updating program has no use for.
    "pyzpatch.inspect.listing",
    "pyzpatch.inspect.extract",
]
