"""An in-process MQTT broker for ``p1mqtt demo``, so the demo needs nothing else running.

It is amqtt (the ``demo`` extra), run on its own asyncio loop in a thread, listening on the
loopback interface only. It is a demonstration aid, not something to run a home on: for that,
use Mosquitto.
"""

import asyncio
import logging
import socket
import threading
from typing import Any

from p1mqtt.errors import P1MqttError

__all__ = ["EmbeddedBroker"]

logger = logging.getLogger(__name__)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


class EmbeddedBroker:
    """An MQTT broker on ``host`` (loopback by default) in a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or _free_port(host)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="p1mqtt-embedded-broker")

    def start(self, timeout: float = 15.0) -> None:
        """Start the broker and wait until it accepts connections."""
        try:
            from amqtt.broker import Broker  # noqa: F401, PLC0415 - optional extra
        except ImportError as error:
            raise P1MqttError(
                "the embedded broker needs the demo extra (pip install 'p1mqtt[demo]'); "
                "or give --broker mqtt://host to use your own broker"
            ) from error
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise P1MqttError(f"the embedded MQTT broker did not start: {self._error}")
        logger.info("embedded MQTT broker listening on %s:%d", self.host, self.port)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the broker and its thread."""
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # reported to start(), or logged when it dies later
            self._error = error
            if self._ready.is_set():
                logger.exception("the embedded MQTT broker failed")
            self._ready.set()

    async def _serve(self) -> None:
        from amqtt.broker import Broker  # noqa: PLC0415 - optional extra

        config: dict[str, Any] = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        broker = Broker(config)
        await broker.start()
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            await broker.shutdown()
