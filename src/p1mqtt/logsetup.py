"""Configuring the standard library's logging once, from the ``logging`` configuration."""

import logging
import sys
from pathlib import Path

__all__ = ["configure_logging"]


def configure_logging(
    level: str = "INFO",
    fmt: str = "%(asctime)s %(levelname)s %(name)s: %(message)s",
    file: Path | None = None,
    max_bytes: int = 1_000_000,
    backup_count: int = 3,
) -> None:
    """Send log records to stderr, or to a rotating file when ``file`` is given."""
    handler: logging.Handler
    if file is None:
        handler = logging.StreamHandler(sys.stderr)
    else:
        # Imported here: logging.handlers (and pickle, which it imports) is only needed for a
        # log file, and a long-running `p1mqtt run` would otherwise keep it in memory.
        from logging.handlers import RotatingFileHandler  # noqa: PLC0415

        file.parent.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(
            file, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
        )
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
