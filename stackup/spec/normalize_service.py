"""One service's short syntax -> long form, key by key (a rules table, as compose-go's).

Each rule gets the raw value and returns the long form, or raises `ValueError`; the error is
reported at the key's path and the key is dropped, so validation does not report it twice and
the rest of the service is still checked. Keys without a rule pass through for the model to
validate. Implicit dependencies (`links`, `network_mode: service:x`, `volumes_from`) are folded
into `depends_on` here, so the planner walks one edge set.
"""

from __future__ import annotations

from typing import Any

from stackup.spec.implicit import NAMESPACE_KEYS, implicit_refs
from stackup.spec.normalize_nested import (
    build_rule,
    config_ref,
    deploy_rule,
    develop_rule,
    device_rule,
    environment_rule,
    gpus_rule,
    healthcheck_rule,
    hook_rule,
    secret_ref,
    ulimits_rule,
)
from stackup.spec.normalize_ports import parse_port, port_long
from stackup.spec.normalize_rules import Many, Rule, Scope, apply_rules, each, to_bytes, to_duration, to_shell
from stackup.spec.normalize_values import absolute, as_bool, describe, extra_hosts, mapping, string_list
from stackup.spec.normalize_volumes import normalize_volume


def _port(value: object, _: Scope) -> Any:
    if isinstance(value, dict):
        return port_long(value)
    return Many(parse_port(value))


def _env_file(value: object, scope: Scope) -> dict[str, Any]:
    if isinstance(value, str):
        value = {"path": value}
    if not isinstance(value, dict):
        raise ValueError(f"expected a path or {{path, required, format}}, got {describe(value)}")
    path = value.get("path")
    if not isinstance(path, str) or not path:
        raise ValueError('env_file entry needs a "path"')
    out = {**value, "path": absolute(path, scope.base, scope.environment)}
    out["required"] = as_bool(value.get("required", True))
    return out


def _env_files(value: object, scope: Scope) -> list[Any]:
    return each([value] if isinstance(value, str) else value, scope, _env_file)


def _depends_on(value: object, _: Scope) -> dict[str, Any]:
    if isinstance(value, list):
        names = string_list(value)
        return {name: {"condition": "service_started", "required": True, "restart": False} for name in names}
    if not isinstance(value, dict):
        raise ValueError(f"expected a list of service names or a mapping, got {describe(value)}")
    out: dict[str, Any] = {}
    for name, raw in value.items():
        dep = {} if raw is None else raw
        if not isinstance(dep, dict):
            raise ValueError(f"{name}: expected {{condition, required, restart}}, got {describe(dep)}")
        out[str(name)] = {
            **dep,
            "condition": dep.get("condition", "service_started"),
            "required": as_bool(dep.get("required", True)),
            "restart": as_bool(dep.get("restart", False)),
        }
    return out


def _networks(value: object, _: Scope) -> dict[str, Any]:
    if isinstance(value, list):
        return dict.fromkeys(string_list(value))
    if not isinstance(value, dict):
        raise ValueError(f"expected a list of network names or a mapping, got {describe(value)}")
    out: dict[str, Any] = {}
    for name, config in value.items():
        if isinstance(config, dict) and "aliases" in config:
            out[str(name)] = {**config, "aliases": string_list(config["aliases"])}
        else:
            out[str(name)] = config
    return out


def _models(value: object, _: Scope) -> Any:
    return dict.fromkeys(string_list(value)) if isinstance(value, list) else value


def _extends(value: object, _: Scope) -> Any:
    return {"service": value} if isinstance(value, str) else value


SERVICE_RULES: dict[str, Rule] = {
    "annotations": lambda v, s: mapping(v, what="annotation"),
    "build": build_rule,
    "command": to_shell,
    "configs": lambda v, s: each(v, s, config_ref),
    "depends_on": _depends_on,
    "deploy": deploy_rule,
    "develop": develop_rule,
    "devices": lambda v, s: each(v, s, device_rule),
    "dns": lambda v, s: string_list(v),
    "dns_search": lambda v, s: string_list(v),
    "entrypoint": to_shell,
    "env_file": _env_files,
    "environment": environment_rule,
    "expose": lambda v, s: string_list(v, allow_numbers=True),
    "extends": _extends,
    "extra_hosts": lambda v, s: extra_hosts(v),
    "gpus": gpus_rule,
    "group_add": lambda v, s: string_list(v, allow_numbers=True),
    "healthcheck": healthcheck_rule,
    "label_file": lambda v, s: [absolute(p, s.base, s.environment) for p in string_list(v)],
    "labels": lambda v, s: mapping(v, what="label"),
    "mem_limit": to_bytes,
    "mem_reservation": to_bytes,
    "memswap_limit": to_bytes,
    "models": _models,
    "networks": _networks,
    "ports": lambda v, s: each(v, s, _port),
    "post_start": lambda v, s: each(v, s, hook_rule),
    "pre_stop": lambda v, s: each(v, s, hook_rule),
    "pull_policy": lambda v, s: "missing" if v == "if_not_present" else v,
    "secrets": lambda v, s: each(v, s, secret_ref),
    "shm_size": to_bytes,
    "stop_grace_period": to_duration,
    "storage_opt": lambda v, s: mapping(v, what="option"),
    "sysctls": lambda v, s: mapping(v, what="sysctl"),
    "tmpfs": lambda v, s: string_list(v),
    "ulimits": ulimits_rule,
    "volumes": lambda v, s: each(v, s, lambda e, es: normalize_volume(e, es.base, es.environment)),
}


_IMPLICIT = {"condition": "service_started", "required": True}


def _implicit_dependencies(service: dict[str, Any]) -> None:
    """Fold `links`, `service:` namespaces and `volumes_from` into `depends_on`, as compose-go."""
    depends = service.get("depends_on")
    deps: dict[str, Any] = dict(depends) if isinstance(depends, dict) else {}
    # a wrongly typed `links: true` is validation's to report: only lists are read here
    links, volumes_from = service.get("links"), service.get("volumes_from")
    for ref in implicit_refs(
        links if isinstance(links, list) else None,
        {key: service.get(key) for key in NAMESPACE_KEYS},
        volumes_from if isinstance(volumes_from, list) else None,
    ):
        deps.setdefault(ref.service, {**_IMPLICIT, "restart": ref.restart})
    if deps:
        service["depends_on"] = deps


def normalize_service(raw: object, scope: Scope) -> dict[str, Any] | None:
    """A raw service mapping -> long form; None (reported) when it is not a mapping at all."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        scope.report(scope.path, f"expected a service mapping, got {describe(raw)}")
        return None
    out = dict(raw)
    apply_rules(out, scope, SERVICE_RULES)
    _implicit_dependencies(out)
    return out
