"""The configuration's documentation and JSON Schema stay in step with the model."""

import json
import re
from pathlib import Path

import pytest

from p1mqtt.config import environment_variables, load_config, schema_text, section_types

DOCS = Path(__file__).resolve().parent.parent / "docs"
GUIDE = DOCS / "configuration.md"
SCHEMA = DOCS / "p1mqtt.schema.json"


def fenced_blocks(language: str) -> list[str]:
    """The ```language blocks of docs/configuration.md."""
    text = GUIDE.read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def test_schema_file_is_up_to_date() -> None:
    """docs/p1mqtt.schema.json is what the model generates."""
    assert SCHEMA.read_text(encoding="utf-8") == schema_text(), (
        "docs/p1mqtt.schema.json is out of date; regenerate it with: "
        "p1mqtt check-config --schema > docs/p1mqtt.schema.json"
    )


def test_every_field_has_a_description() -> None:
    """Every section and field carries a description, for the schema and editors."""
    for section, model in section_types().items():
        assert model.__doc__, section
        for name, field in model.model_fields.items():
            assert field.description, f"{section}.{name}"


def test_every_field_is_documented() -> None:
    """docs/configuration.md names every field by its dotted path, with its variable."""
    text = GUIDE.read_text(encoding="utf-8")
    missing = [
        f"{section}.{field}"
        for section, model in section_types().items()
        for field in model.model_fields
        if f"`{section}.{field}`" not in text
    ]
    assert not missing, f"fields missing from docs/configuration.md: {missing}"
    undocumented = [name for name in environment_variables() if f"`{name}`" not in text]
    assert not undocumented, f"variables missing from docs/configuration.md: {undocumented}"


def test_every_section_has_a_heading() -> None:
    """Each section has its own heading in the guide."""
    text = GUIDE.read_text(encoding="utf-8")
    for section in section_types():
        assert f"\n### {section}\n" in text, section


@pytest.mark.parametrize("suffix", ["json", "toml"])
def test_examples_in_the_guide_are_valid(tmp_path: Path, suffix: str) -> None:
    """Every JSON and TOML example of the guide loads without error."""
    examples = []
    for block in fenced_blocks(suffix):
        try:
            json.loads(block) if suffix == "json" else None
            examples.append(block)
        except json.JSONDecodeError:  # several one-line examples in one block
            examples.extend(line for line in block.splitlines() if line.strip())
    assert examples
    for number, example in enumerate(examples):
        path = tmp_path / f"example{number}.{suffix}"
        path.write_text(example, encoding="utf-8")
        load_config(path, env={})
