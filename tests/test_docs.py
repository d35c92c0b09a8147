"""docs/telegram-json.md stays true: its examples are what the code prints, its key table is the
catalogue.

Each ```json block after an ``<!-- example: NAME -->`` comment is checked against the JSON the
code produces for ``telegrams.BUILDERS[NAME]``: a block with a ``header`` must equal the whole
output as laid out by :func:`render`; any other block holds a selection of objects (by OBIS code)
and ``unparsed``, each of which must equal the code's output exactly, digits included. The
block between the ``catalogue`` markers must be :func:`catalogue_table`. When a test fails it
prints the text to paste.
"""

import json
import re
from pathlib import Path
from typing import Any

import pytest

from p1mqtt.protocol import CATALOGUE, MBUS_MEDIA, TelegramJsonEncoder
from telegrams import BUILDERS, decode_one

DOC = Path(__file__).resolve().parents[1] / "docs" / "telegram-json.md"
_EXAMPLE = re.compile(r"<!-- example: (?P<name>\w+) -->\s*```json\n(?P<body>.*?)```", re.DOTALL)
_TELEGRAM = re.compile(r"<!-- telegram: (?P<name>\w+) -->\s*```text\n(?P<body>.*?)```", re.DOTALL)
_OBIS = re.compile(r"\d+-\d+:\d+\.\d+\.\d+")


class Number(str):
    """A JSON number kept as its exact text."""

    __slots__ = ()


def load(text: str) -> Any:
    """Parse JSON keeping every number's digits (``0.000`` stays ``0.000``)."""
    return json.loads(text, parse_float=Number, parse_int=Number)


def _inline(value: Any) -> str:
    if isinstance(value, Number):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_inline(k)}: {_inline(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_inline(item) for item in value) + "]"
    return json.dumps(value)


def _object(value: dict[str, Any], indent: str) -> str:
    """One object on one line, but its profile entries one per line."""
    if not value.get("entries"):
        return _inline(value)
    parts = []
    for key, item in value.items():
        if key == "entries":
            inner = f",\n{indent}    ".join(_inline(entry) for entry in item)
            parts.append(f'"entries": [\n{indent}    {inner}\n{indent}  ]')
        else:
            parts.append(f"{_inline(key)}: {_inline(item)}")
    return "{" + ", ".join(parts) + "}"


def render(document: dict[str, Any]) -> str:
    """The layout used in the docs: one object per line inside ``objects``."""
    lines = ["{"]
    items = list(document.items())
    for index, (key, value) in enumerate(items):
        comma = "," if index < len(items) - 1 else ""
        if key == "objects":
            lines.append('  "objects": {')
            objects = list(value.items())
            for number, (obis, obj) in enumerate(objects):
                last = "," if number < len(objects) - 1 else ""
                lines.append(f"    {_inline(obis)}: {_object(obj, '    ')}{last}")
            lines.append("  }" + comma)
        elif _OBIS.fullmatch(key):
            lines.append(f"  {_inline(key)}: {_object(value, '  ')}{comma}")
        else:
            lines.append(f"  {_inline(key)}: {_inline(value)}{comma}")
    return "\n".join([*lines, "}"]) + "\n"


def output(name: str) -> dict[str, Any]:
    """The JSON the code prints for the composed telegram ``name``, digits kept."""
    telegram = decode_one(BUILDERS[name]())
    parsed: dict[str, Any] = load(TelegramJsonEncoder().encode(telegram))
    return parsed


def catalogue_table() -> str:
    """The key table of the docs, generated from the catalogue."""
    rows = ["| OBIS | key | kind | usual unit | meaning |", "|---|---|---|---|---|"]
    for definition in CATALOGUE.values():
        key = definition.key
        if definition.is_mbus:
            key = "<device>_volume` or `<device>_energy" if key == "reading" else f"<device>_{key}"
        unit = definition.unit or ""
        rows.append(
            f"| `{definition.code}` | `{key}` | {definition.kind.value} | {unit} "
            f"| {definition.description} |"
        )
    return "\n".join(rows) + "\n"


def media_table() -> str:
    """The M-Bus device type table of the docs, generated from MBUS_MEDIA."""
    rows = ["| device type (`0-n:24.1.0`) | medium | reading key | unit |", "|---|---|---|---|"]
    for code, medium in MBUS_MEDIA.items():
        rows.append(
            f"| {code} | `{medium.name}` | `{medium.name}_{medium.reading_key}` | {medium.unit} |"
        )
    return "\n".join(rows) + "\n"


def _between(text: str, marker: str) -> str:
    match = re.search(
        rf"<!-- {marker}:start -->\n(?P<body>.*?)<!-- {marker}:end -->", text, re.DOTALL
    )
    assert match, f"markers for {marker} missing in {DOC}"
    return match["body"]


def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _examples() -> list[tuple[str, str]]:
    return [(match["name"], match["body"]) for match in _EXAMPLE.finditer(_doc())]


def test_doc_has_examples() -> None:
    """The doc shows at least one whole telegram and several object examples."""
    examples = _examples()
    assert sum('"header"' in body for _, body in examples) >= 1
    assert len(examples) >= 5


@pytest.mark.parametrize("index", range(len(_examples())))
def test_doc_example_is_current(index: int) -> None:
    """Each JSON example in the doc is exactly what the code prints for its telegram."""
    name, body = _examples()[index]
    expected = output(name)
    shown = load(body)
    if "header" in shown:
        assert body == render(expected), "paste this:\n" + render(expected)
        return
    for key, value in shown.items():
        wanted = expected.get("unparsed") if key == "unparsed" else expected["objects"].get(key)
        assert value == wanted, f"{name} {key}: paste this:\n" + render({key: wanted})


def test_doc_telegrams_are_the_builders() -> None:
    """The raw telegrams shown in the doc are the ones the examples are computed from."""
    shown = list(_TELEGRAM.finditer(_doc()))
    assert shown
    for match in shown:
        text = BUILDERS[match["name"]]().decode("ascii").replace("\r\n", "\n")
        assert match["body"] == text, "paste this:\n" + text


def test_doc_key_table_is_the_catalogue() -> None:
    """The doc's key table is generated from p1mqtt.protocol.CATALOGUE, row for row."""
    expected = catalogue_table()
    assert _between(_doc(), "catalogue") == expected, "paste this:\n" + expected


def test_doc_media_table_is_current() -> None:
    """The doc's M-Bus medium table matches p1mqtt.protocol.MBUS_MEDIA."""
    expected = media_table()
    assert _between(_doc(), "media") == expected, "paste this:\n" + expected


def test_every_catalogue_key_and_code_appears_in_doc() -> None:
    """Every stable key and OBIS code of the catalogue is named in the doc."""
    text = _doc()
    for definition in CATALOGUE.values():
        assert f"`{definition.code}`" in text
        assert definition.key in text


def test_doc_names_every_json_field() -> None:
    """Every field the encoder can write is documented."""
    text = _doc()
    for field in (
        "header",
        "objects",
        "unparsed",
        "value",
        "unit",
        "timestamp",
        "raw",
        "values",
        "entries",
        "period",
        "period_end",
        "extra",
        "key",
        "channel",
        "medium",
    ):
        assert f"`{field}`" in text, field


def test_render_keeps_digits() -> None:
    """The doc layout keeps numbers as written (0.000 stays 0.000)."""
    assert render(load('{"header": "x", "objects": {"1-0:1.8.1": {"value": 0.000}}}')) == (
        '{\n  "header": "x",\n  "objects": {\n    "1-0:1.8.1": {"value": 0.000}\n  }\n}\n'
    )
