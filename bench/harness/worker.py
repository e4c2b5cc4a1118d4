"""One measured operation of a benchmark, run in a fresh process by harness.driver.run_worker.

    python bench/harness/worker.py RESULT_JSON OP ARGS...

OPs (the registry OPS below; every benchmark's workers are this file):
  make OLD NEW PATCH          pyzpatch.make_patch(OLD, NEW); the patch is written to PATCH after
                              the clock stops, then described (changes, anatomy)
  folder-make OLD NEW PATCH   pyzpatch.make_folder_patch(OLD_DIR, NEW_DIR), likewise
  bsdiff OLD NEW              read both files, bsdiff4.diff(old, new)
  apply OLD PATCH OUT         pyzpatch.apply_patch(OLD, PATCH, output=OUT)
  folder-apply TARGET PATCH   pyzpatch.apply_folder_patch(TARGET, PATCH), in place
  copy OLD OUT                shutil.copyfile(OLD, OUT), then os.fsync of the copy
  copy2 OLD OUT               shutil.copy2(OLD, OUT) (no fsync)
  copytree OLD DEST fsync|nofsync
                              shutil.copytree(OLD, DEST, symlinks=True), with fsync: then an fsync
                              of every copied file and folder and of DEST's parent
  lzma NEW                    len(lzma.compress(new, preset=9)) (not timed for the reports)
  noop                        imports pyzpatch and bsdiff4 only: the floor of a worker's peak memory
  tufup-archive FOLDER OUT_DIR NAME VERSION
                              tufup.repo.make_gztar_archive (not timed for the reports)
  tufup-diff OLD_TGZ NEW_TGZ PATCH default|pyzpatch
                              tufup.common.Patcher.diff_and_hash with tufup's default binary diff
                              (bsdiff4) or pyzpatch.tufup.PyzpatchDiff: what tufup's add_bundle
                              spends on the patch (gunzip both archives, diff, hash)
  tufup-patch OLD_TGZ PATCH default|pyzpatch NEW_TGZ
                              the binary diff's patch() on the gunzipped old tar (what tufup's client
                              runs); the result is checked against NEW_TGZ's tar after the clock stops
  (the tufup ops run in .venv-tufup: tufup 0.10 with the bsdiff4 1.2.x it pins)
  folder-noop                 imports pyzpatch.patch.folder only
  external OUT CMD...         run the program CMD (e.g. xdelta3, zstd), which writes OUT: its time,
                              OUT's size; its peak memory is in the launcher's ru_maxrss (which
                              includes waited-for children) and in child_maxrss_kib

Only the operation is timed (time.perf_counter), after the imports it needs; interpreter
start-up is not. The parent reads the peak memory of this process from os.wait4; the worker
also reports its own VmHWM (peak RSS of this process's address space since exec) so that the
parent can check that the two agree. Kept lean: a worker loads only what its operation needs.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: pyzpatch


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


def _fsync(path, flags=os.O_RDONLY):
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _made(made, seconds, patch_out) -> dict:
    """A made patch (file or folder), written to ``patch_out`` and described: its size, what it
    holds as `pyzpatch show` lists it (leaf changes, with each change's body bytes), and where
    its bytes go (the fixed header, the compressed body, the body's three streams)."""
    from pyzpatch import describe_patch
    from pyzpatch.patchfile import codec

    with open(patch_out, "wb") as fh:
        fh.write(made.data)
    leaves = [c for c in describe_patch(patch_out)["changes"]
              if not (c["action"] == "changed" and c["how"] in ("struct", "recompressed struct"))]
    _, _, _, body_start = codec.decode_header(memoryview(made.data)[:-4])
    _, body = codec.decode(made.data)
    return {
        "seconds": seconds,
        "size": len(made.data),
        "anatomy": {"header": body_start + 4, "body": len(made.data) - body_start - 4,
                    "ops": len(body.ops), "data": len(body.diff), "lit": len(body.lit)},
        "note": made.note,
        "changes": leaves,
    }


def op_make(old, new, patch_out):
    from pyzpatch import make_patch

    t0 = time.perf_counter()
    made = make_patch(old, new)
    seconds = time.perf_counter() - t0
    return dict(_made(made, seconds, patch_out), structural=bool(made.structural),
                whole_file=getattr(made, "whole_file", None))


def op_folder_make(old_dir, new_dir, patch_out):
    from pyzpatch import make_folder_patch

    t0 = time.perf_counter()
    made = make_folder_patch(old_dir, new_dir)
    seconds = time.perf_counter() - t0
    return _made(made, seconds, patch_out)


def op_bsdiff(old, new):
    import bsdiff4

    t0 = time.perf_counter()
    a = _read(old)
    b = _read(new)
    patch = bsdiff4.diff(a, b)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "size": len(patch)}


def op_apply(old, patch, out):
    from pyzpatch import apply_patch

    t0 = time.perf_counter()
    result = apply_patch(old, patch, output=out)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "byte_identical": bool(result.byte_identical),
            "new_size": result.new_size, "new_sha256": result.new_sha256.hex()}


def op_folder_apply(target, patch):
    from pyzpatch import apply_folder_patch

    t0 = time.perf_counter()
    result = apply_folder_patch(target, patch)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "written": result.written, "files_written": result.files_written,
            "files_linked": result.files_linked, "recovered": result.recovered}


def op_copy(old, out):
    t0 = time.perf_counter()
    shutil.copyfile(old, out)
    _fsync(out, os.O_WRONLY)
    return {"seconds": time.perf_counter() - t0}


def op_copy2(old, out):
    t0 = time.perf_counter()
    shutil.copy2(old, out)
    return {"seconds": time.perf_counter() - t0}


def op_copytree(old_dir, dest, fsync):
    t0 = time.perf_counter()
    shutil.copytree(old_dir, dest, symlinks=True)
    if fsync == "fsync":
        # As apply does for what it writes: every file, then every folder, then the parent.
        dirs = []
        for current, _dirs, files in os.walk(dest):
            dirs.append(current)
            for name in files:
                path = os.path.join(current, name)
                if not os.path.islink(path):
                    _fsync(path)
        dirs.append(os.path.dirname(os.path.abspath(dest)))
        for path in reversed(dirs):
            _fsync(path, os.O_RDONLY | os.O_DIRECTORY)
    return {"seconds": time.perf_counter() - t0}


def op_lzma(new):
    import lzma

    t0 = time.perf_counter()
    size = len(lzma.compress(_read(new), preset=9))
    return {"seconds": time.perf_counter() - t0, "size": size}


def op_noop():
    import bsdiff4  # noqa: F401

    import pyzpatch.patch.file  # noqa: F401

    return {"seconds": 0.0}


def op_folder_noop():
    import pyzpatch.patch.folder  # noqa: F401

    return {"seconds": 0.0}


def _binary_diff(which):
    if which == "pyzpatch":
        from pyzpatch.tufup import PyzpatchDiff

        return PyzpatchDiff
    from tufup.common import DefaultBinaryDiff

    return DefaultBinaryDiff


def op_tufup_archive(folder, out_dir, name, version):
    from tufup.repo import make_gztar_archive

    t0 = time.perf_counter()
    meta = make_gztar_archive(src_dir=folder, dst_dir=out_dir, app_name=name, version=version)
    return {"seconds": time.perf_counter() - t0, "path": str(meta.path), "size": os.path.getsize(meta.path)}


def op_tufup_diff(old, new, patch_out, which):
    from pathlib import Path

    from tufup.common import Patcher

    binary_diff = _binary_diff(which)
    t0 = time.perf_counter()
    expected = Patcher.diff_and_hash(src_path=Path(old), dst_path=Path(new), patch_path=Path(patch_out),
                                     binary_diff=binary_diff)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "size": os.path.getsize(patch_out), "tar_size": expected["tar_size"]}


def op_tufup_patch(old, patch, which, new):
    import gzip

    binary_diff = _binary_diff(which)
    src = gzip.decompress(_read(old))
    patch_bytes = _read(patch)
    t0 = time.perf_counter()
    result = binary_diff.patch(src_bytes=src, patch_bytes=patch_bytes)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "identical": result == gzip.decompress(_read(new))}


def op_external(out, *cmd):
    import resource
    import subprocess

    if os.path.exists(out):
        os.unlink(out)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.decode(errors="replace"))
        raise SystemExit("%s exited %d" % (cmd[0], proc.returncode))
    return {"seconds": seconds, "size": os.path.getsize(out),
            "child_maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}


OPS = {"make": op_make, "folder-make": op_folder_make, "bsdiff": op_bsdiff, "apply": op_apply,
       "folder-apply": op_folder_apply, "copy": op_copy, "copy2": op_copy2, "copytree": op_copytree,
       "lzma": op_lzma, "noop": op_noop, "folder-noop": op_folder_noop, "tufup-archive": op_tufup_archive,
       "tufup-diff": op_tufup_diff, "tufup-patch": op_tufup_patch, "external": op_external}


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
