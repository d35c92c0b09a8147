"""The team's reference corpus (``../shared/telegrams`` beside the checkout), when present.

Every file listed in its SOURCES.md summary table must be decoded (CRC valid, or no CRC) or
rejected for its CRC exactly as the table says. The corpus holds material under licences the
project cannot ship, so it is never copied here; without it these tests are skipped.
"""

from pathlib import Path

import pytest

from telegrams import decode_events, decoded, expected_outcome, outcome, read_summary_table

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "telegrams"
pytestmark = pytest.mark.corpus


def _table() -> dict[str, str]:
    if not (CORPUS / "SOURCES.md").is_file():
        return {}
    return read_summary_table(CORPUS / "SOURCES.md")


def _require_corpus() -> None:
    if not (CORPUS / "SOURCES.md").is_file():
        pytest.skip(f"reference corpus not found at {CORPUS}")


def test_summary_table_lists_every_file() -> None:
    """The corpus table and the folder agree file for file."""
    _require_corpus()
    files = sorted(path.name for path in CORPUS.glob("*.txt"))
    assert files
    assert sorted(_table()) == files


@pytest.mark.parametrize("name", sorted(_table()) or ["<no corpus>"])
def test_corpus_file_verdict(name: str) -> None:
    """Each corpus file is decoded or rejected (CRC_MISMATCH) as its SOURCES.md row says."""
    _require_corpus()
    data = (CORPUS / name).read_bytes()
    assert outcome(data) == expected_outcome(_table()[name])


@pytest.mark.parametrize("name", sorted(_table()) or ["<no corpus>"])
def test_corpus_file_chunking_invariant(name: str) -> None:
    """Each corpus file gives the same telegrams fed whole and byte by byte."""
    _require_corpus()
    data = (CORPUS / name).read_bytes()
    assert decoded(decode_events(data, chunk_size=1)) == decoded(decode_events(data))
