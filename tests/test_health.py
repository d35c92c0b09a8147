"""The health controller's counters, silence detection and JSON."""

import json
import logging

import pytest

from p1mqtt.faultlog import FaultLog
from p1mqtt.health import Health
from p1mqtt.protocol import BytesDiscarded, Decoder, FrameRejected, RejectReason, encode_telegram


def test_counts_decoder_events() -> None:
    """Telegrams, CRC errors, other rejections and discarded bytes are counted separately."""
    health = Health(started=0.0)
    good = encode_telegram("FLU5\\253769484_A", ["1-0:1.8.1(000001.000*kWh)"])
    bad = good[:-6] + b"0000\r\n"
    for event in Decoder().feed(b"xx" + good + bad):
        health.record(event, 5.0)
    health.record(FrameRejected(RejectReason.INCOMPLETE, "cut", 0, 10), 6.0)
    health.record(BytesDiscarded(3, 0), 6.0)
    snapshot = health.snapshot(7.0)
    assert snapshot["telegrams_decoded"] == 1
    assert snapshot["crc_errors"] == 1
    assert snapshot["frames_rejected"] == 2
    assert snapshot["bytes_discarded"] == 5
    assert snapshot["last_telegram_age"] == 2.0
    assert snapshot["state"] == "ok"


def test_silence_reported_once_per_period() -> None:
    """check_stale is true after stale_after seconds of silence, then once per period."""
    health = Health(started=0.0, stale_after=10.0)
    assert [health.check_stale(t) for t in (5.0, 10.0, 15.0, 20.0)] == [
        False,
        True,
        False,
        True,
    ]
    assert health.snapshot(20.0)["state"] == "stale"


def test_a_telegram_ends_the_silence() -> None:
    """A decoded telegram resets the staleness."""
    health = Health(started=0.0, stale_after=10.0)
    assert health.check_stale(11.0)
    for event in Decoder().feed(encode_telegram("X5", ["1-0:1.8.1(1*kWh)"])):
        health.record(event, 12.0)
    assert not health.check_stale(13.0)
    assert json.loads(health.to_json(13.0))["state"] == "ok"


def test_fault_log_logs_once_then_summarises(caplog: pytest.LogCaptureFixture) -> None:
    """A repeating fault is logged once, then summarised with a count per interval."""
    log = FaultLog(logging.getLogger("test.faults"), interval=300)
    with caplog.at_level(logging.INFO, "test.faults"):
        for second in range(301):
            log.fault("CRC errors", f"CRC mismatch {second}", float(second))
        log.resolved("CRC errors", "telegrams are fine again")
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "CRC mismatch 0",
        "300 more CRC errors in the last 5 min (last: CRC mismatch 300)",
        "telegrams are fine again",
    ]


def test_fault_log_forgets_after_a_quiet_interval(caplog: pytest.LogCaptureFixture) -> None:
    """A fault that recurs after a quiet interval is logged in full again."""
    log = FaultLog(logging.getLogger("test.faults2"), interval=60)
    with caplog.at_level(logging.INFO, "test.faults2"):
        log.fault("port", "port gone", 0.0)
        log.flush(100.0)
        log.fault("port", "port gone again", 200.0)
    assert [r.getMessage() for r in caplog.records] == ["port gone", "port gone again"]
