"""Self-update for a PyInstaller-frozen program: apply a patch to yourself and restart as the new
version. Imports neither typer nor PyInstaller (and ``cryptography`` only with trusted keys).

Typical use, early in the program (see docs/selfupdate.md)::

    from pyzpatch import selfupdate

    selfupdate.cleanup_previous_update()          # remove what an earlier update moved aside
    try:
        patch = selfupdate.find_installation().path("updates/fix.patch")  # beside the program
        if os.path.exists(patch):
            selfupdate.apply_update(patch, trusted_keys=["release.pub"])  # restarts on success
    except selfupdate.AlreadyUpToDate:
        pass                                      # this patch brought us here already
    except selfupdate.SelfUpdateError as exc:     # every refusal: the old version carries on
        log(f"update refused, still running the old version: {exc}")

Relative paths (patches, key files) are taken from the folder that holds the program (``home``),
never from the working directory. Every refusal or failure is a ``SelfUpdateError``, whatever
caused it (a missing or unreadable key, the disk, a hostile patch that makes the reader recurse
too deep or run out of memory); only a programming error (an unknown ``strategy``) is not.

The traps this module handles:

- Where the program is: ``sys.executable`` is the program file in both modes; a one-file
  program's ``sys._MEIPASS`` is a temporary extraction folder elsewhere, a one-folder program's
  is inside its folder. A one-file patch applies to the executable, a one-folder patch to the
  whole folder.
- Ordering: the running program keeps reading modules from its own executable (and, one-folder,
  from its folder) by path, so a module imported after the new version is in place would be
  read with the old table of contents. Everything the update and the restart need is imported
  before the swap, and after the swap only ``os.execve`` runs; an import attempted in between is
  stopped with a clear error instead of reading garbage.
- Failure: everything that can fail (signature, base, decoding, writing, verification) happens
  before the swap, which is a single rename (one-file) or exchange (one-folder). A failure raises
  ``SelfUpdateError`` with ``installed=False``: nothing was changed and the program can carry on.
- Restart: the PyInstaller bootloader marks its environment (``_PYI_*``, ``_MEIPASS2``,
  ``LD_LIBRARY_PATH``); the restart removes those marks so that the new executable starts as a
  fresh program (and a one-file program extracts its new files) with the same arguments. It
  executes only a regular file inside the installation: a new version whose program is a link,
  or anything else, is not started.
- Windows: a running executable cannot be overwritten, and a folder holding one cannot be
  renamed. The ``"windows"`` strategy moves the running files aside instead, moves the new ones
  in, restarts by starting the new program and waiting for it, and leaves the old files to
  ``cleanup_previous_update`` at the next start (install/moveaside.py). It is the default on Windows and
  can be chosen anywhere, which is how it is tested.
"""
from __future__ import annotations

import importlib
import os
import stat
import sys
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from .errors import AlreadyAppliedError, PyzpatchError
from .fs import siblings
from .fs.durable import remove_quietly
from .fs.identity import identity
from .fs.lock import FolderLock
from .inspect.bundle import sideload_pkg_path
from .install import moveaside

ONEFILE = "onefile"
ONEDIR = "onedir"
POSIX = "posix"
WINDOWS = "windows"

# Everything an update and a restart use, imported before the swap (see the module docstring).
_NEEDED_MODULES = (
    "pyzpatch.patch.file", "pyzpatch.patch.folder", "pyzpatch.patch.foldernode", "pyzpatch.patch.made",
    "pyzpatch.patchfile.codec", "pyzpatch.patchfile.reader", "pyzpatch.patchfile.signing",
    "pyzpatch.patchfile.ed25519",
    "pyzpatch.delta.engine", "pyzpatch.delta.reader", "pyzpatch.delta.applier", "pyzpatch.delta.plan",
    "pyzpatch.delta.codes", "pyzpatch.delta.changes", "pyzpatch.delta.explainer",
    "pyzpatch.delta.wire", "pyzpatch.delta.permutations", "pyzpatch.delta.recompress", "pyzpatch.delta.digest",
    "pyzpatch.delta.bsdiff", "pyzpatch.delta.branches", "pyzpatch.formats.tar",
    "pyzpatch.formats.registry", "pyzpatch.formats.executable", "pyzpatch.formats.carchive",
    "pyzpatch.formats.pyz", "pyzpatch.formats.ziparchive", "pyzpatch.formats.marshal_toc",
    "pyzpatch.formats.layout", "pyzpatch.formats.node", "pyzpatch.formats.compression",
    "pyzpatch.install.moveaside", "pyzpatch.fs.atomic", "pyzpatch.fs.durable", "pyzpatch.fs.faults",
    "pyzpatch.fs.filebytes", "pyzpatch.fs.hashing", "pyzpatch.fs.identity", "pyzpatch.fs.safepath",
    "pyzpatch.fs.siblings", "pyzpatch.fs.walk", "pyzpatch.fs.lock", "pyzpatch.fs.owner", "pyzpatch.fs.regular",
    "bsdiff4", "lzma", "zlib", "hashlib", "shutil", "stat", "tempfile", "threading",
    "queue", "subprocess", "time", "errno", "signal",
)

# Set by the PyInstaller bootloader (6.x: _PYI_*, 5.x: _MEIPASS2) to tell a process it is the
# child of an already set-up parent; a restart must not inherit them.
_BOOTLOADER_PREFIXES = ("_PYI_", "_MEIPASS2")
# Library search paths the bootloader prepended to (it saved the originals as NAME_ORIG).
_LIBRARY_PATH_VARS = ("LD_LIBRARY_PATH", "LIBPATH", "DYLD_LIBRARY_PATH")


class SelfUpdateError(PyzpatchError):
    """A self-update was refused or failed. ``installed`` is False when nothing was changed (the
    program can keep running as it is), True when the new version is in place but the restart
    failed (the program should exit; the next start runs the new version)."""

    def __init__(self, problem: str, *, source: Optional[str] = None, installed: bool = False):
        super().__init__(problem, source=source)
        self.installed = installed


class AlreadyUpToDate(SelfUpdateError):
    """This program already is the version the patch produces (for instance a patch fetched
    again after the update it brought): nothing was changed. Not a failure: catch it before
    ``SelfUpdateError``."""


@dataclass(frozen=True)
class Installation:
    """Where a frozen program lives, and what its patches apply to."""
    kind: str  # ONEFILE or ONEDIR
    executable: str  # the program file that is run
    target: str  # the executable (one-file) or the program's folder (one-folder)

    @property
    def home(self) -> str:
        """The folder that holds the program (its executable, one-file, or its folder,
        one-folder): relative paths of patches and keys are taken from here."""
        return os.path.dirname(self.target)

    def path(self, path) -> str:
        """``path`` as an absolute path: a relative one is taken from ``home``, not from the
        working directory."""
        return os.path.join(self.home, os.fspath(path))


def find_installation(executable: Optional[str] = None, bundle_dir: Optional[str] = None) -> Installation:
    """The running program's installation (or the one given by ``executable`` and the folder its
    bootloader unpacks to or runs from, ``bundle_dir``, as ``sys._MEIPASS`` would be). Raises
    SelfUpdateError when there is none that self-update supports."""
    try:
        return _find_installation(executable, bundle_dir)
    except SelfUpdateError:
        raise
    except Exception as exc:
        raise SelfUpdateError(f"cannot tell where this program is installed: {_describe(exc)}",
                              source=executable or sys.executable) from None


def _find_installation(executable: Optional[str], bundle_dir: Optional[str]) -> Installation:
    if executable is None:
        if not getattr(sys, "frozen", False) or not hasattr(sys, "_MEIPASS"):
            raise SelfUpdateError("this program is not frozen by PyInstaller: nothing to update itself",
                                  source=sys.executable)
        executable, bundle_dir = sys.executable, sys._MEIPASS  # type: ignore[attr-defined]
    exe = os.path.realpath(executable)
    folder = os.path.dirname(exe)
    bundle = os.path.realpath(bundle_dir) if bundle_dir else None
    if bundle and (bundle == folder or bundle.startswith(folder + os.sep)):
        # A one-folder program runs from inside its folder, but so does a one-file program told
        # to extract there (--runtime-tmpdir): only the latter carries the Python library.
        if bundle == folder or not _carries_python_library(exe):
            return Installation(ONEDIR, exe, folder)
    if bundle and os.path.basename(folder) == "MacOS" and bundle.startswith(os.path.dirname(folder) + os.sep):
        raise SelfUpdateError("macOS .app bundles are not supported by self-update (they are code-signed "
                              "as a whole)", source=exe)
    if os.path.exists(sideload_pkg_path(exe)) and _is_sideloaded(exe):
        raise SelfUpdateError("side-loaded builds (NAME.pkg beside the executable) are not supported by "
                              "self-update", source=exe)
    return Installation(ONEFILE, exe, exe)


def _carries_python_library(exe: str) -> bool:
    from .formats import carchive, executable, registry
    from .fs.filebytes import FileBytes
    try:
        with FileBytes(exe) as fb:
            found = registry.recognize(fb.data)
            return found.kind == executable.NODE_KIND and carchive.embeds_python_library(found.value.archive)
    except PyzpatchError:
        return False


def _is_sideloaded(exe: str) -> bool:
    from .formats.executable import has_sideload_magic
    from .fs.filebytes import FileBytes
    try:
        with FileBytes(exe) as fb:
            return has_sideload_magic(fb.data)
    except PyzpatchError:
        return False


def default_strategy() -> str:
    return WINDOWS if os.name == "nt" else POSIX


def _load_keys(trusted_keys, inst: Installation) -> Optional[List]:
    """Public keys from key objects, PEM bytes, or paths to PEM files (relative ones taken from
    the installation's ``home``; none needs cryptography). A key that cannot be had is a
    SelfUpdateError naming it."""
    if trusted_keys is None:
        return None
    if isinstance(trusted_keys, (str, bytes, bytearray, os.PathLike)):
        raise SelfUpdateError("trusted_keys must be a list of keys (PEM file paths, PEM bytes or key objects), "
                              f"not one {type(trusted_keys).__name__}")
    from .patchfile import signing
    keys = []
    for index, key in enumerate(trusted_keys):
        where = None
        try:
            if isinstance(key, (bytes, bytearray)):
                where = f"trusted key {index + 1} (PEM bytes)"
                keys.append(signing.public_key_from_pem(bytes(key)))
            elif isinstance(key, (str, os.PathLike)):
                where = inst.path(key)
                keys.append(signing.load_public_key(where))
            else:  # a key object (cryptography's): its raw bytes now, while imports are allowed
                where = f"trusted key {index + 1} ({type(key).__name__})"
                keys.append(signing.PublicKey(signing.raw_public_key(key)))
        except PyzpatchError as exc:
            raise SelfUpdateError(f"cannot use this trusted key: {exc.problem}", source=exc.source or where) from None
        except Exception as exc:  # an unreadable or foreign key object, whatever it raises
            raise SelfUpdateError(f"cannot use this trusted key: {_describe(exc)}", source=where) from None
    if not keys:
        raise SelfUpdateError("trusted_keys is empty: no patch could ever be accepted")
    return keys


def _describe(exc: BaseException) -> str:
    """One line for an exception that is not a PyzpatchError."""
    if isinstance(exc, RecursionError):
        return "nested too deeply to be processed (RecursionError)"
    if isinstance(exc, MemoryError):
        return "ran out of memory (MemoryError)"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def prepare(need_signatures: bool = False) -> None:
    """Import everything an update and a restart need (called by ``apply_update``; harmless to
    call early, for instance at start-up while the program is known to be intact)."""
    for name in _NEEDED_MODULES:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise SelfUpdateError(f"cannot update: module {name} is missing from this program ({exc})") from None
    try:  # the one-step folder exchange (renameat2) where bundled; two renames otherwise
        import ctypes  # noqa: F401
    except ImportError:
        pass
    if need_signatures:
        try:  # used for checking signatures when present; pyzpatch.patchfile.ed25519 otherwise
            import cryptography.exceptions  # noqa: F401
            import cryptography.hazmat.primitives.asymmetric.ed25519  # noqa: F401
        except ImportError:
            pass


def check_update(patch, trusted_keys=None, installation: Optional[Installation] = None) -> Installation:
    """Check that ``patch`` (a file path; a relative one is taken from the installation's
    ``home``) applies to this program: signature (with ``trusted_keys``), base, decoding and the
    result's hash, without writing anything. Raises SelfUpdateError; returns the installation
    it was checked against."""
    inst = installation or find_installation()
    try:
        keys = _load_keys(trusted_keys, inst)
        prepare(keys is not None)
        _apply(inst, inst.path(patch), keys, dry_run=True, strategy=POSIX)
    except SelfUpdateError:
        raise
    except Exception as exc:
        raise SelfUpdateError(f"cannot check the update: {_describe(exc)}", source=inst.target) from None
    return inst


def apply_update(patch, trusted_keys=None, *, restart: bool = True, argv: Optional[Sequence[str]] = None,
                 strategy: Optional[str] = None, installation: Optional[Installation] = None) -> Installation:
    """Apply ``patch`` (a file path; a relative one is taken from the installation's ``home``,
    not from the working directory) to this program and, with ``restart``, re-execute it with
    the same arguments (``argv``, default ``sys.argv``); then this call does not return.

    With ``trusted_keys`` (public keys: objects, PEM bytes or PEM file paths, relative ones taken
    from ``home``) the patch must be signed by one of them. Every refusal and failure raises
    SelfUpdateError: with ``installed=False`` if it came before the new version was in place
    (the program is unchanged and can keep running), ``installed=True`` if only the restart
    failed or was refused. ``AlreadyUpToDate`` (a SelfUpdateError) says the program already is
    what the patch produces. ``strategy`` is ``"posix"`` or ``"windows"`` (default: this
    system's); another value is a ValueError."""
    inst = installation or find_installation()
    strategy = strategy or default_strategy()
    if strategy not in (POSIX, WINDOWS):
        raise ValueError(f"unknown strategy {strategy!r}")
    argv = list(sys.argv if argv is None else argv)
    try:
        keys = _load_keys(trusted_keys, inst)
        patch = inst.path(patch)
        prepare(keys is not None)
        cwd_inside = _cwd_within(inst.target)
        lock = _UpdateLock(inst.target)
        if not lock.acquire():
            raise SelfUpdateError("another update of this program is in progress", source=inst.target)
    except SelfUpdateError:
        raise
    except Exception as exc:
        raise SelfUpdateError(f"cannot update: {_describe(exc)}", source=inst.target) from None
    _pending_cwd[inst.target] = cwd_inside  # for restart() after restart=False
    before = _identity(inst)
    # From here until the restart nothing may be imported: modules are read from the program's
    # files, which change under it. A missed import fails loudly instead of reading garbage.
    guard = _NoImportsNow()
    sys.meta_path.insert(0, guard)
    try:
        try:
            _apply(inst, patch, keys, dry_run=False, strategy=strategy)
        except SelfUpdateError as exc:
            exc.installed = exc.installed or _identity(inst) != before
            raise
        lock.release()  # the swap is done; the restarted program's clean-up needs the lock
        if restart:
            _restart(inst, argv, strategy, cwd_inside)
    finally:
        if guard in sys.meta_path:
            sys.meta_path.remove(guard)
        lock.release()
    return inst


# The working directory relative to a target whose folder an update replaced, by target.
_pending_cwd: dict = {}


def _UpdateLock(target: str) -> FolderLock:
    """The exclusive lock on the folder holding the target (fs/lock.py: POSIX ``flock`` on the
    folder itself, no lock file left behind, re-entrant within this process so that the apply it
    calls can take it again), so that two instances of a program never update or clean up at
    once. Not waited for (``acquire()`` says whether it was free). Released on exit and, since
    Python opens descriptors close-on-exec, by the restart. Where folders cannot be locked
    (Windows), it is a no-op."""
    return FolderLock(target, wait=0.0)


def restart(argv: Optional[Sequence[str]] = None, *, strategy: Optional[str] = None,
            installation: Optional[Installation] = None) -> None:
    """Re-execute this program afresh with ``argv`` (default ``sys.argv``); does not return.
    ``apply_update`` calls it; call it yourself after ``apply_update(..., restart=False)``."""
    inst = installation or find_installation()
    _restart(inst, list(sys.argv if argv is None else argv), strategy or default_strategy(),
             _pending_cwd.get(inst.target))


def _identity(inst: Installation) -> Tuple:
    """What changes when a new version is put in place (an update in progress counts)."""
    try:
        journal = siblings.hidden(inst.target, siblings.JOURNAL)
        return identity(inst.target), identity(inst.executable), os.path.lexists(journal)
    except Exception:  # cannot tell: say "changed", so that the program does not run on as if intact
        return (object(),)


def _apply(inst: Installation, patch: str, keys, dry_run: bool, strategy: str) -> None:
    from .patch.file import apply_patch
    from .patch.folder import SWAP_FOLDER, SWAP_PER_FILE, apply_folder_patch
    from .patchfile.reader import read_patch_file

    patch_name = patch
    try:
        patch = read_patch_file(patch, keys)  # signature and checksum checked here, once
        is_folder = patch.folder
        if is_folder != (inst.kind == ONEDIR):
            raise SelfUpdateError(f"is a patch for a {'folder' if is_folder else 'single file'}, but this "
                                  f"program is a {'one-folder' if inst.kind == ONEDIR else 'one-file'} build",
                                  source=patch.path)
        if inst.kind == ONEDIR:
            swap = SWAP_PER_FILE if strategy == WINDOWS else SWAP_FOLDER
            result = apply_folder_patch(inst.target, patch, dry_run=dry_run, swap=swap)
            if not dry_run and not result.written:
                raise SelfUpdateError("nothing was written", source=inst.target)
        elif dry_run:
            apply_patch(inst.target, patch, dry_run=True)
        elif strategy == WINDOWS:
            # Never write over the running file: build the new one beside it, then swap names.
            staged = moveaside.staged_file(inst.target)
            remove_quietly(staged)
            before = identity(inst.target)
            apply_patch(inst.target, patch, output=staged)
            if identity(inst.target) != before:
                remove_quietly(staged)
                raise SelfUpdateError("was changed while the update was being prepared", source=inst.target)
            moveaside.replace_file(inst.target, staged)
        else:
            apply_patch(inst.target, patch)
    except SelfUpdateError:
        raise
    except AlreadyAppliedError as exc:
        raise AlreadyUpToDate(exc.problem, source=exc.source) from None
    except PyzpatchError as exc:
        raise SelfUpdateError(exc.problem, source=exc.source) from None
    except OSError as exc:
        raise SelfUpdateError(f"cannot update: {_describe(exc)}", source=exc.filename or inst.target) from None
    except ImportError as exc:
        raise SelfUpdateError(str(exc), source=inst.target) from None
    except Exception as exc:  # whatever a hostile patch or the disk makes happen (RecursionError, MemoryError...)
        raise SelfUpdateError(f"cannot update: {_describe(exc)}", source=patch_name) from None


def _cwd_within(folder: str) -> Optional[str]:
    """The working directory relative to ``folder`` if it is inside it (a folder swap leaves the
    process in the old, removed folder; the restart moves it to the same place in the new one)."""
    try:
        cwd = os.path.realpath(os.getcwd())
    except OSError:
        return None
    if cwd == folder:
        return "."
    if cwd.startswith(folder + os.sep):
        return os.path.relpath(cwd, folder)
    return None


def restart_environment(environ=None) -> dict:
    """The environment for starting this program afresh: the bootloader's marks removed and the
    library search paths it changed restored."""
    env = dict(os.environ if environ is None else environ)
    for name in list(env):
        if name.startswith(_BOOTLOADER_PREFIXES):
            del env[name]
    for var in _LIBRARY_PATH_VARS:
        original = env.pop(var + "_ORIG", None)
        if original is not None:
            env[var] = original
        elif var in env and getattr(sys, "frozen", False):
            env.pop(var)  # set by the bootloader, which had nothing to save
    env["PYINSTALLER_RESET_ENVIRONMENT"] = "1"  # PyInstaller >= 6.9: start as a fresh program
    return env


class _NoImportsNow:
    """A meta-path finder that refuses every import: installed once the new version is in place,
    where an import would read the new executable with the old table of contents."""

    def find_spec(self, name, path=None, target=None):
        raise ImportError(f"pyzpatch self-update: module {name} was imported after the new version was put "
                          "in place; it must be imported before (add it to what prepare() imports)")


def _check_executable(inst: Installation) -> None:
    """Refuse to start anything but a regular file inside the installation: a new version whose
    program is a link (to a program outside, say), a folder or a device is not executed."""
    exe = inst.executable
    try:
        st = os.lstat(exe)
        real = os.path.realpath(exe)
    except OSError as exc:
        raise SelfUpdateError(f"the new version is in place, but its program cannot be found: "
                              f"{exc.strerror or exc}; not restarting", source=exe, installed=True) from None
    home = os.path.realpath(inst.target)
    inside = real == home if inst.kind == ONEFILE else real.startswith(home + os.sep)
    if not stat.S_ISREG(st.st_mode) or not inside:
        what = "a link" if stat.S_ISLNK(st.st_mode) else "not a regular file" if not stat.S_ISREG(st.st_mode) \
            else "reached through a link"
        raise SelfUpdateError(f"the new version's program is {what} (it resolves to {real}), not a regular file "
                              f"inside {inst.target}: refusing to start it", source=exe, installed=True)


def _restart(inst: Installation, argv: List[str], strategy: str, cwd_inside: Optional[str]) -> None:
    _check_executable(inst)
    try:
        env = restart_environment()
        if cwd_inside is not None:
            try:
                os.chdir(os.path.join(inst.target, cwd_inside))
            except OSError:
                os.chdir(os.path.dirname(inst.target))
        args = [argv[0] if argv else inst.executable, *argv[1:]]
        for stream in (sys.stdout, sys.stderr):
            try:
                if stream is not None:
                    stream.flush()
            except (OSError, ValueError):
                pass
        if strategy == WINDOWS:
            _restart_by_spawning(inst.executable, args, env)
        os.execve(inst.executable, args, env)
    except Exception as exc:
        raise SelfUpdateError(f"the new version is in place, but restarting failed: {_describe(exc)}; "
                              "exit, and the next start runs the new version", source=inst.executable,
                              installed=True) from None


def _restart_by_spawning(executable: str, args: List[str], env: dict) -> None:
    """Windows has no exec: start the new program, wait for it, and exit with its status so that
    whoever started this program sees the new one's result."""
    import subprocess  # imported by prepare(), before the swap
    proc = subprocess.Popen([executable, *args[1:]], env=env)
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        code = proc.wait()
    os._exit(code)


def cleanup_previous_update(installation: Optional[Installation] = None, *, restart_if_finished: bool = True,
                            argv: Optional[Sequence[str]] = None) -> List[str]:
    """Call at start-up: remove what an earlier update moved aside or left staged (files still in
    use are left for the next start) and finish a file-by-file swap that was interrupted. A
    program that finds its swap unfinished is running a mix of old and new files, so after
    finishing it restarts (unless ``restart_if_finished`` is False). Returns what was done, as
    sentences; a file it cannot remove is not an error."""
    try:
        inst = installation or find_installation()
    except SelfUpdateError:
        return []
    from .fs.atomic import remove_stale_temporaries
    done: List[str] = []
    lock = _UpdateLock(inst.target)
    if not lock.acquire():
        return []  # another instance is updating or cleaning up right now; leave it to that one
    try:
        if inst.kind == ONEFILE:
            done += moveaside.finish_file(inst.target)
            if remove_stale_temporaries(inst.target):
                done.append("removed temporary files an interrupted update left")
        else:
            journal = siblings.hidden(inst.target, siblings.JOURNAL)
            if os.path.lexists(journal):
                prepare()  # rolling forward replaces files this program may still import from
            done += moveaside.finish_folder(inst.target)
            staging = siblings.hidden(inst.target, siblings.NEW)
            if os.path.lexists(staging) and not os.path.lexists(journal):
                if remove_quietly(staging):
                    done.append(f"removed {staging}, left by an interrupted update")
    except PyzpatchError as exc:
        done.append(f"could not finish cleaning up: {exc}")
    except Exception as exc:  # a clean-up that cannot finish is retried at the next start
        done.append(f"could not finish cleaning up: {_describe(exc)}")
    finally:
        lock.release()
    # Only a swap actually finished here leaves this process running a mix of old and new files.
    if moveaside.ROLLED_FORWARD in done and restart_if_finished:
        for line in done:
            print(f"pyzpatch: {line}", file=sys.stderr)
        print("pyzpatch: restarting to run the completed update", file=sys.stderr)
        _restart(inst, list(sys.argv if argv is None else argv), default_strategy(), _cwd_within(inst.target))
    return done
