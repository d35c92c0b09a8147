"""The store-and-forward queue: messages kept on disk until the broker acknowledged them.

One SQLite file (``outbox.sqlite3`` in the data directory) holds the ``<prefix>/telegram``
messages that were decoded but not yet acknowledged by the broker, in the order they were
decoded. The row ids only grow (``AUTOINCREMENT``), so "after id N" is a stable cursor even when
every row was deleted. Bounded by age and by size: :meth:`Outbox.prune` drops the oldest rows.

Durability: the journal is a write-ahead log with ``synchronous = NORMAL``. Every append is a
committed transaction, so a killed process (``kill -9``, a crash, an OOM kill) loses nothing
that was appended: the log is in the kernel's page cache and is replayed on the next open. A
power cut can lose the appends the kernel had not yet written to the disk (normally the last
half minute or less; at most those since the last checkpoint, a few minutes at one telegram a
second) but never corrupts the file. ``synchronous = FULL`` would close that gap with an
``fsync`` per telegram, 86 400 a day on what is often an SD card: not worth its wear for
readings that a power cut stops producing anyway.

Payloads are compressed with zlib against a *dictionary*, a recent payload of the same kind
kept in the file: telegrams differ from one second to the next in a few digits, so a 4.4 kB
telegram JSON takes some 150 bytes, and the default 100 MB keeps more than a week of telegrams
at one per second. Size bounds count these stored bytes.

Threading: an :class:`Outbox` is used by one thread at a time (the bridge's processor). The
file is opened in exclusive locking mode, so a second p1mqtt on the same data directory gets a
clear :class:`OutboxError` instead of interleaving its rows.
"""

import contextlib
import logging
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from p1mqtt.errors import P1MqttError

__all__ = ["OUTBOX_FILE", "Outbox", "OutboxError", "Pruned", "Row"]

logger = logging.getLogger(__name__)

OUTBOX_FILE = "outbox.sqlite3"
"""The file name of the queue in the data directory."""
SCHEMA_VERSION = 1
ROW_OVERHEAD = 48
"""Bytes counted per row on top of its topic and stored payload (ids, times, b-tree cells)."""
_COMPRESS_FROM = 128
"""Payloads shorter than this are stored as they are."""
_NEW_DICTIONARY_RATIO = 0.5
"""A payload that compresses worse than this against the dictionary becomes the new one..."""
_DICTIONARY_RENEWAL = (100, 1000)
"""...once this many rows used the dictionary; and every so many rows anyway, since the
readings drift away from those of the dictionary (a 4.4 kB dictionary every 1000 telegrams
costs 4.4 bytes a telegram and saves some 20)."""
_MEM_LEVEL = 6
_MAX_DICTIONARY = 32 * 1024  # zlib's window: a longer dictionary is not used beyond this
_CHUNK = 500  # ids per statement, well below SQLite's limit on host parameters
CACHE_KIB = 256
"""SQLite's page cache for the file, KiB (its default is 2000): the queue is appended at one end
and read and deleted at the other, so a few dozen pages are all it reuses, and the default cache
would, over a long outage, fill and stay in the service's memory (some 2 MiB more, measured)."""
_CORRUPT_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}

_SCHEMA = """
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    dictionary INTEGER,  -- NULL: payload as is; else zlib-compressed with dictionaries.id
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    meter_time TEXT,
    stored_at REAL NOT NULL,
    size INTEGER NOT NULL
);
CREATE TABLE dictionaries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    data BLOB NOT NULL
);
"""


class OutboxError(P1MqttError):
    """The queue file cannot be used (permissions, a full disk, another p1mqtt holding it)."""


class _CorruptError(Exception):
    """The file is not a usable queue: it is moved aside and a new one started."""


@dataclass(frozen=True, slots=True)
class Row:
    """One queued message."""

    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    meter_time: str | None
    """The meter's clock for the telegram (ISO 8601), when known."""
    stored_at: float
    """Wall-clock time (``time.time()``) it was queued."""


class Pruned(NamedTuple):
    """What :meth:`Outbox.prune` dropped."""

    too_old: int
    over_size: int

    @property
    def total(self) -> int:
        """Rows dropped for either reason."""
        return self.too_old + self.over_size


class Outbox:
    """A bounded, ordered, on-disk queue of MQTT messages (see the module docstring).

    Opening creates the file when missing; a file that is not a valid queue (corrupt, not a
    database, written by a newer p1mqtt) is renamed ``outbox.sqlite3.corrupt-<time>`` with a
    log line and a new one is started. Other failures raise :class:`OutboxError`.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int,
        max_age: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Open or create the queue at ``path``; ``max_age`` in seconds of ``clock`` (wall)."""
        self._path = path
        self._clock = clock
        self._max_bytes = max_bytes
        self._max_age = max_age
        self._in_batch = False
        self._dictionary: tuple[int, bytes] | None = None
        self._dictionaries: dict[int, bytes] = {}
        self._rows_since_dictionary = 0
        try:
            self._db = self._connect()
        except _CorruptError as error:
            self._move_aside(str(error))
            self._db = self._connect_new()
        count, size, last = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) + (SELECT COALESCE(SUM(LENGTH(data) + ?), 0) "
            "FROM dictionaries), (SELECT seq FROM sqlite_sequence WHERE name = 'messages') "
            "FROM messages",
            (ROW_OVERHEAD,),
        ).fetchone()
        self._count: int = count
        self._size: int = size
        self._last_id: int = last or 0

    # -- opening ----------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(
                self._path, timeout=1.0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as error:
            raise OutboxError(_describe(self._path, error)) from error
        try:
            self._configure(db)
        except BaseException:
            db.close()
            raise
        return db

    def _connect_new(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except _CorruptError as error:
            raise OutboxError(f"cannot create the queue file {self._path}: {error}") from error

    def _configure(self, db: sqlite3.Connection) -> None:
        try:
            # Exclusive before the first access: one process at a time, and WAL needs no
            # shared-memory file. auto_vacuum only takes effect on a new, empty file.
            db.execute("PRAGMA locking_mode = EXCLUSIVE")
            db.execute("PRAGMA auto_vacuum = INCREMENTAL")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")  # what a power cut can lose: see above
            db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")  # negative: KiB, not pages
            db.execute("PRAGMA journal_size_limit = 4194304")
            problems = [row[0] for row in db.execute("PRAGMA quick_check(3)")]
            if problems != ["ok"]:
                raise _CorruptError("; ".join(problems))
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = {
                row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if version == 0 and not tables:
                db.executescript(
                    f"BEGIN; {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                )
            elif version != SCHEMA_VERSION or not {"messages", "dictionaries"} <= tables:
                raise _CorruptError(
                    f"schema version {version}, this p1mqtt reads version {SCHEMA_VERSION}"
                )
            else:
                db.execute("BEGIN IMMEDIATE")  # take the write lock now and keep it
                db.execute("COMMIT")
        except sqlite3.DatabaseError as error:
            if getattr(error, "sqlite_errorcode", 0) & 0xFF in _CORRUPT_CODES:
                raise _CorruptError(str(error)) from error
            raise OutboxError(_describe(self._path, error)) from error

    def _move_aside(self, why: str) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self._path.with_name(f"{self._path.name}.corrupt-{stamp}")
        try:
            self._path.replace(target)
            for suffix in ("-wal", "-shm"):
                side = self._path.with_name(self._path.name + suffix)
                if side.exists():
                    side.replace(target.with_name(target.name + suffix))
        except OSError as error:
            raise OutboxError(
                f"the queue file {self._path} is damaged ({why}) and cannot be moved aside: "
                f"{error.strerror or error}"
            ) from error
        logger.error(
            "the store-and-forward queue %s is damaged (%s): moved it to %s and started a new "
            "one; telegrams it held are not delivered",
            self._path,
            why,
            target.name,
        )

    # -- figures ----------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The queue's file."""
        return self._path

    @property
    def count(self) -> int:
        """Rows queued."""
        return self._count

    @property
    def size_bytes(self) -> int:
        """Bytes the queued rows take: topics, stored (compressed) payloads, per-row overhead."""
        return self._size

    @property
    def last_id(self) -> int:
        """The id of the newest row ever appended (0 for a new file), queued or not."""
        return self._last_id

    # -- changes ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Run several changes as one transaction (one commit, all or nothing)."""
        if self._in_batch:
            yield
            return
        saved = (self._count, self._size, self._last_id, self._dictionary)
        self._db.execute("BEGIN IMMEDIATE")
        self._in_batch = True
        try:
            yield
            self._in_batch = False
            self._db.execute("COMMIT")
        except BaseException:
            self._in_batch = False
            self._count, self._size, self._last_id, self._dictionary = saved
            self._dictionaries.clear()  # a rolled-back dictionary's id will be used again
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise

    def append(
        self, topic: str, payload: bytes, qos: int, retain: bool, meter_time: str | None
    ) -> int:
        """Queue one message, committed before this returns; its id (always growing)."""
        with self.batch():
            stored, dictionary = self._encode(payload)
            size = len(stored) + len(topic.encode()) + len(meter_time or "") + ROW_OVERHEAD
            cursor = self._db.execute(
                "INSERT INTO messages (topic, payload, dictionary, qos, retain, meter_time, "
                "stored_at, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (topic, stored, dictionary, qos, int(retain), meter_time, self._clock(), size),
            )
            row_id = cursor.lastrowid
            assert row_id is not None  # noqa: S101 -- an INSERT always sets it
            self._count += 1
            self._size += size
            self._last_id = row_id
        return row_id

    def pending(self, after_id: int = 0, limit: int = 100) -> list[Row]:
        """Up to ``limit`` queued rows with ids above ``after_id``, oldest first.

        A row whose payload cannot be restored (a damaged file) is deleted with an error
        logged, so that one bad row cannot block the queue.
        """
        rows = self._db.execute(
            "SELECT id, topic, payload, dictionary, qos, retain, meter_time, stored_at "
            "FROM messages WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        ).fetchall()
        out = []
        damaged: dict[int, str] = {}
        for row_id, topic, stored, dictionary, qos, retain, meter, at in rows:
            try:
                payload = self._decode(stored, dictionary)
            except _CorruptError as error:
                damaged[row_id] = str(error)
                continue
            out.append(Row(row_id, topic, payload, qos, bool(retain), meter, at))
        if damaged:
            self.delete(damaged)
            logger.error(
                "dropped %d damaged rows from the store-and-forward queue %s (%s)",
                len(damaged),
                self._path,
                next(iter(damaged.values())),
            )
        return out

    def delete(self, ids: Iterable[int]) -> int:
        """Remove the rows ``ids`` (absent ones are ignored); how many were removed."""
        wanted = sorted(set(ids))
        if not wanted:
            return 0
        removed = 0
        with self.batch():
            for start in range(0, len(wanted), _CHUNK):
                chunk = _padded(wanted[start : start + _CHUNK])
                marks = ",".join("?" * len(chunk))
                count, size = self._db.execute(
                    f"SELECT COUNT(*), COALESCE(SUM(size), 0) FROM messages WHERE id IN ({marks})",  # noqa: S608 -- only "?" marks
                    chunk,
                ).fetchone()
                self._db.execute(f"DELETE FROM messages WHERE id IN ({marks})", chunk)  # noqa: S608 -- only "?" marks
                removed += count
                self._count -= count
                self._size -= size
        return removed

    def prune(self, now: float) -> Pruned:
        """Drop rows queued before ``now - max_age`` and, oldest first, beyond ``max_bytes``.

        ``now`` is wall-clock time (``time.time()``). Also forgets compression dictionaries no
        row needs and, when the queue is empty, gives the file's free pages back to the disk.
        """
        cutoff = now - self._max_age
        excess = self._size - self._max_bytes
        too_old = over_size = 0
        last = None
        if self._count and (excess > 0 or self._oldest_stored_at() < cutoff):
            rows = self._db.execute("SELECT id, stored_at, size FROM messages ORDER BY id")
            try:
                for row_id, stored_at, size in rows:
                    if stored_at < cutoff:
                        too_old += 1
                    elif excess > 0:
                        over_size += 1
                    else:
                        break
                    excess -= size
                    last = row_id
            finally:
                rows.close()
        with self.batch():
            if last is not None:
                count, size = self._db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM messages WHERE id <= ?", (last,)
                ).fetchone()
                self._db.execute("DELETE FROM messages WHERE id <= ?", (last,))
                self._count -= count
                self._size -= size
            self._forget_dictionaries()
        if self._count == 0 and self._db.execute("PRAGMA freelist_count").fetchone()[0]:
            self._db.execute("PRAGMA incremental_vacuum")
        return Pruned(too_old, over_size)

    def close(self) -> None:
        """Close the file (a checkpoint folds the write-ahead log into it)."""
        self._db.close()

    # -- compression ------------------------------------------------------------------------

    def _oldest_stored_at(self) -> float:
        row = self._db.execute("SELECT stored_at FROM messages ORDER BY id LIMIT 1").fetchone()
        return float("inf") if row is None else float(row[0])

    def _encode(self, payload: bytes) -> tuple[bytes, int | None]:
        """The bytes to store and the id of the dictionary they need (inside a batch)."""
        if len(payload) < _COMPRESS_FROM:
            return payload, None
        current = self._dictionary
        if current is not None:
            compressed = _compress(payload, current[1])
            self._rows_since_dictionary += 1
            poor = len(compressed) > len(payload) * _NEW_DICTIONARY_RATIO
            soon, late = _DICTIONARY_RENEWAL
            used = self._rows_since_dictionary
            if used < soon or (not poor and used < late):
                if len(compressed) >= len(payload):
                    return payload, None
                return compressed, current[0]
        data = payload[-_MAX_DICTIONARY:]
        cursor = self._db.execute("INSERT INTO dictionaries (data) VALUES (?)", (data,))
        assert cursor.lastrowid is not None  # noqa: S101 -- an INSERT always sets it
        self._dictionary = (cursor.lastrowid, data)
        self._dictionaries[cursor.lastrowid] = data
        self._rows_since_dictionary = 0
        self._size += len(data) + ROW_OVERHEAD
        return _compress(payload, data), cursor.lastrowid

    def _decode(self, stored: bytes, dictionary: int | None) -> bytes:
        if dictionary is None:
            return stored
        data = self._dictionaries.get(dictionary)
        if data is None:
            row = self._db.execute(
                "SELECT data FROM dictionaries WHERE id = ?", (dictionary,)
            ).fetchone()
            if row is None:
                raise _CorruptError(f"compression dictionary {dictionary} is missing")
            data = self._dictionaries[dictionary] = row[0]
        decompressor = zlib.decompressobj(zdict=data)
        try:
            return decompressor.decompress(stored) + decompressor.flush()
        except zlib.error as error:
            raise _CorruptError(f"a payload cannot be decompressed: {error}") from error

    def _forget_dictionaries(self) -> None:
        """Delete the dictionaries no row needs (rows and dictionaries are made in id order)."""
        row = self._db.execute(
            "SELECT dictionary FROM messages WHERE dictionary IS NOT NULL ORDER BY id LIMIT 1"
        ).fetchone()
        keep_from = row[0] if row is not None else None
        if self._dictionary is not None:
            current = self._dictionary[0]
            keep_from = current if keep_from is None else min(keep_from, current)
        if keep_from is None:
            keep_from = 1 << 62
        freed = self._db.execute(
            "SELECT COALESCE(SUM(LENGTH(data) + ?), 0) FROM dictionaries WHERE id < ?",
            (ROW_OVERHEAD, keep_from),
        ).fetchone()[0]
        self._size -= freed
        self._db.execute("DELETE FROM dictionaries WHERE id < ?", (keep_from,))
        for old in [key for key in self._dictionaries if key < keep_from]:
            del self._dictionaries[old]


def _padded(chunk: list[int]) -> list[int]:
    """``chunk`` lengthened to a power of two (or :data:`_CHUNK`) by repeating its last id.

    ``id IN (...)`` matches a row once however often its id is listed, and the statements then
    come in ten shapes instead of one per length: the connection keeps its compiled
    statements (128 of them), and one per length, with the forwarder deleting anything from 1
    to 100 ids at a time, held some 0.8 MiB more (measured).
    """
    size = min(1 << (len(chunk) - 1).bit_length(), _CHUNK)
    return chunk + chunk[-1:] * (size - len(chunk))


def _compress(payload: bytes, dictionary: bytes) -> bytes:
    # memLevel 6 instead of 8: the same output for payloads of a few kB, and a third of the
    # time (measured: 25 instead of 70-90 us for a 4.4 kB telegram), since zlib's state then
    # stays small enough that the C allocator reuses its memory instead of mapping it anew.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 15, _MEM_LEVEL, zdict=dictionary)
    return compressor.compress(payload) + compressor.flush()


def _describe(path: Path, error: sqlite3.Error) -> str:
    text = str(error)
    if "locked" in text:
        return (
            f"the queue file {path} is in use by another process (another p1mqtt with the same "
            "storage.data_dir?)"
        )
    return f"cannot use the queue file {path}: {text}"
