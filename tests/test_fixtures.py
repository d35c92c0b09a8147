"""The saved fixtures: provenance recorded, licence permissive, verdicts as documented."""

import re

import pytest

from p1mqtt.protocol import crc16_arc
from telegrams import (
    COMPOSED,
    FIXTURES,
    expected_outcome,
    fixture,
    fixture_names,
    outcome,
    read_summary_table,
)

SOURCES = FIXTURES / "SOURCES.md"
PERMISSIVE = ("MIT", "Apache-2.0", "ISC")


def _sections() -> dict[str, str]:
    text = SOURCES.read_text(encoding="utf-8")
    return {part.split("`")[1]: part for part in re.split(r"\n### ", text)[1:]}


def test_every_fixture_is_in_the_summary_table() -> None:
    """SOURCES.md lists exactly the fixture files, no more, no fewer."""
    assert sorted(read_summary_table(SOURCES)) == fixture_names()


def test_every_fixture_has_provenance() -> None:
    """Each fixture has a section naming origin, commit, licence, copyright holder and content."""
    sections = _sections()
    assert sorted(sections) == fixture_names()
    for name, section in sections.items():
        for field in ("origin", "commit", "licence", "copyright holder", "what it is"):
            assert f"* {field}:" in section, f"{name}: no {field}"
        commit = re.search(r"\* commit: `([0-9a-f]{40})`", section)
        assert commit, f"{name}: commit is not a 40-digit hash"


def test_every_fixture_licence_is_permissive() -> None:
    """Only MIT, Apache-2.0 and ISC material is copied into the project."""
    for name, section in _sections().items():
        licence = re.search(r"\* licence: (.*)", section)
        assert licence, name
        assert licence.group(1).startswith(PERMISSIVE), f"{name}: {licence.group(1)}"


def test_licence_notices_are_kept() -> None:
    """The MIT, ISC and Apache-2.0 notices that the copied material requires are present."""
    for notice in ("MIT.txt", "ISC.txt", "Apache-2.0.txt"):
        assert (FIXTURES / "LICENSES" / notice).stat().st_size > 500


@pytest.mark.parametrize("name", fixture_names())
def test_fixture_verdict_matches_sources(name: str) -> None:
    """Each fixture decodes, or is rejected for its CRC, exactly as SOURCES.md says."""
    verdict = read_summary_table(SOURCES)[name]
    assert outcome(fixture(name)) == expected_outcome(verdict)


@pytest.mark.parametrize("name", fixture_names())
def test_fixture_bytes_use_crlf(name: str) -> None:
    """Fixtures keep the wire format: every line ends in CR LF."""
    data = fixture(name)
    assert data.endswith(b"\r\n")
    assert data.count(b"\n") == data.count(b"\r\n")


@pytest.mark.parametrize("name", sorted(COMPOSED))
def test_composed_telegrams_have_valid_crc(name: str) -> None:
    """Every composed telegram carries a correct CRC (the builders are right)."""
    data = COMPOSED[name]
    bang = data.rfind(b"\n!")
    assert crc16_arc(data[: bang + 2]) == int(data[bang + 2 :].strip(), 16)
    assert outcome(data) == "valid"
