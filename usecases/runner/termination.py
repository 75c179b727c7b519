"""SIGTERM (a scheduler's time limit, ``kill``) becomes an exception in the main thread.

Python runs a signal handler between two bytecodes of the main thread; when that moment falls
inside a garbage-collector callback (JAX and TensorFlow register some), the exception raised
there is dropped (and printed as "Exception ignored"). ``TerminationGuard`` therefore raises
again every two seconds until the run has handled the termination, and keeps the dropped ones
quiet.
"""

from __future__ import annotations

import _thread
import signal
import sys
import threading


class Terminated(BaseException):  # like KeyboardInterrupt: no `except Exception` swallows it
    """Raised in the main thread when the process receives SIGTERM."""


class TerminationGuard:
    """Context manager: SIGTERM raises Terminated until ``handled()`` is called."""

    def __init__(self, *, repeat_s: float = 2.0) -> None:
        self._received = threading.Event()
        self._handled = threading.Event()
        self._repeat_s = repeat_s
        self._previous = None
        self._previous_hook = sys.unraisablehook

    def __enter__(self) -> TerminationGuard:
        self._previous = signal.signal(signal.SIGTERM, self._handler)
        self._previous_hook = sys.unraisablehook
        sys.unraisablehook = self._unraisable
        return self

    def __exit__(self, *exc) -> None:
        self.handled()
        signal.signal(signal.SIGTERM, self._previous)
        sys.unraisablehook = self._previous_hook

    def _unraisable(self, info) -> None:
        if info.exc_type is not Terminated:  # a lost Terminated is raised again anyway
            self._previous_hook(info)

    @property
    def received(self) -> bool:
        """Whether SIGTERM arrived (even if what it raised was turned into another error)."""
        return self._received.is_set()

    def handled(self) -> None:
        """Stop raising: the run has caught Terminated (or finished)."""
        self._handled.set()

    def _handler(self, signum, frame) -> None:
        if not self._received.is_set():
            self._received.set()
            threading.Thread(target=self._repeat, daemon=True).start()
        if not self._handled.is_set():
            raise Terminated

    def _repeat(self) -> None:
        while not self._handled.wait(self._repeat_s):
            _thread.interrupt_main(signal.SIGTERM)
