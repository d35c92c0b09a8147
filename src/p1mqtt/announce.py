"""When to announce the meter: Home Assistant discovery and the Homie device description.

Announcements are retained, so they are sent when they can have changed or been lost: with the
first telegram, when a telegram brings a different set of readings, after every reconnection
to the broker, and when Home Assistant says ``online`` on its status topic (it restarted and
may have lost them). The payloads themselves come from the pure builders in
:mod:`p1mqtt.discovery`.
"""

import logging
import threading
from collections.abc import Callable, Hashable, Mapping

from p1mqtt.discovery import (
    ha_computed_entities,
    ha_discovery_messages,
    homie_messages,
    homie_state_message,
    homie_values,
)
from p1mqtt.protocol import Telegram
from p1mqtt.topics import Message

__all__ = ["Announcer"]

logger = logging.getLogger(__name__)

Include = Callable[[str, str], bool]


class Announcer:
    """Produces discovery and Homie messages when they are due."""

    def __init__(
        self,
        *,
        prefix: str,
        include: Include,
        discovery_prefix: str | None,
        homie_base: str | None,
        homie_device: str = "p1meter",
    ) -> None:
        """``discovery_prefix`` None switches Home Assistant off, ``homie_base`` None Homie."""
        self._prefix = prefix
        self._include = include
        self._discovery_prefix = discovery_prefix
        self._homie_base = homie_base
        self._homie_device = homie_device
        self._requested = threading.Event()
        self._layout: tuple[tuple[str, ...], Hashable] | None = None
        self._stale = False

    @property
    def homie_enabled(self) -> bool:
        """Whether Homie output is on."""
        return self._homie_base is not None

    def request(self) -> None:
        """Announce again with the next telegram (thread-safe: called from paho's thread)."""
        self._requested.set()

    def due(self, telegram: Telegram, computed: Hashable = None) -> bool:
        """Whether announcements are due with ``telegram`` (call once per telegram).

        ``computed`` describes the computed topics' shape (which capacity and totals figures
        exist); a change in it, as in the telegram's readings, announces again.
        """
        layout = (tuple(telegram.keys.values()), computed)
        if self._requested.is_set() or layout != self._layout:
            self._requested.clear()
            self._layout = layout
            return True
        return False

    def discovery(
        self, telegram: Telegram, *, capacity: bool, totals: Mapping[str, str | None]
    ) -> list[Message]:
        """The Home Assistant configs for ``telegram`` (empty when Home Assistant is off)."""
        if self._discovery_prefix is None:
            return []
        computed = ha_computed_entities(
            telegram, prefix=self._prefix, capacity=capacity, totals=totals
        )
        messages = ha_discovery_messages(
            telegram,
            prefix=self._prefix,
            discovery_prefix=self._discovery_prefix,
            include=self._include,
            computed=computed,
        )
        logger.info("announced %d entities to Home Assistant", len(messages))
        return messages

    def homie(self, telegram: Telegram, announce: bool, published: set[str]) -> list[Message]:
        """Homie messages: the device description when ``announce``, then the values of the
        readings published this time (so Homie follows the same filters and throttling)."""
        if self._homie_base is None:
            return []
        base, device = self._homie_base, self._homie_device
        messages: list[Message] = []
        if announce or self._stale:
            self._stale = False
            messages += homie_messages(
                telegram, base_topic=base, device_id=device, include=self._include
            )
        values = homie_values(telegram, base_topic=base, device_id=device, include=self._include)
        messages += [m for m in values if m.topic.rsplit("/", 1)[-1].replace("-", "_") in published]
        return messages

    def homie_alert(self) -> list[Message]:
        """The meter went silent: Homie ``$state`` ``alert`` (``ready`` again with data)."""
        if self._homie_base is None or self._stale:
            return []
        self._stale = True
        return [
            homie_state_message("alert", base_topic=self._homie_base, device_id=self._homie_device)
        ]
