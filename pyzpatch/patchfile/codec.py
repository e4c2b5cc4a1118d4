"""The patch file: a small header naming the exact old and new files, then one compressed body.

Layout (see docs/patch-format.md):

    magic "PZP" | format version (1 byte) | flags (varint)
    old size (varint) | old SHA-256 (32) | new size - old size (signed varint) | new SHA-256 (32)
    [content digest (8), if flags & HAS_CONTENT_DIGEST]
    body size (varint) | [LZMA2 dictionary size as log2 (1 byte), unless flags & DEFLATE_BODY]
    body, compressed by raw LZMA2 (or raw deflate if flags & DEFLATE_BODY):
        [manifest size (varint) | manifest, if flags & HAS_MANIFEST]
        ops size (varint) | ops | diff size (varint) | diff | lit
    CRC-32 of everything before it (4 bytes, little-endian)

The three body streams are the engine's (structure, bsdiff difference blocks, literal bytes);
one outer compressor serves them all, so a one-line change costs a few dozen bytes of body.
A folder patch's manifest (patch/manifest.py; opaque bytes here) comes first, so that it can be
read, and the target checked against it, before the rest of the body is decompressed.
Raw deflate has less fixed overhead than LZMA2, which wins on all but the smallest bodies; the
writer keeps whichever is smaller.
"""
from __future__ import annotations

import hashlib
import lzma
import zlib
from dataclasses import dataclass
from typing import List, Optional, Tuple

from ..delta.digest import DIGEST_SIZE
from ..delta.wire import Reader, Writer
from ..errors import FormatError

MAGIC = b"PZP"
VERSION = 1
HAS_CONTENT_DIGEST = 1
DEFLATE_BODY = 2
FOLDER = 4  # the patch turns a folder into a folder; sizes and hashes name whole folders
# The body starts with the old folder's manifest (its build's entries: patch/manifest.py), and the
# old hash names only those entries, so that a folder holding more can be patched.
HAS_MANIFEST = 8
KNOWN_FLAGS = HAS_CONTENT_DIGEST | DEFLATE_BODY | FOLDER | HAS_MANIFEST
# Largest body pyzpatch will decompress: patches carry decompressed module bytes, so a body can
# exceed the new file's size, but not by this much.
MAX_BODY_SIZE = 4 * 1024 ** 3
_MIN_DICT_LOG, _MAX_DICT_LOG = 12, 26  # 4 KiB .. 64 MiB
# What applying a patch may allocate in all (every piece it decodes, decompressed parts
# included): 4 x the new size, and at least MIN_BUDGET. Decompressed parts can exceed the file
# (23 MB of libpython sit compressed in a 16 MB executable), so the bound is generous.
MIN_BUDGET = 256 * 1024 * 1024
# A patch may make a file (or folder) at most this many times its base's size, plus MIN_BUDGET;
# this ties everything above to the size of a real file before the body is even decompressed.
MAX_GROWTH = 16


def memory_budget(new_size: int) -> int:
    """The most a patch producing ``new_size`` bytes may make its applier allocate."""
    return max(4 * new_size, MIN_BUDGET)


def piece_limit(header: "Header") -> int:
    """The most a patch may make its decoder allocate, all pieces together (and so the largest
    single piece): the memory budget of its declared size, which ``check_declared_sizes`` with a
    ``base_size`` has tied to the real base's size."""
    return memory_budget(header.new_size)


def max_new_size(base_size: int) -> int:
    """The largest result a patch may declare for a base of ``base_size`` bytes."""
    return MAX_GROWTH * base_size + MIN_BUDGET


@dataclass
class Header:
    old_size: int
    old_sha256: bytes
    new_size: int
    new_sha256: bytes
    content_digest: Optional[bytes] = None
    version: int = VERSION
    flags: int = 0


@dataclass
class Body:
    ops: bytes  # the structure: operations, counts, names, attributes
    diff: bytes  # bsdiff difference blocks
    lit: bytes  # new bytes: literals, splice runs, bsdiff extra blocks
    manifest: Optional[bytes] = None  # a folder patch's manifest (flag HAS_MANIFEST), opaque here


def _filters(dict_log: int) -> list:
    return [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "dict_size": 1 << dict_log}]


def join_body(body: Body) -> bytes:
    """The body's streams as one payload: [manifest size, manifest,] ops size, ops, diff size,
    diff, lit."""
    raw = Writer()
    if body.manifest is not None:
        raw.uint(len(body.manifest))
        raw.raw(body.manifest)
    raw.uint(len(body.ops))
    raw.raw(body.ops)
    raw.uint(len(body.diff))
    raw.raw(body.diff)
    raw.raw(body.lit)
    return raw.getvalue()


def split_body(payload, has_manifest: bool = False) -> Body:
    """The inverse of ``join_body``; FormatError if the sizes do not fit. The streams are views
    of ``payload``, not copies: the body is charged to the memory budget once."""
    r = Reader(memoryview(payload), "patch body")
    manifest = r.raw(r.uint(r.remaining)) if has_manifest else None
    ops = r.raw(r.uint(r.remaining))
    diff = r.raw(r.uint(r.remaining))
    return Body(ops, diff, r.raw(r.remaining), manifest)


# A body up to LARGE_BODY bytes is compressed as tightly as LZMA2 can (preset 9, extreme), and
# raw deflate is tried too; a larger one (a program gaining a dependency, unrelated programs)
# with the fastest preset, 0, which costs about a fifth more bytes than 9e (preset 1: an eighth)
# at a fraction of the time (0.6 s for 5.6 MB, against 0.85 s with preset 1), and,
# from SPLIT_BODY bytes, as two halves on two threads (liblzma releases the GIL). Each half is a
# raw LZMA2 stream; the first one's end marker is dropped, and the second starts with a chunk
# that resets the dictionary, so the two make one valid LZMA2 stream that any decoder reads as
# one (the second half just cannot refer back into the first).
# The fast preset's dictionary is at most 1 MiB: its match finder's tables are sized by the
# dictionary, and past the caches they cost more time than the longer reach saves bytes (5.6 MB
# of body: 17% less time than 8 MiB, 0.5% more bytes). The header says 1 MiB too, so apply's
# decoder holds no more.
#
# Unless the change is small beside what it changes: a body at most 1/SMALL_CHANGE of the old and
# new inputs together (a library upgrade in a 400 MB folder: 3.7 MB of body) is compressed as
# tightly as a small one, in one piece, with a dictionary of at most 8 MiB. Every byte of a patch
# is paid for on the link; here 9e takes 1.7 s of CPU for 3.7 MB, where the whole-file diffs
# make is measured against take minutes to hours, and it gives a tenth fewer bytes than preset 0
# with a 1 MiB dictionary (1,394,935 against 1,534,775).
LARGE_BODY = 1024 * 1024
SPLIT_BODY = 2 * 1024 * 1024
SMALL_CHANGE = 16
_FAST_PRESET = 0
_FAST_DICT_LOG = 20
_TIGHT_DICT_LOG = 23


def compresses_tightly(payload_size: int, inputs_size: int) -> bool:
    """Is a body of ``payload_size`` bytes, for inputs (old and new) of ``inputs_size`` bytes,
    compressed with preset 9e (else with the fast preset, see LARGE_BODY)?"""
    return payload_size <= LARGE_BODY or payload_size * SMALL_CHANGE <= inputs_size


def compress_payload(payload: bytes, dict_log: int, tight: bool = False) -> bytes:
    """The joined body as raw LZMA2 with a dictionary of 2**dict_log bytes (see LARGE_BODY);
    ``tight``: with preset 9e whatever its size."""
    if tight or len(payload) <= LARGE_BODY:
        return lzma.compress(payload, format=lzma.FORMAT_RAW, filters=_filters(dict_log))
    filters = [{"id": lzma.FILTER_LZMA2, "preset": _FAST_PRESET, "dict_size": 1 << dict_log}]
    if len(payload) < SPLIT_BODY:
        return lzma.compress(payload, format=lzma.FORMAT_RAW, filters=filters)
    half = len(payload) // 2
    view = memoryview(payload)
    from ..workers import Workers  # make only: a frozen program that applies leaves it out (the hook)

    with Workers(1, "pyzpatch-lzma") as pool:
        second = pool.submit(lzma.compress, view[half:], format=lzma.FORMAT_RAW, filters=filters)
        first = lzma.compress(view[:half], format=lzma.FORMAT_RAW, filters=filters)
        second = second.result()
    if first[-1:] != b"\0":  # not the LZMA2 end marker liblzma always writes: do it in one piece
        return lzma.compress(payload, format=lzma.FORMAT_RAW, filters=filters)
    return first[:-1] + second


def encode(header: Header, body: Body) -> bytes:
    payload = join_body(body)
    dict_log = max(_MIN_DICT_LOG, min(_MAX_DICT_LOG, (len(payload) - 1).bit_length()))
    tight = compresses_tightly(len(payload), header.old_size + header.new_size)
    if len(payload) > LARGE_BODY:
        dict_log = min(dict_log, _TIGHT_DICT_LOG if tight else _FAST_DICT_LOG)
    compressed = compress_payload(payload, dict_log, tight)
    flags = (HAS_CONTENT_DIGEST if header.content_digest else 0) | (header.flags & FOLDER)
    if body.manifest is not None:
        flags |= HAS_MANIFEST
    if len(payload) < 1024 * 1024:
        deflater = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
        deflated = deflater.compress(payload) + deflater.flush()
        if len(deflated) + 1 < len(compressed):
            compressed, flags = deflated, flags | DEFLATE_BODY

    out = Writer()
    out.raw(MAGIC)
    out.raw(bytes([header.version]))
    out.uint(flags)
    out.uint(header.old_size)
    out.raw(header.old_sha256)
    out.sint(header.new_size - header.old_size)
    out.raw(header.new_sha256)
    if header.content_digest:
        out.raw(header.content_digest)
    out.uint(len(payload))
    if not flags & DEFLATE_BODY:
        out.raw(bytes([dict_log]))
    out.raw(compressed)
    out.raw(zlib.crc32(out.buf).to_bytes(4, "little"))
    return out.getvalue()


def crc_ok(blob) -> bool:
    return len(blob) >= 8 and zlib.crc32(blob[:-4]) == int.from_bytes(blob[-4:], "little")


def check_integrity(blob) -> None:
    """Refuse a patch whose bytes were altered or cut, before anything else reads them."""
    if len(blob) < 4 or bytes(blob[:3]) != MAGIC:
        raise FormatError("patch header", "not a pyzpatch patch (magic missing)")
    if not crc_ok(blob):
        raise FormatError("patch", "checksum mismatch: the patch is truncated or corrupt")


def decode_header(blob) -> Tuple[Header, int, int, int]:
    """The header, the body's size and dictionary log, and where the compressed body starts."""
    if len(blob) < 4 or bytes(blob[:3]) != MAGIC:
        raise FormatError("patch header", "not a pyzpatch patch (magic missing)")
    version = blob[3]
    if version != VERSION:
        raise FormatError("patch header", f"format version {version}; this pyzpatch reads version {VERSION}")
    r = Reader(blob, "patch header")
    r.raw(4)
    flags = r.uint()
    if flags & ~KNOWN_FLAGS:
        raise FormatError("patch header", f"unknown flags {flags:#x}")
    old_size = r.uint()
    old_sha256 = bytes(r.raw(32))
    new_size = old_size + r.sint()
    if new_size < 0:
        raise FormatError("patch header", f"new size {new_size} is negative")
    header = Header(old_size=old_size, old_sha256=old_sha256, new_size=new_size, new_sha256=bytes(r.raw(32)),
                    version=version, flags=flags)
    if flags & HAS_CONTENT_DIGEST:
        header.content_digest = bytes(r.raw(DIGEST_SIZE))
    body_size = r.uint(MAX_BODY_SIZE)
    dict_log = 0
    if not flags & DEFLATE_BODY:
        dict_log = r.raw(1)[0]
        if not _MIN_DICT_LOG <= dict_log <= _MAX_DICT_LOG:
            raise FormatError("patch header", f"dictionary size 2**{dict_log} out of range")
    return header, body_size, dict_log, r.pos


@dataclass
class Framing:
    """Where the compressed body lies in a patch and how to inflate it (from the header)."""
    body_size: int
    dict_log: int
    start: int


def read_header(blob) -> Tuple[Header, Framing]:
    """The header of a whole (unsigned) patch, after its checksum is checked."""
    check_integrity(blob)
    header, body_size, dict_log, start = decode_header(memoryview(blob)[:-4])
    return header, Framing(body_size, dict_log, start)


def check_declared_sizes(header: Header, framing: Framing, base_size: Optional[int]) -> None:
    """Refuse sizes no real base can justify, before the body is decompressed. With
    ``base_size`` (the size of the real file or folder it will be applied to), a patch declaring
    more than ``max_new_size(base_size)`` is refused."""
    if base_size is not None and header.new_size > max_new_size(base_size):
        raise FormatError("patch header", f"declares a result of {header.new_size} bytes, more than "
                                          f"{MAX_GROWTH} times its base's {base_size} bytes plus {MIN_BUDGET}")
    # The decompressed body is the first thing charged to the memory budget.
    if framing.body_size > memory_budget(header.new_size):
        raise FormatError("patch header", f"declares a body of {framing.body_size} bytes, more than a result of "
                                          f"{header.new_size} bytes can need")


# Decompression goes into one buffer of the declared size, a bounded piece at a time: a single
# ``decompress`` call collects its output in blocks and joins them, holding the body twice.
_IN_PIECE = 64 * 1024
_OUT_PIECE = 1024 * 1024


def _inflate(blob, header: Header, framing: Framing):
    """The decompressed body, a bounded piece at a time; FormatError if the compressed data is
    corrupt or yields more than the declared size. The caller checks that it ends."""
    data = memoryview(blob)[framing.start:-4]
    size, pos = framing.body_size, 0
    if header.flags & DEFLATE_BODY:
        decomp = zlib.decompressobj(-15)
        errors = zlib.error
    else:
        decomp = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=_filters(framing.dict_log))
        errors = lzma.LZMAError

    def checked(chunk):
        nonlocal pos
        if pos + len(chunk) > size:
            raise FormatError("patch body", "truncated or corrupt (size does not match the header)")
        pos += len(chunk)
        return chunk

    try:
        for start in range(0, len(data), _IN_PIECE):
            if decomp.eof:
                raise FormatError("patch body", f"{len(data) - start} stray bytes after the body")
            if header.flags & DEFLATE_BODY:
                piece = data[start:start + _IN_PIECE]
                while piece and not decomp.eof:
                    yield checked(decomp.decompress(piece, _OUT_PIECE))
                    piece = decomp.unconsumed_tail
            else:
                yield checked(decomp.decompress(data[start:start + _IN_PIECE], _OUT_PIECE))
                while not decomp.needs_input and not decomp.eof:
                    yield checked(decomp.decompress(b"", _OUT_PIECE))
    except errors as exc:
        raise FormatError("patch body", f"corrupt compressed data ({exc})") from None
    if pos != size or not decomp.eof:
        raise FormatError("patch body", "truncated or corrupt (size does not match the header)")
    if decomp.unused_data:
        raise FormatError("patch body", f"{len(decomp.unused_data)} stray bytes after the body")


def decode_body(blob, header: Header, framing: Framing) -> Body:
    """The body of a whole (unsigned) patch whose header ``read_header`` gave."""
    out = bytearray(framing.body_size)
    pos = 0
    for chunk in _inflate(blob, header, framing):
        out[pos:pos + len(chunk)] = chunk
        pos += len(chunk)
    return split_body(out, bool(header.flags & HAS_MANIFEST))


def decode_manifest(blob, header: Header, framing: Framing) -> Optional[bytes]:
    """A folder patch's manifest (None without one), decompressing only the start of the body
    that holds it: the target is checked against it before the rest is decompressed."""
    if not header.flags & HAS_MANIFEST:
        return None
    buf = bytearray()
    need = None
    for chunk in _inflate(blob, header, framing):
        buf += chunk
        if need is None:
            size = shift = 0
            for i, byte in enumerate(buf[:_MAX_SIZE_BYTES]):
                size |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    if size > framing.body_size - (i + 1):
                        raise FormatError("patch body", f"manifest of {size} bytes does not fit in the body")
                    need = (i + 1, i + 1 + size)
                    break
            else:
                if len(buf) >= _MAX_SIZE_BYTES:
                    raise FormatError("patch body", "manifest size is malformed")
        if need is not None and len(buf) >= need[1]:
            return bytes(buf[need[0]:need[1]])
    raise FormatError("patch body", "truncated (the manifest does not fit)")


_MAX_SIZE_BYTES = 10  # a varint holds at most 64 bits


def decode(blob, base_size: Optional[int] = None, workers=None) -> Tuple[Header, Body]:
    """Header and body of a whole (unsigned) patch; see ``check_declared_sizes`` for
    ``base_size``. With ``workers`` (make's check of what it wrote), a body joined from two
    LZMA2 streams is decoded as its two pieces at once, one on a worker."""
    header, framing = read_header(blob)
    check_declared_sizes(header, framing, base_size)
    if workers is not None and not header.flags & DEFLATE_BODY and framing.body_size >= SPLIT_BODY:
        payload = _decode_in_two(blob, framing, workers)
        if payload is not None:
            return header, split_body(payload, bool(header.flags & HAS_MANIFEST))
    return header, decode_body(blob, header, framing)


def lzma2_resets(data) -> List[Tuple[int, int]]:
    """(offset, decompressed offset) of each chunk of a raw LZMA2 stream that resets the
    dictionary, read from the chunk headers alone; [] where they do not parse. A decoder started
    at such a chunk decodes the rest exactly as one that read the stream from its start: the
    chunk drops everything earlier, and LZMA2 makes the next LZMA chunk set new properties."""
    points: List[Tuple[int, int]] = []
    pos = out = 0
    while pos < len(data):
        control = data[pos]
        if control == 0:  # end of stream
            return points
        if control in (1, 2):  # uncompressed chunk; 1 resets the dictionary
            if pos + 3 > len(data):
                return []
            if control == 1:
                points.append((pos, out))
            size = (data[pos + 1] << 8 | data[pos + 2]) + 1
            pos, out = pos + 3 + size, out + size
        elif control >= 0x80:  # LZMA chunk; from 0xE0 it resets the dictionary
            if pos + 5 > len(data):
                return []
            if control >= 0xE0:
                points.append((pos, out))
            size = ((control & 0x1F) << 16 | data[pos + 1] << 8 | data[pos + 2]) + 1
            packed = (data[pos + 3] << 8 | data[pos + 4]) + 1
            pos, out = pos + 5 + (control >= 0xC0) + packed, out + size
        else:
            return []
    return []


def _decode_in_two(blob, framing: Framing, workers) -> Optional[bytearray]:
    """The body, decoded as two pieces at once: split at the dictionary reset nearest its middle
    (a body from ``compress_payload`` over SPLIT_BODY has one there). None where there is no such
    reset, or the pieces do not decode to exactly their sizes; then the caller decodes the body
    whole, which says what is wrong."""
    data = memoryview(blob)[framing.start:-4]
    points = [p for p in lzma2_resets(data) if 0 < p[0]]
    if not points:
        return None
    split, middle = min(points, key=lambda p: abs(2 * p[1] - framing.body_size))
    if middle > framing.body_size:
        return None

    def piece(part, size: int, end_marker: bytes):
        decomp = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=_filters(framing.dict_log))
        try:
            got = decomp.decompress(part) + (decomp.decompress(end_marker) if end_marker else b"")
        except lzma.LZMAError:
            return None
        return got if len(got) == size and decomp.eof and not decomp.unused_data else None

    second = workers.submit(piece, data[split:], framing.body_size - middle, b"")
    first = piece(data[:split], middle, b"\0")
    second = second.result()
    if first is None or second is None:
        return None
    out = bytearray(framing.body_size)
    out[:middle] = first
    out[middle:] = second
    return out


def sha256_of(buf) -> bytes:
    return hashlib.sha256(buf).digest()
