"""The bounded hand-off between the reader and the processor."""

import queue
import threading
import time

import pytest

from p1mqtt.handoff import Handoff


def test_items_come_out_in_order_and_the_bound_holds() -> None:
    """FIFO; a full hand-off refuses after the timeout; taking an item makes room again."""
    handoff: Handoff[int] = Handoff(2)
    assert handoff.put(1, timeout=0)
    assert handoff.put(2, timeout=0)
    assert not handoff.put(3, timeout=0.05)
    assert handoff.qsize() == 2
    assert handoff.get_nowait() == 1
    assert handoff.put(3, timeout=0)
    assert [handoff.get_nowait() for _ in range(2)] == [2, 3]
    with pytest.raises(queue.Empty):
        handoff.get(timeout=0.01)


def test_signals_pass_a_full_handoff_and_take_no_room() -> None:
    """A signal goes in even when full, keeps its place in the order, frees nothing."""
    handoff: Handoff[str] = Handoff(1)
    assert handoff.put("a", timeout=0)
    handoff.signal("wake")
    assert [handoff.get_nowait(), handoff.get_nowait()] == ["a", "wake"]
    assert handoff.put("b", timeout=0)
    assert not handoff.put("c", timeout=0)


def test_a_waiting_consumer_is_woken_by_a_put_and_a_waiting_producer_by_a_get() -> None:
    """Both sides block without polling and wake as soon as the other side acts."""
    handoff: Handoff[int] = Handoff(1)
    received: list[int] = []
    consumer = threading.Thread(target=lambda: received.append(handoff.get(timeout=5)))
    consumer.start()
    time.sleep(0.05)
    assert handoff.put(7, timeout=0)
    consumer.join(5)
    assert received == [7]
    assert handoff.put(8, timeout=0)
    threading.Timer(0.05, handoff.get).start()
    assert handoff.put(9, timeout=5)
    assert handoff.get_nowait() == 9
