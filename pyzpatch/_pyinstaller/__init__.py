"""PyInstaller hooks shipped with pyzpatch, found by PyInstaller through the ``pyinstaller40``
entry point (``hook-dirs``) that pyproject.toml registers: nothing to pass on the command line.

What they keep out of a frozen program that imports ``pyzpatch`` (docs/selfupdate.md, "What it
adds to a program"):

- ``hook-bsdiff4.py``: ``bsdiff4.test_all``, bsdiff4's own test suite, which ``bsdiff4.test()``
  imports and which would drag in unittest, asyncio, http and ssl (about 2 MB);
- ``hook-pyzpatch.py``: typer, rich and click (only the command line uses them),
  ``cryptography`` (signatures are checked by ``pyzpatch.patchfile.ed25519`` without it; only
  making keys and signing need it), PyInstaller, and ``ctypes`` (only the one-step exchange of
  two folders uses it; without it a one-folder update swaps by two renames);
- ``hook-pyzpatch.cli.py``: puts them back for a program that freezes pyzpatch's command line.

An exclusion is local to the importing module: a program that imports typer, rich or
cryptography itself still gets them.
"""
import os


def get_hook_dirs():
    return [os.path.dirname(os.path.abspath(__file__))]
