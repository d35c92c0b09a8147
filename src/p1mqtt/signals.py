"""Stopping cleanly on SIGTERM / SIGINT (Ctrl+C, and Ctrl+Break on Windows), in one place."""

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["stop_on_signals"]

logger = logging.getLogger(__name__)

_FORCED_EXIT = 130


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Set ``stop`` on the first termination signal; a second one forces the exit.

    The previous handlers are restored on leaving. Must be entered from the main thread.
    """
    names = ["SIGINT", "SIGTERM", "SIGBREAK"]
    signals = [getattr(signal, name) for name in names if hasattr(signal, name)]

    def handle(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            logger.warning("second %s: exiting at once", signal.Signals(signum).name)
            os._exit(_FORCED_EXIT)
        logger.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
