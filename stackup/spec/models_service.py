"""`Service`: every key of the Compose schema's service definition, in its long form.

Keys stackup's engine does not act on (Swarm, Windows, cgroup v1 knobs) are still typed and
kept: a stack file that `docker compose config` accepts must load here, and a misspelt key must
be an error rather than silently ignored.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from stackup.spec.models_base import HostsList, SpecModel, Text
from stackup.spec.models_deploy import (
    BlkioConfig,
    CredentialSpec,
    Deploy,
    DeviceRequest,
    Provider,
    ServiceModel,
)
from stackup.spec.models_parts import (
    Build,
    DependsOn,
    Develop,
    DeviceMapping,
    EnvFile,
    Extends,
    FileReference,
    Healthcheck,
    Logging,
    PortSpec,
    RestartPolicy,
    ServiceHook,
    ServiceNetwork,
    ServiceVolume,
    Ulimit,
)
from stackup.spec.units import ByteSize, Duration

_PULL_POLICY = re.compile(
    r"always|never|build|if_not_present|missing|refresh|daily|weekly|every_([0-9]+[wdhms])+"
)


class Service(SpecModel):
    """One service of a project, with Compose's key names."""

    annotations: dict[str, Text] = Field(default_factory=dict)
    attach: bool | None = None
    blkio_config: BlkioConfig | None = None
    build: Build | None = None
    cap_add: list[str] = Field(default_factory=list)
    cap_drop: list[str] = Field(default_factory=list)
    cgroup: str | None = Field(default=None, pattern="^(host|private)$")
    cgroup_parent: str | None = None
    command: list[str] | None = None
    configs: list[FileReference] = Field(default_factory=list)
    container_name: str | None = Field(default=None, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
    cpu_count: int | None = Field(default=None, ge=0)
    cpu_percent: int | None = Field(default=None, ge=0, le=100)
    cpu_period: int | None = None
    cpu_quota: int | None = None
    cpu_rt_period: int | None = None
    cpu_rt_runtime: int | None = None
    cpu_shares: int | None = None
    cpus: float | None = None
    cpuset: str | None = None
    credential_spec: CredentialSpec | None = None
    depends_on: dict[str, DependsOn] = Field(default_factory=dict)
    deploy: Deploy | None = None
    develop: Develop | None = None
    device_cgroup_rules: list[str] = Field(default_factory=list)
    devices: list[DeviceMapping] = Field(default_factory=list)
    dns: list[str] = Field(default_factory=list)
    dns_opt: list[str] = Field(default_factory=list)
    dns_search: list[str] = Field(default_factory=list)
    domainname: str | None = None
    entrypoint: list[str] | None = None
    env_file: list[EnvFile] = Field(default_factory=list)
    environment: dict[str, str | None] = Field(default_factory=dict)
    expose: list[Text] = Field(default_factory=list)
    extends: Extends | None = None
    external_links: list[str] = Field(default_factory=list)
    extra_hosts: HostsList = Field(default_factory=dict)
    gpus: list[DeviceRequest] = Field(default_factory=list)
    group_add: list[Text] = Field(default_factory=list)
    healthcheck: Healthcheck | None = None
    hostname: str | None = None
    image: str | None = None
    init: bool | None = None
    ipc: str | None = None
    isolation: str | None = None
    label_file: list[str] = Field(default_factory=list)
    labels: dict[str, Text] = Field(default_factory=dict)
    links: list[str] = Field(default_factory=list)
    logging: Logging | None = None
    mac_address: str | None = None
    mem_limit: ByteSize | None = None
    mem_reservation: ByteSize | None = None
    mem_swappiness: int | None = Field(default=None, ge=0, le=100)
    memswap_limit: ByteSize | None = None
    models: dict[str, ServiceModel | None] = Field(default_factory=dict)
    network_mode: str | None = None
    networks: dict[str, ServiceNetwork | None] = Field(default_factory=dict)
    oom_kill_disable: bool = False
    oom_score_adj: int | None = Field(default=None, ge=-1000, le=1000)
    pid: str | None = None
    pids_limit: int | None = None
    platform: str | None = None
    ports: list[PortSpec] = Field(default_factory=list)
    post_start: list[ServiceHook] = Field(default_factory=list)
    pre_stop: list[ServiceHook] = Field(default_factory=list)
    privileged: bool = False
    profiles: list[str] = Field(default_factory=list)
    provider: Provider | None = None
    pull_policy: str | None = None
    pull_refresh_after: str | None = None
    read_only: bool = False
    restart: RestartPolicy | None = None
    runtime: str | None = None
    scale: int | None = Field(default=None, ge=0)
    secrets: list[FileReference] = Field(default_factory=list)
    security_opt: list[str] = Field(default_factory=list)
    shm_size: ByteSize | None = None
    stdin_open: bool = False
    stop_grace_period: Duration | None = None
    stop_signal: str | None = None
    storage_opt: dict[str, Text] = Field(default_factory=dict)
    sysctls: dict[str, Text] = Field(default_factory=dict)
    tmpfs: list[str] = Field(default_factory=list)
    tty: bool = False
    ulimits: dict[str, Ulimit] = Field(default_factory=dict)
    use_api_socket: bool = False
    user: str | None = None
    userns_mode: str | None = None
    uts: str | None = None
    volumes: list[ServiceVolume] = Field(default_factory=list)
    volumes_from: list[str] = Field(default_factory=list)
    working_dir: str | None = None

    @field_validator("pull_policy")
    @classmethod
    def _pull_policy(cls, value: str | None) -> str | None:
        if value is not None and not _PULL_POLICY.fullmatch(value):
            raise PydanticCustomError(
                "pull_policy",
                'invalid pull_policy "{value}": use always, never, missing, build, daily, weekly '
                "or every_<duration>",
                {"value": value},
            )
        return value

    @model_validator(mode="after")
    def _scale_matches_replicas(self) -> Service:
        replicas = self.deploy.replicas if self.deploy else None
        if self.scale is not None and replicas is not None and self.scale != replicas:
            raise PydanticCustomError(
                "scale_conflict",
                "scale ({scale}) and deploy.replicas ({replicas}) disagree; set only one",
                {"scale": self.scale, "replicas": replicas},
            )
        return self

    @property
    def replicas(self) -> int:
        """How many containers to run: `scale`, else `deploy.replicas`, else 1."""
        if self.scale is not None:
            return self.scale
        if self.deploy is not None and self.deploy.replicas is not None:
            return self.deploy.replicas
        return 1

    def dependencies(self) -> list[str]:
        """Names of the services this one depends on, in file order."""
        return list(self.depends_on)

    @staticmethod
    def field_names() -> list[str]:
        """Compose key names, for "did you mean" hints."""
        return [n for n in Service.model_fields if n != "extensions"]
