"""One measured operation of the benchmark, run in a fresh process by bench/run.py.

    python bench/worker.py RESULT_JSON OP ARGS...

OPs:
  make OLD NEW PATCH      pyzpatch.patch.file.make_patch(OLD, NEW); the patch is written to PATCH
                          after the clock stops
  bsdiff OLD NEW          read both files, bsdiff4.diff(old, new)
  apply OLD PATCH OUT     pyzpatch.patch.file.apply_patch(OLD, PATCH, output=OUT)
  copy OLD OUT            shutil.copyfile(OLD, OUT), then os.fsync of the copy
  lzma NEW                len(lzma.compress(new, preset=9)) (not timed for the report)
  noop                    imports only: the floor of a worker's peak memory

Only the operation is timed (time.perf_counter), after the imports it needs; interpreter
start-up is not. The parent reads the peak memory of this process from os.wait4; the worker
also reports its own VmHWM (peak RSS of this process's address space since exec) so that the
parent can check that the two agree.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root: pyzpatch


def _vm_hwm_kib():
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _read(path):
    with open(path, "rb") as fh:
        return fh.read()


def op_make(old, new, patch_out):
    from pyzpatch.patch.file import describe_patch, make_patch

    t0 = time.perf_counter()
    made = make_patch(old, new)
    seconds = time.perf_counter() - t0
    with open(patch_out, "wb") as fh:
        fh.write(made.data)
    # What the patch holds, as `pyzpatch show` lists it (with each change's body bytes).
    leaves = [c for c in describe_patch(patch_out)["changes"]
              if not (c["action"] == "changed" and c["how"] in ("struct", "recompressed struct"))]
    # Where the patch's bytes go: the fixed header, the compressed body, the body's three streams.
    from pyzpatch.patchfile import codec as patchfile

    _, _, _, body_start = patchfile.decode_header(memoryview(made.data)[:-4])
    _, body = patchfile.decode(made.data)
    return {
        "seconds": seconds,
        "size": len(made.data),
        "anatomy": {"header": body_start + 4, "body": len(made.data) - body_start - 4,
                    "ops": len(body.ops), "data": len(body.diff), "lit": len(body.lit)},
        "structural": bool(made.structural),
        "note": made.note,
        "changes": leaves,
    }


def op_bsdiff(old, new):
    import bsdiff4

    t0 = time.perf_counter()
    a = _read(old)
    b = _read(new)
    patch = bsdiff4.diff(a, b)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "size": len(patch)}


def op_apply(old, patch, out):
    from pyzpatch.patch.file import apply_patch

    t0 = time.perf_counter()
    result = apply_patch(old, patch, output=out)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "byte_identical": bool(result.byte_identical),
            "new_size": result.new_size, "new_sha256": result.new_sha256.hex()}


def op_copy(old, out):
    t0 = time.perf_counter()
    shutil.copyfile(old, out)
    fd = os.open(out, os.O_WRONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds}


def op_lzma(new):
    import lzma

    t0 = time.perf_counter()
    size = len(lzma.compress(_read(new), preset=9))
    return {"seconds": time.perf_counter() - t0, "size": size}


def op_noop():
    import bsdiff4  # noqa: F401

    import pyzpatch.patch.file  # noqa: F401

    return {"seconds": 0.0}


OPS = {"make": op_make, "bsdiff": op_bsdiff, "apply": op_apply, "copy": op_copy,
       "lzma": op_lzma, "noop": op_noop}


def main(argv):
    result_path, op, args = argv[0], argv[1], argv[2:]
    result = OPS[op](*args)
    result["vm_hwm_kib"] = _vm_hwm_kib()
    tmp = result_path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(result, fh)
    os.replace(tmp, result_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
