"""Logging a repeating fault once, then as periodic summaries with counts.

A meter with a bad cable can produce a CRC error every second for days; the log must say so
once, clearly, and then only summarise ("57 more CRC errors in the last 5 min"), never flood.
"""

import logging
from dataclasses import dataclass

__all__ = ["FaultLog"]


@dataclass(slots=True)
class _Fault:
    first_logged: float
    last_summary: float
    pending: int = 0
    last_detail: str = ""


class FaultLog:
    """Logs the first occurrence of each kind of fault, then a summary every ``interval`` s.

    Time is passed in (monotonic seconds), so the behaviour is testable without a clock.
    """

    def __init__(self, logger: logging.Logger, interval: float = 300.0) -> None:
        self._logger = logger
        self._interval = interval
        self._faults: dict[str, _Fault] = {}

    def fault(self, kind: str, message: str, now: float, level: int = logging.WARNING) -> None:
        """Record one occurrence of ``kind``; log it if it is the first in a while."""
        fault = self._faults.get(kind)
        if fault is None:
            self._faults[kind] = _Fault(now, now)
            self._logger.log(level, "%s", message)
            return
        fault.pending += 1
        fault.last_detail = message
        self.flush(now, only=kind, level=level)

    def flush(self, now: float, *, only: str | None = None, level: int = logging.WARNING) -> None:
        """Log the summaries that are due (all of them with ``now=float('inf')``)."""
        for kind, fault in list(self._faults.items()):
            if only is not None and kind != only:
                continue
            if now - fault.last_summary < self._interval:
                continue
            if fault.pending:
                minutes = (
                    max(1, round((now - fault.last_summary) / 60)) if now != float("inf") else None
                )
                span = f" in the last {minutes} min" if minutes else ""
                self._logger.log(
                    level,
                    "%d more %s%s (last: %s)",
                    fault.pending,
                    kind,
                    span,
                    fault.last_detail,
                )
                fault.pending = 0
                fault.last_summary = now
            else:
                # Quiet for a whole interval: the next occurrence is news again.
                del self._faults[kind]

    def resolved(self, kind: str, message: str | None = None) -> None:
        """The fault is gone; log ``message`` (if given) when it had been reported."""
        fault = self._faults.pop(kind, None)
        if fault is not None and message:
            if fault.pending:
                self._logger.info(
                    "%s (%d more %s since the last report)", message, fault.pending, kind
                )
            else:
                self._logger.info("%s", message)
