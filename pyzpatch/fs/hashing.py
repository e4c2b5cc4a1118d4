"""SHA-256 on a second core: hashing overlaps reading, decoding and writing."""
from __future__ import annotations

import hashlib
import queue
import threading
from typing import Optional


class BackgroundHash:
    """SHA-256 computed on another thread (hashlib releases the GIL on large buffers), so
    hashing overlaps reading, decoding and writing on a second core."""

    def __init__(self, data=None):
        self._hash = hashlib.sha256()
        self._queue: "queue.Queue" = queue.Queue(maxsize=8)
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if data is not None:
            self.update(data)

    def _run(self) -> None:
        while True:
            block = self._queue.get()
            if block is None:
                return
            try:
                self._hash.update(block)
            except BaseException as exc:  # reported by digest()
                self._error = exc

    def update(self, block) -> None:
        self._queue.put(block)

    def digest(self) -> bytes:
        self.stop()
        if self._error is not None:
            raise self._error
        return self._hash.digest()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
