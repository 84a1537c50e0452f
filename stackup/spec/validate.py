"""Tree -> `Project`, with every pydantic error turned into a located, actionable problem.

Pydantic reports `loc` tuples that may include union-member tags and keys that were never in
the file; walking the raw tree alongside `loc` keeps only the parts the user wrote, so the
`SourceMap` can point at `compose.yaml:12:7` and the message can name the key. Unknown keys get
a "did you mean" hint drawn from the fields of the model that rejected them.
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from stackup.spec.errors import KeyPath, Problem, SourceMap, SpecError
from stackup.spec.models import PROJECT_NAME_PATTERN, Project
from stackup.spec.normalize_values import describe
from stackup.text import did_you_mean

__all__ = ["canonical", "describe_error", "validate_project"]


def validate_project(tree: dict[str, Any], source_map: SourceMap) -> Project:
    """Validate a normalised tree; raise `SpecError` listing every problem, located."""
    try:
        return Project.model_validate(tree)
    except ValidationError as exc:
        problems: list[Problem] = []
        seen: set[tuple[KeyPath, str]] = set()
        for error in exc.errors():
            problem = _problem(error, tree, source_map)
            key = (problem.path, problem.message)
            if key not in seen:
                seen.add(key)
                problems.append(problem)
        raise SpecError(problems) from None


def canonical(project: Project) -> dict[str, Any]:
    """The JSON-able long form `stackup config` prints (compose-go's names and omissions)."""
    data = project.model_dump(mode="json", by_alias=True)
    if not isinstance(data, dict):  # pragma: no cover - Project always dumps to a mapping
        raise TypeError("project did not serialise to a mapping")
    return data


def _problem(error: ErrorDetails, tree: dict[str, Any], source_map: SourceMap) -> Problem:
    path, owner, missing = _locate(error["loc"], tree)
    message, hint = _message(error, path, owner, missing)
    return Problem(message=message, path=path, location=source_map.locate(path), hint=hint)


def describe_error(error: ErrorDetails, tree: dict[str, Any]) -> Problem:
    """One pydantic error of validating `tree` as a `Project`, as an unlocated `Problem`."""
    path, owner, missing = _locate(error["loc"], tree)
    message, hint = _message(error, path, owner, missing)
    return Problem(message=message, path=path, hint=hint)


def _locate(loc: tuple[int | str, ...], tree: dict[str, Any]) -> tuple[KeyPath, Any, str | None]:
    """Keep the `loc` parts present in the tree; return (path, model type at the end, missing key)."""
    path: list[str | int] = []
    node: Any = tree
    annotation: Any = Project
    owner: Any = Project
    missing: str | None = None
    for part in loc:
        if _has_child(node, part):
            owner = annotation
            node = node[part]
            annotation = _step(annotation, part)
            path.append(part)
        elif isinstance(part, str) and _field_of(annotation, part):
            missing = part
            owner = annotation
    return tuple(path), owner, missing


def _has_child(node: Any, part: int | str) -> bool:
    if isinstance(node, dict):
        return isinstance(part, str) and part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def _unwrap(annotation: Any) -> Any:
    """Strip `Annotated[...]` and `X | None` down to the one type that holds children."""
    while True:
        origin = get_origin(annotation)
        if origin is typing.Annotated:
            annotation = get_args(annotation)[0]
        elif origin is Union or origin is types.UnionType:
            args = [a for a in get_args(annotation) if a is not type(None)]
            annotation = next((a for a in args if _is_container(a)), args[0] if args else None)
        else:
            return annotation


def _is_container(annotation: Any) -> bool:
    inner = _unwrap(annotation)
    return get_origin(inner) in (dict, list) or (inspect.isclass(inner) and issubclass(inner, BaseModel))


def _field_of(annotation: Any, name: str) -> bool:
    inner = _unwrap(annotation)
    return inspect.isclass(inner) and issubclass(inner, BaseModel) and name in inner.model_fields


def _step(annotation: Any, part: str | int) -> Any:
    inner = _unwrap(annotation)
    if inspect.isclass(inner) and issubclass(inner, BaseModel):
        field = inner.model_fields.get(str(part))
        return field.annotation if field is not None else None
    origin = get_origin(inner)
    if origin is dict:
        return get_args(inner)[1]
    if origin is list:
        return get_args(inner)[0]
    return None


def _keys_of(owner: Any) -> list[str]:
    inner = _unwrap(owner)
    if inspect.isclass(inner) and issubclass(inner, BaseModel):
        return [name for name in inner.model_fields if name != "extensions"]
    return []


_EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "string_type": "a string", "list_type": "a list",
    "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
}


def _message(
    error: ErrorDetails, path: KeyPath, owner: Any, missing: str | None
) -> tuple[str, str | None]:
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        key = str(path[-1]) if path else str(error["loc"][-1])
        return f'unknown key "{key}"', did_you_mean(key, _keys_of(owner))
    if kind == "missing":
        return f'missing required key "{missing or error["loc"][-1]}"', None
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {describe(value)}", None
    if kind == "enum":
        return f"expected one of {ctx.get('expected', '')}, got {describe(value)}", None
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return f"{describe(value)} is out of range ({error['msg'].lower()})", None
    if kind == "string_pattern_mismatch":
        if path == ("name",) and ctx.get("pattern") == PROJECT_NAME_PATTERN:
            return (
                f"invalid project name {describe(value)}",
                "use lowercase letters, digits, '-' and '_', starting with a letter or digit",
            )
        return f"invalid value {describe(value)}: must match {ctx.get('pattern')}", None
    message = error["msg"]
    if kind == "value_error" and message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return message, None
