"""The ``pyzpatch`` command line: argument parsing, printing, and exit codes. No format logic."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from . import __version__
from .errors import AlreadyAppliedError, CorruptError, FileAccessError, PyzpatchError, SignatureError, WrongBaseError
from .inspect.bundle import open_bundle
from .inspect.extract import extract as extract_files
from .inspect.listing import describe, render_lines
from .progress import working
from .terminal import printable

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Small, verified, byte-exact patches for PyInstaller executables.",
)
# Paths are checked by pyzpatch itself (``readable=False`` on each): click's own check would
# answer an unreadable target with a usage box of several lines instead of one line naming it.


class UsageError(PyzpatchError):
    """A command line that asks for something impossible (writing over the patch, -o for a
    folder): exit code 2, like the argument parser's own usage errors."""


# Exit codes (docs/cli.md). Every failure is said in one line on stderr ("pyzpatch: error: ...");
# with --json it is also printed on stdout as {"error": {...}}.
EXIT_OK = 0
EXIT_ERROR = 1  # any failure not named below
EXIT_USAGE = 2  # a wrong command line (the argument parser's, or UsageError)
EXIT_ALREADY_APPLIED = 3  # the target already is what the patch produces: nothing to do
EXIT_WRONG_BASE = 4  # the target is not the file or folder the patch was made from
EXIT_CORRUPT = 5  # a corrupt, malformed or unsupported patch (or input archive)
EXIT_SIGNATURE = 6  # refused by --trust (unsigned, untrusted key, altered), or a key file that is no key
EXIT_IO = 7  # a file that cannot be read or written: missing, not a regular file, no permission, disk full
EXIT_INTERRUPTED = 130

# The one table from a failure's class to its exit code and its name in --json (first match).
EXIT_CODES = (
    (UsageError, EXIT_USAGE, "usage"),
    (AlreadyAppliedError, EXIT_ALREADY_APPLIED, "already-applied"),
    (WrongBaseError, EXIT_WRONG_BASE, "wrong-base"),
    (CorruptError, EXIT_CORRUPT, "corrupt"),
    (SignatureError, EXIT_SIGNATURE, "signature"),
    (FileAccessError, EXIT_IO, "io"),
    (OSError, EXIT_IO, "io"),
    (BaseException, EXIT_ERROR, "error"),
)


def exit_code(exc: BaseException) -> "tuple[int, str]":
    """(exit code, its name) for a failure, from EXIT_CODES."""
    return next((code, name) for kind, code, name in EXIT_CODES if isinstance(exc, kind))


class _Output:
    """Whether the running command was given --json (main() reports what no command caught in
    the same form)."""
    json = False


def _json_mode(as_json: bool) -> None:
    _Output.json = as_json


def _report(message: str, code: int, name: str, source: Optional[str]) -> None:
    """Say a failure: one line on stderr, and with --json an object on stdout."""
    typer.echo(f"pyzpatch: error: {printable(message)}", err=True)
    if _Output.json:
        typer.echo(json.dumps({"error": {"code": code, "kind": name, "message": message, "file": source}},
                              indent=2))


def _fail(failure) -> None:
    """Report ``failure`` (a PyzpatchError, or a message: a usage error) and exit with its code."""
    if isinstance(failure, str):
        failure = UsageError(failure)
    code, name = exit_code(failure)
    _report(str(failure), code, name, failure.source)
    raise typer.Exit(code)


def _warn(line: str, quiet: bool) -> None:
    """A warning: one line on stderr (never on stdout, so --json's output stays one object)."""
    if not quiet:
        typer.echo(f"pyzpatch: warning: {printable(line)}", err=True)


def _emit(data: dict) -> None:
    typer.echo(json.dumps(data, indent=2))


_QUIET_HELP = "No progress and no warnings on stderr (errors are still printed)."


def _say(line: str) -> None:
    """Print one line for a person: names in it come from archives, patches and paths, so any
    control character in them is shown escaped (terminal.py), never sent to the terminal."""
    typer.echo(printable(line))


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
    path: Path = typer.Argument(..., readable=False, help="Executable, one-folder build (folder or executable), .pkg or .pyz."),
    as_json: bool = typer.Option(False, "--json", help="Print the listing as JSON for scripts."),
    pattern: Optional[List[str]] = typer.Option(
        None, "--filter", "-f", help="Only names matching this shell glob (repeatable), e.g. 'email.*'."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=_QUIET_HELP),
) -> None:
    """List the CArchive entries, PYZ modules and folder files a build holds."""
    _json_mode(as_json)
    try:
        with working(f"reading {printable(str(path))}", quiet), open_bundle(path) as bundle:
            desc = describe(bundle, pattern or ())
    except PyzpatchError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(desc, indent=2))
    else:
        for line in render_lines(desc):
            _say(line)


@app.command()
def extract(
    path: Path = typer.Argument(..., readable=False, help="Executable, one-folder build, .pkg or .pyz."),
    names: Optional[List[str]] = typer.Argument(None, help="Entry or module names (shell globs allowed)."),
    out: Path = typer.Option(..., "--output", "-o", readable=False, help="Folder to write into (created if missing)."),
    everything: bool = typer.Option(False, "--all", help="Extract every entry and module."),
) -> None:
    """Write CArchive entries (decompressed) and PYZ modules (as .pyc files) into a folder."""
    if not names and not everything:
        _fail("name at least one entry or module, or pass --all")
    try:
        with open_bundle(path) as bundle:
            done = extract_files(bundle, str(out), names or (), everything)
    except PyzpatchError as exc:
        _fail(exc)
    written = [d for d in done if d.path]
    for d in done:
        if d.path is None:
            _say(f"skipped {d.name} ({d.note})")
    _say(f"extracted {len(written)} items into {out}")


def _size(n: Optional[int]) -> str:
    return "?" if n is None else f"{n:,}"


# More entries than this whose bytes are the same and only attributes changed (a rebuilt tar's
# member times, a folder's modes) are summed up in one line; --json lists each.
_ATTRIBUTE_LINES = 5


def _print_changes(changes: List[dict]) -> None:
    from .delta.changes import ATTRIBUTES_ONLY

    same = [c for c in changes if c["action"] == "changed" and c["how"] == ATTRIBUTES_ONLY]
    if len(same) > _ATTRIBUTE_LINES:
        changes = [c for c in changes if not (c["action"] == "changed" and c["how"] == ATTRIBUTES_ONLY)]
        shown = ", ".join(c["path"] for c in same[:3])
        _say(f"  changed   {len(same):,} entries, {ATTRIBUTES_ONLY} (time, mode or owner): {shown}, ...")
    for c in changes:
        sizes = ""
        if c["action"] == "changed" and c["old_size"] is not None:
            sizes = f" {_size(c['old_size'])} -> {_size(c['new_size'])} bytes"
        elif c["action"] == "added" and c["new_size"] is not None:
            sizes = f" {_size(c['new_size'])} bytes"
        cost = f", {c['patch_bytes']:,} body bytes before compression" if c.get("patch_bytes") is not None else ""
        how = f" ({c['how']}{cost})" if c["how"] else ""
        _say(f"  {c['action']:<9} {c['path']}{sizes}{how}")


@app.command()
def make(
    old: Path = typer.Argument(..., readable=False, help="The executable (or .pkg, .pyz, zip) devices have now."),
    new: Path = typer.Argument(..., readable=False, help="The new build it should become."),
    out: Path = typer.Option(..., "--output", "-o", readable=False, help="Where to write the patch."),
    as_json: bool = typer.Option(False, "--json", help="Print what the patch holds as JSON."),
    sign: Optional[Path] = typer.Option(None, "--sign", readable=False, help="Sign the patch with this private key (see keygen)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=_QUIET_HELP),
) -> None:
    """Write a patch that turns OLD into NEW exactly (verified before it is written)."""
    from .fs.atomic import write_file_atomically
    from .fs.durable import remove_quietly
    from .patch.file import change_dict, describe_made, make_patch
    from .patch.made import size_warning

    _json_mode(as_json)
    try:
        for given in [old, new] + ([sign] if sign is not None else []):
            if _same_file(out, given):
                raise UsageError("refusing to overwrite an input with the patch", source=str(out))
        key = None
        if sign is not None:
            from .patchfile.signing import load_private_key
            key = load_private_key(sign)
        if out.is_dir():
            raise UsageError("is a folder; name the patch file to write", source=str(out))
        if old.is_dir() != new.is_dir():
            raise UsageError("give two folders or two files", source=str(new))
        with working(f"making {printable(str(out))}", quiet):
            if old.is_dir():
                from .patch.folder import make_folder_patch
                made = make_folder_patch(old, new, sign_key=key)
            else:
                made = make_patch(old, new, sign_key=key)
            tmp, _, _ = write_file_atomically(out, [made.data], 0o644)
            try:
                os.replace(tmp, out)
            except OSError as exc:
                remove_quietly(tmp)  # nothing of a failed make stays behind
                raise FileAccessError(f"cannot write the patch: {exc.strerror or exc}", source=str(out)) from None
            warnings = []
            if made.note and not made.structural:  # structure could not be used: said why
                warnings.append(f"{new}: {made.note}")
            too_large = size_warning(made, new)
            if too_large:
                warnings.append(f"{out}: {too_large}")
            described = describe_made(str(out), made) if as_json else None
    except PyzpatchError as exc:
        _fail(exc)
    for line in warnings:
        _warn(line, quiet)
    if as_json:
        _emit({**described, "note": made.note, "warnings": warnings})
        return
    _say(f"wrote {out}: {len(made.data):,} bytes, turns {old} ({made.header.old_size:,} bytes) "
         f"into {new} ({made.header.new_size:,} bytes)")
    if made.note and made.structural:  # the two are identical (a whole-file diff is a warning above)
        _say(f"  note: {made.note}")
    _print_changes([change_dict(c) for c in made.changes if not c.container])


def _same_file(a: Path, b: Path) -> bool:
    """Do ``a`` and ``b`` name the same existing file (by path or as links to it)?"""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


@app.command()
def apply(
    target: Path = typer.Argument(..., readable=False, help="The file to patch (replaced in place unless -o is given)."),
    patch: Path = typer.Argument(..., readable=False, help="The patch file."),
    out: Optional[Path] = typer.Option(None, "--output", "-o", readable=False, help="Write the result here; leave TARGET alone."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check that the patch applies; write nothing."),
    trust: Optional[List[Path]] = typer.Option(
        None, "--trust", readable=False, help="Require a signature by this public key (repeatable: any of them)."),
    as_json: bool = typer.Option(False, "--json", help="Print the patch and the result as JSON for scripts."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=_QUIET_HELP),
) -> None:
    """Turn TARGET into the file the patch was made from: verified, atomic, all or nothing."""
    from .patch.file import apply_patch
    from .patchfile.reader import read_patch_file

    _json_mode(as_json)
    try:
        if out is not None:
            for given in [patch] + list(trust or ()):
                if _same_file(out, given):
                    raise UsageError("is the patch or a key file; refusing to write the result over it",
                                     source=str(out))
        patch_file = read_patch_file(patch, _trusted_keys(trust))  # signature checked here, once
    except PyzpatchError as exc:
        _fail(exc)
    if patch_file.folder:  # decided by the patch: the folder may be mid-swap after a crash
        _apply_folder(target, patch, patch_file, out, dry_run, as_json, quiet)
        return
    try:
        with working(f"{'checking' if dry_run else 'patching'} {printable(str(target))}", quiet):
            result = apply_patch(target, patch_file, out, dry_run=dry_run)
    except PyzpatchError as exc:
        _fail(exc)
    if as_json:
        _emit_applied(patch_file, {
            "target": str(target), "output": result.output, "dry_run": dry_run, "written": result.written,
            "byte_identical": result.byte_identical, "new_size": result.new_size,
            "new_sha256": result.new_sha256.hex()})
        return
    if not result.written:
        verdict = "byte-identical" if result.byte_identical else \
            "content-identical (this machine's zlib compresses some parts differently)"
        _say(f"{patch} applies to {target}: the result is {verdict} to the build it was made from "
             f"({result.new_size:,} bytes, SHA-256 {result.new_sha256.hex()[:16]}...)")
        return
    verdict = ("byte-identical to the build" if result.byte_identical else
               "content-identical to the build (this machine's zlib compressed some parts differently)")
    _say(f"patched {result.output}: {result.new_size:,} bytes, {verdict}")


def _emit_applied(patch_file, result: dict) -> None:
    """apply's and verify's --json: the patch's description (as show --json prints it) and what
    the apply did (``result``)."""
    from .patch.file import describe_patch

    try:
        described = describe_patch(patch_file, max_memory=None)  # its body was read by the apply
    except PyzpatchError as exc:
        _fail(exc)
    _emit({**described, "result": result})


def _trusted_keys(paths: Optional[List[Path]]):
    if not paths:
        return None
    from .patchfile.signing import load_public_key
    return [load_public_key(p) for p in paths]


def _apply_folder(target: Path, patch: Path, patch_file, out: Optional[Path], dry_run: bool,
                  as_json: bool = False, quiet: bool = False) -> None:
    from .patch.folder import apply_folder_patch

    try:
        if out is not None:
            raise UsageError("-o is for single files; a folder is patched in place (atomically)",
                             source=str(target))
        with working(f"{'checking' if dry_run else 'patching'} {printable(str(target))}", quiet):
            result = apply_folder_patch(target, patch_file, dry_run=dry_run)
    except PyzpatchError as exc:
        _fail(exc)
    if as_json:
        _emit_applied(patch_file, {
            "target": str(target), "output": None if dry_run or not result.written else str(target),
            "dry_run": dry_run, "written": result.written, "byte_identical": True,
            "new_size": patch_file.header.new_size, "new_sha256": patch_file.header.new_sha256.hex(),
            "files_written": result.files_written, "files_linked": result.files_linked,
            "recovered": result.recovered or None, "note": result.note or None,
            "carried": list(result.carried)})
        return
    if result.recovered:
        _say(f"note: {result.recovered}")
    if result.carried:  # what the program added beside its build, carried into the new folder
        from .patch.folder import describe_carried
        _say(describe_carried(result.carried))
    if dry_run:
        _say(f"{patch} applies to {target}: the result is exactly the folder it was made from")
    elif result.written:
        _say(f"patched {target}: {result.files_written} files written, {result.files_linked} unchanged "
             "(linked), the folder is exactly the one the patch was made from")
    else:
        _say(f"{target} was already patched by an interrupted apply; nothing left to do")


@app.command()
def verify(
    target: Path = typer.Argument(..., readable=False, help="The file or folder the patch should apply to."),
    patch: Path = typer.Argument(..., readable=False, help="The patch file."),
    trust: Optional[List[Path]] = typer.Option(
        None, "--trust", readable=False, help="Require a signature by this public key (repeatable: any of them)."),
    as_json: bool = typer.Option(False, "--json", help="Print the patch and the result as JSON for scripts."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=_QUIET_HELP),
) -> None:
    """Check that PATCH applies to TARGET and gives the exact new file, writing nothing."""
    apply(target, patch, out=None, dry_run=True, trust=trust, as_json=as_json, quiet=quiet)


@app.command()
def keygen(
    key: Path = typer.Argument(..., readable=False, help="Where to write the private key; the public key goes to KEY.pub."),
    as_json: bool = typer.Option(False, "--json", help="Print the key files and the key id as JSON."),
) -> None:
    """Make an Ed25519 key pair for signing patches (private key readable by its owner only)."""
    from .patchfile.signing import generate_keys, key_id, load_public_key

    _json_mode(as_json)
    try:
        private, public = generate_keys(key)
        kid = key_id(load_public_key(public)).hex()
    except PyzpatchError as exc:
        _fail(exc)
    if as_json:
        _emit({"private_key": private, "public_key": public, "key_id": kid})
        return
    _say(f"wrote {private} (private: keep it secret, use with make --sign)")
    _say(f"wrote {public} (public: give it to devices, use with apply --trust)")
    _say(f"key id {kid} (show prints it as 'signed by key {kid}')")


@app.command()
def show(
    patch: Path = typer.Argument(..., readable=False, help="The patch file."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON for scripts."),
    max_memory: int = typer.Option(256, "--max-memory", metavar="MIB",
                                   help="Refuse a patch whose body and plan need more than this many MiB."),
) -> None:
    """What a patch changes, what it applies to and what it produces."""
    from .patch.file import describe_patch

    _json_mode(as_json)
    try:
        desc = describe_patch(patch, max_memory=max_memory * 1024 * 1024)
    except PyzpatchError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(desc, indent=2))
        return
    _say(f"{patch}: pyzpatch patch, format {desc['format_version']}, {desc['patch_size']:,} bytes")
    _say(f"  applies to: {desc['old']['size']:,} bytes, SHA-256 {desc['old']['sha256']}")
    _say(f"  produces:   {desc['new']['size']:,} bytes, SHA-256 {desc['new']['sha256']}")
    if desc["signed_by_key"]:
        _say(f"  signed by key {desc['signed_by_key']} (checked only by apply --trust)")
    else:
        _say("  not signed")
    if desc["structural"]:
        _say("  structural: each changed part is named below")
    else:
        _say("  whole-file diff (no structure used)")
    leaf = [c for c in desc["changes"] if not c["container"]]
    _print_changes(leaf)


def _one_line(exc: BaseException) -> str:
    """What went wrong, in one line, for a failure no command turned into a PyzpatchError."""
    if isinstance(exc, PyzpatchError):
        return str(exc)
    if isinstance(exc, OSError):
        names = " -> ".join(os.fsdecode(n) for n in (exc.filename, exc.filename2) if n is not None)
        problem = exc.strerror or str(exc)
        return f"{names}: {problem}" if names else problem
    if isinstance(exc, MemoryError):
        return "out of memory"
    if isinstance(exc, RecursionError):
        return "input nested too deeply (recursion limit reached)"
    return f"unexpected {type(exc).__name__}: {exc} (a bug in pyzpatch; please report it)"


def _interrupted() -> None:
    typer.echo("pyzpatch: interrupted", err=True)
    if _Output.json:
        typer.echo(json.dumps({"error": {"code": EXIT_INTERRUPTED, "kind": "interrupted", "message": "interrupted",
                                         "file": None}}, indent=2))
    sys.exit(EXIT_INTERRUPTED)


def main() -> None:
    """Run the command line. Whatever a command lets through is said in one line with a
    non-zero exit, never as a traceback: a failure is the user's to act on, not the code's."""
    try:
        app()
    except KeyboardInterrupt:
        _interrupted()
    except SystemExit as exc:
        if exc.code == EXIT_INTERRUPTED:  # typer turns an interrupt in a command into Exit(130)
            _interrupted()
        raise
    except Exception as exc:
        code, name = exit_code(exc)
        source = getattr(exc, "source", None) if isinstance(exc, PyzpatchError) else None
        _report(_one_line(exc), code, name, source)
        sys.exit(code)
