"""Home Assistant discovery and Homie through the real bridge and a real Mosquitto."""

import json
import os
import signal
import subprocess
import sys

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from meter_pty import PtyMeter
from mosquitto import MosquittoBroker
from mqtt_helpers import Received, Subscriber, wait_until
from test_bridge import RunningBridge, make_config, simulated

pytestmark = pytest.mark.integration


EXPECTED_KEYS = {
    "energy_import_tariff_1",
    "energy_export_tariff_2",
    "gas_volume",
    "water_volume",
    "power_import",
    "voltage_l1",
    "demand_import_month_peak",
    "capacity_quarter_projected_kw",
    "total_energy_import_day",
    "total_gas_volume_year",
    "health_crc_errors",
}
"""Entities a Belgian T211 with gas and water gets (a sample of them)."""


def configs(messages: list[Received]) -> dict[str, dict[str, object]]:
    """Discovery configs received, by topic (empty payloads are removals)."""
    return {m.topic: json.loads(m.payload) for m in messages if m.payload}


def announce_online(broker: MosquittoBroker, discovery_prefix: str = "homeassistant") -> None:
    """Play Home Assistant coming up: `online` on its status topic."""
    client = paho.Client(CallbackAPIVersion.VERSION2)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        client.publish(f"{discovery_prefix}/status", "online", qos=1).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()


def test_discovery_configs_are_retained_and_state_topics_carry_values(
    mosquitto: MosquittoBroker, meter: PtyMeter
) -> None:
    """Every entity announced (retained) reads a topic that carries a value of the right kind."""
    config = make_config(
        mosquitto,
        meter.path,
        "ha1",
        **{"homeassistant.enabled": True, "capacity.publish_interval": 0},
    )
    running = RunningBridge(config)
    try:
        wait_until(lambda: running.bridge.health.port_state == "open")
        meter.write(b"".join(simulated(3)))
        wait_until(lambda: running.bridge.health.telegrams_decoded == 3)
        with Subscriber(mosquitto.host, mosquitto.port, "homeassistant/#") as first:
            first.wait_for(lambda ms: {m.topic.split("/")[-2] for m in ms} >= EXPECTED_KEYS)
        with Subscriber(mosquitto.host, mosquitto.port, "homeassistant/#") as late:
            late.wait_for(len(first.messages))
            assert all(m.retain for m in late.messages)
            announced = configs(late.messages)
        with Subscriber(mosquitto.host, mosquitto.port, "ha1/#") as states:
            # Retained readings arrive at once; telegram and capacity with the next telegram.
            meter.write(simulated(4)[3])
            states.wait_for(lambda ms: {"ha1/capacity", "ha1/totals"} <= {m.topic for m in ms})
            values = {m.topic: m.text for m in states.messages}
    finally:
        assert running.finish() == 0
    keys = {topic.split("/")[-2] for topic in announced}
    assert keys >= EXPECTED_KEYS
    assert not any(key.startswith("total_energy_import_tariff") for key in keys)
    for topic, entity in announced.items():
        assert entity["availability_topic"] == "ha1/status", topic
        state_topic = entity["state_topic"]
        assert isinstance(state_topic, str)
        if state_topic == "ha1/text_message":
            continue  # empty: an empty retained payload deletes the retained message
        assert state_topic in values, f"{topic}: nothing on {state_topic}"
        if "value_template" not in entity and "unit_of_measurement" in entity:
            float(values[state_topic])  # numeric entities must get numbers
    energy = announced[
        "homeassistant/sensor/" + topic_node(announced) + "/energy_import_tariff_1/config"
    ]
    assert energy["device_class"] == "energy"
    assert energy["state_class"] == "total_increasing"
    assert energy["unit_of_measurement"] == "kWh"
    assert energy["name"] == "Energy imported, tariff 1 (day)"
    gas = announced["homeassistant/sensor/" + topic_node(announced) + "/gas_volume/config"]
    assert (gas["device_class"], gas["unit_of_measurement"]) == ("gas", "m³")
    gas_today = announced[
        "homeassistant/sensor/" + topic_node(announced) + "/total_gas_volume_day/config"
    ]
    assert (gas_today["device_class"], gas_today["unit_of_measurement"]) == ("gas", "m³")
    assert gas["device"]["via_device"] == energy["device"]["identifiers"][0]  # type: ignore[index]


def topic_node(announced: dict[str, dict[str, object]]) -> str:
    """The node id part of the config topics (one meter)."""
    (node,) = {topic.split("/")[2] for topic in announced}
    return node


def test_discovery_resent_when_home_assistant_comes_online(
    mosquitto: MosquittoBroker, meter: PtyMeter
) -> None:
    """Home Assistant saying `online` on homeassistant/status brings the configs again."""
    config = make_config(mosquitto, meter.path, "ha2", **{"homeassistant.enabled": True})
    running = RunningBridge(config)
    try:
        wait_until(lambda: running.bridge.health.broker_state == "connected")
        meter.write(simulated(1)[0])
        with Subscriber(mosquitto.host, mosquitto.port, "homeassistant/sensor/#") as subscriber:
            subscriber.wait_for(lambda ms: len(ms) > 60)
            subscriber.clear()
            announce_online(mosquitto)
            meter.write(simulated(2)[1])
            subscriber.wait_for(lambda ms: sum(not m.retain for m in ms) > 60)
    finally:
        assert running.finish() == 0


def start_bridge(broker: MosquittoBroker, meter: PtyMeter, prefix: str) -> subprocess.Popen[str]:
    """`p1mqtt run` with Homie on, as its own process."""
    return subprocess.Popen(
        [
            sys.executable, "-m", "p1mqtt", "run",
            "--port", str(meter.path),
            "--broker", f"mqtt://{broker.host}:{broker.port}",
            "--prefix", prefix,
            "--data-dir", str(meter.path.parent / "state"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "P1MQTT_HOMEASSISTANT_ENABLED": "false",
            "P1MQTT_HOMIE_ENABLED": "true",
            "P1MQTT_HOMIE_DEVICE_ID": f"meter-{prefix}",
        },
    )  # fmt: skip


def test_homie_ready_then_lost_when_killed(mosquitto: MosquittoBroker, meter: PtyMeter) -> None:
    """Homie's $state goes init -> ready with data, and `lost` (the will) when p1mqtt dies."""
    process = start_bridge(mosquitto, meter, "hm1")
    state = "homie/meter-hm1/$state"
    try:
        with Subscriber(mosquitto.host, mosquitto.port, "homie/meter-hm1/#") as subscriber:
            meter.wait_opened_by(process.pid)
            with meter.streaming(simulated(1)):
                subscriber.wait_for(
                    lambda ms: "ready" in [m.text for m in ms if m.topic == state], timeout=20
                )
            topics = {m.topic for m in subscriber.messages}
            assert "homie/meter-hm1/$homie" in topics
            assert "homie/meter-hm1/$nodes" in topics
            assert subscriber.payloads(state)[0] == "init"
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=10)
            subscriber.wait_for(lambda ms: ms[-1].topic == state and ms[-1].text == "lost", 30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_homie_disconnected_on_clean_stop(mosquitto: MosquittoBroker, meter: PtyMeter) -> None:
    """A clean stop sets Homie's $state to `disconnected`, as the convention asks."""
    process = start_bridge(mosquitto, meter, "hm2")
    state = "homie/meter-hm2/$state"
    try:
        with Subscriber(mosquitto.host, mosquitto.port, state) as subscriber:
            meter.wait_opened_by(process.pid)
            with meter.streaming(simulated(1)):
                subscriber.wait_for(lambda ms: "ready" in [m.text for m in ms], timeout=20)
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=10)
            assert process.returncode == 0, stderr
            subscriber.wait_for(lambda ms: ms[-1].text == "disconnected")
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
