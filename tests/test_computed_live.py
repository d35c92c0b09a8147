"""Capacity tariff and energy totals through the real bridge and a real Mosquitto."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from meter_pty import PtyMeter
from mosquitto import MosquittoBroker
from mqtt_helpers import Subscriber, wait_until
from p1mqtt.capacity import capacity_status
from p1mqtt.protocol import Decoder, TelegramDecoded
from p1mqtt.simulator import SimulatedMeter
from test_bridge import RunningBridge, make_config

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 14, 7, 59, 30, tzinfo=UTC)


def telegrams(count: int, stride: int = 1) -> list[bytes]:
    """Consecutive simulated telegrams, ``stride`` seconds apart."""
    meter = SimulatedMeter("t211", start=START, seed=5)
    return [meter.telegram(START + timedelta(seconds=i * stride)) for i in range(count)]


def test_capacity_published_as_computed(mosquitto: MosquittoBroker, meter: PtyMeter) -> None:
    """<prefix>/capacity carries, per telegram, what capacity_status computes from it."""
    sent = telegrams(5)
    decoder = Decoder()
    expected = []
    for raw in sent:
        (event,) = decoder.feed(raw)
        assert isinstance(event, TelegramDecoded)
        status = capacity_status(event.telegram)
        assert status is not None
        expected.append(json.loads(status.to_json(), parse_float=Decimal))
    with Subscriber(mosquitto.host, mosquitto.port, "c1/capacity") as subscriber:
        running = RunningBridge(
            make_config(mosquitto, meter.path, "c1", **{"capacity.publish_interval": 0})
        )
        try:
            wait_until(lambda: running.bridge.health.port_state == "open")
            meter.write(b"".join(sent))
            subscriber.wait_for(len(sent))
        finally:
            assert running.finish() == 0
    received = [json.loads(m.payload, parse_float=Decimal) for m in subscriber.messages]
    assert received == expected
    first = received[0]
    assert set(first) >= {
        "quarter_average_kw",
        "quarter_projected_kw",
        "month_peak_kw",
        "month_peak_at",
        "rolling_average_kw",
        "peak_warning",
        "shed_kw",
    }


def test_totals_are_retained_and_survive_a_restart(
    mosquitto: MosquittoBroker, meter: PtyMeter
) -> None:
    """Totals count from the first reading, are retained, and go on after a restart."""
    sent = telegrams(40, stride=30)  # 20 minutes of meter time
    overrides = {"totals.publish_interval": 0.01}
    config = make_config(mosquitto, meter.path, "c2", **overrides)
    running = RunningBridge(config)
    try:
        wait_until(lambda: running.bridge.health.port_state == "open")
        meter.write(b"".join(sent[:20]))
        wait_until(lambda: running.bridge.health.telegrams_decoded == 20)
    finally:
        assert running.finish() == 0
    with Subscriber(mosquitto.host, mosquitto.port, "c2/totals") as retained:
        retained.wait_for(1)
        before = json.loads(retained.messages[-1].payload, parse_float=Decimal)
    assert before["day"]["partial"] is True
    assert before["day"]["values"]["energy_import"] >= 0
    restarted = RunningBridge(make_config(mosquitto, meter.path, "c2", **overrides))
    try:
        wait_until(lambda: restarted.bridge.health.port_state == "open")
        with Subscriber(mosquitto.host, mosquitto.port, "c2/totals") as subscriber:
            meter.write(b"".join(sent[20:]))
            subscriber.wait_for(
                lambda ms: any(json.loads(m.payload)["time"] > before["time"] for m in ms)
            )
            after = json.loads(subscriber.messages[-1].payload, parse_float=Decimal)
    finally:
        assert restarted.finish() == 0
    for key, value in before["day"]["values"].items():
        assert after["day"]["values"][key] >= value, key  # counted on, not restarted from 0
    assert after["day"]["start"] == before["day"]["start"]
