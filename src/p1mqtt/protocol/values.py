"""Parsing of the text inside one pair of brackets: numbers, units and hex octet strings."""

import re
from decimal import Decimal

__all__ = ["decode_octet_string", "is_obis_shaped", "parse_number", "split_unit"]

_OBIS = re.compile(r"\d{1,3}-\d{1,3}:\d{1,3}\.\d{1,3}\.\d{1,3}(?:\.\d{1,3})?")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def split_unit(text: str) -> tuple[str, str | None]:
    """Split ``"000123.456*kWh"`` into ``("000123.456", "kWh")``; no ``*`` means no unit."""
    value, star, unit = text.partition("*")
    if not star:
        return text, None
    return value, unit


def parse_number(text: str) -> Decimal | None:
    """Return the exact decimal value of ``text``, or ``None`` when it is not a plain number.

    Only plain decimal notation is accepted: ``Decimal()`` would also take ``NaN``, ``1e5`` or
    ``1_000``, which a meter never sends and a corrupt line must not turn into a reading.
    """
    digits = text[1:] if text[:1] == "-" else text
    digits = digits.replace(".", "", 1)
    if digits.isdigit() and digits.isascii() and text[-1] != ".":
        return Decimal(text)
    return None


def is_obis_shaped(text: str) -> bool:
    """Whether ``text`` looks like an OBIS reference such as ``1-0:1.6.0``."""
    return _OBIS.fullmatch(text) is not None


def decode_octet_string(raw: str) -> str | None:
    """Decode a hex-encoded octet string to text, or ``None`` if it is not printable hex.

    ``"3153414733313031303231363035"`` becomes ``"1SAG3101021605"``. Padding spaces and NULs
    around the text are removed (a Sibelga meter sends 48 spaces as its version).
    """
    if len(raw) % 2 or not _HEX_DIGITS.issuperset(raw):
        return None
    data = bytes.fromhex(raw)
    if not all(32 <= byte < 127 or byte in (0, 9, 10, 13) for byte in data):
        return None
    return data.decode("ascii").strip(" \x00")
