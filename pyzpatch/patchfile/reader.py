"""A patch file read once: its bytes, signature, checksum and header, checked in that order,
and its body decompressed at most once.

Every caller (the command line, ``apply_patch``, ``apply_folder_patch``, ``describe_patch``,
self-update) takes a ``PatchFile`` and dispatches on it, instead of each opening the file and
checking its signature and checksum again. A signature is checked before anything in the patch
is parsed; with trusted keys, a patch without a valid signature from one of them is refused
there.
"""
from __future__ import annotations

import os
from typing import List, Optional

from ..errors import FormatError, PyzpatchError, SignatureError
from ..fs.regular import read_regular
from . import codec, signing
from .codec import Body, Framing, Header

# The largest patch file read: a body at its ceiling (incompressible data grows a little when
# compressed), plus header, framing and signature. A regular file only (fs/regular.py).
MAX_PATCH_SIZE = codec.MAX_BODY_SIZE + 16 * 1024 * 1024


class PatchFile:
    """One patch file, read and checked. ``folder``: whether it turns a folder into a folder;
    ``signature``: its trailer if it has one; ``verified_key``: the trusted key id that its
    signature was checked against (None: not checked)."""

    def __init__(self, path: str, payload: bytes, header: Header, framing: Framing,
                 signature: Optional[signing.Signature], verified_key: Optional[bytes], size: int):
        self.path = path
        self.header = header
        self.signature = signature
        self.verified_key = verified_key
        self.size = size  # bytes of the file, signature included
        self._payload = payload
        self._framing = framing
        self._body: Optional[Body] = None

    @property
    def folder(self) -> bool:
        return bool(self.header.flags & codec.FOLDER)

    @property
    def has_manifest(self) -> bool:
        """A folder patch that lists its old build's entries (patch/manifest.py)."""
        return bool(self.header.flags & codec.HAS_MANIFEST)

    @property
    def signed(self) -> bool:
        return self.signature is not None

    def require_signature(self, trusted_keys) -> None:
        """Refuse the patch unless one of ``trusted_keys`` signed it. Checked once: a patch read
        with those keys already was."""
        if trusted_keys is None:
            return
        keys: List = list(trusted_keys)
        if self.verified_key is not None and self.verified_key in {signing.key_id(k) for k in keys}:
            return
        raise SignatureError("was read without the trusted keys it must be signed by; read it with them",
                            source=self.path)

    def body(self, base_size: Optional[int] = None, max_size: Optional[int] = None) -> Body:
        """The body's three streams, decompressed on first use. With ``base_size`` (the real
        base's size), sizes no such base can justify are refused before decompression; with
        ``max_size``, so is a body larger than that (``show``, which has no base)."""
        try:
            if max_size is not None and self._framing.body_size > max_size:
                raise FormatError("patch header", f"declares a body of {self._framing.body_size} bytes, more "
                                                  f"than the {max_size} this command reads (see --max-memory)")
            codec.check_declared_sizes(self.header, self._framing, base_size)
            if self._body is None:
                self._body = codec.decode_body(self._payload, self.header, self._framing)
        except FormatError as exc:
            raise exc.with_source(self.path)
        return self._body

    def manifest(self, base_size: Optional[int] = None) -> Optional[bytes]:
        """A folder patch's manifest (None without one), read by decompressing only the start of
        the body; sizes are checked as for ``body``."""
        try:
            codec.check_declared_sizes(self.header, self._framing, base_size)
            if self._body is not None:
                return self._body.manifest
            return codec.decode_manifest(self._payload, self.header, self._framing)
        except FormatError as exc:
            raise exc.with_source(self.path)


def read_patch_file(path, trusted_keys=None) -> PatchFile:
    """Read and check a patch file: with ``trusted_keys`` (Ed25519 public keys) its signature
    first, then its checksum and header. Raises PyzpatchError naming the file."""
    if isinstance(path, PatchFile):
        path.require_signature(trusted_keys)
        return path
    name = os.fspath(path)
    blob = read_regular(name, MAX_PATCH_SIZE, "patch")
    try:
        payload, signature = signing.split(blob)
        verified_key = None
        if trusted_keys is not None:
            payload = signing.verified_payload(blob, trusted_keys)
            verified_key = signature.key_id
        elif signature is not None and not codec.crc_ok(payload) and codec.crc_ok(blob):
            payload, signature = blob, None  # an unsigned patch whose checksum happens to read "PZS1"
        header, framing = codec.read_header(payload)
    except PyzpatchError as exc:
        raise exc.with_source(name)
    return PatchFile(name, payload, header, framing, signature, verified_key, len(blob))
