"""Configuring the standard library's logging once, from the ``logging`` configuration."""

import logging
import logging.handlers
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
        file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            file, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
        )
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
