"""The value objects inside a service: ports, mounts, dependencies, health checks, build.

Each mirrors the long syntax compose-go marshals (`types/*.go`), so a model dumps to exactly
what `docker compose config` shows. Short syntax never reaches these classes: `normalize`
rewrites it first and reports malformed values with their key path.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from stackup.spec.kinds import DependsCondition
from stackup.spec.models_base import HostsList, SpecModel, Text
from stackup.spec.units import ByteSize, Duration


class DependsOn(SpecModel):
    """One `depends_on` edge. `restart`: restart the dependent when the dependency is updated."""

    condition: DependsCondition = DependsCondition.STARTED
    required: bool = True
    restart: bool = False


class Protocol(StrEnum):
    TCP = "tcp"
    UDP = "udp"
    SCTP = "sctp"


class PortMode(StrEnum):
    INGRESS = "ingress"
    HOST = "host"


class PortSpec(SpecModel):
    """A published or exposed port; `published` stays a string because it may be a range."""

    name: str | None = None
    mode: PortMode = PortMode.INGRESS
    host_ip: str | None = None
    target: int = Field(ge=0, le=65535)
    published: str | None = None
    protocol: Protocol = Protocol.TCP
    app_protocol: str | None = None

    @field_validator("published", mode="before")
    @classmethod
    def _published_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @property
    def merge_key(self) -> tuple[str, int, str, str]:
        """Compose merges ports by {ip, target, published, protocol}."""
        return (self.host_ip or "", self.target, self.published or "", self.protocol.value)


class VolumeType(StrEnum):
    BIND = "bind"
    VOLUME = "volume"
    TMPFS = "tmpfs"
    NPIPE = "npipe"
    CLUSTER = "cluster"
    IMAGE = "image"


class Propagation(StrEnum):
    RPRIVATE = "rprivate"
    PRIVATE = "private"
    RSHARED = "rshared"
    SHARED = "shared"
    RSLAVE = "rslave"
    SLAVE = "slave"


class BindOptions(SpecModel):
    propagation: Propagation | None = None
    create_host_path: bool = True
    recursive: str | None = None
    selinux: str | None = Field(default=None, pattern="^[zZ]$")

    keep_when_empty: ClassVar[frozenset[str]] = frozenset({"create_host_path"})


class VolumeOptions(SpecModel):
    labels: dict[str, Text] = Field(default_factory=dict)
    nocopy: bool = False
    subpath: str | None = None


class TmpfsOptions(SpecModel):
    size: ByteSize | None = None
    mode: int | None = None


class ImageMountOptions(SpecModel):
    subpath: str | None = None


class ServiceVolume(SpecModel):
    """A mount: bind (absolute host path), named/anonymous volume, tmpfs, image, ..."""

    type: VolumeType
    source: str | None = None
    target: str | None = None
    read_only: bool = False
    consistency: str | None = None
    bind: BindOptions | None = None
    volume: VolumeOptions | None = None
    tmpfs: TmpfsOptions | None = None
    image: ImageMountOptions | None = None

    @property
    def merge_key(self) -> str:
        """Compose merges service volumes by target."""
        return self.target or ""


class EnvFile(SpecModel):
    path: str
    required: bool = True
    format: str | None = None

    keep_when_empty: ClassVar[frozenset[str]] = frozenset({"required"})


class FileMode(int):
    """A permission mode; printed in octal (`"0440"`), as compose-go's FileMode is."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            _file_mode,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda v: f"0{int(v):o}", when_used="json"
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": ["string", "integer"], "examples": ["0440", 288]}


def _file_mode(value: object) -> FileMode:
    if isinstance(value, int) and not isinstance(value, bool):
        return FileMode(value)
    if isinstance(value, str) and re.fullmatch(r"0?[0-7]+", value.strip()):
        return FileMode(int(value.strip(), 8))
    raise PydanticCustomError("file_mode", "expected an octal file mode such as 0440, got {value!r}",
                              {"value": value})


class FileReference(SpecModel):
    """A service's use of a top-level secret or config."""

    source: str
    target: str | None = None
    uid: Text | None = None
    gid: Text | None = None
    mode: FileMode | None = None


class Ulimit(SpecModel):
    soft: int
    hard: int


class RestartKind(StrEnum):
    NO = "no"
    ALWAYS = "always"
    ON_FAILURE = "on-failure"
    UNLESS_STOPPED = "unless-stopped"


_RESTART = re.compile(r"(no|always|unless-stopped|on-failure)(?::(\d+))?")


class RestartPolicy(BaseModel):
    """`restart:` parsed: `on-failure:3` -> kind ON_FAILURE, max_retries 3; prints back as text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: RestartKind
    max_retries: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if isinstance(value, bool):  # YAML 1.1 reads a bare `no` as false
            value = "always" if value else "no"
        if not isinstance(value, str):
            return value
        match = _RESTART.fullmatch(value.strip())
        if match is None or (match.group(2) is not None and match.group(1) != "on-failure"):
            raise PydanticCustomError(
                "restart_policy",
                'invalid restart policy "{value}": use no, always, on-failure[:N] or unless-stopped',
                {"value": value},
            )
        retries = match.group(2)
        return {"kind": match.group(1), "max_retries": int(retries) if retries else None}

    @model_serializer(mode="plain")
    def _text(self) -> str:
        return str(self)

    def __str__(self) -> str:
        return f"{self.kind}:{self.max_retries}" if self.max_retries is not None else self.kind.value

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "pattern": r"^(no|always|unless-stopped|on-failure(:\d+)?)$"}


class Healthcheck(SpecModel):
    """`test` is the exec form: `["CMD", ...]`, `["CMD-SHELL", "cmd"]` or `["NONE"]`."""

    test: list[str] = Field(default_factory=list)
    interval: Duration | None = None
    timeout: Duration | None = None
    retries: int | None = Field(default=None, ge=0)
    start_period: Duration | None = None
    start_interval: Duration | None = None
    disable: bool = False

    @field_validator("test")
    @classmethod
    def _test_form(cls, value: list[str]) -> list[str]:
        if value and value[0] not in ("CMD", "CMD-SHELL", "NONE"):
            raise PydanticCustomError(
                "healthcheck_test",
                'healthcheck test must start with "CMD", "CMD-SHELL" or "NONE", got "{first}"',
                {"first": value[0]},
            )
        return value


class ServiceNetwork(SpecModel):
    aliases: list[str] = Field(default_factory=list)
    driver_opts: dict[str, Text] = Field(default_factory=dict)
    gw_priority: int | None = None
    interface_name: str | None = None
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    link_local_ips: list[str] = Field(default_factory=list)
    mac_address: str | None = None
    priority: int | None = None


class Logging(SpecModel):
    driver: str | None = None
    options: dict[str, Text | None] = Field(default_factory=dict)


class ServiceHook(SpecModel):
    """`post_start`/`pre_stop` and `develop.watch[].exec`: a command run inside the container."""

    command: list[str] | None = None
    image: str | None = None
    user: str | None = None
    privileged: bool = False
    working_dir: str | None = None
    environment: dict[str, str | None] = Field(default_factory=dict)
    per_replica: bool = False


class WatchAction(StrEnum):
    SYNC = "sync"
    REBUILD = "rebuild"
    RESTART = "restart"
    SYNC_RESTART = "sync+restart"
    SYNC_EXEC = "sync+exec"


class WatchRule(SpecModel):
    path: str
    action: WatchAction
    target: str | None = None
    exec: ServiceHook | None = None
    include: list[str] = Field(default_factory=list)
    ignore: list[str] = Field(default_factory=list)
    initial_sync: bool = False


class Develop(SpecModel):
    watch: list[WatchRule] = Field(default_factory=list)


class Build(SpecModel):
    """How to build the image; `context` is absolute (or a URL) after normalisation."""

    context: str = "."
    dockerfile: str | None = None
    dockerfile_inline: str | None = None
    entitlements: list[str] = Field(default_factory=list)
    args: dict[str, str | None] = Field(default_factory=dict)
    ssh: dict[str, str | None] = Field(default_factory=dict)
    labels: dict[str, Text] = Field(default_factory=dict)
    cache_from: list[str] = Field(default_factory=list)
    cache_to: list[str] = Field(default_factory=list)
    no_cache: bool = False
    no_cache_filter: list[str] = Field(default_factory=list)
    additional_contexts: dict[str, str] = Field(default_factory=dict)
    network: str | None = None
    provenance: Text | None = None
    sbom: Text | None = None
    pull: bool = False
    target: str | None = None
    shm_size: ByteSize | None = None
    extra_hosts: HostsList = Field(default_factory=dict)
    isolation: str | None = None
    privileged: bool = False
    secrets: list[FileReference] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    ulimits: dict[str, Ulimit] = Field(default_factory=dict)
    platforms: list[str] = Field(default_factory=list)


class Extends(SpecModel):
    service: str
    file: str | None = None


class DeviceMapping(SpecModel):
    source: str
    target: str | None = None
    permissions: str | None = None
