"""`deploy`, device requests and block-IO limits: typed and kept, mostly not acted on locally.

Only `deploy.replicas` and `deploy.resources` matter to a single-host engine; the rest is
Swarm vocabulary. They are still modelled field by field so a typo is an error and `config`
reproduces them faithfully.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from stackup.spec.models_base import SpecModel, Text
from stackup.spec.units import ByteSize, Duration


class DeviceRequest(SpecModel):
    """A GPU (or other device) reservation; `count: all` is stored as -1, as compose-go does."""

    capabilities: list[str] = Field(default_factory=list)
    driver: str | None = None
    count: int | None = None
    device_ids: list[str] = Field(default_factory=list)
    options: dict[str, Text] = Field(default_factory=dict)

    @field_validator("count", mode="before")
    @classmethod
    def _count(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.lower() == "all":
                return -1
            if not value.strip().lstrip("-").isdigit():
                raise PydanticCustomError(
                    "device_count", 'invalid device count "{value}": use "all" or a number', {"value": value}
                )
        return value


class DiscreteResource(SpecModel):
    kind: str
    value: int


class GenericResource(SpecModel):
    discrete_resource_spec: DiscreteResource | None = None


class Resource(SpecModel):
    cpus: float | None = None
    memory: ByteSize | None = None
    pids: int | None = None
    devices: list[DeviceRequest] = Field(default_factory=list)
    generic_resources: list[GenericResource] = Field(default_factory=list)


class Resources(SpecModel):
    limits: Resource | None = None
    reservations: Resource | None = None


class UpdateOrder(StrEnum):
    START_FIRST = "start-first"
    STOP_FIRST = "stop-first"


class UpdateConfig(SpecModel):
    parallelism: int | None = None
    delay: Duration | None = None
    failure_action: str | None = None
    monitor: Duration | None = None
    max_failure_ratio: float | None = None
    order: UpdateOrder | None = None


class DeployRestartPolicy(SpecModel):
    condition: str | None = None
    delay: Duration | None = None
    max_attempts: int | None = None
    window: Duration | None = None


class PlacementPreference(SpecModel):
    spread: str | None = None


class Placement(SpecModel):
    constraints: list[str] = Field(default_factory=list)
    preferences: list[PlacementPreference] = Field(default_factory=list)
    max_replicas_per_node: int | None = None


class Deploy(SpecModel):
    mode: str | None = None
    replicas: int | None = Field(default=None, ge=0)
    labels: dict[str, Text] = Field(default_factory=dict)
    update_config: UpdateConfig | None = None
    rollback_config: UpdateConfig | None = None
    resources: Resources | None = None
    restart_policy: DeployRestartPolicy | None = None
    placement: Placement | None = None
    endpoint_mode: str | None = None


class ThrottleDevice(SpecModel):
    path: str
    rate: ByteSize


class WeightDevice(SpecModel):
    path: str
    weight: int = Field(ge=0, le=1000)


class BlkioConfig(SpecModel):
    weight: int | None = Field(default=None, ge=0, le=1000)
    weight_device: list[WeightDevice] = Field(default_factory=list)
    device_read_bps: list[ThrottleDevice] = Field(default_factory=list)
    device_read_iops: list[ThrottleDevice] = Field(default_factory=list)
    device_write_bps: list[ThrottleDevice] = Field(default_factory=list)
    device_write_iops: list[ThrottleDevice] = Field(default_factory=list)


class CredentialSpec(SpecModel):
    config: str | None = None
    file: str | None = None
    registry: str | None = None


class Provider(SpecModel):
    """A service managed by an external provider plugin rather than by the engine."""

    type: str
    options: dict[str, Text | list[Text]] = Field(default_factory=dict)


class ServiceModel(SpecModel):
    """A service's use of a top-level `models` entry (AI models; Docker-specific)."""

    endpoint_var: str | None = None
    model_var: str | None = None
