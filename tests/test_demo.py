"""`p1mqtt demo`: the quick start's first command works with nothing else running."""

import os
import signal
import subprocess
import sys

import pytest

from mosquitto import MosquittoBroker

pytestmark = pytest.mark.integration


def start_demo(*args: str) -> subprocess.Popen[str]:
    """Start `python -m p1mqtt demo` with its output captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "p1mqtt", "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={key: value for key, value in os.environ.items() if not key.startswith("P1MQTT_")},
    )


def test_demo_with_embedded_broker_prints_messages_and_exits() -> None:
    """With no broker given, the embedded one carries the readings to the printed lines."""
    process = start_demo("--duration", "5")
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    lines = stdout.splitlines()
    assert any(line.startswith("p1mqtt/telegram  {") for line in lines)
    assert any(line.startswith("p1mqtt/energy_import_tariff_1  ") for line in lines)
    assert any(line.startswith("p1mqtt/gas_volume  ") for line in lines)
    assert any(line.startswith("homeassistant/sensor/") for line in lines)
    assert "p1mqtt/status  online" in lines
    assert "Traceback" not in stderr


def test_demo_stops_cleanly_on_ctrl_c(mosquitto: MosquittoBroker) -> None:
    """Ctrl+C (SIGINT) stops the demo with exit status 0 and the bridge marks itself offline."""
    process = start_demo("--broker", f"mqtt://{mosquitto.host}:{mosquitto.port}", "--prefix", "d1")
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("d1/telegram  "):
                break
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "d1/status  offline" in stdout
    assert "Traceback" not in stderr
