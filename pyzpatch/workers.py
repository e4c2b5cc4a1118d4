"""A few worker threads for work that runs beside other work (compressing, hashing, diffing).

Why not ``concurrent.futures``: a frozen program that imports ``pyzpatch.selfupdate`` carries
every module pyzpatch imports, and ``concurrent.futures`` brings ``multiprocessing`` with it
(PyInstaller follows ``concurrent.futures.process``): about 1.7 MB, against a footprint target
of 400 KB for the whole of pyzpatch. This is the part of it pyzpatch uses, on ``threading``
and ``queue``, which a program has anyway.
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, List, Optional


class Task:
    """One call submitted to ``Workers``; ``result()`` waits for it and returns or raises what
    the call did."""

    def __init__(self, fn: Callable, args: tuple, kwargs: dict):
        self._call = (fn, args, kwargs)
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._state = "pending"  # pending, running, cancelled, done
        self._value = None
        self._error: Optional[BaseException] = None

    def cancel(self) -> bool:
        """Drop the call if it has not started; True if it will not run."""
        with self._lock:
            if self._state == "pending":
                self._state = "cancelled"
                self._done.set()
            return self._state == "cancelled"

    def _run(self) -> None:
        with self._lock:
            if self._state != "pending":
                return
            self._state = "running"
        fn, args, kwargs = self._call
        try:
            self._value = fn(*args, **kwargs)
        except BaseException as exc:  # handed to whoever asks for the result
            self._error = exc
        finally:
            self._call = None
            self._state = "done"
            self._done.set()

    def result(self):
        self._done.wait()
        if self._state == "cancelled":
            raise RuntimeError("the task was cancelled")
        if self._error is not None:
            raise self._error
        return self._value


class Workers:
    """Up to ``count`` daemon threads running submitted calls in order; a context manager that
    waits for them on exit."""

    def __init__(self, count: int, name: str = "pyzpatch"):
        self._count = count
        self._name = name
        self._queue: "queue.Queue[Optional[Task]]" = queue.Queue()
        self._threads: List[threading.Thread] = []

    def submit(self, fn: Callable, *args, **kwargs) -> Task:
        task = Task(fn, args, kwargs)
        self._queue.put(task)
        if len(self._threads) < self._count:
            thread = threading.Thread(target=self._serve, name=f"{self._name}-{len(self._threads)}", daemon=True)
            self._threads.append(thread)
            thread.start()
        return task

    def _serve(self) -> None:
        while True:
            task = self._queue.get()
            if task is None:
                return
            task._run()

    def shutdown(self, wait: bool = True) -> None:
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            for thread in self._threads:
                thread.join()
        self._threads = []

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown(wait=True)
