"""Rules for the nested service blocks: build, deploy, develop, healthcheck, hooks, devices.

Split from `normalize_service` to keep each module to one screenful of concerns; the table that
uses them is there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from stackup.spec.normalize_rules import Rule, Scope, apply_rules, each, to_duration, to_shell
from stackup.spec.normalize_values import (
    absolute,
    build_context,
    describe,
    extra_hosts,
    mapping,
    shell_words,
    string_list,
    ulimit,
)
from stackup.spec.units import parse_bytes


def environment_rule(value: object, scope: Scope) -> dict[str, str | None]:
    env = mapping(value, keep_none=True, what="environment variable")
    return {k: scope.environment.get(k) if v is None else v for k, v in env.items()}


def _file_ref(default_target: Callable[[str], str | None]) -> Callable[[Any, Scope], Any]:
    def rule(value: object, _: Scope) -> dict[str, Any]:
        if isinstance(value, str):
            value = {"source": value}
        if not isinstance(value, dict):
            raise ValueError(f"expected a name or {{source, target, uid, gid, mode}}, got {describe(value)}")
        out = dict(value)
        source = out.get("source")
        if isinstance(source, str) and "target" not in out:
            target = default_target(source)
            if target is not None:
                out["target"] = target
        return out

    return rule


secret_ref = _file_ref(lambda source: f"/run/secrets/{source}")


config_ref = _file_ref(lambda source: None)


def device_rule(value: object, _: Scope) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected SOURCE[:TARGET[:PERMISSIONS]] or a mapping, got {describe(value)}")
    parts = value.split(":")
    if len(parts) > 3:
        raise ValueError(f'confusing device mapping "{value}": use the long syntax')
    source = parts[0]
    target = parts[1] if len(parts) > 1 and parts[1] else source
    return {"source": source, "target": target, "permissions": parts[2] if len(parts) == 3 else "rwm"}


def device_request_rule(value: object, _: Scope) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a device request mapping, got {describe(value)}")
    out = dict(value)
    if "count" not in out and "device_ids" not in out:
        out["count"] = -1  # compose-go: neither count nor ids means all devices
    if isinstance(out.get("count"), str) and out["count"].lower() == "all":
        out["count"] = -1
    for key in ("capabilities", "device_ids"):
        if key in out:
            out[key] = string_list(out[key])
    if "options" in out:
        out["options"] = mapping(out["options"], what="option")
    return out


def gpus_rule(value: object, scope: Scope) -> list[Any]:
    if value == "all":
        return [{"count": -1}]
    return each(value, scope, device_request_rule)


def hook_rule(value: object, scope: Scope) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(
            f"expected {{command, user, privileged, working_dir, environment}}, got {describe(value)}"
        )
    out = dict(value)
    apply_rules(out, scope, {"command": to_shell, "environment": environment_rule})
    return out


def _watch(value: object, scope: Scope) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected {{path, action, ...}}, got {describe(value)}")
    out = dict(value)
    apply_rules(out, scope, {
        "path": lambda v, s: absolute(v, s.base, s.environment) if isinstance(v, str) else v,
        "ignore": lambda v, s: string_list(v),
        "include": lambda v, s: string_list(v),
        "exec": hook_rule,
    })
    return out


def develop_rule(value: object, scope: Scope) -> Any:
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping, got {describe(value)}")
    out = dict(value)
    apply_rules(out, scope, {"watch": lambda v, s: each(v, s, _watch)})
    return out


def healthcheck_rule(value: object, scope: Scope) -> Any:
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping, got {describe(value)}")
    out = dict(value)
    durations = {k: to_duration for k in ("interval", "timeout", "start_period", "start_interval")}
    apply_rules(out, scope, {"test": _health_test, **durations})
    return out


def _health_test(value: object, _: Scope) -> list[str]:
    if isinstance(value, str):
        return ["CMD-SHELL", value]
    words = shell_words(value)
    return words if words is not None else []


def build_rule(value: object, scope: Scope) -> Any:
    if isinstance(value, str):
        value = {"context": value}
    if not isinstance(value, dict):
        raise ValueError(f"expected a context path or a mapping, got {describe(value)}")
    out = dict(value)
    out.setdefault("context", ".")
    if out.get("dockerfile") is None and out.get("dockerfile_inline") is None:
        out["dockerfile"] = "Dockerfile"
    apply_rules(out, scope, {
        "context": lambda v, s: build_context(v, s.base, s.environment) if isinstance(v, str) else v,
        "args": _build_args,
        "labels": lambda v, s: mapping(v, what="label"),
        "extra_hosts": lambda v, s: extra_hosts(v),
        "additional_contexts": lambda v, s: {
            k: build_context(c, s.base, s.environment) if isinstance(c, str) else c
            for k, c in mapping(v, what="context").items()
        },
        "ssh": _ssh,
        "secrets": lambda v, s: each(v, s, config_ref),
        "cache_from": lambda v, s: string_list(v),
        "cache_to": lambda v, s: string_list(v),
        "no_cache_filter": lambda v, s: string_list(v),
        "tags": lambda v, s: string_list(v),
        "platforms": lambda v, s: string_list(v),
        "shm_size": lambda v, s: parse_bytes(v),
        "ulimits": ulimits_rule,
    })
    return out


def _build_args(value: object, scope: Scope) -> dict[str, str | None]:
    args = mapping(value, keep_none=True, what="build arg")
    out: dict[str, str | None] = {}
    for key, arg in args.items():
        if arg is None:
            if key in scope.environment:
                out[key] = scope.environment[key]
            continue  # compose-go drops args with no value anywhere
        out[key] = arg
    return out


def _ssh(value: object, _: Scope) -> dict[str, str | None]:
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    out: dict[str, str | None] = {}
    for entry in string_list(value):
        key, sep, path = entry.partition("=")
        if not sep and key != "default":
            raise ValueError(f'invalid ssh key "{entry}": expected ID=PATH or default')
        out[key] = path if sep else None
    return out


def ulimits_rule(value: object, scope: Scope) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping of limits, got {describe(value)}")
    out: dict[str, Any] = {}
    for name, limit in value.items():
        try:
            out[str(name)] = ulimit(limit)
        except ValueError as exc:
            scope.report((*scope.path, str(name)), str(exc))
    return out


def deploy_rule(value: object, scope: Scope) -> Any:
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping, got {describe(value)}")
    out = dict(value)
    updates = {"delay": to_duration, "monitor": to_duration}
    resource = {
        "memory": lambda v, s: parse_bytes(v),
        "devices": lambda v, s: each(v, s, device_request_rule),
    }
    apply_rules(out, scope, {
        "labels": lambda v, s: mapping(v, what="label"),
        "update_config": lambda v, s: _nested(v, s, updates),
        "rollback_config": lambda v, s: _nested(v, s, updates),
        "restart_policy": lambda v, s: _nested(v, s, {"delay": to_duration, "window": to_duration}),
        "resources": lambda v, s: _nested(v, s, {
            "limits": lambda r, rs: _nested(r, rs, resource),
            "reservations": lambda r, rs: _nested(r, rs, resource),
        }),
    })
    return out


def _nested(value: object, scope: Scope, rules: Mapping[str, Rule]) -> Any:
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping, got {describe(value)}")
    out = dict(value)
    apply_rules(out, scope, rules)
    return out
