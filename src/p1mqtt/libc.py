"""The running process's C library on Linux, through ctypes, looked up once."""

import logging
import sys
from functools import cache
from typing import Any

__all__ = ["linux_libc_function"]

logger = logging.getLogger(__name__)


@cache
def _linux_libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes  # noqa: PLC0415 - only where it is used: Linux

        return ctypes.CDLL(None)  # the symbols of the running process, libc's among them
    except (ImportError, OSError):  # Python built without ctypes, or no dynamic loading
        logger.debug("cannot reach the C library", exc_info=True)
        return None


def linux_libc_function(name: str) -> Any:
    """The C library's function ``name`` on Linux; None elsewhere or when this libc lacks it
    (musl has no ``malloc_trim``, for one): look it up, never assume it."""
    libc = _linux_libc()
    return None if libc is None else getattr(libc, name, None)
