"""Tar archives (ustar, GNU and PAX), as they are: tufup's bundles, ``tar`` and ``tarfile`` output.

Layout, in 512-byte blocks: for each member, any extension records that describe it (a PAX
extended header ``x``, a GNU long name ``L`` or long link name ``K``: each a header block and a
payload), then its own header block, then its data; every payload and every member's data is
padded with NULs to a block boundary. After the last member come the end blocks (two blocks of
NULs) and usually more NULs up to the writer's record size (10,240 bytes for ``tarfile`` and GNU
tar): the codec keeps everything after the last member as the trailer, as it is.

Every header field is kept as it is stored, except two that the codec derives when they are
written the usual way (as ``tarfile`` and GNU tar write them): the size (11 octal digits and a
NUL, for the data that follows) and the checksum (6 octal digits, a NUL and a space). So a member
whose data changes costs a patch no header bytes but the fields that really changed (its
mtime), and a written-differently field is simply kept. PAX records are kept as (keyword, value)
pairs when their length prefixes are the natural ones, so a changed ``mtime`` record costs its
value only. A PAX global header (``g``) is a member of its own, as ``tar`` lists it.

Refused (the bytes are then diffed as bytes): headers with a wrong checksum, a member or payload
that runs past the end, and GNU sparse members with extension blocks (their sparse map spills
into extra header blocks this codec does not model).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, List, NamedTuple, Optional, Tuple, Union

from ..errors import FormatError
from .node import Child, LazyBlob, Node, join, unique_keys

BLOCK = 512

# The header block, declared once: (field, width), in file order. From byte 345 on, POSIX ustar
# has the name prefix (155) and 12 unused bytes; GNU tar has atime, ctime, its sparse map and
# more: the codec keeps those 167 bytes as one field (``rest``) either way.
FIELDS = (
    ("name", 100), ("mode", 8), ("uid", 8), ("gid", 8), ("size", 12), ("mtime", 12), ("chksum", 8),
    ("typeflag", 1), ("linkname", 100), ("magic", 6), ("version", 2), ("uname", 32), ("gname", 32),
    ("devmajor", 8), ("devminor", 8), ("rest", 167),
)
assert sum(width for _, width in FIELDS) == BLOCK
_OFFSETS = {}
_pos = 0
for _name, _width in FIELDS:
    _OFFSETS[_name] = (_pos, _width)
    _pos += _width
del _pos, _name, _width

# The stored fields, trailing NULs left out (``ljust`` with NULs gives the field back exactly);
# ``size`` and ``chksum`` are None when the codec derives them (see the module's docstring).
Header = NamedTuple("Header", [(name, Optional[bytes]) for name, _ in FIELDS])

POSIX_MAGIC = b"ustar"  # "ustar\0" with version "00"
GNU_MAGIC = b"ustar "  # "ustar " with version " \0"

# Extension records that describe the member after them.
EXTENSION_TYPES = (b"x", b"X", b"L", b"K")  # PAX extended header, Solaris's, GNU long name, long link
PAX_TYPES = (b"x", b"X", b"g")
# Members whose size field says nothing about data after them (tar readers skip none).
NO_DATA_TYPES = (b"1", b"2", b"3", b"4", b"5", b"6")  # hard link, symlink, devices, directory, fifo
TYPE_NAMES = {b"": "file", b"0": "file", b"7": "file", b"1": "hard link", b"2": "symlink", b"3": "char device",
              b"4": "block device", b"5": "directory", b"6": "fifo", b"g": "PAX global header",
              b"S": "GNU sparse file", b"V": "volume label", b"D": "GNU dump directory"}
_GNU_SPARSE = b"S"
_GNU_ISEXTENDED = 482  # byte of a GNU sparse header: more sparse map blocks follow

# A PAX payload: records as (keyword, value) pairs, or the raw bytes when they are not written
# the natural way (and must be kept as they are).
PaxPayload = Union[Tuple[Tuple[bytes, bytes], ...], bytes]


@dataclass
class Extension:
    """An extension record before a member: its header and its payload."""

    header: Header
    payload: Union[PaxPayload, bytes]  # PAX records (see PaxPayload) or a GNU long name's raw bytes
    padding: Optional[bytes] = None  # None: NULs to the block boundary; else the padding as stored

    def __post_init__(self):
        self.header = Header(*self.header)


@dataclass
class TarMember:
    extensions: List[Extension]
    header: Header
    data: object  # bytes-like or LazyBlob
    padding: Optional[bytes] = None  # as for Extension

    def __post_init__(self):
        self.header = Header(*self.header)
        self.extensions = [e if isinstance(e, Extension) else Extension(*e) for e in self.extensions]

    @property
    def name(self) -> str:
        """The member's path: a PAX ``path`` record, else a GNU long name, else the header's
        name (after the ustar prefix)."""
        return _text(self._extended(b"path", b"L") or _header_path(self.header))

    @property
    def linkname(self) -> str:
        return _text(self._extended(b"linkpath", b"K") or _cstring(self.header.linkname))

    @property
    def typeflag(self) -> bytes:
        return self.header.typeflag

    @property
    def kind(self) -> str:
        return TYPE_NAMES.get(self.header.typeflag, f"type {self.header.typeflag!r}")

    @property
    def mode(self) -> int:
        return _number(self.header.mode) or 0

    def _extended(self, pax_key: bytes, gnu_type: bytes) -> Optional[bytes]:
        found = None
        for ext in self.extensions:  # later records win, as in tar readers
            if ext.header.typeflag == gnu_type:
                found = _cstring(ext.payload)
            elif ext.header.typeflag in PAX_TYPES and isinstance(ext.payload, tuple):
                found = dict(ext.payload).get(pax_key, found)
        return found


@dataclass
class TarArchive:
    members: List[TarMember]
    trailer: Union[int, bytes]  # after the last member: a count of NULs, or the bytes as stored


# --- fields -----------------------------------------------------------------------------------

def _field(block, name: str) -> bytes:
    start, width = _OFFSETS[name]
    return bytes(block[start:start + width])


def _octal(value: int, width: int) -> bytes:
    """A number as tarfile and GNU tar write it: width - 1 octal digits and a NUL."""
    return b"%0*o" % (width - 1, value) + b"\0"


def _number(raw: bytes) -> Optional[int]:
    """A numeric field's value: octal (ending in NULs or spaces) or GNU base-256; None if neither."""
    if raw[:1] == b"\x80":
        return int.from_bytes(raw[1:], "big")
    text = raw.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        return None


def _checksums(block) -> Tuple[int, int]:
    """The header's checksum with the checksum field as spaces: unsigned, and signed (old tars)."""
    start, width = _OFFSETS["chksum"]
    data = bytes(block[:start]) + b" " * width + bytes(block[start + width:BLOCK])
    unsigned = sum(data)
    signed = unsigned - 256 * sum(1 for b in data if b >= 128)
    return unsigned, signed


def _canonical_chksum(value: int) -> bytes:
    return b"%06o\0 " % value


def _cstring(raw: bytes) -> bytes:
    return raw.split(b"\0", 1)[0]


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _header_path(header: Header) -> bytes:
    name = _cstring(header.name)
    if header.magic == POSIX_MAGIC:
        prefix = _cstring(header.rest[:155])
        if prefix:
            return prefix + b"/" + name
    return name


def is_header(block) -> bool:
    """Is ``block`` (512 bytes) a ustar or GNU header whose checksum is right?"""
    if len(block) < BLOCK or bytes(block[257:262]) != b"ustar":
        return False
    stored = _number(_field(block, "chksum"))
    return stored is not None and stored in _checksums(block)


# --- PAX records ------------------------------------------------------------------------------

def _pax_record(keyword: bytes, value: bytes) -> bytes:
    """``"%d %s=%s\\n"`` whose length counts its own digits (as tarfile and GNU tar write it)."""
    body = len(keyword) + len(value) + 3  # " ", "=", "\n"
    length = previous = 0
    while True:
        length = body + len(str(previous))
        if length == previous:
            break
        previous = length
    return b"%d %s=%s\n" % (length, keyword, value)


def _pax_records(payload: bytes) -> Optional[Tuple[Tuple[bytes, bytes], ...]]:
    """The payload's records, if writing them again gives exactly the payload; else None."""
    records = []
    pos = 0
    while pos < len(payload):
        space = payload.find(b" ", pos, pos + 21)
        if space == -1 or not payload[pos:space].isdigit():
            return None
        end = pos + int(payload[pos:space])
        if end > len(payload) or end <= space + 1 or payload[end - 1:end] != b"\n":
            return None
        keyword, equals, value = payload[space + 1:end - 1].partition(b"=")
        if not equals:
            return None
        records.append((keyword, value))
        pos = end
    records = tuple(records)
    return records if _pax_payload(records) == payload else None


def _pax_payload(payload: PaxPayload) -> bytes:
    if isinstance(payload, tuple):
        return b"".join(_pax_record(k, v) for k, v in payload)
    return payload


# --- parsing ----------------------------------------------------------------------------------

def detect(buf) -> bool:
    """Does ``buf`` start with a ustar or GNU tar header (magic and checksum)?"""
    return len(buf) >= BLOCK and is_header(memoryview(buf)[:BLOCK])


def _read_header(view, pos: int, field: str) -> Tuple[Header, int, int]:
    """The header block at ``pos``: (header with its derivable fields still raw, size value,
    unsigned checksum)."""
    block = view[pos:pos + BLOCK]
    if len(block) < BLOCK:
        raise FormatError(field, f"header at offset {pos} runs past the end")
    if bytes(block[257:262]) != b"ustar":
        raise FormatError(field, f"no ustar magic in the header at offset {pos}")
    stored = _number(_field(block, "chksum"))
    unsigned, signed = _checksums(block)
    if stored is None or stored not in (unsigned, signed):
        raise FormatError(field, f"header checksum {_field(block, 'chksum')!r} is wrong (expected {unsigned:o})")
    size = _number(_field(block, "size"))
    if size is None:
        raise FormatError(field, f"size field {_field(block, 'size')!r} is not a number")
    header = Header(*(_field(block, name).rstrip(b"\0") for name, _ in FIELDS))
    return header, size, unsigned


def _settle(header: Header, raw_block, data_length: int, unsigned: int) -> Header:
    """``header`` with the size and checksum fields None where the codec derives them exactly."""
    size = None if _field(raw_block, "size") == _octal(data_length, 12) else _field(raw_block, "size")
    chksum_raw = _field(raw_block, "chksum")
    # The derived checksum is computed over the rebuilt header, whose size field is the same bytes.
    chksum = None if chksum_raw == _canonical_chksum(unsigned) else chksum_raw
    return header._replace(size=size, chksum=chksum)


def _padding(view, start: int, length: int, field: str) -> Tuple[Optional[bytes], int]:
    """(padding after ``length`` bytes at ``start``: None if NULs, else as stored; end offset)."""
    pad = -length % BLOCK
    end = start + length + pad
    if end > len(view):
        raise FormatError(field, f"{length} bytes at offset {start} and their padding run past the end")
    stored = bytes(view[start + length:end])
    return (None if stored.count(0) == pad else stored), end


def parse(buf) -> TarArchive:
    view = memoryview(buf)
    members: List[TarMember] = []
    pending: List[Extension] = []
    pos = 0
    while pos + BLOCK <= len(view) and bytes(view[pos:pos + BLOCK]).count(0) != BLOCK:
        field = f"tar member {len(members)}"
        raw = view[pos:pos + BLOCK]
        header, size, unsigned = _read_header(view, pos, field)
        if header.typeflag == _GNU_SPARSE and raw[_GNU_ISEXTENDED]:
            raise FormatError(field, "GNU sparse member with extension blocks is not supported")
        length = 0 if header.typeflag in NO_DATA_TYPES else size
        start = pos + BLOCK
        padding, end = _padding(view, start, length, field)
        header = _settle(header, raw, length, unsigned)
        if header.typeflag in EXTENSION_TYPES:
            payload = bytes(view[start:start + length])
            if header.typeflag in PAX_TYPES:
                payload = _pax_records(payload) or payload
            pending.append(Extension(header, payload, padding))
        else:
            members.append(TarMember(pending, header, view[start:start + length], padding))
            pending = []
        pos = end
    if pending:
        raise FormatError(f"tar member {len(members)}", "extension records with no member after them")
    rest = bytes(view[pos:])
    trailer: Union[int, bytes] = len(rest) if rest.count(0) == len(rest) else rest
    return TarArchive(members, trailer)


# --- building ---------------------------------------------------------------------------------

def _header_block(header: Header, data_length: int) -> bytes:
    size = _octal(data_length, 12) if header.size is None else header.size
    fields = header._replace(size=size, chksum=b" " * 8 if header.chksum is None else header.chksum)
    block = bytearray(b"".join(value.ljust(width, b"\0") for value, (_, width) in zip(fields, FIELDS)))
    if len(block) != BLOCK:
        raise ValueError(f"header fields make {len(block)} bytes, not {BLOCK}")
    if header.chksum is None:
        start, width = _OFFSETS["chksum"]
        block[start:start + width] = _canonical_chksum(_checksums(block)[0])
    return bytes(block)


def _pad(length: int, padding: Optional[bytes]) -> bytes:
    pad = -length % BLOCK
    if padding is None:
        return bytes(pad)
    if len(padding) != pad:
        raise ValueError(f"padding of {len(padding)} bytes after {length} bytes of data")
    return padding


def iter_build(archive: TarArchive) -> Iterator[object]:
    for member in archive.members:
        for ext in member.extensions:
            payload = _pax_payload(ext.payload) if isinstance(ext.payload, tuple) else ext.payload
            yield _header_block(ext.header, len(payload))
            yield payload
            yield _pad(len(payload), ext.padding)
        length = len(member.data)
        yield _header_block(member.header, length)
        yield member.data
        yield _pad(length, member.padding)
    trailer = archive.trailer
    yield _nuls(trailer) if isinstance(trailer, int) else trailer


def _nuls(count: int) -> LazyBlob:
    """``count`` NULs, made as they are written (a patch names the count; it allocates nothing)."""
    if count < 0:
        raise ValueError(f"a trailer of {count} bytes")
    chunk = 1 << 16
    return LazyBlob(count, lambda: (bytes(min(chunk, count - at)) for at in range(0, count, chunk)))


def build(archive: TarArchive) -> bytes:
    return join(iter_build(archive))


def member_offsets(archive: TarArchive) -> List[int]:
    """Where each member's own header block starts (after its extension records)."""
    out, pos = [], 0
    for member in archive.members:
        for ext in member.extensions:
            payload = _pax_payload(ext.payload) if isinstance(ext.payload, tuple) else ext.payload
            pos += BLOCK + len(payload) + (-len(payload) % BLOCK)
        out.append(pos)
        pos += BLOCK + len(member.data) + (-len(member.data) % BLOCK)
    return out


# --- the generic shape for the diff engine (see node.py) ----------------------------------

NODE_KIND = "tar"


def open_node(buf) -> Node:
    return to_node(parse(buf))


def _extension_value(ext: Extension) -> tuple:
    return (tuple(ext.header), ext.payload, ext.padding)


def to_node(model: TarArchive) -> Node:
    keys = unique_keys(m.name for m in model.members)
    children = [Child(key, (tuple(_extension_value(e) for e in m.extensions), tuple(m.header), m.padding), m.data)
                for key, m in zip(keys, model.members)]
    return Node(NODE_KIND, (model.trailer,), children)


def from_node(node: Node) -> TarArchive:
    (trailer,) = node.meta
    if isinstance(trailer, bool) or not isinstance(trailer, (int, bytes)):
        raise ValueError(f"tar trailer {trailer!r}")
    members = []
    for child in node.children:
        extensions, header, padding = child.attrs
        members.append(TarMember([Extension(Header(*h), payload, pad) for h, payload, pad in extensions],
                                 Header(*header), child.data, padding))
    return TarArchive(members, trailer)
