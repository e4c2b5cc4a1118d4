"""Branch converters for native code (delta/branches.py) and the ``bcj`` operation (7) that uses
them: exact inverses on any bytes, round trips on real shared libraries, hostile patches."""
from __future__ import annotations

import glob
import os
import random
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

from pyzpatch import PyzpatchError, apply_folder_patch, describe_patch, make_folder_patch
from pyzpatch.delta import branches, codes
from pyzpatch.delta import encoder as encoder_module
from pyzpatch.delta.applier import Applier
from pyzpatch.delta.encoder import Encoder
from pyzpatch.delta.explainer import explain_bytes
from pyzpatch.delta.plan import Bcj
from pyzpatch.delta.reader import read_bytes_plan
from pyzpatch.delta.wire import Writer

LIMIT = 256 << 20
KINDS = (branches.X86, branches.ARM64)


@pytest.fixture(autouse=True)
def converter_on():
    """make writes ``bcj`` only with the converter on (off by default: docs/bench-native.md)."""
    before = encoder_module.CONVERT_BRANCHES
    encoder_module.CONVERT_BRANCHES = True
    yield
    encoder_module.CONVERT_BRANCHES = before


def _round_trip(data: bytes, kind: int) -> None:
    assert branches.decode(branches.encode(data, kind), kind) == data
    assert branches.encode(branches.decode(data, kind), kind) == data


# -- the converters ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_converters_are_exact_inverses_on_random_bytes(kind):
    rng = random.Random(kind)
    for n in range(0, 48):  # every short length, the ends of the buffer among them
        _round_trip(bytes(rng.getrandbits(8) for _ in range(n)), kind)
    for _ in range(200):
        _round_trip(rng.randbytes(rng.randrange(4096)), kind)


@pytest.mark.parametrize("kind", KINDS)
def test_converters_are_exact_inverses_on_adversarial_bytes(kind):
    """Bytes made of nothing but opcodes and the displacement tops that decide: overlapping
    candidates, candidates cut off by the end of the buffer, runs of E8 and of BL words."""
    rng = random.Random(100 + kind)
    alphabet = b"\xe8\xe9\x00\xff\x94\x95\x96\x97\x0f\x80"
    for _ in range(3000):
        _round_trip(bytes(rng.choice(alphabet) for _ in range(rng.randrange(40))), kind)
    for n in range(12):
        for fill in (b"\xe8", b"\x00", b"\xff", b"\x97"):
            _round_trip(fill * n, kind)
            _round_trip(b"\x01" * n + b"\xe8", kind)
            _round_trip(b"\xe8" + b"\xff" * n, kind)
    _round_trip(b"\xe8\xff\xff\xff\xff" * 1000, kind)
    _round_trip(b"\x00\x00\x00\x94" * 1000 + b"\x97", kind)


def test_x86_makes_near_calls_absolute_and_leaves_the_rest():
    call = b"\x90\xe8" + (0x10).to_bytes(4, "little", signed=True)  # call +0x10, ends at offset 6
    assert branches.encode(call, branches.X86) == b"\x90\xe8" + (0x16).to_bytes(4, "little")
    backwards = b"\xe8" + (-0x20).to_bytes(4, "little", signed=True)
    assert branches.encode(backwards, branches.X86) == b"\xe8" + (-0x1B).to_bytes(4, "little", signed=True)
    far = b"\xe8\x00\x00\x00\x12"  # beyond 16 MiB: not a call this converter trusts
    assert branches.encode(far, branches.X86) == far
    assert branches.encode(b"\xe8\x00\x00\x00", branches.X86) == b"\xe8\x00\x00\x00"  # cut off
    # The same call moved by 7 bytes reads the same once converted.
    moved = b"\x90" * 8 + b"\xe8" + (0x10 - 7).to_bytes(4, "little", signed=True)
    assert branches.encode(moved, branches.X86)[-4:] == branches.encode(call, branches.X86)[-4:]


def test_arm64_makes_bl_absolute_at_aligned_words_only():
    bl = (0x94000000 | 5).to_bytes(4, "little")
    data = b"\x1f\x20\x03\xd5" + bl  # nop; bl +5 words, at word 1
    assert branches.encode(data, branches.ARM64)[4:] == (0x94000000 | 6).to_bytes(4, "little")
    unaligned = b"\x00" + bl + b"\x00\x00\x00"
    assert branches.encode(unaligned, branches.ARM64) == unaligned


def test_native_kind_recognises_real_native_code_only():
    assert branches.native_kind(Path(os.path.realpath(shutil.which("python3") or "/bin/sh")).read_bytes()) in (
        branches.X86, branches.ARM64)
    assert branches.native_kind(b"\x7fELF" + bytes(100)) is None  # an ELF header that says nothing
    assert branches.native_kind(random.Random(1).randbytes(5000)) is None
    assert branches.native_kind(b"PK\x03\x04" + bytes(100)) is None


# -- real libraries ----------------------------------------------------------------------------

_C_SOURCE = """
#include <stddef.h>
%s
static int helper_%d(int x) { return x * %d + 1; }
int step(int x) { return helper_%d(x) ^ (x >> 3); }
int chain(const int *v, size_t n) {
    int acc = 0;
    for (size_t i = 0; i < n; i++) acc += step(v[i]) + helper_%d(acc);
    return acc;
}
%s
"""


def _functions(n: int, salt: int) -> str:
    out = []
    for i in range(n):
        out.append(f"__attribute__((noinline)) int f{i}(int x) {{ return step(x + {i * salt}) * {i + 3}; }}")
        out.append(f"int g{i}(int x) {{ return f{i}(x) + f{(i * 7) % n}(x - 1) + chain(&x, 1); }}")
    return "int step(int x);\nint chain(const int *v, size_t n);\n" + "\n".join(out)


@pytest.fixture(scope="module")
def gcc_pair(tmp_path_factory):
    """Two builds of a small shared library: the second has a function changed near the start,
    so that the code after it moves and every call across it has a new displacement."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("no C compiler")
    root = tmp_path_factory.mktemp("gcc")
    built, compiling = [], []
    for version, (extra, mult) in enumerate((("", 3), ("int added(int x) { return x * x * x - 7 * x; }", 5))):
        src = root / f"v{version}.c"
        src.write_text(_C_SOURCE % (extra, 0, mult, 0, 0, _functions(60, 11)))
        out = root / f"v{version}" / "libdemo.so"
        out.parent.mkdir()
        compiling.append(subprocess.Popen([gcc, "-O1", "-shared", "-fPIC", "-o", str(out), str(src)]))
        built.append(out)
    for proc in compiling:  # both at once: about 0.5 s
        assert proc.wait(timeout=120) == 0
    return built


def test_make_writes_no_bcj_unless_the_converter_is_on(gcc_pair):
    old, new = (p.read_bytes() for p in gcc_pair)
    encoder_module.CONVERT_BRANCHES = False
    assert Encoder().bytes_delta(old, new).encoding == "bsdiff"


def test_bcj_round_trips_two_builds_of_a_library(gcc_pair, tmp_path):
    old, new = (p.read_bytes() for p in gcc_pair)
    if branches.native_kind(new) is None:
        pytest.skip("this compiler does not make x86 or ARM64 code")
    enc = Encoder()
    choice = enc.bytes_delta(old, new)
    assert choice.encoding == "bcj", choice.reason
    out = enc.out
    plan = read_bytes_plan(out.ops.getvalue(), bytes(out.diff), bytes(out.lit), LIMIT)
    assert isinstance(plan, Bcj)
    assert Applier(LIMIT).bytes(plan, old, "") == new

    # The same pair as folders, through make, show and apply.
    target = tmp_path / "app"
    shutil.copytree(gcc_pair[0].parent, target)
    made = make_folder_patch(gcc_pair[0].parent, gcc_pair[1].parent)
    patch = tmp_path / "lib.pzp"
    patch.write_bytes(made.data)
    shown = {c["path"]: c["how"] for c in describe_patch(patch)["changes"]}
    assert shown == {"libdemo.so": "bcj"}
    apply_folder_patch(target, patch)
    assert (target / "libdemo.so").read_bytes() == new


def test_bcj_is_smaller_than_plain_bsdiff_when_code_moves(gcc_pair):
    old, new = (p.read_bytes() for p in gcc_pair)
    if branches.native_kind(new) != branches.X86:
        pytest.skip("x86 code only")

    def body(convert: bool) -> int:
        encoder_module.CONVERT_BRANCHES = convert
        try:
            enc = Encoder()
            enc.bytes_delta(old, new)
        finally:
            encoder_module.CONVERT_BRANCHES = True  # as the fixture set it
        return encoder_module._lzma_size(enc.out.ops.getvalue(), bytes(enc.out.diff), bytes(enc.out.lit))

    assert body(True) < body(False)


def _environment_library() -> bytes:
    libs = sorted(glob.glob(os.path.join(sysconfig.get_config_var("DESTSHARED") or "", "*.so")),
                  key=os.path.getsize)
    libs = [p for p in libs if 20_000 < os.path.getsize(p) < 400_000]
    if not libs:
        pytest.skip("no shared library of a fitting size here")
    return Path(libs[len(libs) // 2]).read_bytes()


def test_bcj_round_trips_a_real_library_with_code_inserted():
    old = _environment_library()
    if branches.native_kind(old) is None:
        pytest.skip("not x86 or ARM64 code")
    cut = len(old) // 3 & ~3
    new = old[:cut] + b"\x90" * 36 + old[cut:]
    enc = Encoder()
    assert enc.bytes_delta(old, new).encoding == "bcj"
    out = enc.out
    plan = read_bytes_plan(out.ops.getvalue(), bytes(out.diff), bytes(out.lit), LIMIT)
    assert Applier(LIMIT).bytes(plan, old, "") == new
    assert explain_bytes(plan) == []  # a leaf: nothing inside to list


# -- hostile patches ---------------------------------------------------------------------------


def _bcj_ops(kind, new_len, controls, sparse=0, cut=None) -> bytes:
    w = Writer()
    w.uint(codes.BCJ)
    w.uint(kind)
    w.uint(new_len)
    w.uint(len(controls))
    for x, y, z in controls:
        w.uint(x)
        w.uint(y)
        w.sint(z)
    w.uint(sparse)
    data = w.getvalue()
    return data if cut is None else data[:cut]


@pytest.mark.parametrize("ops, diff, lit, problem", [
    (_bcj_ops(9, 4, [(4, 0, 0)]), bytes(4), b"", "unknown branch converter 9"),
    (_bcj_ops(0, 4, [(4, 0, 0)]), bytes(4), b"", "unknown branch converter 0"),
    (_bcj_ops(1, 4, [(4, 0, 0)], cut=3), bytes(4), b"", "patch structure"),  # truncated controls
    (_bcj_ops(1, 4, [(4, 0, 0)]) + b"\x80", bytes(4), b"", "patch structure"),  # overlong: a cut varint
    (_bcj_ops(1, 4, [(4, 0, 0)]), bytes(3), b"", "patch difference data"),  # the difference block cut
    (_bcj_ops(1, 8, [(4, 0, 0)]), bytes(4), b"", "do not add up to the new size"),
    (_bcj_ops(1, 4, [(0, 4, 0)]), b"", b"abc", "patch literal data"),  # extra bytes cut
    (_bcj_ops(1, 1 << 40, [(4, 0, 0)]), bytes(4), b"", "patch structure"),  # beyond the size limit
])
def test_hostile_bcj_operations_are_refused_in_one_line(ops, diff, lit, problem):
    with pytest.raises(PyzpatchError, match=problem) as info:
        read_bytes_plan(ops, diff, lit, LIMIT)
    assert "\n" not in str(info.value)


def test_bcj_reads_within_the_old_bytes_and_within_the_budget():
    old = b"\xe8\x01\x00\x00\x00" * 20
    plan = read_bytes_plan(_bcj_ops(1, 200, [(200, 0, 0)]), bytes(200), b"", LIMIT)
    with pytest.raises(PyzpatchError, match="difference run outside the old data"):
        Applier(LIMIT).bytes(plan, old, "")
    plan = read_bytes_plan(_bcj_ops(1, 100, [(100, 0, 0)]), bytes(100), b"", LIMIT)
    assert Applier(LIMIT).bytes(plan, old, "") == old
    applier = Applier(LIMIT)
    # The converted old bytes and their working copy, bsdiff's result and difference block (the
    # converted bytes are bytes: no copy for bsdiff), the converted-back bytes and their copy.
    applier.budget = 2 * len(old) + 2 * 100 + 2 * 100 - 1  # one byte short of what it takes
    with pytest.raises(PyzpatchError, match="bytes of memory"):
        applier.bytes(plan, old, "")
    applier = Applier(LIMIT)
    applier.budget = 2 * len(old) + 2 * 100 + 2 * 100
    assert applier.bytes(plan, old, "") == old
