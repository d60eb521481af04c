"""The one lock every caller of the model takes: reentrant, it knows who holds it, says so when a cell has
to wait, and gives up after a timeout with a message that names the holder."""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import Iterator

from .errors import ModelBusyError

__all__ = ["ModelLock"]


class ModelLock:
    """A reentrant lock with a purpose: ``hold("generating", timeout)`` in a ``with`` block."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.holder: str | None = None  # the outermost purpose while held

    @contextlib.contextmanager
    def hold(self, purpose: str, timeout: float | None) -> Iterator[None]:
        """Hold the lock for ``purpose``; wait up to ``timeout`` seconds (None: as long as it takes)."""
        acquired = self._lock.acquire(blocking=False)
        if not acquired:
            if threading.current_thread() is threading.main_thread():  # a cell: say why it is not running yet
                print(f"note: waiting for the model ({self.holder or 'another task'}); interrupt the kernel to "
                      "stop waiting.", file=sys.stderr, flush=True)
            acquired = self._lock.acquire(timeout=-1 if timeout is None else timeout)
        if not acquired:
            raise ModelBusyError(
                f"The model is busy ({self.holder or 'another task'}) for more than {timeout:.0f} s; "
                "wait for it to finish or press Stop in the chat panel, then run this again.")
        outer = self.holder
        self.holder = self.holder or purpose
        try:
            yield
        finally:
            self.holder = outer
            self._lock.release()

    @property
    def busy(self) -> bool:
        """True while some caller holds the lock."""
        if self._lock.acquire(blocking=False):
            self._lock.release()
            return False
        return True
