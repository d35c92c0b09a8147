"""CRC-16/ARC as used by DSMR 4+/e-MUCS P1 telegrams.

Polynomial x^16 + x^15 + x^2 + 1 (0x8005, reflected 0xA001), initial value 0, no final XOR,
computed over every byte from ``/`` up to and including ``!``. crcmod-plus computes it in C
(and falls back to its own pure-Python table when the extension is unavailable).
"""

from collections.abc import Callable

import crcmod.predefined

crc16_arc: Callable[[bytes], int] = crcmod.predefined.mkPredefinedCrcFun("crc-16")
"""Return the CRC-16/ARC of ``data`` (check value of ``b"123456789"`` is ``0xBB3D``)."""
