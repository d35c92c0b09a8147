"""Giving memory back to the system: when the processor trims the C heap."""

from p1mqtt.memory import HeapTrimmer, release_startup_memory, trim_heap


def trimmer(*, after: int, backlog: int) -> tuple[HeapTrimmer, list[int]]:
    """A trimmer whose trims are counted instead of done."""
    calls: list[int] = []
    return HeapTrimmer(after=after, backlog=backlog, trim=lambda: calls.append(1)), calls


def test_steady_running_trims_every_so_many_batches() -> None:
    """One batch at a time, nothing waiting: a trim every ``after`` batches."""
    heap, calls = trimmer(after=3, backlog=20)
    assert [heap.processed(1, 0) for _ in range(7)] == [
        False,
        False,
        True,
        False,
        False,
        True,
        False,
    ]
    assert len(calls) == 2


def test_a_backlog_is_trimmed_once_it_is_drained_not_before() -> None:
    """35 batches waiting at once: nothing while they drain, one trim when the queue is empty."""
    heap, calls = trimmer(after=1000, backlog=20)
    assert not heap.processed(5, 30)
    assert not heap.processed(50, 10)
    assert calls == []
    assert heap.processed(10, 0)
    assert not heap.processed(1, 0)
    assert calls == [1]


def test_idle_rounds_never_trim() -> None:
    """A processor woken by its tick with nothing to do does not trim."""
    heap, calls = trimmer(after=1, backlog=1)
    assert [heap.processed(0, 0) for _ in range(5)] == [False] * 5
    assert calls == []


def test_the_real_trim_never_raises() -> None:
    """On any platform: glibc trims, others do nothing; neither raises."""
    release_startup_memory()
    trim_heap()
    assert HeapTrimmer(after=1).processed(1, 0)
