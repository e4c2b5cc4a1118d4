"""A tufup release and update through a pyzpatch patch, run in .venv-tufup by tests/test_tufup.py.

    python tests/tufup_update.py WORK V1_FOLDER V2_FOLDER [CHECK_FOLDER...]

Repository side (as tufup's docs have it, with ``binary_diff=PyzpatchDiff``): keys, then the
bundles V1 (version 1.0) and V2 (2.0), each published; adding V2 makes the patch. Application
side: V1 installed in WORK/app with its archive in the client's target folder and the
repository's root.json as its trusted root; the repository served by ``http.server`` on
127.0.0.1; a ``tufup.client.Client`` with ``binary_diff=PyzpatchDiff`` checks for updates,
downloads, patches, verifies, extracts, and installs (a copy into WORK/app: tufup's own install
step is for Windows and macOS).

Also checks that the tar codec rebuilds exactly every tar ``make_gztar_archive`` writes: of V1,
V2 (the repository's archives) and each CHECK_FOLDER. Prints one JSON object on stdout with what
happened.

tufup writes its archives through ``tarfile``'s gzip at level 9, about 10 s for each 40 MB tar
here. The tar inside, which tufup diffs, patches and checks by hash, is the same whatever the
level, so this script has ``tarfile`` compress at level 1 (the client's own re-compression of
the patched tar is left as tufup does it).
"""
from __future__ import annotations

import functools
import gzip
import http.server
import json
import logging
import shutil
import sys
import tarfile
import threading
from pathlib import Path

import bsdiff4
import tufup
from tufup.client import Client
from tufup.repo import Repository, make_gztar_archive

from pyzpatch.formats import tar
from pyzpatch.tufup import PyzpatchDiff

APP = "hello"

_gzopen = tarfile.TarFile.gzopen.__func__


def _fast_gzopen(cls, name, mode="r", fileobj=None, compresslevel=9, **kwargs):
    return _gzopen(cls, name, mode, fileobj, 1, **kwargs)


tarfile.TarFile.gzopen = classmethod(_fast_gzopen)


def codec_round_trips(archive: Path) -> bool:
    """Does the tar codec rebuild the tar in a .tar.gz that make_gztar_archive wrote exactly?"""
    data = gzip.decompress(archive.read_bytes())
    return tar.build(tar.parse(data)) == data


class Recorder(http.server.SimpleHTTPRequestHandler):
    served: list = []

    def log_message(self, format, *args):  # noqa: A002 (http.server's name)
        Recorder.served.append(self.path)


def install_by_copy(src_dir, dst_dir, **kwargs):
    """Replace the installed folder with the extracted update (tufup's install_update supports
    only Windows and macOS)."""
    shutil.rmtree(dst_dir)
    shutil.copytree(src_dir, dst_dir, symlinks=True)


def main(work: Path, v1: Path, v2: Path, checks) -> dict:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    repo_dir, keys_dir = work / "repository", work / "keystore"
    repo = Repository(app_name=APP, repo_dir=repo_dir, keys_dir=keys_dir, binary_diff=PyzpatchDiff)
    repo.initialize()
    for folder, version in ((v1, "1.0"), (v2, "2.0")):
        repo.add_bundle(new_bundle_dir=folder, new_version=version)
        repo.publish_changes(private_key_dirs=[keys_dir])
    targets = repo_dir / "targets"
    patch_file = targets / f"{APP}-2.0.patch"

    # The application as installed at version 1.0: its folder, its archive, the trusted root.
    install_dir, client_dir = work / "app", work / "client"
    shutil.copytree(v1, install_dir, symlinks=True)
    (client_dir / "metadata").mkdir(parents=True)
    (client_dir / "targets").mkdir()
    shutil.copy(repo_dir / "metadata" / "root.json", client_dir / "metadata" / "root.json")
    shutil.copy(targets / f"{APP}-1.0.tar.gz", client_dir / "targets")

    handler = functools.partial(Recorder, directory=str(repo_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        client = Client(app_name=APP, app_install_dir=install_dir, current_version="1.0",
                        metadata_dir=client_dir / "metadata", metadata_base_url=f"{base}/metadata/",
                        target_dir=client_dir / "targets", target_base_url=f"{base}/targets/",
                        extract_dir=work / "extract", refresh_required=True, binary_diff=PyzpatchDiff)
        (work / "extract").mkdir()
        found = client.check_for_updates()
        chosen = sorted(str(t) for t in (client.new_targets or {}))
        client.download_and_apply_update(skip_confirmation=True, install=install_by_copy)
    finally:
        server.shutdown()
        server.server_close()

    checked = sorted(targets.glob("*.tar.gz"))
    (work / "checks").mkdir()
    for i, folder in enumerate(checks):
        checked.append(make_gztar_archive(src_dir=folder, dst_dir=work / "checks", app_name="check",
                                          version=f"{i}.0").path)
    return {
        "tufup": tufup.__version__,
        "bsdiff4": bsdiff4.__version__,
        "found": str(found.version) if found else None,
        "chosen": chosen,
        "served": sorted(set(Recorder.served)),
        "patch_size": patch_file.stat().st_size,
        "patch_magic": patch_file.read_bytes()[:3].decode("latin-1"),
        "archive_sizes": {p.name: p.stat().st_size for p in sorted(targets.glob("*.tar.gz"))},
        "new_archive_rebuilt": (client_dir / "targets" / f"{APP}-2.0.tar.gz").is_file(),
        "codec_exact": {str(p): codec_round_trips(p) for p in checked},
    }


if __name__ == "__main__":
    work_dir, first, second, *others = (Path(a) for a in sys.argv[1:])
    print(json.dumps(main(work_dir, first, second, others)))
