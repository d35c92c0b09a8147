"""The store-and-forward queue on disk (p1mqtt.outbox) and the forwarder over a fake publisher."""

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from p1mqtt.forwarder import DELETE_DELAY, WRITE_GRACE, Forwarder
from p1mqtt.outbox import OUTBOX_FILE, ROW_OVERHEAD, Outbox, OutboxError, Pruned
from p1mqtt.protocol import Decoder, TelegramDecoded, TelegramJsonEncoder
from p1mqtt.topics import Message
from test_bridge import simulated

DAY = 86_400.0


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        """The current time."""
        return self.now


@pytest.fixture
def clock() -> Clock:
    """A hand-moved wall clock."""
    return Clock()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Where the queue file goes."""
    return tmp_path / OUTBOX_FILE


@pytest.fixture
def open_outbox(path: Path, clock: Clock) -> Iterator[Callable[..., Outbox]]:
    """Open queues on ``path`` (generous bounds unless given); all are closed afterwards."""
    opened: list[Outbox] = []

    def build(max_bytes: int = 10**9, max_age: float = 7 * DAY) -> Outbox:
        outbox = Outbox(path, max_bytes=max_bytes, max_age=max_age, clock=clock)
        opened.append(outbox)
        return outbox

    yield build
    for outbox in opened:
        outbox.close()


def telegram_payloads(count: int) -> list[bytes]:
    """The JSON of ``count`` consecutive simulated telegrams, as the bridge queues them."""
    decoder = Decoder()
    encoder = TelegramJsonEncoder()
    out = []
    for raw in simulated(count):
        (event,) = decoder.feed(raw)
        assert isinstance(event, TelegramDecoded)
        out.append(encoder.encode(event.telegram).encode())
    return out


def test_rows_come_back_in_order_with_everything_kept(open_outbox: Callable[..., Outbox]) -> None:
    """Appended rows come back oldest first, with topic, payload, QoS, retain and meter time."""
    outbox = open_outbox()
    payloads = [*telegram_payloads(5), b"short", os.urandom(3000)]
    ids = [
        outbox.append("p/telegram", payload, 1, i % 2 == 0, f"2026-03-02T08:00:0{i}+00:00")
        for i, payload in enumerate(payloads)
    ]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    rows = outbox.pending(0, 100)
    assert [row.id for row in rows] == ids
    assert [row.payload for row in rows] == payloads
    assert [row.retain for row in rows] == [i % 2 == 0 for i in range(len(payloads))]
    assert rows[3].meter_time == "2026-03-02T08:00:03+00:00"
    assert {row.topic for row in rows} == {"p/telegram"}
    assert [row.id for row in outbox.pending(ids[1], 2)] == ids[2:4]
    assert outbox.count == len(payloads)


def test_delete_removes_a_batch_and_ids_never_repeat(open_outbox: Callable[..., Outbox]) -> None:
    """delete() removes the given rows, ignores absent ones; ids keep growing after it."""
    outbox = open_outbox()
    ids = [outbox.append("t", b"x" * 200, 1, False, None) for _ in range(10)]
    size_before = outbox.size_bytes
    assert outbox.delete([ids[0], ids[2], 999_999]) == 2
    assert [row.id for row in outbox.pending()] == [i for i in ids if i not in (ids[0], ids[2])]
    assert outbox.count == 8
    assert outbox.size_bytes < size_before
    assert outbox.delete(ids) == 8
    assert outbox.count == 0
    assert outbox.size_bytes <= 200 + ROW_OVERHEAD  # the compression dictionary in use
    assert outbox.append("t", b"y", 1, False, None) > ids[-1]


def test_deletes_of_every_length_remove_exactly_their_rows(
    open_outbox: Callable[..., Outbox],
) -> None:
    """Deletes of 1 to 40 ids (statements padded to a few lengths): each removes its rows only,
    and the count and size stay those of the rows left."""
    outbox = open_outbox()
    ids = [outbox.append("t", bytes([n % 256]) * 40, 1, False, None) for n in range(900)]
    left = list(ids)
    for length in range(1, 41):
        chosen = left[length : length * 2]
        assert outbox.delete(chosen) == len(chosen)
        left = [i for i in left if i not in chosen]
        assert [row.id for row in outbox.pending(0, 1000)] == left
    assert outbox.count == len(left)
    assert outbox.size_bytes == sum(len(row.payload) for row in outbox.pending(0, 1000)) + len(
        left
    ) * (len("t") + ROW_OVERHEAD)


def test_reopened_queue_keeps_rows_order_and_ids(
    open_outbox: Callable[..., Outbox], path: Path, clock: Clock
) -> None:
    """Rows survive close and reopen, decompress with the stored dictionary, ids keep growing."""
    first = open_outbox()
    payloads = telegram_payloads(20)
    ids = [first.append("p/telegram", p, 1, False, None) for p in payloads]
    first.delete(ids[-3:])  # the newest ids must not be handed out again
    size = first.size_bytes
    first.close()
    again = Outbox(path, max_bytes=10**9, max_age=7 * DAY, clock=clock)
    try:
        assert (again.count, again.size_bytes) == (17, size)
        assert [row.payload for row in again.pending(0, 100)] == payloads[:17]
        assert again.append("p/telegram", payloads[0], 1, False, None) > ids[-1]
        assert again.pending(ids[-1], 10)[0].payload == payloads[0]
    finally:
        again.close()


def test_telegrams_are_stored_compressed(open_outbox: Callable[..., Outbox], path: Path) -> None:
    """A telegram's 4.4 kB of JSON takes about 200 bytes on disk: days of outage in 100 MB."""
    outbox = open_outbox()
    payloads = telegram_payloads(2000)
    for payload in payloads:
        outbox.append("p1mqtt/telegram", payload, 1, False, "2026-03-02T09:00:00+01:00")
    per_row = outbox.size_bytes / len(payloads)
    outbox.close()
    on_disk = path.stat().st_size / len(payloads)
    days = 100e6 / per_row / DAY
    print(
        f"{len(payloads[0])} bytes of JSON per telegram; {per_row:.0f} bytes counted, "
        f"{on_disk:.0f} bytes on disk: 100 MB hold {days:.1f} days at one telegram a second"
    )
    assert per_row < 250
    assert abs(on_disk - per_row) < 0.2 * per_row  # the bound counts what the file takes
    reopened = open_outbox()
    assert [row.payload for row in reopened.pending(0, 5000)] == payloads


def test_prune_drops_rows_older_than_max_age(
    open_outbox: Callable[..., Outbox], clock: Clock
) -> None:
    """Rows queued more than max_age ago are dropped and counted; younger ones stay."""
    outbox = open_outbox(max_age=7 * DAY)
    for day in range(10):
        outbox.append("t", f"day {day}".encode(), 1, False, None)
        clock.now += DAY
    # Now is 10 days after the first row: rows of days 0, 1 and 2 are more than 7 days old.
    assert outbox.prune(clock.now) == Pruned(too_old=3, over_size=0)
    assert [row.payload for row in outbox.pending()] == [f"day {d}".encode() for d in range(3, 10)]
    assert outbox.prune(clock.now) == Pruned(0, 0)


def test_prune_drops_the_oldest_beyond_max_bytes(
    open_outbox: Callable[..., Outbox], clock: Clock
) -> None:
    """Beyond max_bytes the oldest rows go first, counted, until the queue fits again."""
    outbox = open_outbox(max_bytes=20_000)
    payloads = [os.urandom(1000) for _ in range(50)]  # incompressible: about 1 kB a row
    for payload in payloads:
        outbox.append("t", payload, 1, False, None)
    pruned = outbox.prune(clock.now)
    assert pruned.too_old == 0
    assert pruned.over_size > 0
    assert outbox.size_bytes <= 20_000
    assert outbox.count == 50 - pruned.total
    assert [row.payload for row in outbox.pending(0, 100)] == payloads[pruned.total :]
    assert outbox.prune(clock.now).total == 0


def test_prune_counts_both_reasons_and_empties_dictionaries(
    open_outbox: Callable[..., Outbox], path: Path, clock: Clock
) -> None:
    """Old rows count as too old, the oldest of the rest as over size; spare dictionaries go."""
    outbox = open_outbox(max_bytes=4_500, max_age=DAY)  # the dictionary and 3 rows of 1 kB
    for _ in range(3):
        outbox.append("t", os.urandom(1000), 1, False, None)
    clock.now += 2 * DAY
    young = [os.urandom(1000) for _ in range(5)]
    for payload in young:
        outbox.append("t", payload, 1, False, None)
    pruned = outbox.prune(clock.now)
    assert pruned.too_old == 3
    assert pruned.over_size == 2
    assert [row.payload for row in outbox.pending()] == young[2:]
    outbox.delete(row.id for row in outbox.pending())
    outbox.prune(clock.now)
    outbox.close()
    with sqlite3.connect(path) as db:
        dictionaries = db.execute("SELECT COUNT(*) FROM dictionaries").fetchone()[0]
    assert dictionaries <= 1


def test_garbage_file_is_moved_aside_and_a_new_queue_started(
    path: Path, open_outbox: Callable[..., Outbox], caplog: pytest.LogCaptureFixture
) -> None:
    """A file that is not a database is renamed *.corrupt-<time> with an error logged."""
    path.write_bytes(b"this is not an SQLite database, it was damaged\n" * 100)
    outbox = open_outbox()
    assert outbox.count == 0
    outbox.append("t", b"fresh", 1, False, None)
    assert [row.payload for row in outbox.pending()] == [b"fresh"]
    (aside,) = path.parent.glob(f"{OUTBOX_FILE}.corrupt-*")
    assert aside.read_bytes().startswith(b"this is not an SQLite")
    assert any("damaged" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)


def test_damaged_pages_are_detected_at_open(
    path: Path, open_outbox: Callable[..., Outbox], clock: Clock
) -> None:
    """Overwritten pages inside a valid file fail the check at open: moved aside, new queue."""
    first = open_outbox()
    for _ in range(200):
        first.append("t", os.urandom(2000), 1, False, None)
    first.close()
    data = bytearray(path.read_bytes())
    assert len(data) > 200_000
    data[8192 : 8192 + 4096 * 3] = b"\xa5" * (4096 * 3)  # a few interior pages
    path.write_bytes(bytes(data))
    outbox = Outbox(path, max_bytes=10**9, max_age=DAY, clock=clock)
    try:
        assert outbox.count == 0
    finally:
        outbox.close()
    assert list(path.parent.glob(f"{OUTBOX_FILE}.corrupt-*"))


def test_a_damaged_payload_is_dropped_not_blocking_the_queue(
    open_outbox: Callable[..., Outbox], path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A row whose compressed payload is damaged is dropped with an error; the others flow."""
    outbox = open_outbox()
    payloads = telegram_payloads(3)
    ids = [outbox.append("p/telegram", p, 1, False, None) for p in payloads]
    outbox.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE messages SET payload = x'00ff00ff' WHERE id = ?", (ids[1],))
    db.close()
    again = open_outbox()
    assert [row.payload for row in again.pending()] == [payloads[0], payloads[2]]
    assert again.count == 2
    assert any("damaged rows" in r.getMessage() for r in caplog.records)


def test_file_from_a_newer_schema_is_moved_aside(
    path: Path, open_outbox: Callable[..., Outbox]
) -> None:
    """A queue written with another schema version is not guessed at: moved aside."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY)")
        db.execute("PRAGMA user_version = 99")
    db.close()
    assert open_outbox().count == 0
    assert list(path.parent.glob(f"{OUTBOX_FILE}.corrupt-*"))


def test_a_second_process_cannot_share_the_queue(
    open_outbox: Callable[..., Outbox], path: Path
) -> None:
    """While one bridge holds the queue, another one opening it gets a clear OutboxError."""
    open_outbox().close()  # an existing file, opened without writing to it
    open_outbox()
    with pytest.raises(OutboxError, match="in use by another process"):
        Outbox(path, max_bytes=10**9, max_age=DAY)


def test_unwritable_directory_raises_outbox_error(tmp_path: Path) -> None:
    """A queue path that cannot be created raises OutboxError naming the file."""
    missing = tmp_path / "no" / "such" / "dir" / OUTBOX_FILE
    with pytest.raises(OutboxError, match=str(missing.parent)):
        Outbox(missing, max_bytes=10**9, max_age=DAY)


CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from p1mqtt.outbox import Outbox

    outbox = Outbox(Path(sys.argv[1]), max_bytes=10**9, max_age=86400.0)
    for i in range(int(sys.argv[2])):
        outbox.append("p/telegram", b"%d " % i + b"x" * 500, 1, False, str(i))
    print("appended", flush=True)
    sys.stdin.read()  # wait to be killed
    """
)


def test_rows_survive_kill_9_right_after_append(path: Path, clock: Clock) -> None:
    """A process killed with SIGKILL right after appending loses none of its committed rows."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), "300"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "appended\n"
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()
    outbox = Outbox(path, max_bytes=10**9, max_age=DAY, clock=clock)
    try:
        rows = outbox.pending(0, 1000)
    finally:
        outbox.close()
    assert [row.meter_time for row in rows] == [str(i) for i in range(300)]
    assert rows[-1].payload == b"299 " + b"x" * 500


# -- the forwarder ------------------------------------------------------------------------------


@dataclass
class FakeSink:
    """A publisher that records what it is handed and acknowledges on request."""

    connected: bool = True
    sent: list[tuple[str, bytes, int, bool]] = field(default_factory=list)
    unacked: list[Callable[[], None]] = field(default_factory=list)

    def publish(
        self,
        topic: str,
        payload: str | bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        on_delivered: Callable[[], None] | None = None,
    ) -> None:
        """Record the message and keep its callback."""
        data = payload.encode() if isinstance(payload, str) else payload
        self.sent.append((topic, data, qos, retain))
        if on_delivered is not None:
            self.unacked.append(on_delivered)

    def ack(self, count: int | None = None) -> None:
        """Acknowledge the oldest ``count`` messages (all by default)."""
        count = len(self.unacked) if count is None else count
        for callback in self.unacked[:count]:
            callback()
        del self.unacked[:count]

    def payloads(self) -> list[str]:
        """Payloads handed so far."""
        return [payload.decode() for _, payload, _, _ in self.sent]


def telegram(n: int, qos: int = 1) -> Message:
    """A small telegram message numbered ``n``."""
    return Message("p/telegram", f'{{"n":{n}}}', qos, False)


def test_forwarder_hands_in_order_and_acknowledged_messages_never_touch_the_disk(
    open_outbox: Callable[..., Outbox],
) -> None:
    """Connected and caught up, each message is handed at once; acknowledged within
    WRITE_GRACE it is never written."""
    outbox = open_outbox()
    sink = FakeSink()
    monotonic = Clock(100.0)
    forwarder = Forwarder(outbox, sink, clock=monotonic)
    for n in range(5):
        forwarder.add(telegram(n, qos=0), None)
    assert sink.payloads() == [f'{{"n":{n}}}' for n in range(5)]
    assert {qos for _, _, qos, _ in sink.sent} == {1}  # QoS 1 at least: the ack settles it
    assert (forwarder.depth, forwarder.saved) == (5, 0)
    sink.ack(3)
    forwarder.pump()
    assert (forwarder.depth, forwarder.handed, outbox.count) == (2, 2, 0)
    sink.ack()
    monotonic.now += WRITE_GRACE
    forwarder.pump()
    forwarder.add(telegram(5), None)
    assert (forwarder.depth, outbox.count, outbox.last_id) == (1, 0, 0)


def test_forwarder_writes_messages_not_acknowledged_within_the_grace(
    open_outbox: Callable[..., Outbox],
) -> None:
    """A late acknowledgement: the late messages go to disk, oldest first, and their rows are
    deleted once acknowledged (with the next write, or DELETE_DELAY later)."""
    outbox = open_outbox()
    sink = FakeSink()
    monotonic = Clock(100.0)
    forwarder = Forwarder(outbox, sink, clock=monotonic)
    for n in range(3):
        forwarder.add(telegram(n), f"t{n}")
        monotonic.now += 0.4
    forwarder.pump()  # n=0 was handed 1.2 s ago, n=1 0.8 s ago
    assert [row.meter_time for row in outbox.pending()] == ["t0"]
    monotonic.now += 0.8
    forwarder.pump()
    assert [row.meter_time for row in outbox.pending()] == ["t0", "t1", "t2"]
    assert (forwarder.depth, forwarder.saved, forwarder.handed) == (3, 3, 3)
    assert len(sink.sent) == 3  # written, not handed again
    sink.ack(2)
    forwarder.pump()
    assert (forwarder.depth, outbox.count) == (1, 3)
    monotonic.now += DELETE_DELAY
    forwarder.pump()
    assert [row.meter_time for row in outbox.pending()] == ["t2"]
    sink.ack()
    forwarder.add(telegram(3), "t3")  # caught up: handed from memory, no commit
    assert (forwarder.depth, outbox.count) == (1, 1)
    sink.ack()
    monotonic.now += DELETE_DELAY
    forwarder.pump()
    assert (forwarder.depth, outbox.count) == (0, 0)
    assert sink.payloads() == [f'{{"n":{n}}}' for n in range(4)]


def test_forwarder_writes_everything_handed_when_the_connection_drops(
    open_outbox: Callable[..., Outbox], path: Path, clock: Clock
) -> None:
    """Disconnected: the handed messages are written at once, then the new ones after them;
    a restart sends them all again in order."""
    outbox = open_outbox()
    sink = FakeSink()
    monotonic = Clock(100.0)
    forwarder = Forwarder(outbox, sink, clock=monotonic)
    forwarder.add(telegram(0), None)
    forwarder.add(telegram(1), None)
    sink.connected = False
    forwarder.pump()
    assert outbox.count == 2
    forwarder.add(telegram(2), None)
    assert len(sink.sent) == 2
    assert [row.payload for row in outbox.pending()] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    outbox.close()  # killed: nothing else happens
    again = Outbox(path, max_bytes=10**9, max_age=DAY, clock=clock)
    second = FakeSink()
    Forwarder(again, second).pump()
    assert second.payloads() == ['{"n":0}', '{"n":1}', '{"n":2}']


def test_forwarder_close_keeps_unacknowledged_messages_for_the_next_start(
    open_outbox: Callable[..., Outbox], path: Path, clock: Clock
) -> None:
    """A stop before the broker acknowledged: written on close, sent first after the restart."""
    outbox = open_outbox()
    sink = FakeSink()
    forwarder = Forwarder(outbox, sink, clock=Clock(100.0))
    for n in range(3):
        forwarder.add(telegram(n), None)
    sink.ack(1)
    forwarder.close()
    again = Outbox(path, max_bytes=10**9, max_age=DAY, clock=clock)
    second = FakeSink()
    forwarder = Forwarder(again, second)
    forwarder.add(telegram(3), None)
    assert second.payloads() == ['{"n":1}', '{"n":2}', '{"n":3}']


def test_forwarder_holds_back_while_disconnected_and_keeps_a_window(
    open_outbox: Callable[..., Outbox],
) -> None:
    """Nothing is handed while disconnected; then at most `window` unacknowledged, in order."""
    outbox = open_outbox()
    sink = FakeSink(connected=False)
    wakes: list[int] = []
    monotonic = Clock(100.0)
    forwarder = Forwarder(outbox, sink, window=10, wake=lambda: wakes.append(1), clock=monotonic)
    for n in range(35):
        forwarder.add(telegram(n), None)
    assert sink.sent == []
    assert forwarder.depth == 35
    sink.connected = True
    forwarder.pump()
    assert len(sink.sent) == 10
    sink.ack(4)
    assert wakes == [1]  # room in the window while rows wait: the processor is woken once
    forwarder.pump()
    assert len(sink.sent) == 14
    while sink.unacked:
        sink.ack()
        forwarder.pump()
    monotonic.now += DELETE_DELAY
    forwarder.pump()
    assert sink.payloads() == [f'{{"n":{n}}}' for n in range(35)]
    assert forwarder.depth == 0


def test_forwarder_after_restart_sends_old_rows_first(
    open_outbox: Callable[..., Outbox], path: Path, clock: Clock
) -> None:
    """Rows left by a previous run (handed or not, unacknowledged) go first, then new ones."""
    outbox = open_outbox()
    first = FakeSink()
    monotonic = Clock(100.0)
    forwarder = Forwarder(outbox, first, window=3, clock=monotonic)
    for n in range(6):
        forwarder.add(telegram(n), None)
    first.ack(2)  # acknowledged...
    forwarder.pump()
    monotonic.now += DELETE_DELAY
    forwarder.pump()  # ...and deleted; 2 more handed and lost with the process
    outbox.close()
    again = Outbox(path, max_bytes=10**9, max_age=DAY, clock=clock)
    second = FakeSink()
    forwarder = Forwarder(again, second, window=100)
    forwarder.add(telegram(6), None)
    assert second.payloads() == [f'{{"n":{n}}}' for n in range(2, 7)]
    second.ack()
    forwarder.close()


def test_forwarder_falls_back_to_direct_publishing_when_the_file_fails(
    open_outbox: Callable[..., Outbox], caplog: pytest.LogCaptureFixture
) -> None:
    """A failing queue is logged once; telegrams are then published directly, not lost."""
    outbox = open_outbox()
    sink = FakeSink()
    monotonic = Clock(100.0)
    forwarder = Forwarder(outbox, sink, clock=monotonic)
    forwarder.add(telegram(0), None)
    outbox.close()  # every later use raises sqlite3.ProgrammingError
    monotonic.now += WRITE_GRACE
    forwarder.pump()  # not acknowledged in time: the write fails
    forwarder.add(telegram(1), None)
    forwarder.add(telegram(2), None)
    forwarder.pump()
    assert sink.payloads() == ['{"n":0}', '{"n":1}', '{"n":2}']
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].levelno == logging.ERROR


def test_forwarder_prune_logs_once_with_the_count(
    open_outbox: Callable[..., Outbox], clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Dropping rows for the bounds logs one warning with the count and the reason."""
    outbox = open_outbox(max_bytes=10_000, max_age=DAY)
    forwarder = Forwarder(outbox, FakeSink(connected=False))
    for _ in range(40):
        forwarder.add(Message("p/telegram", os.urandom(400).hex(), 1, False), None)
    clock.now += 2 * DAY
    pruned = forwarder.prune(clock.now)
    assert pruned.total == 40
    assert forwarder.dropped == 40
    (warning,) = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert "dropped 40 queued telegrams" in warning.getMessage()
