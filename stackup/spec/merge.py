"""Pass: merge one stack file onto another (`-f a.yaml -f b.yaml`, `extends`, `include`).

The default rule is Compose's: mappings merge key by key, sequences append, scalars are replaced.
The exceptions live in one table, `RULES`, keyed by a path pattern (`services.*.ports`), so each
exception is visible in one place and tested by one row (the layout of compose-go's
`override/merge.go`). `!reset` drops the earlier value and `!override` replaces it wholesale.

Merging happens on the raw tree, before short syntax is expanded, so the unique-resource rules
(ports, volumes, secrets, configs, devices) compute their identity from either syntax. The source
map is rebuilt alongside the tree: a value keeps the location of the file that decided it, and an
item appended to a list gets the location of the line that wrote it, at its new index.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from stackup import keyvalue
from stackup.spec.errors import KeyPath, ProblemCollector, SourceMap
from stackup.spec.tree import Tag, Tagged


@dataclass(frozen=True, slots=True)
class Located:
    """A value together with the path it had in the document (and map) it came from."""

    value: Any
    path: KeyPath
    source_map: SourceMap

    def child(self, key: str | int, value: Any = None) -> Located:
        return Located(self[key] if value is None else value, (*self.path, key), self.source_map)

    def __getitem__(self, key: str | int) -> Any:
        return self.value[key]


class _Drop:
    """Marks a value removed by `!reset`."""


DROP = _Drop()

Rule = Callable[["Merger", Located, Located, KeyPath], Any]


class Merger:
    """Walks two trees, writing the merged tree and its `SourceMap` (`self.locations`)."""

    def __init__(self, collector: ProblemCollector | None = None) -> None:
        self.locations = SourceMap()
        self.collector = collector

    def merge(self, base: Located | None, over: Located, out: KeyPath) -> Any:
        """The value at `out` after applying `over` onto `base` (`DROP` when reset)."""
        if base is not None and isinstance(base.value, Tagged):
            base = None if base.value.tag is Tag.RESET else Located(base.value.value, base.path,
                                                                    base.source_map)
        value = over.value
        if isinstance(value, Tagged):
            if value.tag is Tag.RESET:
                return DROP
            return self.place(Located(value.value, over.path, over.source_map), out)
        if base is None:
            return self.place(over, out)
        rule = rule_for(out)
        if rule is not None:
            self._locate(out, over, base)
            return rule(self, base, over, out)
        if value is None:
            return self.place(base, out)
        if isinstance(base.value, dict) and isinstance(value, dict):
            self._locate(out, over, base)
            return self.merge_mappings(base, over, out)
        if isinstance(base.value, list) and isinstance(value, list):
            return self.place_all(out, [*_items(base), *_items(over)], over)
        if isinstance(base.value, dict | list) or isinstance(value, dict | list):
            self._mismatch(base, over, out)
        return self.place(over, out)

    def merge_mappings(self, base: Located, over: Located, out: KeyPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key in base.value:
            if key not in over.value:
                placed = self.place(base.child(key), (*out, key))
                if placed is not DROP:
                    result[key] = placed
        for key in over.value:
            prior = base.child(key) if key in base.value else None
            merged = self.merge(prior, over.child(key), (*out, key))
            if merged is not DROP:
                result[key] = merged
        return result

    def place(self, src: Located, out: KeyPath) -> Any:
        """Copy `src` to `out`: a tag-free deep copy, its locations re-rooted at `out`."""
        self._locate(out, src)
        value = src.value
        if isinstance(value, Tagged):
            if value.tag is Tag.RESET:
                return DROP
            return self.place(Located(value.value, src.path, src.source_map), out)
        if isinstance(value, dict):
            placed = {k: self.place(src.child(k), (*out, k)) for k in value}
            return {k: v for k, v in placed.items() if v is not DROP}
        if isinstance(value, list):
            return self.place_all(out, list(_items(src)), None)
        return value

    def place_all(self, out: KeyPath, items: Iterable[Located], node: Located | None) -> list[Any]:
        """Place `items` as the list at `out`, each at its new index."""
        if node is not None:
            self._locate(out, node)
        result: list[Any] = []
        for item in items:
            placed = self.place(item, (*out, len(result)))
            if placed is not DROP:
                result.append(placed)
        return result

    def _locate(self, out: KeyPath, *candidates: Located) -> None:
        for src in candidates:
            loc = src.source_map.entries.get(src.path)
            if loc is not None:
                self.locations.add(out, loc)
                return

    def _mismatch(self, base: Located, over: Located, out: KeyPath) -> None:
        if self.collector is None:
            return
        loc = over.source_map.locate(over.path)
        self.collector.add(out, f"cannot merge {_kind(over.value)} onto {_kind(base.value)} "
                                f"defined earlier; the later value replaces it", location=loc)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "a scalar"


def _items(src: Located) -> Iterable[Located]:
    return (src.child(i) for i in range(len(src.value)))


def _as_list(src: Located) -> list[Located]:
    """A sequence's items; a lone scalar (`dns: 8.8.8.8`) counts as a one-item sequence."""
    if isinstance(src.value, list):
        return list(_items(src))
    if isinstance(src.value, dict):
        return [src.child(k, {k: v}) for k, v in src.value.items()]
    return [] if src.value is None else [src]


# --- rules -------------------------------------------------------------------------------------


def replace(m: Merger, _base: Located, over: Located, out: KeyPath) -> Any:
    """Shell commands are replaced: appending argv lists never makes sense."""
    return m.place(over, out)


def unique_list(key: Callable[[Any], Hashable]) -> Rule:
    """Append, but an item with the same identity as an earlier one takes its place."""

    def rule(m: Merger, base: Located, over: Located, out: KeyPath) -> list[Any]:
        slots: dict[Hashable, int] = {}
        merged: list[Located] = []
        for item in (*_as_list(base), *_as_list(over)):
            ident = key(item.value)
            if ident in slots:
                merged[slots[ident]] = item
            else:
                slots[ident] = len(merged)
                merged.append(item)
        return m.place_all(out, merged, over)

    return rule


def keyed_mapping(entries: Callable[[Located], list[tuple[str, Located]]], *, deep: bool) -> Rule:
    """Merge as a mapping even when either side is written as a list (`- KEY=value`).

    With `deep`, an entry present on both sides is merged (depends_on conditions, network
    aliases); without, the later entry wins outright, so `- FOO` (take it from the shell)
    overrides an earlier `FOO=bar`.
    """

    def rule(m: Merger, base: Located, over: Located, out: KeyPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        earlier = dict(entries(base))
        for key, item in earlier.items():
            result[key] = m.place(item, (*out, key))
        for key, item in entries(over):
            prior = earlier.get(key) if deep else None
            merged = m.merge(prior, item, (*out, key))
            if merged is DROP:
                result.pop(key, None)
            else:
                result[key] = merged
        return result

    return rule


def _kv_entries(src: Located) -> list[tuple[str, Located]]:
    """`{K: v}` or `["K=v", "K"]` as (key, value) pairs; a bare `K` means "unset" (None)."""
    if isinstance(src.value, dict):
        return [(str(k), src.child(k)) for k in src.value]
    out: list[tuple[str, Located]] = []
    for item in _as_list(src):
        text = str(item.value)
        key, value = keyvalue.split(text)
        out.append((key, Located(value, item.path, item.source_map)))
    return out


def _host_entries(src: Located) -> list[tuple[str, Located]]:
    """extra_hosts: `host: ip`, `host: [ip, ip]`, `- host=ip` or `- host:ip` (repeats add IPs)."""
    if isinstance(src.value, dict):
        return [(str(k), src.child(k)) for k in src.value]
    grouped: dict[str, Located] = {}
    for item in _as_list(src):
        text = str(item.value)
        sep = "=" if "=" in text else ":"
        host, _, address = text.partition(sep)
        if host in grouped:
            prior = grouped[host]
            ips = prior.value if isinstance(prior.value, list) else [prior.value]
            grouped[host] = Located([*ips, address], prior.path, prior.source_map)
        else:
            grouped[host] = Located(address, item.path, item.source_map)
    return list(grouped.items())


def _names_entries(default: dict[str, Any] | None) -> Callable[[Located], list[tuple[str, Located]]]:
    """`[a, b]` as `{a: default, b: default}` (depends_on, service networks)."""

    def entries(src: Located) -> list[tuple[str, Located]]:
        if isinstance(src.value, dict):
            return [(str(k), src.child(k)) for k in src.value]
        return [(str(i.value), Located(None if default is None else dict(default), i.path, i.source_map))
                for i in _as_list(src)]

    return entries


def merge_build(m: Merger, base: Located, over: Located, out: KeyPath) -> Any:
    """`build: ./dir` is `build: {context: ./dir}`, so a string and a mapping merge."""

    def as_mapping(src: Located) -> Located:
        if isinstance(src.value, str):
            return Located({"context": src.value}, src.path, src.source_map)
        return src

    b, o = as_mapping(base), as_mapping(over)
    if o.value is None:  # `build: null` in a later file changes nothing, as for any other key
        return m.place(b, out)
    if not (isinstance(b.value, dict) and isinstance(o.value, dict)):
        if b.value is not None:
            m._mismatch(b, o, out)
        return m.place(o, out)
    return m.merge_mappings(b, o, out)


def merge_logging(m: Merger, base: Located, over: Located, out: KeyPath) -> Any:
    """Logging options only carry over when both files name the same driver (or either none)."""
    b, o = base.value, over.value
    if not (isinstance(b, dict) and isinstance(o, dict)):
        return m.place(over, out)
    if "driver" in b and "driver" in o and b["driver"] != o["driver"]:
        return m.place(over, out)
    return m.merge_mappings(base, over, out)


def merge_ipam_config(m: Merger, base: Located, over: Located, out: KeyPath) -> list[Any]:
    """IPAM pools are identified by subnet: a pool for the same subnet merges into the earlier one."""
    merged: list[tuple[Located | None, Located]] = [(None, item) for item in _as_list(base)]
    for item in _as_list(over):
        subnet = item.value.get("subnet") if isinstance(item.value, dict) else None
        for index, (_, earlier) in enumerate(merged):
            if isinstance(earlier.value, dict) and earlier.value.get("subnet") == subnet:
                merged[index] = (earlier, item)
                break
        else:
            merged.append((None, item))
    result = []
    for index, (prior, item) in enumerate(merged):
        value = m.merge(prior, item, (*out, index))
        if value is not DROP:
            result.append(value)
    return result


# --- identities of unique resources ---------------------------------------------------------


def port_key(item: Any) -> Hashable:
    """(host_ip, published, target, protocol) of a port in short (`ip:pub:target/proto`) or long form."""
    if isinstance(item, dict):
        return (str(item.get("host_ip") or ""), str(item.get("published") or ""),
                str(item.get("target") or ""), str(item.get("protocol") or "tcp"))
    text, _, proto = str(item).partition("/")
    host = ""
    if text.startswith("["):
        host, _, text = text[1:].partition("]")
        text = text.removeprefix(":")
    parts = text.rsplit(":", 2)
    if len(parts) == 3:
        host, parts = parts[0], parts[1:]
    published, target = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
    return (host, published, target, proto or "tcp")


def mount_target(default_dir: str) -> Callable[[Any], Hashable]:
    """Target of a service secret/config: explicit, else `<default_dir>/<source>`."""

    def key(item: Any) -> Hashable:
        if isinstance(item, dict):
            target = item.get("target")
            return str(target) if target else f"{default_dir}/{item.get('source')}"
        return f"{default_dir}/{item}"

    return key


def volume_target(item: Any) -> Hashable:
    """Container path of a volume: `src:target[:mode]`, a bare `target`, or `{target: ...}`."""
    if isinstance(item, dict):
        return str(item.get("target"))
    parts = str(item).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def path_key(item: Any) -> Hashable:
    """env_file / label_file entries are identified by path."""
    return str(item.get("path")) if isinstance(item, dict) else str(item)


def tmpfs_key(item: Any) -> Hashable:
    return str(item).split(":", 1)[0]


def same_value(item: Any) -> Hashable:
    return repr(item)


# --- the table -------------------------------------------------------------------------------

_ENV_LIKE = keyed_mapping(_kv_entries, deep=False)

RULES: dict[str, Rule] = {
    "services.*.command": replace,
    "services.*.entrypoint": replace,
    "services.*.healthcheck.test": replace,
    "services.*.ulimits.*": replace,
    "services.*.environment": _ENV_LIKE,
    "services.*.labels": _ENV_LIKE,
    "services.*.annotations": _ENV_LIKE,
    "services.*.sysctls": _ENV_LIKE,
    "services.*.build.args": _ENV_LIKE,
    "services.*.build.labels": _ENV_LIKE,
    "services.*.build.additional_contexts": _ENV_LIKE,
    "services.*.deploy.labels": _ENV_LIKE,
    "networks.*.labels": _ENV_LIKE,
    "volumes.*.labels": _ENV_LIKE,
    "secrets.*.labels": _ENV_LIKE,
    "configs.*.labels": _ENV_LIKE,
    "services.*.extra_hosts": keyed_mapping(_host_entries, deep=False),
    "services.*.build.extra_hosts": keyed_mapping(_host_entries, deep=False),
    "services.*.depends_on": keyed_mapping(
        _names_entries({"condition": "service_started", "required": True}), deep=True),
    "services.*.networks": keyed_mapping(_names_entries(None), deep=True),
    "services.*.build": merge_build,
    "services.*.logging": merge_logging,
    "networks.*.ipam.config": merge_ipam_config,
    "services.*.ports": unique_list(port_key),
    "services.*.volumes": unique_list(volume_target),
    "services.*.devices": unique_list(volume_target),
    "services.*.secrets": unique_list(mount_target("/run/secrets")),
    "services.*.configs": unique_list(mount_target("")),
    "services.*.env_file": unique_list(path_key),
    "services.*.label_file": unique_list(path_key),
    "services.*.tmpfs": unique_list(tmpfs_key),
    "services.*.dns": unique_list(same_value),
    "services.*.dns_opt": unique_list(same_value),
    "services.*.dns_search": unique_list(same_value),
    "services.*.cap_add": unique_list(same_value),
    "services.*.cap_drop": unique_list(same_value),
    "services.*.profiles": unique_list(same_value),
    "services.*.links": unique_list(same_value),
    "services.*.expose": unique_list(same_value),
    "services.*.networks.*.aliases": unique_list(same_value),
}

_PATTERNS = [(tuple(pattern.split(".")), rule) for pattern, rule in RULES.items()]


def rule_for(path: KeyPath) -> Rule | None:
    """The rule whose pattern matches `path` (`*` matches one key), or None for the default."""
    for parts, rule in _PATTERNS:
        if len(parts) == len(path) and all(p in ("*", k) for p, k in zip(parts, path, strict=True)):
            return rule
    return None


# --- entry points ------------------------------------------------------------------------------


def merge_trees(base: Located, over: Located, at: KeyPath = (),
                collector: ProblemCollector | None = None) -> tuple[Any, SourceMap]:
    """Apply `over` onto `base` as if both sat at path `at`; returns the value and its source map.

    `at` selects the rules: `("services", "x")` merges two service definitions (extends).
    """
    merger = Merger(collector)
    value = merger.merge(base, over, at)
    located = SourceMap()
    located.update(merger.locations, strip=at)
    return (None if value is DROP else value), located


def merge_documents(base: dict[str, Any], base_map: SourceMap, over: dict[str, Any],
                    over_map: SourceMap, collector: ProblemCollector | None = None,
                    ) -> tuple[dict[str, Any], SourceMap]:
    """Merge two whole stack files (later `-f` wins); both maps are keyed from the top level."""
    value, located = merge_trees(Located(base, (), base_map), Located(over, (), over_map),
                                 collector=collector)
    return (value if isinstance(value, dict) else {}), located

