"""The base every spec model shares: frozen, strict about keys, `x-*` extensions kept.

Compose allows `x-*` keys almost anywhere and tools rely on them surviving `config`, so each
model moves them into an `extensions` field on the way in and back inline on the way out.
Everything else that is not a field is an error (`extra="forbid"`), which is how a misspelt
`enviroment:` is caught. Serialisation follows compose-go's `omitempty` tags: unset values,
empty collections and `false` flags are left out, so `canonical()` prints what
`docker compose config` prints.
"""

from __future__ import annotations

from functools import cache
from types import UnionType
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    WrapSerializer,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

EXTENSION_PREFIX = "x-"


def scalar_text(value: object) -> str:
    """A YAML scalar as the string Go's `fmt.Sprint` would give (`true`, not `True`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def _stringify(value: object) -> object:
    """Numbers and booleans -> strings, for keys whose values Compose stores as text."""
    if isinstance(value, bool | int | float):
        return scalar_text(value)
    return value


Text = Annotated[str, BeforeValidator(_stringify)]
"""A string field that also accepts a number or boolean (`driver_opts: {size: 10}`)."""


def _hosts_as_list(hosts: dict[str, list[str]]) -> list[str]:
    return sorted(f"{host}={ip}" for host, ips in hosts.items() for ip in ips)


HostsList = Annotated[
    dict[str, list[str]],
    PlainSerializer(_hosts_as_list, return_type=list[str], when_used="json"),
]
"""`extra_hosts`: host -> addresses in the model, a sorted `host=ip` list in `config` (as compose-go)."""


class SpecModel(BaseModel):
    """Frozen, closed to unknown keys, open to `x-*` extensions."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    extensions: dict[str, Any] = Field(default_factory=dict, repr=False)
    keep_when_empty: ClassVar[frozenset[str]] = frozenset()
    """Fields printed even at their default (compose prints `required: true`, for example)."""

    @model_validator(mode="before")
    @classmethod
    def _collect_extensions(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not any(isinstance(k, str) and k.startswith("x-") for k in data):
            if isinstance(data, dict) and "extensions" in data:
                _check_extensions(data["extensions"])
            return data
        out: dict[str, Any] = {}
        ext: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(key, str) and key.startswith(EXTENSION_PREFIX):
                ext[key] = value
            else:
                out[key] = value
        if "extensions" in out:
            _check_extensions(out["extensions"])
            ext = {**out["extensions"], **ext}
        out["extensions"] = ext
        return out

    @model_serializer(mode="wrap")
    def _omit_empty(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        return omit_empty(type(self), data) if isinstance(data, dict) else data


def omit_empty(cls: type[SpecModel], data: dict[str, Any]) -> dict[str, Any]:
    """compose-go's `omitempty` on one model's serialised fields, extensions moved inline."""
    keep, false_default, collections = _empty_rules(cls)
    # one pass: this runs for every nested model of every service on every plan
    out = {
        k: v
        for k, v in data.items()
        if k in keep
        or not (
            v is None
            or (v is False and k in false_default)
            # a nested model at its defaults also serializes to {}: only collection fields go
            or (v in ([], {}) and k in collections)
        )
    }
    extensions = out.pop("extensions", None)
    if extensions:
        out.update(extensions)
    return out


def dump_set_fields(model: SpecModel, exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
    """What `model.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude=exclude)`
    gives, field by field.

    The planner hashes every service on every plan; going through the model's serializer costs
    ~8 us per service before any field is written, since pydantic visits all 93 service fields
    to find the few that are set. Here only the set fields are serialised, each by pydantic's
    serializer for its own annotated type, so the output is the same (tests/planner/
    test_hashing.py checks it over the corpus).
    """
    cls = type(model)
    data: dict[str, Any] = {}
    for name in sorted(model.model_fields_set - exclude):
        key, adapter = _field_adapter(cls, name)
        value = getattr(model, name)
        # JSON-native values (strings, lists of strings, string maps...) serialise to themselves
        data[key] = value if adapter is None else adapter.dump_python(
            value, mode="json", by_alias=True, exclude_unset=True
        )
    return omit_empty(cls, data)


@cache
def _field_adapter(cls: type[SpecModel], name: str) -> tuple[str, TypeAdapter[Any] | None]:
    """The field's key and a serializer for its type; None when its values are JSON already."""
    field = cls.model_fields[name]
    key = field.alias or name
    if _json_native(field.annotation) and not any(_serializes(m) for m in field.metadata):
        return key, None
    annotation = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    return key, TypeAdapter(annotation)


_JSON_SCALARS: tuple[Any, ...] = (str, int, float, bool, type(None))


def _json_native(tp: Any) -> bool:
    """Whether every value of type `tp` is plain JSON as it is (no model, enum or serializer)."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *meta = get_args(tp)
        return _json_native(base) and not any(_serializes(m) for m in meta)
    if origin in (Union, UnionType):
        return all(_json_native(arg) for arg in get_args(tp))
    if origin is list:
        return _json_native(get_args(tp)[0])
    if origin is dict:
        key, value = get_args(tp)
        return key is str and _json_native(value)
    return tp in _JSON_SCALARS


def _serializes(metadata: object) -> bool:
    return isinstance(metadata, PlainSerializer | WrapSerializer)


@cache
def _empty_rules(cls: type[SpecModel]) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """Per model class: keys kept when empty, keys whose default is False, collection-typed keys.

    Computed once per class: the serializer runs for every service on every plan, and walking all
    92 service fields with getattr each time was most of the cost of reconciling a large stack.
    """
    fields = cls.model_fields
    keep = frozenset(f.alias or n for n, f in fields.items() if n in cls.keep_when_empty)
    false_default = frozenset(f.alias or n for n, f in fields.items() if f.default is False)
    collections = frozenset(
        f.alias or n
        for n, f in fields.items()
        if f.default_factory in (list, dict, tuple, set)
        or isinstance(f.default, list | dict | tuple)
        or getattr(f.annotation, "__origin__", None) in (list, dict, tuple, set)
    )
    return keep, false_default, collections


def _check_extensions(value: object) -> None:
    """`extensions` is ours, not a Compose key: accept it only as a map of `x-*` keys."""
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and k.startswith(EXTENSION_PREFIX) for k in value
    ):
        raise PydanticCustomError("unknown_key", 'unknown key "extensions"')
