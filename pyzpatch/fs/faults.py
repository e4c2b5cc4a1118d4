"""Fault injection for the crash tests, inert unless its environment variables are set.

- ``PYZPATCH_TEST_KILL_AT=N``: the process kills itself with SIGKILL (as a power cut would stop
  it) at the N-th checkpoint of an apply.
- ``PYZPATCH_TEST_COUNT_TO=FILE``: write how many checkpoints were passed (to pick kill points).
- ``PYZPATCH_TEST_FAIL_WRITE_AT=N``: the N-th checkpoint raises ``OSError(ENOSPC)`` instead, as a
  full disk would.
- ``PYZPATCH_TEST_PAUSE_AT=N`` with ``PYZPATCH_TEST_PAUSE_FILE=FILE``: at the N-th checkpoint,
  create FILE and wait (up to 60 s) until the test removes it, so that it can act meanwhile.
"""
from __future__ import annotations

import errno
import os
import signal


class Checkpoints:
    def __init__(self) -> None:
        self.kill_at = self._number("PYZPATCH_TEST_KILL_AT")
        self.fail_at = self._number("PYZPATCH_TEST_FAIL_WRITE_AT")
        self.count_to = os.environ.get("PYZPATCH_TEST_COUNT_TO")
        self.pause_at = self._number("PYZPATCH_TEST_PAUSE_AT")
        self.pause_file = os.environ.get("PYZPATCH_TEST_PAUSE_FILE")
        self.count = 0

    @staticmethod
    def _number(name: str):
        value = os.environ.get(name, "")
        return int(value) if value.isdigit() else None

    def __call__(self) -> None:
        self.count += 1
        if self.count_to:
            with open(self.count_to, "w") as fp:
                fp.write(str(self.count))
        if self.count == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.count == self.fail_at:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if self.count == self.pause_at and self.pause_file:
            import time
            open(self.pause_file, "w").close()
            deadline = time.monotonic() + 60
            while os.path.exists(self.pause_file) and time.monotonic() < deadline:
                time.sleep(0.01)


checkpoint = Checkpoints()
