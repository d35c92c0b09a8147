"""Readings computed from telegrams: the capacity tariff (``<prefix>/capacity``) and energy
totals per day, month and year (``<prefix>/totals``)."""

import logging
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType

from p1mqtt.capacity import capacity_status, capacity_warning
from p1mqtt.config import CapacityConfig, TotalsConfig
from p1mqtt.protocol import Telegram
from p1mqtt.topics import Message
from p1mqtt.totals import TotalsTracker

__all__ = ["ComputedReadings"]

logger = logging.getLogger(__name__)


class ComputedReadings:
    """Turns each telegram into the capacity and totals messages that are due."""

    def __init__(
        self,
        *,
        prefix: str,
        qos: int,
        capacity: CapacityConfig,
        totals: TotalsConfig,
        state_file: Path | None,
        zone: str,
    ) -> None:
        self._prefix = prefix
        self._qos = qos
        self._capacity = capacity if capacity.enabled else None
        self._margin = Decimal(str(capacity.margin_kw))
        self._floor = Decimal(str(capacity.floor_kw))
        self._capacity_interval = capacity.publish_interval
        self._next_capacity = float("-inf")
        self._warning: bool | None = None
        self._totals_interval = totals.publish_interval
        self._tracker = TotalsTracker(state_file, zone) if totals.enabled else None
        self._next_totals = float("-inf")
        self._registers: Mapping[str, str | None] = MappingProxyType({})
        self._has_capacity = False

    @property
    def has_capacity(self) -> bool:
        """Whether the last telegram allowed a capacity status (a Belgian e-MUCS 1.7+ meter)."""
        return self._has_capacity

    @property
    def registers(self) -> Mapping[str, str | None]:
        """The registers the totals carry, with the meter's unit (for Home Assistant)."""
        return self._registers

    def messages(self, telegram: Telegram, now: float) -> list[Message]:
        """The messages due for ``telegram`` at monotonic time ``now``."""
        out: list[Message] = []
        if self._capacity is not None:
            # Every telegram is checked for a change of warning (published at once); the whole
            # status, which reads the 13-month history, is built only when it is published.
            warning = capacity_warning(telegram, margin_kw=self._margin, floor_kw=self._floor)
            self._has_capacity = warning is not None
            if warning is not None and (now >= self._next_capacity or warning != self._warning):
                status = capacity_status(telegram, margin_kw=self._margin, floor_kw=self._floor)
                if status is not None:
                    self._next_capacity = now + self._capacity_interval
                    self._warning = status.peak_warning
                    out.append(Message(f"{self._prefix}/capacity", status.to_json(), self._qos))
        tracker = self._tracker
        if tracker is not None and tracker.observe(telegram) and now >= self._next_totals:
            totals = tracker.current()
            if totals is not None:
                self._next_totals = now + self._totals_interval
                if set(totals.day.values) != set(self._registers):
                    self._registers = MappingProxyType(
                        {key: totals.units.get(key) for key in totals.day.values}
                    )
                out.append(Message(f"{self._prefix}/totals", totals.to_json(), self._qos, True))
        return out

    def close(self) -> None:
        """Save the totals' state (at shutdown)."""
        if self._tracker is not None:
            self._tracker.flush()
