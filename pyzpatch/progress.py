"""Progress on long work, for the command line only.

Only cli.py imports this module: the library and ``pyzpatch.selfupdate`` never do, so a frozen
program that imports them carries no rich (the PyInstaller hook keeps rich out as well).

What is drawn: a spinner, what is being done and the time since it began, on stderr, and only
when stderr is a terminal (a script's pipe or log file never gets a byte of it), only once the
work has taken ``DELAY`` seconds (short work shows nothing), and never with ``--quiet``. The line
is erased when the work ends, so what the command prints afterwards is all that stays.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator, Optional

# Seconds of work before anything is drawn. PYZPATCH_PROGRESS_DELAY overrides it (the tests set
# it to 0 to see the drawing without waiting).
DELAY = 1.0


def _delay() -> float:
    try:
        return max(0.0, float(os.environ.get("PYZPATCH_PROGRESS_DELAY", DELAY)))
    except ValueError:
        return DELAY


def drawn() -> bool:
    """Would progress be drawn here (stderr a terminal)?"""
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class _Spinner:
    def __init__(self, what: str, since: float):
        self.what, self.since = what, since
        self.lock = threading.Lock()
        self.progress = None
        self.stopped = False

    def start(self) -> None:
        with self.lock:
            if self.stopped:
                return
            try:
                from rich.console import Console
                from rich.progress import Progress, ProgressColumn, SpinnerColumn, TextColumn
                from rich.text import Text
            except ImportError:  # typer brings rich from 0.12 on, not before (typer 0.9 is supported)
                return

            since = self.since

            class Elapsed(ProgressColumn):
                def render(self, task) -> Text:
                    return Text(f"{time.monotonic() - since:.0f} s", style="progress.elapsed")

            self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), Elapsed(),
                                     console=Console(stderr=True), transient=True)
            self.progress.add_task(self.what, total=None)
            self.progress.start()

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
            if self.progress is not None:
                self.progress.stop()
                self.progress = None


@contextmanager
def working(what: str, quiet: bool = False) -> Iterator[None]:
    """Draw ``what`` with a spinner on stderr while the block runs, if it runs long enough
    and stderr is a terminal (``what`` is shown as text: pass it through ``printable``)."""
    if quiet or not drawn():
        yield
        return
    spinner = _Spinner(what, time.monotonic())
    timer: Optional[threading.Timer] = threading.Timer(_delay(), spinner.start)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        spinner.stop()
