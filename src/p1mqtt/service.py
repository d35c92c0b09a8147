"""The bridge: meter port -> decoder -> topics -> MQTT, as a long-running service.

Roles (from the original design, merged where a queue would only add a hop):

* the **reader** thread reads the port and splits the bytes into telegram frames (finding a
  telegram's end is cheap), handing the raw frames to a bounded queue; a full queue holds it
  back a while, then the oldest batch is dropped, so it never stalls on the processor;
* the **processor** (the calling thread) decodes the frames, turns telegrams into messages,
  applies filters and throttling, and hands them to the sink; it is also the **health
  controller**: counters, silence detection (log, publish, reopen the port) and periodic
  ``<prefix>/health``;
* the **sink** (paho-mqtt's own network thread) publishes, queueing while the broker is away.

The ``<prefix>/telegram`` stream goes through the store-and-forward queue
(:mod:`p1mqtt.forwarder`): kept until the broker acknowledged it, on disk across outages and
restarts.
The per-reading topics go straight to the sink, which keeps only their newest values while the
broker is away (they are all published again after a reconnect anyway).

Stopping (SIGTERM, Ctrl+C): stop reading, publish what is queued, mark ``offline``, disconnect;
telegrams not acknowledged by then stay on disk for the next start.
A thread that dies of an unexpected exception logs it with its traceback and stops the service
with exit status 1: never a process that runs on with a dead thread.
"""

import contextlib
import dataclasses
import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from p1mqtt import __version__
from p1mqtt.announce import Announcer
from p1mqtt.computed import ComputedReadings
from p1mqtt.config import Config
from p1mqtt.discovery import ha_birth_topic, homie_will
from p1mqtt.faultlog import FaultLog
from p1mqtt.forwarder import Forwarder
from p1mqtt.handoff import Handoff
from p1mqtt.health import Health
from p1mqtt.memory import HeapTrimmer
from p1mqtt.mqtt import MqttPublisher, MqttSettings
from p1mqtt.outbox import OUTBOX_FILE, Outbox, OutboxError
from p1mqtt.paths import default_data_dir
from p1mqtt.protocol import (
    Decoder,
    FrameRejected,
    RejectReason,
    Telegram,
    TelegramDecoded,
    TelegramJsonEncoder,
)
from p1mqtt.protocol.framing import FramingEvent, Truncated
from p1mqtt.sources import PortReader, PortSettings
from p1mqtt.statusfile import STATUS_FILE_NAME, RunStatus, StatusFile
from p1mqtt.systemd import Notifier
from p1mqtt.threadnames import name_os_thread
from p1mqtt.topics import Message, ReadingPolicy, TopicMapper, TopicRules

__all__ = ["Bridge", "Sink", "mqtt_settings", "port_settings", "topic_rules"]

logger = logging.getLogger(__name__)

QUEUE_SIZE = 300
"""Batches of frames held for the processor: five minutes of telegrams at one per second. Frames
are raw bytes (about 1.5 kB a telegram), not decoded telegrams, so a full queue takes a few MB
at most."""
STOP_BUDGET = 4.0
"""Seconds a stop may take once the reader ended: forwarding, then the sinks' flush and close."""
FORWARD_ON_STOP = 1.0
"""Seconds of :data:`STOP_BUDGET` for handing queued telegrams to a connected broker."""
BACKPRESSURE_LIMIT = 5.0
"""Seconds the reader waits for room in a full queue before it drops the oldest batch."""
PRUNE_INTERVAL = 60.0
"""Seconds between two applications of the store-and-forward queue's size and age bounds."""
PROCESSOR_TICK = 1.0
"""Seconds the processor sleeps at most when idle: silence, unacknowledged telegrams (written to
disk after a second) and the status file are looked at that often."""
DRAIN_AT_ONCE = 50
"""Queued items the processor takes at once before its housekeeping."""


class Sink(Protocol):
    """Where messages go (the MQTT publisher; tests may use another)."""

    def start(self) -> None:
        """Begin connecting in the background."""

    def publish(
        self, topic: str, payload: str | bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Publish or queue one message; never block on the network."""

    def stop(self, timeout: float = 5.0) -> None:
        """Mark offline, deliver what is queued, disconnect."""


def port_settings(config: Config) -> PortSettings:
    """The port settings of a configuration."""
    serial = config.serial
    return PortSettings(
        port=serial.port,
        baudrate=serial.baudrate,
        bytesize=serial.bytesize,
        parity=serial.parity,
        stopbits=serial.stopbits,
        reopen_delay_min=serial.reopen_delay_min,
        reopen_delay_max=serial.reopen_delay_max,
    )


def mqtt_settings(config: Config) -> MqttSettings:
    """The MQTT client settings of a configuration (status topic as Last Will)."""
    mqtt = config.mqtt
    tls = config.tls
    return MqttSettings(
        host=mqtt.host,
        port=mqtt.port,
        use_tls=mqtt.use_tls,
        cafile=tls.cafile,
        certfile=tls.cert,
        keyfile=tls.key,
        insecure=tls.insecure,
        username=mqtt.resolved_username(),
        password=mqtt.resolved_password(),
        client_id=mqtt.resolved_client_id(),
        keepalive=mqtt.keepalive,
        protocol=mqtt.protocol,
        reconnect_delay_min=mqtt.reconnect_delay_min,
        reconnect_delay_max=mqtt.reconnect_delay_max,
        queue_size=mqtt.queue_size,
        will_topic=f"{config.topics.prefix}/status",
        will_payload="offline",
        online_payload="online",
    )


def homie_settings(config: Config) -> MqttSettings:
    """Settings of the second connection Homie needs: its Last Will is ``$state = lost``."""
    will = homie_will(base_topic=config.homie.base_topic, device_id=config.homie.device_id)
    main = mqtt_settings(config)
    return dataclasses.replace(
        main,
        client_id=f"{main.client_id}-homie",
        will_topic=will.topic,
        will_payload=will.payload,
        stop_payload="disconnected",
        online_payload=None,
    )


def prepare_data_dir(config: Config) -> Path | None:
    """The data directory, created if needed; None (with a warning) when it cannot be used."""
    directory = config.storage.data_dir or default_data_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        logger.warning(
            "cannot use the data directory %s (%s): energy totals, the status file for "
            "`p1mqtt health` and the store-and-forward queue are off; set storage.data_dir or "
            "--data-dir",
            directory,
            error.strerror or error,
        )
        return None
    return directory


def open_outbox(config: Config, data_dir: Path | None) -> Outbox | None:
    """The store-and-forward queue in ``data_dir``; None (with a warning) when unusable."""
    if data_dir is None:
        return None
    storage = config.storage
    try:
        return Outbox(
            data_dir / OUTBOX_FILE,
            max_bytes=int(storage.outbox_max_mb * 1_000_000),
            max_age=storage.outbox_max_age_days * 86_400,
        )
    except OutboxError as error:
        logger.warning(
            "%s: the store-and-forward queue is off, telegrams published while the broker is "
            "away are kept in memory only",
            error,
        )
        return None


def topic_rules(config: Config) -> TopicRules:
    """The topic rules of a configuration."""
    topics = config.topics
    filters = config.filters
    default = ReadingPolicy(filters.min_interval, filters.on_change, filters.heartbeat)
    overrides = {
        pattern: ReadingPolicy(
            default.min_interval if override.min_interval is None else override.min_interval,
            default.on_change if override.on_change is None else override.on_change,
            default.heartbeat if override.heartbeat is None else override.heartbeat,
        )
        for pattern, override in filters.overrides.items()
    }
    return TopicRules(
        prefix=topics.prefix,
        telegram=topics.telegram,
        readings=topics.readings,
        retain_readings=topics.retain_readings,
        retain_telegram=topics.retain_telegram,
        qos=config.mqtt.qos,
        include=tuple(filters.include),
        exclude=tuple(filters.exclude),
        policy=default,
        overrides=overrides,
    )


@dataclass(frozen=True, slots=True)
class _Batch:
    framed: list[FramingEvent]
    at: float


_END = object()
"""Put on the queue by the reader when it has stopped."""
_WAKE = object()
"""Put on the queue when the port or broker state changed, so health is published at once."""


class Bridge:
    """Wires reader, decoder, topics, health and sink; :meth:`run` until stopped."""

    def __init__(
        self,
        config: Config,
        *,
        sink: Sink | None = None,
        homie_sink: Sink | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self._config = config
        self._prefix = config.topics.prefix
        self._qos = config.mqtt.qos
        self._decoder = Decoder(
            config.meter.timezone, max_telegram_size=config.meter.max_telegram_size
        )
        self._encoder = TelegramJsonEncoder()
        self._mapper = TopicMapper(topic_rules(config))
        self._health = Health(started=time.monotonic(), stale_after=config.health.stale_after)
        self._queue: Handoff[_Batch | object] = Handoff(QUEUE_SIZE)
        self._dropped = 0
        self._bytes_since_telegram = 0
        self._republish = threading.Event()
        self._stopping = threading.Event()
        self._state_changed = threading.Event()
        self._faults = FaultLog(logger)
        self._failure: BaseException | None = None
        self._connected_once = False
        self._sink: Sink = sink or MqttPublisher(
            mqtt_settings(config),
            on_connected=self._on_connected,
            on_disconnected=self._on_disconnected,
        )
        self._reader = PortReader(
            port_settings(config), self._on_data, self._on_port_state, interruptible=True
        )
        data_dir = prepare_data_dir(config)
        self._status_file = StatusFile(data_dir / STATUS_FILE_NAME) if data_dir else None
        self._trimmer = HeapTrimmer()
        self._status_urgent = False
        self._notifier = notifier or Notifier()
        self._started_wall = time.time()
        discovery = config.homeassistant
        if discovery.enabled and not config.topics.readings:
            logger.warning(
                "Home Assistant discovery needs the per-reading topics (topics.readings); off"
            )
        self._announcer = Announcer(
            prefix=self._prefix,
            include=self._mapper.wanted,
            discovery_prefix=(
                discovery.discovery_prefix if discovery.enabled and config.topics.readings else None
            ),
            homie_base=config.homie.base_topic if config.homie.enabled else None,
            homie_device=config.homie.device_id,
        )
        if discovery.enabled and isinstance(self._sink, MqttPublisher):
            self._sink.subscribe(ha_birth_topic(discovery.discovery_prefix), self._on_ha_status)
        self._homie_sink: Sink | None = homie_sink
        if config.homie.enabled and homie_sink is None:
            self._homie_sink = MqttPublisher(homie_settings(config))
        self._forwarder: Forwarder | None = None
        if config.topics.telegram and isinstance(self._sink, MqttPublisher):
            outbox = open_outbox(config, data_dir)
            if outbox is not None:
                self._forwarder = Forwarder(outbox, self._sink, wake=self._wake)
        self._computed = ComputedReadings(
            prefix=self._prefix,
            qos=self._qos,
            capacity=config.capacity,
            totals=config.totals,
            state_file=data_dir / "totals.json" if data_dir else None,
            zone=config.meter.timezone,
        )

    @property
    def health(self) -> Health:
        """The live health figures (read from other threads for display only)."""
        return self._health

    # --- reader thread -------------------------------------------------------------------

    def _on_data(self, data: bytes, now: float) -> None:
        self._bytes_since_telegram += len(data)
        framed = self._decoder.frames(data)
        if framed:
            self._enqueue(_Batch(framed, now))

    def _enqueue(self, batch: _Batch) -> None:
        # A full queue means the processor is far behind (a meter sends one telegram a second;
        # the processor takes hundreds). Wait a little, in short slices so a stop is noticed:
        # a pseudo-terminal or a network dongle then holds the bytes back, nothing is lost. A
        # processor stuck for longer must not stall the reader: then drop the oldest batch.
        deadline = time.monotonic() + BACKPRESSURE_LIMIT
        while not self._queue.put(batch, timeout=0.1):
            if self._stopping.is_set() or time.monotonic() >= deadline:
                with contextlib.suppress(queue.Empty):
                    if isinstance(self._queue.get_nowait(), _Batch):
                        self._dropped += 1

    def _on_port_state(self, state: str) -> None:
        if state == "open" and self._reader.opens > 1:
            self._health.port_reopens += 1
        self._health.port_state = state
        self._state_changed.set()
        self._wake()

    def _wake(self) -> None:
        self._queue.signal(_WAKE)

    def _read(self, stop: threading.Event) -> None:
        name_os_thread("p1mqtt-reader")
        try:
            self._reader.run(stop)
            # Not the telegram being received when we stopped: only what the framer gave up.
            ended: list[FramingEvent] = [
                item for item in self._decoder.end_frames() if not isinstance(item, Truncated)
            ]
            if ended:
                self._enqueue(_Batch(ended, time.monotonic()))
        except BaseException as error:
            logger.exception("the port reader failed; stopping")
            self._failure = error
            stop.set()
        finally:
            self._queue.signal(_END)

    # --- sink callbacks (paho's thread) ------------------------------------------------------

    def _on_connected(self) -> None:
        if self._connected_once:
            self._health.mqtt_reconnects += 1
        self._connected_once = True
        self._health.broker_state = "connected"
        self._republish.set()
        self._announcer.request()
        self._state_changed.set()
        self._wake()

    def _on_ha_status(self, _topic: str, payload: bytes) -> None:
        if payload.strip().lower() == b"online":
            self._announcer.request()

    def _on_disconnected(self, reason: str) -> None:
        self._health.broker_state = f"disconnected: {reason}"
        self._state_changed.set()
        self._wake()

    # --- processor (calling thread) --------------------------------------------------------

    def run(self, stop: threading.Event) -> int:
        """Run until ``stop`` is set; return the exit status (0 clean, 1 failure)."""
        mqtt = self._config.mqtt
        logger.info(
            "p1mqtt %s: %s -> %s:%s (topics under %s/)",
            __version__,
            self._config.serial.port,
            mqtt.host,
            mqtt.port,
            self._prefix,
        )
        self._stopping = stop
        self._sink.start()
        if self._homie_sink is not None:
            self._homie_sink.start()
        reader = threading.Thread(target=self._read, args=(stop,), name="p1mqtt-reader")
        reader.start()
        self._notifier.ready(f"reading {self._config.serial.port}")
        try:
            self._process_until_end(stop, reader)
        except BaseException as error:
            logger.exception("the publisher failed; stopping")
            self._failure = error
            stop.set()
        finally:
            self._notifier.stopping()
            self._reader.interrupt()
            reader.join()
            self._shut_down()
        return 0 if self._failure is None else 1

    def _shut_down(self) -> None:
        now = time.monotonic()
        deadline = now + STOP_BUDGET
        if self._forwarder is not None:
            self._forwarder.drain(now + FORWARD_ON_STOP)
        self._publish_health(now)
        self._write_status(now, force=True)
        self._faults.flush(float("inf"))
        self._computed.close()
        if self._homie_sink is not None:
            self._homie_sink.stop(max(0.5, (deadline - time.monotonic()) / 2))
        self._sink.stop(max(0.5, deadline - time.monotonic()))
        if self._forwarder is not None:
            self._forwarder.close()

    def _process_until_end(self, stop: threading.Event, reader: threading.Thread) -> None:
        interval = self._config.health.publish_interval
        now = time.monotonic()
        next_health = now
        next_prune = now
        while True:
            timeout = max(0.0, min(next_health - now, PROCESSOR_TICK))
            try:
                items = [self._queue.get(timeout=timeout)]
            except queue.Empty:
                items = []
            # Everything already waiting, then the housekeeping once (a backlog after a stall).
            while items and len(items) < DRAIN_AT_ONCE:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            now = time.monotonic()
            for item in items:
                if item is _END:
                    return
                if isinstance(item, _Batch):
                    self._process(item)
            self._trimmer.processed(len(items), self._queue.qsize())
            if self._forwarder is not None:
                self._forwarder.pump()
                if now >= next_prune:
                    self._health.outbox_dropped += self._forwarder.prune(time.time()).total
                    next_prune = now + PRUNE_INTERVAL
            if stop.is_set():
                self._reader.interrupt()  # its read may wait for data for seconds
            else:
                self._check_silence(now)
            changed = self._state_changed.is_set()
            if changed:
                self._state_changed.clear()  # a change after this look waits for the next round
                self._status_urgent = True
            if now >= next_health or changed:
                self._publish_health(now)
                next_health = now + interval
            self._write_status(now)
            if reader.is_alive():
                # The watchdog proves both threads live: this loop runs, the reader reads.
                self._notifier.keepalive(now)

    def _process(self, batch: _Batch) -> None:
        health = self._health
        if self._republish.is_set():
            self._republish.clear()
            self._mapper.forget()
        for event in self._decoder.decode(batch.framed):
            first = health.stale or health.last_telegram is None
            if first and isinstance(event, TelegramDecoded):
                self._state_changed.set()  # data (again): health and status file at once
            health.record(event, batch.at)
            if isinstance(event, TelegramDecoded):
                self._bytes_since_telegram = 0
                self._faults.resolved("stale", "valid telegrams are arriving again")
                self._publish_telegram(event.telegram, batch.at)
            elif isinstance(event, FrameRejected):
                kind = (
                    "CRC errors"
                    if event.reason is RejectReason.CRC_MISMATCH
                    else "rejected telegrams"
                )
                self._faults.fault(kind, f"telegram rejected: {event.message}", batch.at)

    def _publish_telegram(self, telegram: Telegram, at: float) -> None:
        mapper = self._mapper
        computed = self._computed
        # The telegram first: it is what must not be lost, and what latency is measured on.
        whole = mapper.telegram_message(
            self._encoder.encode(telegram) if mapper.rules.telegram else None
        )
        if whole is not None:
            if self._forwarder is not None:
                meter_time = telegram.timestamp
                self._forwarder.add(whole, None if meter_time is None else meter_time.isoformat())
            else:
                self._send(self._sink, [whole])
        extra = computed.messages(telegram, at)
        announce = self._announcer.due(telegram, (computed.has_capacity, tuple(computed.registers)))
        if announce:
            # Before the values, so that Home Assistant knows the entities they belong to.
            self._send(
                self._sink,
                self._announcer.discovery(
                    telegram, capacity=computed.has_capacity, totals=computed.registers
                ),
            )
        readings = mapper.reading_messages(telegram, at)
        self._send(self._sink, readings + extra)
        if self._homie_sink is not None:
            start = len(self._prefix) + 1
            published = {m.topic[start:] for m in readings}
            if whole is not None:
                published.add(whole.topic[start:])
            self._send(self._homie_sink, self._announcer.homie(telegram, announce, published))

    @staticmethod
    def _send(sink: Sink, messages: list[Message]) -> None:
        for message in messages:
            sink.publish(message.topic, message.payload, qos=message.qos, retain=message.retain)

    def _write_status(self, now: float, *, force: bool = False) -> None:
        """Write the status file when due: at once for a change of state (at most once a
        second), else every 15 s; ``force``: now, whatever the interval (at the stop)."""
        urgent = self._status_urgent
        if self._status_file is None or not (force or self._status_file.due(urgent=urgent)):
            return
        self._status_urgent = False
        status = RunStatus.from_health(
            self._health, started_at=self._started_wall, wall=time.time(), monotonic=now
        )
        self._status_file.write(status, force=force, urgent=urgent)

    def _check_silence(self, now: float) -> None:
        health = self._health
        health.telegrams_dropped = self._dropped
        health.queue_depth = self._queue.qsize()
        if not health.check_stale(now):
            return
        seconds = round(health.silence(now))
        port = self._config.serial.port
        if health.port_state != "open":
            diagnosis = health.port_state
        elif self._bytes_since_telegram == 0:
            diagnosis = (
                "no data at all: check that the P1 port is activated (in Belgium, request it on "
                "the grid operator's portal) and that the cable is connected"
            )
        elif health.crc_errors and health.last_rejection and "CRC" in health.last_rejection:
            diagnosis = "telegrams fail their CRC check: a bad cable or interference"
        else:
            diagnosis = (
                f"{self._bytes_since_telegram} bytes arrived but no valid telegram: wrong speed "
                "or format (DSMR 2.2/3 meters: 9600 baud 7E1) or a cable that does not invert "
                "the signal"
            )
        self._faults.fault(
            "stale", f"no valid telegram from {port} for {seconds} s: {diagnosis}", now
        )
        self._publish_health(now)
        if self._homie_sink is not None:
            self._send(self._homie_sink, self._announcer.homie_alert())
        self._reader.request_reopen()

    def _publish_health(self, now: float) -> None:
        self._health.queue_depth = self._queue.qsize()
        sink = self._sink
        if isinstance(sink, MqttPublisher) and not sink.connected and sink.last_error:
            # Refused connections never reach on_disconnected: say why in the health too.
            self._health.broker_state = f"disconnected: {sink.last_error}"
        if self._forwarder is not None:
            self._health.outbox_depth = self._forwarder.saved
        self._sink.publish(
            f"{self._prefix}/health", self._health.to_json(now), qos=self._qos, retain=True
        )
