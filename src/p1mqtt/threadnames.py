"""Threads named in the operating system too, so that ``top -H`` and ``ps -L`` tell them apart.

Python (before 3.14) names its threads only for itself; the OS shows every thread as
``python3``. On Linux :func:`name_os_thread` sets the kernel's name of the calling thread
(15 bytes at most, the kernel's limit). Elsewhere it does nothing; it never raises.
"""

from p1mqtt.libc import linux_libc_function

__all__ = ["name_os_thread"]

_PR_SET_NAME = 15
"""``prctl`` option that names the calling thread (``<linux/prctl.h>``)."""
_MAX_NAME = 15


def name_os_thread(name: str) -> None:
    """Give the calling thread ``name`` in the OS (cut to 15 bytes); best effort."""
    prctl = linux_libc_function("prctl")
    if prctl is not None:
        prctl(_PR_SET_NAME, name.encode()[:_MAX_NAME], 0, 0, 0)
