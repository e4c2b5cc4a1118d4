"""``make`` and ``apply`` for single files: the safety rules around the diff engine.

make: diff OLD and NEW by their structure (or as whole files where structure cannot help),
then apply the patch in memory and compare with NEW before anything is written.

apply: check the patch, check that the target is exactly the file the patch was made from,
stream the result into a temporary file beside the output, flush it, check its SHA-256, and only
then rename it into place, keeping the target's mode. Any failure leaves the target as it was.
"""
from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from typing import Optional

from ..delta.codes import SAME, STRUCT
from ..delta.digest import content_digest
from ..delta.engine import Change, decode_file, explain
from ..delta.same import same_bytes
from ..errors import AlreadyAppliedError, CorruptError, FileAccessError, FormatError, PyzpatchError, WrongBaseError
from ..formats import executable, registry
from ..formats.node import flatten
from ..fs.atomic import remove_stale_temporaries, write_file_atomically
from ..fs.durable import fsync_path, remove_quietly
from ..fs.faults import checkpoint
from ..fs.filebytes import FileBytes
from ..fs.identity import identity, of_stat
from ..fs.lock import FolderLock
from ..fs.owner import give_like
from ..patchfile import codec as patchfile
from ..patchfile.codec import Body, Header, memory_budget, piece_limit
from ..patchfile.reader import read_patch_file
from .foldernode import NODE_KIND as FOLDER_KIND
from .made import MadePatch, signed

# A structural patch larger than this (and than 2% of the new file) is compared with what a
# whole-file diff would cost; below it, the structure won by far wherever it was measured.
_FALLBACK_CHECK_BYTES = 64 * 1024
# How much larger than a whole-file bsdiff4 a structural patch may be before the whole-file diff
# is kept instead.
_FALLBACK_SLACK = 1024


@dataclass
class ApplyResult:
    target: str
    output: Optional[str]  # None for a dry run
    new_size: int
    new_sha256: bytes
    byte_identical: bool  # False: content-identical only (another zlib re-compressed differently)
    written: bool


def _encode(old, new, whole_file: bool):
    """(body, changes, why structure was not used, the encoder)."""
    from ..delta.encoder import Encoder  # make only: a frozen program may leave it out
    encoder = Encoder()
    if whole_file:
        encoder.bytes_delta(old, new)
    else:
        encoder.data_delta(old, new, "")
    out, encoder.out = encoder.out, None  # the streams are held once: in the body
    body = Body(out.ops.getvalue(), bytes(out.diff), bytes(out.lit))
    del out
    return body, encoder.changes, encoder.unstructured.get(""), encoder


def make_patch(old_path, new_path, sign_key=None) -> MadePatch:
    """Diff two files into a verified patch (not yet written anywhere); ``sign_key`` (an Ed25519
    private key, see ``signing``) appends a signature."""
    return signed(_make_patch(old_path, new_path), sign_key)


def _make_patch(old_path, new_path) -> MadePatch:
    """Work that splits runs on a second thread (hashing, the content digest, compressing the
    body while the patch is checked); see docs/patch-format.md, "How make chooses"."""
    from ..workers import Workers  # make only: a frozen program that applies leaves it out (the hook)

    with FileBytes(old_path) as old, FileBytes(new_path) as new, \
            Workers(1, "pyzpatch-make") as pool:
        hashes = pool.submit(lambda: (patchfile.sha256_of(old.data), patchfile.sha256_of(new.data)))
        old_py, new_py = executable.python_version(old.data), executable.python_version(new.data)
        note = None
        if old_py and new_py and old_py != new_py:
            note = (f"built with different Pythons ({old_py // 100}.{old_py % 100} and "
                    f"{new_py // 100}.{new_py % 100}): used a whole-file diff")
        # The content digest (structural patches only) while the encoder works. None where the
        # content is beyond what apply's budget lets it read.
        digest = pool.submit(content_digest, new.data, budget=memory_budget(len(new))) if note is None else None
        try:
            body, changes, why_not, encoder = _encode(old.data, new.data, whole_file=note is not None)
        except FormatError as exc:
            raise exc.with_source(str(new_path))
        old_sha, new_sha = hashes.result()
        header = Header(old_size=len(old), old_sha256=old_sha, new_size=len(new), new_sha256=new_sha)
        structural = body.ops[:1] in (bytes([STRUCT]), bytes([SAME]))
        if body.ops[:1] == bytes([SAME]):
            note = "the two files are identical"
        elif not structural and note is None:
            note = _why_whole_file(new.data, why_not)
        if structural:
            header.content_digest = digest.result()
        # Compressed once, on the second thread, while this one checks the body.
        data = pool.submit(patchfile.encode, header, body)
        _verify_body(header, body, old.data, str(new_path), encoder.reproduced)
        threshold = max(_FALLBACK_CHECK_BYTES, len(new) // 50)
        # Asked (still while the body compresses) wherever the patch may come out above it.
        bound = encoder.estimate.lower_bound() if structural and len(body.ops) + len(body.diff) + len(body.lit) > threshold else None
        data = _verified_encoding(data.result(), header, body, str(new_path), pool)
        whole_file = None
        if structural and len(data) > threshold:
            if bound is None:
                bound = encoder.estimate.lower_bound()
            whole_file = {"estimate": bound, "checked": len(data) > bound + _FALLBACK_SLACK, "whole_size": None}
            if whole_file["checked"]:
                # The estimate cannot rule a whole-file diff out: make one and keep the smaller.
                whole_body, _, _, _ = _encode(old.data, new.data, whole_file=True)
                whole_header = Header(header.old_size, header.old_sha256, header.new_size, header.new_sha256)
                whole = pool.submit(patchfile.encode, whole_header, whole_body)
                _verify_body(whole_header, whole_body, old.data, str(new_path))
                whole = _verified_encoding(whole.result(), whole_header, whole_body, str(new_path), pool)
                whole_file["whole_size"] = len(whole)
                if len(whole) < len(data):
                    data, header, changes, structural = whole, whole_header, [], False
                    note = "the parts changed too much for structure to help: used a whole-file diff"
        return MadePatch(data=data, header=header, changes=changes, structural=structural, note=note,
                         whole_file=whole_file)


def _why_whole_file(new, why_not: Optional[str]) -> str:
    """The one line ``make`` prints when it could not use the files' structure. A file that
    ``ls`` reads (some format recognises it) gets the reason; anything else is plain bytes."""
    if executable.has_sideload_magic(new) and not executable.detect(new):
        return "a side-loaded executable holds no archive (patch its .pkg or its folder): used a whole-file diff"
    if registry.recognize(new).kind is None:
        return "not a PyInstaller executable, archive or zip: used a whole-file diff"
    return f"structure not used ({why_not}): used a whole-file diff"


def _verify_body(header: Header, body: Body, old, new_name: str, reproduced=None) -> None:
    """Apply ``body`` to ``old`` in memory, as ``apply`` will, and compare the result with the
    new file's size and SHA-256. ``reproduced``: content the encoder re-compressed and compared
    with its stored bytes already (the same zlib, the same settings), taken as those bytes."""
    decoded = decode_file(body, old, piece_limit(header), reproduced)
    h = hashlib.sha256()
    size = 0
    for chunk in flatten([decoded.result]):
        h.update(chunk)
        size += len(chunk)
    if size != header.new_size or h.digest() != header.new_sha256:
        raise PyzpatchError("internal error: the patch does not rebuild this file exactly; "
                            "please report it with both files", source=new_name)


def _verified_encoding(data: bytes, header: Header, body: Body, new_name: str, workers=None) -> bytes:
    """``data``, once reading it back gives ``header`` and ``body`` exactly (with
    ``_verify_body``, the patch as written rebuilds the new file). ``workers``: a body joined
    from two LZMA2 streams is read back as its two pieces at once."""
    got_header, got = patchfile.decode(data, workers=workers)
    named = ("old_size", "old_sha256", "new_size", "new_sha256", "content_digest")
    streams = ("ops", "diff", "lit")
    if (any(getattr(got_header, k) != getattr(header, k) for k in named)
            or not all(same_bytes(getattr(got, k), getattr(body, k)) for k in streams)):
        raise PyzpatchError("internal error: the patch file does not read back as written; "
                            "please report it with both files", source=new_name)
    return data


def _decode(header: Header, body: Body, old):
    """The new file as a piece, and the most bytes it may have (more than declared only where
    this machine's zlib re-compressed parts differently from the build machine's)."""
    decoded = decode_file(body, old, piece_limit(header))
    # Re-compressed parts may come out longer from another zlib (then the content digest must
    # match); a patch that re-compresses nothing cannot make apply write a byte more than it says.
    slack = decoded.recompressed // 16 + 1024 if decoded.recompressed else 0
    return decoded.result, header.new_size + slack, decoded.recompressed


# How long an apply waits for another update in the same folder to finish.
LOCK_WAIT = 60.0


def apply_patch(target, patch, output=None, dry_run: bool = False, trusted_keys=None) -> ApplyResult:
    """Apply ``patch`` (a patch file's path, or a ``PatchFile`` already read) to ``target``. The
    result replaces ``target`` (or goes to ``output``); with ``dry_run`` nothing is written.
    With ``trusted_keys`` (Ed25519 public keys) the patch must carry a valid signature from one
    of them. Raises PyzpatchError, target untouched."""
    target = os.fspath(target)
    real_target = os.path.realpath(target)
    patch = read_patch_file(patch, trusted_keys)
    if patch.folder:
        raise WrongBaseError("is a patch for a folder, not for a single file", source=patch.path)
    out_path = os.path.realpath(os.fspath(output)) if output is not None else real_target
    if dry_run:
        return _apply(patch, target, real_target, out_path, dry_run=True)
    # One apply at a time beside the output: each removes what dead applies left there.
    with FolderLock(out_path, wait=LOCK_WAIT):
        return _apply(patch, target, real_target, out_path, dry_run=False)


def _apply(patch, target: str, real_target: str, out_path: str, dry_run: bool) -> ApplyResult:
    header = patch.header
    if not dry_run:
        remove_stale_temporaries(out_path)
    verified = _stat(real_target)  # before reading: any later replacement is noticed
    with FileBytes(real_target) as old:
        if len(old) not in (header.old_size, header.new_size):
            raise WrongBaseError(f"this patch applies to a file of {header.old_size} bytes, this one has "
                                 f"{len(old)}: not the file the patch was made from", source=target)
        # The target's hash comes first: until it matches, nothing the patch declares (its body's
        # size, what decoding it allocates) is worth any work.
        digest = hashlib.sha256(old.data).digest()
        if len(old) == header.new_size and digest == header.new_sha256:
            raise AlreadyAppliedError("is already the file this patch produces; nothing to do", source=target)
        if len(old) != header.old_size:
            raise WrongBaseError(f"this patch applies to a file of {header.old_size} bytes, this one has "
                                 f"{len(old)}: not the file the patch was made from", source=target)
        if digest != header.old_sha256:
            raise WrongBaseError("SHA-256 differs from the file the patch was made from (a different or "
                                 "modified version)", source=target)
        body = patch.body(base_size=len(old))
        try:
            piece, limit, recompressed = _decode(header, body, old.data)
        except FormatError as exc:
            raise exc.with_source(patch.path)
        if dry_run:
            h = hashlib.sha256()
            size = 0
            for chunk in flatten([piece]):
                size += len(chunk)
                if size > limit:
                    raise CorruptError("the patch produces more bytes than it declares", source=patch.path)
                h.update(chunk)
            if size == header.new_size and h.digest() == header.new_sha256:
                return ApplyResult(target, None, size, h.digest(), True, False)
            # Only when this machine's zlib compressed differently: rebuild it in memory to compare
            # contents (the pieces can be read again).
            if recompressed and _content_matches(b"".join(bytes(c) for c in flatten([piece])), header):
                return ApplyResult(target, None, size, h.digest(), False, False)
            raise CorruptError("applying it gives a different file than the one it was made from",
                               source=patch.path)

        tmp, size, digest = write_file_atomically(out_path, flatten([piece]), None, limit=limit)
    byte_identical = size == header.new_size and digest == header.new_sha256
    if not byte_identical and not (recompressed and _content_identical(tmp, header)):
        remove_quietly(tmp)
        raise CorruptError("applying it gives a different file than the one it was made from "
                           "(not even its content matches)", source=patch.path)
    try:
        give_like(tmp, verified.st_uid, verified.st_gid, stat.S_IMODE(verified.st_mode))
    except OSError as exc:
        remove_quietly(tmp)
        raise FileAccessError(f"cannot set the new file's mode: {exc.strerror or exc}", source=tmp) from None
    if out_path == real_target and identity(real_target) != of_stat(verified):
        remove_quietly(tmp)
        raise PyzpatchError("was replaced or changed while the patch was being applied; left as it is now",
                            source=target)
    checkpoint()
    try:
        os.replace(tmp, out_path)
    except OSError as exc:
        remove_quietly(tmp)
        raise FileAccessError(f"cannot replace it: {exc.strerror}", source=out_path) from None
    checkpoint()
    fsync_path(os.path.dirname(out_path))
    return ApplyResult(target, out_path, size, digest, byte_identical, True)


# The most memory ``show`` spends on a patch unless told otherwise: it has no base to tie a
# patch's declared sizes to, so this is its bound (the body it holds, and the plan of it).
SHOW_MEMORY = 256 * 1024 * 1024


def describe_patch(patch, max_memory: Optional[int] = SHOW_MEMORY) -> dict:
    """What a patch file (a path or a ``PatchFile``) says and does, without the file it applies
    to (``show``), within ``max_memory`` bytes of body and plan (None: the bounds the patch's
    own declared sizes set, for a patch that ``apply`` has already read against its base).

    This is the one description of a patch that ``show --json`` prints and that ``make``,
    ``apply`` and ``verify --json`` print with their own keys added (docs/cli.md)."""
    patch = read_patch_file(patch)
    header, body = patch.header, patch.body(max_size=max_memory)
    limit = piece_limit(header) if max_memory is None else min(piece_limit(header), max_memory)
    try:
        explained = explain(body, limit, node_kind=FOLDER_KIND if patch.folder else None)
    except FormatError as exc:
        raise exc.with_source(patch.path)
    return _description(patch, body, explained.structural, explained.changes)


def describe_made(patch, made: MadePatch) -> dict:
    """``describe_patch`` of the patch ``make`` just wrote to ``patch``, with make's own changes
    (which also say why each was encoded as it was: ``reason``)."""
    patch = read_patch_file(patch)
    return _description(patch, patch.body(), made.structural, made.changes)


def _description(patch, body, structural: bool, changes) -> dict:
    header = patch.header
    signature = patch.signature
    return {
        "patch": patch.path,
        "patch_size": patch.size,
        "format_version": header.version,
        "old": {"size": header.old_size, "sha256": header.old_sha256.hex()},
        "new": {"size": header.new_size, "sha256": header.new_sha256.hex()},
        "content_digest": header.content_digest.hex() if header.content_digest else None,
        "signed_by_key": signature.key_id.hex() if signature else None,
        "structural": structural,
        "folder": patch.folder,
        # "data" is the diff stream (the key is older than the name).
        "body": {"ops": len(body.ops), "data": len(body.diff), "literal": len(body.lit),
                 "compression": "deflate" if header.flags & patchfile.DEFLATE_BODY else "lzma2"},
        "changes": [change_dict(c) for c in changes],
    }


def change_dict(change: Change) -> dict:
    """A change as the ``--json`` of ``make``, ``show``, ``apply`` and ``verify`` print it
    (``reason``: make's only)."""
    out = {"path": change.path.lstrip("/"), "action": change.action, "how": change.how,
           "old_size": change.old_size, "new_size": change.new_size, "patch_bytes": change.patch_bytes,
           "container": change.container}
    if change.reason:
        out["reason"] = change.reason
    return out


def _stat(path: str) -> os.stat_result:
    try:
        return os.stat(path)
    except OSError as exc:
        raise FileAccessError(exc.strerror or str(exc), source=path) from None


def _content_identical(path: str, header: Header) -> bool:
    try:
        with FileBytes(path) as fb:
            return _content_matches(fb.data, header)
    except PyzpatchError:
        return False


def _content_matches(data, header: Header) -> bool:
    """Does ``data``, which is not the exact new file, at least hold the same content? Only
    asked where this machine re-compressed parts; the digest's work is bounded by the declared
    new size (see delta/digest.py), since ``data`` is what the patch wrote."""
    if header.content_digest is None:
        return False
    return content_digest(data, budget=memory_budget(header.new_size)) == header.content_digest
