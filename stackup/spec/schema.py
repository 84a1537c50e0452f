"""JSON Schema of a stack file, generated from the models, for editor completion.

It describes the long form `stackup config` prints, which is also a valid stack file. Our
internal `extensions` field is replaced by what the user actually writes: `x-*` keys allowed
on every object.
"""

from __future__ import annotations

from typing import Any

from stackup.spec.models import Project

SCHEMA_ID = "https://stackup.dev/schema/stack.json"


def project_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) for a stackup/Compose stack file."""
    schema = Project.model_json_schema(mode="validation")
    _open_to_extensions(schema)
    for definition in schema.get("$defs", {}).values():
        _open_to_extensions(definition)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "stackup stack file"
    schema.get("properties", {}).pop("version", None)
    schema["required"] = [r for r in schema.get("required", []) if r != "name"]
    return schema


def _open_to_extensions(node: dict[str, Any]) -> None:
    props = node.get("properties")
    if isinstance(props, dict) and "extensions" in props:
        del props["extensions"]
        node["patternProperties"] = {"^x-": {}}
