"""Zip archives, with any bytes before them: ``base_library.zip``, zipapps, interpreter+zip files.

Layout: prefix | member records (local header, name, extra, data, optional data descriptor) |
central directory (one header per member) | end record (EOCD) and its comment. Offsets in the
central directory are relative to where the zip "thinks" it starts: a zip appended to another
file by ``cat`` keeps offsets relative to its own start, ``zip -A`` makes them absolute. The
codec records that shift so either rebuilds exactly. Zip64 and multi-disk archives are refused.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterator, List, NamedTuple, Optional

from ..errors import FormatError
from .layout import FixedLayout, check_regions, detect_layout, place
from .node import DEFLATE, Child, LazyBlob, Node, join, unique_keys

# The records, declared once. On disk each starts with its signature and carries the lengths of
# its variable fields; the named tuples hold everything else, in file order, and the codec
# derives signatures, lengths and offsets when it writes.
LOCAL = struct.Struct("<4sHHHHHIIIHH")  # signature, then LocalHeader's numbers, name and extra lengths
CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")  # signature, numbers, three lengths, numbers, local offset
EOCD = struct.Struct("<4sHHHHIIH")  # signature, disks, counts, directory size and offset, comment length


# The fields both headers carry, in file order.
_COMMON_FIELDS = [
    ("version", int),  # version needed to extract
    ("flags", int), ("method", int), ("time", int), ("date", int), ("crc32", int),
    ("compressed_size", int), ("size", int), ("name", bytes), ("extra", bytes),
]
LocalHeader = NamedTuple("LocalHeader", _COMMON_FIELDS)
CentralHeader = NamedTuple("CentralHeader", [("made_by", int)] + _COMMON_FIELDS + [
    ("comment", bytes), ("disk_start", int), ("internal_attributes", int), ("external_attributes", int),
])

LOCAL_SIG, CENTRAL_SIG, EOCD_SIG = b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06"
ZIP64_LOCATOR_SIG, DESCRIPTOR_SIG = b"PK\x06\x07", b"PK\x07\x08"
STORED, DEFLATED = 0, 8
_MAX_COMMENT = 0xFFFF


@dataclass
class ZipMember:
    local: LocalHeader  # (a plain tuple of the same fields is taken too, as a patch gives it)
    data: object  # stored (compressed) bytes; bytes-like or LazyBlob
    descriptor: bytes  # data descriptor after the data (flag bit 3), raw; usually empty
    central: CentralHeader

    def __post_init__(self):
        self.local = LocalHeader(*self.local)
        self.central = CentralHeader(*self.central)

    @property
    def name(self) -> str:
        return self.central.name.decode("utf-8", "surrogateescape")

    @property
    def method(self) -> int:
        return self.central.method

    @property
    def size(self) -> int:
        return self.central.size

    @property
    def crc32(self) -> int:
        return self.central.crc32

    def record_length(self) -> int:
        return LOCAL.size + len(self.local.name) + len(self.local.extra) + len(self.data) + len(self.descriptor)


@dataclass
class ZipArchive:
    prefix: bytes  # bytes before the first member (an interpreter, a shebang line)
    members: List[ZipMember]
    offset_shift: int  # actual position = offset in the central directory + offset_shift
    comment: bytes = b""
    layout: Optional[FixedLayout] = None

    def member(self, name: str) -> Optional[ZipMember]:
        return next((m for m in self.members if m.name == name), None)


def find_eocd(buf) -> int:
    """Offset of the end record whose comment reaches exactly to the end of ``buf``, or -1."""
    view = bytes(buf[-(EOCD.size + _MAX_COMMENT):]) if len(buf) > EOCD.size + _MAX_COMMENT else bytes(buf)
    base = len(buf) - len(view)
    pos = view.rfind(EOCD_SIG)
    while pos != -1:
        if pos + EOCD.size <= len(view):
            (comment_len,) = struct.unpack_from("<H", view, pos + 20)
            if pos + EOCD.size + comment_len == len(view):
                return base + pos
        pos = view.rfind(EOCD_SIG, 0, pos)
    return -1


def detect(buf) -> bool:
    """Does ``buf`` end with a zip end record (and its comment)?"""
    return len(buf) >= EOCD.size and find_eocd(buf) != -1


def parse(buf) -> ZipArchive:
    view = memoryview(buf)
    eocd_pos = find_eocd(buf)
    if eocd_pos == -1:
        raise FormatError("zip end record", "not found (not a zip archive, or bytes follow its comment)")
    sig, disk, cd_disk, n_disk, n_total, cd_size, cd_offset, comment_len = EOCD.unpack_from(view, eocd_pos)
    if eocd_pos >= 20 and bytes(view[eocd_pos - 20:eocd_pos - 16]) == ZIP64_LOCATOR_SIG:
        raise FormatError("zip end record", "zip64 archives are not supported")
    if disk or cd_disk or n_disk != n_total:
        raise FormatError("zip end record", "multi-disk archives are not supported")
    if 0xFFFF in (n_disk, n_total) or 0xFFFFFFFF in (cd_size, cd_offset):
        raise FormatError("zip end record", "zip64 archives are not supported")
    cd_pos = eocd_pos - cd_size
    if cd_pos < 0:
        raise FormatError("zip end record", f"central directory of {cd_size} bytes does not fit before it")
    shift = cd_pos - cd_offset
    if shift < 0:
        raise FormatError("zip end record", f"central directory offset {cd_offset} points past where it is")
    # Each central header is at least 46 bytes: a larger count is a lie.
    if n_total * CENTRAL.size > cd_size:
        raise FormatError("zip end record", f"{n_total} entries cannot fit a {cd_size}-byte central directory")

    members = []
    pos = cd_pos
    for index in range(n_total):
        field = f"zip central directory entry {index}"
        if pos + CENTRAL.size > eocd_pos:
            raise FormatError(field, "runs past the central directory")
        fields = CENTRAL.unpack_from(view, pos)
        if fields[0] != CENTRAL_SIG:
            raise FormatError(field, "signature missing")
        (_, made, needed, flags, method, time, date, crc, csize, usize, n_len, e_len, c_len, disk_start,
         iattr, eattr, local_off) = fields
        if 0xFFFFFFFF in (csize, usize, local_off):
            raise FormatError(field, "zip64 sizes are not supported")
        end = pos + CENTRAL.size + n_len + e_len + c_len
        if end > eocd_pos:
            raise FormatError(field, "name, extra field or comment runs past the central directory")
        cursor = pos + CENTRAL.size
        name = bytes(view[cursor:cursor + n_len])
        extra = bytes(view[cursor + n_len:cursor + n_len + e_len])
        comment = bytes(view[cursor + n_len + e_len:end])
        central = CentralHeader(made, needed, flags, method, time, date, crc, csize, usize, name, extra, comment,
                                disk_start, iattr, eattr)
        members.append((central, local_off + shift))
        pos = end
    if pos != eocd_pos:
        raise FormatError("zip central directory", f"{eocd_pos - pos} unexplained bytes before the end record")

    parsed = []
    offsets, lengths = [], []
    for index, (central, local_pos) in enumerate(members):
        field = f"zip member {index} ({central.name[:80]!r})"
        if local_pos < 0 or local_pos + LOCAL.size > cd_pos:
            raise FormatError(field, f"local header at offset {local_pos} lies outside the member area")
        lf = LOCAL.unpack_from(view, local_pos)
        if lf[0] != LOCAL_SIG:
            raise FormatError(field, "local header signature missing")
        _, version, flags, method, time, date, crc, csize, usize, n_len, e_len = lf
        data_pos = local_pos + LOCAL.size + n_len + e_len
        data_end = data_pos + central.compressed_size
        if data_end > cd_pos:
            raise FormatError(field, f"data of {central.compressed_size} bytes runs into the central directory")
        local = LocalHeader(version, flags, method, time, date, crc, csize, usize,
                            bytes(view[local_pos + LOCAL.size:local_pos + LOCAL.size + n_len]),
                            bytes(view[local_pos + LOCAL.size + n_len:data_pos]))
        descriptor = b""
        if flags & 0x08:
            desc_len = 16 if bytes(view[data_end:data_end + 4]) == DESCRIPTOR_SIG else 12
            if data_end + desc_len > cd_pos:
                raise FormatError(field, "data descriptor runs into the central directory")
            descriptor = bytes(view[data_end:data_end + desc_len])
        member = ZipMember(local, view[data_pos:data_end], descriptor, central)
        parsed.append(member)
        offsets.append(local_pos)
        lengths.append(member.record_length())

    data_start = min(offsets) if offsets else cd_pos
    check_regions("zip members", offsets, lengths, [m.name for m in parsed], data_start, cd_pos)
    comment = bytes(view[eocd_pos + EOCD.size:eocd_pos + EOCD.size + comment_len])
    return ZipArchive(prefix=bytes(view[:data_start]), members=parsed, offset_shift=shift, comment=comment,
                      layout=detect_layout(view, data_start, offsets, lengths, cd_pos))


def _record(member: ZipMember) -> LazyBlob:
    version, flags, method, time, date, crc, csize, usize, name, extra = member.local
    header = LOCAL.pack(LOCAL_SIG, version, flags, method, time, date, crc, csize, usize, len(name),
                        len(extra)) + name + extra

    return LazyBlob(member.record_length(), lambda: (header, member.data, member.descriptor))


def iter_build(archive: ZipArchive) -> Iterator[bytes]:
    start = len(archive.prefix)
    records = [_record(m) for m in archive.members]
    offsets, cd_pos, chunks = place(start, records, archive.layout)
    yield archive.prefix
    yield from chunks
    cd = bytearray()
    for member, offset in zip(archive.members, offsets):
        (made, needed, flags, method, time, date, crc, csize, usize, name, extra, comment, disk_start, iattr,
         eattr) = member.central
        cd += CENTRAL.pack(CENTRAL_SIG, made, needed, flags, method, time, date, crc, csize, usize, len(name),
                           len(extra), len(comment), disk_start, iattr, eattr, offset - archive.offset_shift)
        cd += name + extra + comment
    yield bytes(cd)
    count = len(archive.members)
    yield EOCD.pack(EOCD_SIG, 0, 0, count, count, len(cd), cd_pos - archive.offset_shift, len(archive.comment))
    yield archive.comment


def build(archive: ZipArchive) -> bytes:
    return join(iter_build(archive))


# --- the generic shape for the diff engine (see node.py) ----------------------------------

NODE_KIND = "zip"


def open_node(buf) -> Node:
    return to_node(parse(buf))


def to_node(model: ZipArchive) -> Node:
    if model.layout is not None:
        raise FormatError("zip", "members are not laid out back to back; it can only be diffed as bytes")
    keys = unique_keys(m.name for m in model.members)
    children = [Child(key, (m.local, m.descriptor, m.central), m.data,
                      compression=DEFLATE if m.method == DEFLATED else None,
                      content_size=m.size if m.method == DEFLATED else None)
                for key, m in zip(keys, model.members)]
    # A shift equal to the prefix length (offsets relative to the zip itself) is stored as None,
    # so a patch that changes the prefix (an interpreter) keeps the relation.
    shift = None if model.offset_shift == len(model.prefix) else model.offset_shift
    return Node(NODE_KIND, (model.prefix, shift, model.comment), children)


def from_node(node: Node) -> ZipArchive:
    prefix, shift, comment = node.meta
    members = [ZipMember(c.attrs[0], c.data, c.attrs[1], c.attrs[2]) for c in node.children]
    return ZipArchive(prefix=prefix, members=members, offset_shift=len(prefix) if shift is None else shift,
                      comment=comment)
