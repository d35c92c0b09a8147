"""Store and forward: the telegram stream reaches the broker in order, kept on disk when it must.

Each ``<prefix>/telegram`` message is handed to the publisher, in order, at most :data:`WINDOW`
at a time awaiting the broker's acknowledgement. While the broker is connected and keeps up,
that is all: a message acknowledged within :data:`WRITE_GRACE` never touches the disk (on a
LAN the acknowledgement takes about a millisecond). A message that is not acknowledged by then,
every message handed while the broker is away or while older ones wait, and every unacknowledged
message at a stop or when the connection drops, is written to the :class:`~p1mqtt.outbox.Outbox`
(one commit for all that are due) and deleted from it once acknowledged. While the broker is
away nothing new is handed (the publisher keeps, and re-sends first, what it already has), so
the publisher's memory holds at most a window of the queue and never drops any of it. After a
restart, the rows still on disk are handed again first, in order.

What a crash can cost: a message lives in memory only while it is younger than
:data:`WRITE_GRACE` *and* the connection to the broker is up, i.e. after it was written to the
broker's socket. A ``kill -9`` (or a power cut) in that second loses it only if the broker did
not receive it either; during an outage every telegram is on disk within a commit of its
decoding, as before.

Delivery is at least once: a row whose acknowledgement arrived but whose deletion had not been
committed when the process was killed (deletions wait up to :data:`DELETE_DELAY` to share the
next commit) is sent again after the restart; a message whose acknowledgement was lost when the
connection broke is sent again by the publisher. Subscribers that must not count a telegram
twice can recognise it by its meter timestamp (``0-0:1.0.0``).

Threads: everything runs on the bridge's processor thread except the acknowledgement callback,
which runs on the publisher's network thread and only puts the message on a queue (and wakes
the processor while there is a backlog to hand on).
"""

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from p1mqtt.outbox import Outbox, Pruned, Row
from p1mqtt.topics import Message

__all__ = ["DELETE_DELAY", "WINDOW", "WRITE_GRACE", "DeliverySink", "Forwarder"]

logger = logging.getLogger(__name__)

WINDOW = 100
"""Messages handed to the publisher and not yet acknowledged, at most."""
WRITE_GRACE = 1.0
"""Seconds a handed message may wait for the broker's acknowledgement before it is written to
disk (acknowledged sooner, it never is)."""
DELETE_DELAY = 1.0
"""Seconds acknowledged rows may wait to be deleted together with the next write (one commit
instead of two); a kill in between sends them again after the restart."""


class DeliverySink(Protocol):
    """What the forwarder needs of a publisher (:class:`~p1mqtt.mqtt.MqttPublisher` is one)."""

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up."""

    def publish(
        self,
        topic: str,
        payload: str | bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        on_delivered: Callable[[], None] | None = None,
    ) -> None:
        """Queue one message; call ``on_delivered`` once the broker acknowledged it."""


@dataclass(slots=True, eq=False)
class _Handed:
    """A message handed to the publisher and not acknowledged yet."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    meter_time: str | None
    handed_at: float
    row_id: int | None
    """Its row in the outbox; None while it is in memory only."""


class Forwarder:
    """Moves messages through the outbox to the publisher (see the module docstring).

    ``wake`` is called (from the network thread) when acknowledgements free room in the window
    while rows wait to be handed, so the caller runs :meth:`pump` soon; :meth:`pump` must also
    run at least every second or so (it writes the messages whose acknowledgement is late).
    When the outbox fails (a full disk, a damaged file), the forwarder says so once and
    publishes directly from then on, like a bridge without a data directory.
    """

    def __init__(
        self,
        outbox: Outbox,
        sink: DeliverySink,
        *,
        window: int = WINDOW,
        wake: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Forward the rows of ``outbox`` (those from an earlier run first) to ``sink``."""
        self._outbox: Outbox | None = outbox
        self._clock = clock
        self._sink = sink
        self._window = window
        self._wake = wake
        self._acks: queue.SimpleQueue[_Handed] = queue.SimpleQueue()
        self._handed: set[_Handed] = set()
        # Handed while connected and caught up, not written to disk (yet), in hand order.
        self._unsaved: list[_Handed] = []
        # Rows appended by this process, by id, until handed (or too many wait).
        self._recent: dict[int, Row] = {}
        self._done: list[int] = []  # rows acknowledged, not deleted yet
        self._done_since = 0.0
        self._cursor = 0  # the id of the last row handed
        self._backlog = threading.Event()  # rows wait for room in the window
        self._woken = threading.Event()
        self._held = bool(outbox.count)  # rows waited for the broker (or a restart)
        self._late = 0  # rows handed since then
        self._dropped = 0
        oldest = outbox.pending(0, 1) if outbox.count else []
        if oldest:
            logger.info(
                "the store-and-forward queue %s holds %d telegrams from an earlier run (the "
                "oldest from %s); they are delivered first, in order",
                outbox.path,
                outbox.count,
                oldest[0].meter_time or "an unknown time",
            )

    @property
    def depth(self) -> int:
        """Messages awaiting the broker's acknowledgement, on disk or handed from memory."""
        return self.saved + len(self._unsaved)

    @property
    def saved(self) -> int:
        """Messages on disk awaiting the broker's acknowledgement."""
        if self._outbox is None:
            return 0
        self._take_acks()
        return self._outbox.count - len(self._done)

    @property
    def dropped(self) -> int:
        """Messages dropped from the outbox because it was full or they were too old."""
        return self._dropped

    @property
    def handed(self) -> int:
        """Messages handed to the publisher and not acknowledged yet."""
        return len(self._handed)

    def add(self, message: Message, meter_time: str | None) -> None:
        """Forward ``message``: straight to the publisher when it keeps up, else via disk."""
        outbox = self._outbox
        if outbox is None:
            self._publish_directly(message)
            return
        self._take_acks()
        payload = message.payload.encode()
        if (
            self._cursor >= outbox.last_id
            and len(self._handed) < self._window
            and self._sink.connected
        ):
            entry = _Handed(
                message.topic,
                payload,
                message.qos,
                message.retain,
                meter_time,
                self._clock(),
                None,
            )
            self._unsaved.append(entry)
            self._hand_one(entry)
            self.pump()
            return
        try:
            with outbox.batch():
                # The handed ones first: they are older, and the ids give the order.
                self._save(outbox, len(self._unsaved))
                outbox.delete(self._done)
                row_id = outbox.append(
                    message.topic, payload, message.qos, message.retain, meter_time
                )
        except sqlite3.Error as error:
            self._failed(error)
            self._publish_directly(message)
            return
        self._done.clear()
        recent = self._recent
        recent[row_id] = Row(
            row_id, message.topic, payload, message.qos, message.retain, meter_time, 0.0
        )
        if len(recent) > self._window * 2:
            del recent[next(iter(recent))]
        self.pump()

    def pump(self) -> None:
        """Write the late messages, delete the acknowledged rows, hand the next ones."""
        outbox = self._outbox
        if outbox is None:
            return
        self._woken.clear()
        try:
            self._take_acks()
            now = self._clock()
            late = self._count_late(now)
            delete = bool(self._done) and (
                len(self._done) >= self._window or now - self._done_since >= DELETE_DELAY
            )
            if late or delete:
                with outbox.batch():
                    self._save(outbox, late)
                    if delete:
                        outbox.delete(self._done)
                if delete:
                    self._done.clear()
            self._hand(outbox)
        except sqlite3.Error as error:
            self._failed(error)

    def prune(self, now: float) -> Pruned:
        """Apply the outbox bounds (``now`` is wall-clock time); log what was dropped, once."""
        outbox = self._outbox
        if outbox is None:
            return Pruned(0, 0)
        try:
            pruned = outbox.prune(now)
        except sqlite3.Error as error:
            self._failed(error)
            return Pruned(0, 0)
        if pruned.total:
            self._dropped += pruned.total
            reasons = []
            if pruned.over_size:
                reasons.append(f"{pruned.over_size} because the queue was full")
            if pruned.too_old:
                reasons.append(f"{pruned.too_old} older than the age limit")
            logger.warning(
                "store-and-forward queue: dropped %d queued telegrams, the oldest first (%s); "
                "the broker has been unreachable too long for storage.outbox_max_mb / "
                "storage.outbox_max_age_days",
                pruned.total,
                ", ".join(reasons),
            )
        return pruned

    def drain(self, deadline: float) -> None:
        """Hand and see acknowledged what can be before ``deadline`` (monotonic; stopping)."""
        while self._outbox is not None and self._sink.connected:
            self.pump()
            if not self._handed or time.monotonic() >= deadline:
                return
            try:
                entry = self._acks.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return
            self._acks.put(entry)

    def close(self) -> None:
        """Write what is not acknowledged, delete what is, close the outbox (rows stay)."""
        outbox = self._outbox
        if outbox is None:
            return
        self._take_acks()
        try:
            with outbox.batch():
                self._save(outbox, len(self._unsaved))
                outbox.delete(self._done)
        except sqlite3.Error as error:
            self._failed(error)
            return
        self._done.clear()
        if outbox.count:
            logger.info(
                "%d telegrams stay in the store-and-forward queue %s for the next start",
                outbox.count,
                outbox.path,
            )
        outbox.close()
        self._outbox = None

    # -- internals --------------------------------------------------------------------------

    def _count_late(self, now: float) -> int:
        """How many of the oldest in-memory messages must be written now (all when away)."""
        unsaved = self._unsaved
        if not unsaved:
            return 0
        if not self._sink.connected:
            return len(unsaved)
        late = 0
        for entry in unsaved:
            if now - entry.handed_at < WRITE_GRACE:
                break
            late += 1
        return late

    def _save(self, outbox: Outbox, count: int) -> None:
        """Write the ``count`` oldest in-memory messages (inside the caller's batch).

        They were handed already, so the cursor moves past them: everything on disk before
        them was handed too (messages are handed from memory only when nothing waits).
        """
        if not count:
            return
        for entry in self._unsaved[:count]:
            entry.row_id = outbox.append(
                entry.topic, entry.payload, entry.qos, entry.retain, entry.meter_time
            )
            self._cursor = entry.row_id
        del self._unsaved[:count]

    def _hand(self, outbox: Outbox) -> None:
        if self._cursor >= outbox.last_id:
            self._caught_up()
            return
        if not self._sink.connected:
            self._backlog.clear()
            self._held = True
            return
        room = self._window - len(self._handed)
        if room <= 0:
            self._backlog.set()
            return
        rows = self._from_memory(room) or outbox.pending(self._cursor, room)
        now = self._clock()
        for row in rows:
            entry = _Handed(
                row.topic, row.payload, row.qos, row.retain, row.meter_time, now, row.id
            )
            self._hand_one(entry)
            self._cursor = row.id
        if self._held:
            self._late += len(rows)
        if len(rows) < room:  # everything on disk is handed (the rest was pruned)
            self._cursor = outbox.last_id
            self._caught_up()
        else:
            self._backlog.set()

    def _hand_one(self, entry: _Handed) -> None:
        self._handed.add(entry)
        self._sink.publish(
            entry.topic,
            entry.payload,
            qos=max(1, entry.qos),  # an acknowledgement is what deletes the row
            retain=entry.retain,
            on_delivered=self._acknowledger(entry),
        )

    def _from_memory(self, room: int) -> list[Row]:
        """The next rows to hand, when this process appended them: no read-back from disk.

        Ids of rows appended one after another are consecutive; a gap (a backlog older than
        what is kept in memory, or rows from an earlier run) means reading the disk instead.
        """
        recent = self._recent
        rows: list[Row] = []
        next_id = self._cursor + 1
        while len(rows) < room and (row := recent.pop(next_id, None)) is not None:
            rows.append(row)
            next_id += 1
        return rows

    def _caught_up(self) -> None:
        self._backlog.clear()
        if self._held and self._late:
            logger.info(
                "store-and-forward queue caught up: %d telegrams kept while the broker was "
                "away (or from an earlier run) were sent to it, in order",
                self._late,
            )
        self._held = False
        self._late = 0

    def _acknowledger(self, entry: _Handed) -> Callable[[], None]:
        def acknowledged() -> None:
            self._acks.put(entry)
            if self._backlog.is_set() and not self._woken.is_set() and self._wake is not None:
                self._woken.set()
                self._wake()

        return acknowledged

    def _take_acks(self) -> None:
        """Settle the acknowledgements that arrived, freeing room in the window."""
        acks = self._acks
        while not acks.empty():
            entry = acks.get_nowait()
            self._handed.discard(entry)
            if entry.row_id is None:
                self._unsaved.remove(entry)  # usually the first
                continue
            if not self._done:
                self._done_since = self._clock()
            self._done.append(entry.row_id)

    def _publish_directly(self, message: Message) -> None:
        self._sink.publish(message.topic, message.payload, qos=message.qos, retain=message.retain)

    def _failed(self, error: sqlite3.Error) -> None:
        outbox = self._outbox
        if outbox is None:
            return
        self._outbox = None
        self._unsaved.clear()  # handed: the publisher keeps them until acknowledged
        logger.error(
            "the store-and-forward queue %s failed (%s): until p1mqtt restarts, telegrams are "
            "published directly and not kept on disk while the broker is away",
            outbox.path,
            error,
        )
        try:
            outbox.close()
        except sqlite3.Error as close_error:
            logger.debug("closing the failed queue: %s", close_error)
