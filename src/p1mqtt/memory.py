"""Giving memory back to the system: once after starting up, and after bursts of work.

Starting ``p1mqtt run`` (compiling and importing modules, validating the configuration with
pydantic, building the bridge) leaves free blocks in the C allocator's heap that the process
would otherwise keep for its whole life. :func:`release_startup_memory`, called once the bridge
is built and before its threads start, collects the garbage, returns the heap's free pages to
the system (glibc's ``malloc_trim``) and has the threads started afterwards allocate from the
main heap instead of a heap of their own each (``mallopt(M_ARENA_MAX, 1)``; the threads take
turns holding the GIL anyway, so they hardly ever wait for the allocator's lock).

A burst of telegrams (a backlog after a stall, the full-speed benchmark) does the same: the heap
grows while frames wait in the queue and stays that size, as free but resident pages, once they
were processed. :class:`HeapTrimmer`, told after each round of the processor how many batches it
processed and how many still wait, returns those pages as soon as a backlog is drained, and
every few minutes in steady running (one ``malloc_trim``, well under a millisecond, per
:data:`TRIM_AFTER` batches; at most one per :data:`TRIM_BACKLOG` batches during a burst).

Measured with ``bench/e2e.py --quick``: about 0.4 MiB less resident memory at 1 telegram/s
and 0.5 MiB less after the full-speed phase (startup); the trimmer, about 1 MiB less after a
burst of 2000 telegrams. Both are best-effort: on systems other than Linux with glibc (musl,
macOS, Windows) only the garbage is collected, and they never raise.
"""

import gc
from collections.abc import Callable

from p1mqtt.libc import linux_libc_function

__all__ = ["HeapTrimmer", "release_startup_memory", "trim_heap"]

_M_ARENA_MAX = -8
"""glibc's ``mallopt`` parameter for the number of heaps (``<malloc.h>``)."""
TRIM_AFTER = 300
"""Batches processed between two trims in steady running (five minutes at one a second)."""
TRIM_BACKLOG = 20
"""Batches waiting at once that make a backlog: the heap is trimmed once it is drained."""


def _glibc() -> tuple[Callable[[int, int], int], Callable[[int], int]] | None:
    """glibc's ``mallopt`` and ``malloc_trim``; None where they are not."""
    mallopt = linux_libc_function("mallopt")
    malloc_trim = linux_libc_function("malloc_trim")
    if mallopt is None or malloc_trim is None:
        return None
    return mallopt, malloc_trim


def trim_heap() -> None:
    """Return the C heap's free pages to the system (glibc; nothing elsewhere)."""
    functions = _glibc()
    if functions is not None:
        functions[1](0)


def release_startup_memory() -> None:
    """Collect garbage; on glibc, trim the heap and keep later threads on the main heap."""
    gc.collect()
    functions = _glibc()
    if functions is not None:
        mallopt, malloc_trim = functions
        mallopt(_M_ARENA_MAX, 1)
        malloc_trim(0)


class HeapTrimmer:
    """Decides when the processor trims the heap: after a backlog drained, and now and then."""

    def __init__(
        self,
        *,
        after: int = TRIM_AFTER,
        backlog: int = TRIM_BACKLOG,
        trim: Callable[[], None] = trim_heap,
    ) -> None:
        """Trim when the queue is empty and, since the last trim, ``after`` batches were
        processed or ``backlog`` of them were waiting at once."""
        self._after = after
        self._backlog = backlog
        self._trim = trim
        self._processed = 0
        self._deepest = 0

    def processed(self, batches: int, waiting: int) -> bool:
        """``batches`` items were just taken off the queue and ``waiting`` remain: trim now?

        Returns whether it trimmed."""
        self._processed += batches
        self._deepest = max(self._deepest, batches + waiting)
        if waiting or (self._processed < self._after and self._deepest < self._backlog):
            return False
        self._processed = self._deepest = 0
        self._trim()
        return True
