"""The ``pyzpatch`` command line: argument parsing, printing, and exit codes. No format logic."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from . import __version__
from .bundle import open_bundle
from .errors import PyzpatchError
from .extract import extract as extract_files
from .listing import describe, render_text

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Small, verified, byte-exact patches for PyInstaller executables.",
)

EXIT_ERROR = 1


def _fail(message: str) -> None:
    typer.echo(f"pyzpatch: error: {message}", err=True)
    raise typer.Exit(EXIT_ERROR)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pyzpatch {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Small, verified, byte-exact patches for PyInstaller executables."""


@app.command()
def ls(
    path: Path = typer.Argument(..., help="Executable, one-folder build (folder or executable), .pkg or .pyz."),
    as_json: bool = typer.Option(False, "--json", help="Print the listing as JSON for scripts."),
    pattern: Optional[List[str]] = typer.Option(
        None, "--filter", "-f", help="Only names matching this shell glob (repeatable), e.g. 'email.*'."),
) -> None:
    """List the CArchive entries, PYZ modules and folder files a build holds."""
    try:
        with open_bundle(path) as bundle:
            desc = describe(bundle, pattern or ())
    except PyzpatchError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(desc, indent=2))
    else:
        typer.echo(render_text(desc))


@app.command()
def extract(
    path: Path = typer.Argument(..., help="Executable, one-folder build, .pkg or .pyz."),
    names: Optional[List[str]] = typer.Argument(None, help="Entry or module names (shell globs allowed)."),
    out: Path = typer.Option(..., "--output", "-o", help="Folder to write into (created if missing)."),
    everything: bool = typer.Option(False, "--all", help="Extract every entry and module."),
) -> None:
    """Write CArchive entries (decompressed) and PYZ modules (as .pyc files) into a folder."""
    if not names and not everything:
        _fail("name at least one entry or module, or pass --all")
    try:
        with open_bundle(path) as bundle:
            done = extract_files(bundle, str(out), names or (), everything)
    except PyzpatchError as exc:
        _fail(str(exc).replace("\n", " "))
    written = [d for d in done if d.path]
    for d in done:
        if d.path is None:
            typer.echo(f"skipped {d.name} ({d.note})")
    typer.echo(f"extracted {len(written)} items into {out}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("pyzpatch: interrupted", err=True)
        sys.exit(130)
