"""The typed project: what `spec.load()` returns and every later stage consumes.

A `Project` is the canonical long form of a stack after interpolation, merge and
normalisation; it is frozen so the planner can hash it and no stage can edit another's input.
Service-level value objects live in `models_parts`, `models_deploy` and `models_service`; they
are re-exported here so callers import from one place.
"""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from stackup.spec.kinds import DependsCondition
from stackup.spec.models_base import SpecModel, Text
from stackup.spec.models_deploy import (
    BlkioConfig,
    Deploy,
    DeviceRequest,
    Placement,
    Resource,
    Resources,
)
from stackup.spec.models_parts import (
    BindOptions,
    Build,
    DependsOn,
    Develop,
    DeviceMapping,
    EnvFile,
    FileMode,
    FileReference,
    Healthcheck,
    Logging,
    PortMode,
    PortSpec,
    Propagation,
    Protocol,
    RestartKind,
    RestartPolicy,
    ServiceHook,
    ServiceNetwork,
    ServiceVolume,
    TmpfsOptions,
    Ulimit,
    VolumeOptions,
    VolumeType,
    WatchAction,
    WatchRule,
)
from stackup.spec.models_service import Service

__all__ = [
    "BindOptions", "BlkioConfig", "Build", "Config", "DependsCondition", "DependsOn", "Deploy",
    "Develop", "DeviceMapping", "DeviceRequest", "EnvFile", "FileMode", "FileReference",
    "Healthcheck", "Include", "Ipam", "IpamPool", "Logging", "Model", "Network", "Placement",
    "PortMode", "PortSpec", "Project", "Propagation", "Protocol", "Resource", "Resources",
    "RestartKind", "RestartPolicy", "Secret", "Service", "ServiceHook", "ServiceNetwork",
    "ServiceVolume", "TmpfsOptions", "Ulimit", "Volume", "VolumeOptions", "VolumeType",
    "WatchAction", "WatchRule",
]

PROJECT_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"


class IpamPool(SpecModel):
    subnet: str | None = None
    ip_range: str | None = None
    gateway: str | None = None
    aux_addresses: dict[str, str] = Field(default_factory=dict)


class Ipam(SpecModel):
    driver: str | None = None
    config: list[IpamPool] = Field(default_factory=list)
    options: dict[str, Text] = Field(default_factory=dict)


class Network(SpecModel):
    """A top-level network; `name` is the engine-side name (`<project>_<key>` unless set)."""

    name: str | None = None
    driver: str | None = None
    driver_opts: dict[str, Text] = Field(default_factory=dict)
    ipam: Ipam | None = None
    external: bool = False
    internal: bool = False
    enable_ipv4: bool | None = None
    enable_ipv6: bool | None = None
    attachable: bool = False
    labels: dict[str, Text] = Field(default_factory=dict)


class Volume(SpecModel):
    """A top-level named volume."""

    name: str | None = None
    driver: str | None = None
    driver_opts: dict[str, Text] = Field(default_factory=dict)
    external: bool = False
    labels: dict[str, Text] = Field(default_factory=dict)


class Secret(SpecModel):
    """A secret, from a file or an environment variable, or external."""

    name: str | None = None
    file: str | None = None
    environment: str | None = None
    external: bool = False
    labels: dict[str, Text] = Field(default_factory=dict)
    driver: str | None = None
    driver_opts: dict[str, Text] = Field(default_factory=dict)
    template_driver: str | None = None


class Config(SpecModel):
    """A config file: from a file, an environment variable or inline `content`."""

    name: str | None = None
    file: str | None = None
    environment: str | None = None
    content: str | None = None
    external: bool = False
    labels: dict[str, Text] = Field(default_factory=dict)
    template_driver: str | None = None


class Include(SpecModel):
    """An included sub-project (kept for `config`; the loader has already merged it)."""

    path: list[str] = Field(default_factory=list)
    env_file: list[str] = Field(default_factory=list)
    project_directory: str | None = None


class Model(SpecModel):
    """A top-level AI model declaration (Docker-specific, kept and ignored)."""

    name: str | None = None
    model: str
    context_size: int | None = None
    runtime_flags: list[str] = Field(default_factory=list)


class Project(SpecModel):
    """A whole stack. `name` follows the spec: lowercase letters, digits, `-`, `_`."""

    name: str = Field(pattern=PROJECT_NAME_PATTERN)
    version: str | None = Field(default=None, exclude=True)
    include: list[Include] = Field(default_factory=list)
    services: dict[str, Service] = Field(default_factory=dict)
    networks: dict[str, Network] = Field(default_factory=dict)
    volumes: dict[str, Volume] = Field(default_factory=dict)
    secrets: dict[str, Secret] = Field(default_factory=dict)
    configs: dict[str, Config] = Field(default_factory=dict)
    models: dict[str, Model] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _sources_exclusive(self) -> Project:
        for kind, items in (("secrets", self.secrets), ("configs", self.configs)):
            for key, item in items.items():
                sources = [s for s in ("file", "environment", "content") if getattr(item, s, None)]
                if len(sources) > 1:
                    raise PydanticCustomError(
                        "exclusive_sources",
                        "{kind}.{key}: set only one of {sources}",
                        {"kind": kind, "key": key, "sources": ", ".join(sources)},
                    )
        return self

    def service_names(self) -> list[str]:
        return list(self.services)
