"""Building telegram bytes: the inverse of decoding, for the simulator and for tests."""

from collections.abc import Iterable

from p1mqtt.protocol.crc import crc16_arc

__all__ = ["encode_telegram"]


def encode_telegram(header: str, lines: Iterable[str], *, with_crc: bool = True) -> bytes:
    """A complete telegram: ``/header``, a blank line, ``lines``, ``!`` and the CRC, CR LF each.

    ``header`` is given without its ``/``; ``lines`` are data lines such as
    ``"1-0:1.8.1(000123.456*kWh)"``. Without ``with_crc`` the end line is a bare ``!`` (DSMR 2.2).
    """
    text = "/" + header + "\r\n\r\n" + "".join(line + "\r\n" for line in lines) + "!"
    body = text.encode("ascii")
    if not with_crc:
        return body + b"\r\n"
    return body + f"{crc16_arc(body):04X}\r\n".encode("ascii")
