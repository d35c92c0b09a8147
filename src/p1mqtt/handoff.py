"""A bounded first-in-first-out hand-off from one thread to another, cheap on both sides."""

import queue
import threading
from typing import Generic, TypeVar

__all__ = ["Handoff"]

T = TypeVar("T")


class Handoff(Generic[T]):
    """Items from producer threads to one consumer, at most ``capacity`` of them waiting.

    :class:`queue.Queue` does the same with a Python-level condition on every ``get`` and
    ``put``; here the items travel through a :class:`queue.SimpleQueue` (implemented in C, so a
    waiting consumer is woken by one lock release) and a semaphore counts the free places.
    :meth:`signal` puts an item that does not count against the bound (a wake-up, an end
    marker), so it can always be sent, even to a full hand-off.
    """

    def __init__(self, capacity: int) -> None:
        self._items: queue.SimpleQueue[tuple[bool, T]] = queue.SimpleQueue()
        self._room = threading.Semaphore(capacity)

    def put(self, item: T, timeout: float) -> bool:
        """Add ``item`` when there is room within ``timeout`` seconds; False if there was not."""
        if not self._room.acquire(timeout=timeout):
            return False
        self._items.put((True, item))
        return True

    def signal(self, item: T) -> None:
        """Add ``item`` at once, outside the bound."""
        self._items.put((False, item))

    def get(self, timeout: float | None = None) -> T:
        """The oldest item, waiting up to ``timeout`` seconds; :class:`queue.Empty` if none."""
        counted, item = self._items.get(timeout=timeout)
        if counted:
            self._room.release()
        return item

    def get_nowait(self) -> T:
        """The oldest item if there is one; :class:`queue.Empty` otherwise."""
        return self.get(timeout=0)

    def qsize(self) -> int:
        """Items waiting (approximate while other threads add or take)."""
        return self._items.qsize()
