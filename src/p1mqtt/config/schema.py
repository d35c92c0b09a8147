"""The JSON Schema of the configuration file, generated from the model.

``docs/p1mqtt.schema.json`` is this schema, committed; regenerate it with
``p1mqtt check-config --schema > docs/p1mqtt.schema.json``. JSON configuration files may name it
in a ``"$schema"`` key, which the loader ignores, to get completion and help in editors.
"""

import json
from typing import Any

from p1mqtt.config.model import Config

__all__ = ["SCHEMA_DIALECT", "json_schema", "schema_text"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a p1mqtt configuration file."""
    schema = Config.model_json_schema()
    schema["properties"] = {
        "$schema": {
            "description": "Where editors find this schema; ignored by p1mqtt.",
            "type": "string",
        },
        **schema["properties"],
    }
    return {"$schema": SCHEMA_DIALECT, **schema}


def schema_text() -> str:
    """The schema as the text of ``docs/p1mqtt.schema.json``."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
