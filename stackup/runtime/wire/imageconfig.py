"""The runtime part of an OCI/Docker image config (`config` in the config JSON).

Field names are snake_case in Python and PascalCase on the wire (`WorkingDir`), as both the OCI
image spec and Docker write them. Unknown keys (`ArgsEscaped`, `OnBuild`, `Hostname`, ...) are
ignored rather than forbidden: the config comes from other tools, and the blob keeps every byte.
JSON `null`, which Docker writes for empty lists and maps, reads as empty.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic.alias_generators import to_pascal


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", alias_generator=to_pascal,
                              populate_by_name=True)


class HealthConfig(_Wire):
    """Docker's `Healthcheck`: durations in nanoseconds, `Test` like `["CMD-SHELL", "curl ..."]`."""

    test: tuple[str, ...] = ()
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0

    def over(self, base: HealthConfig) -> HealthConfig:
        """This check over an image's, field by field, as Docker merges them (moby
        `daemon/commit.go`): an empty test or a zero duration or retry count inherits `base`'s
        value; test `["NONE"]` is kept, so it disables the image's check too."""
        return HealthConfig(
            test=self.test or base.test,
            interval=self.interval or base.interval,
            timeout=self.timeout or base.timeout,
            start_period=self.start_period or base.start_period,
            start_interval=self.start_interval or base.start_interval,
            retries=self.retries or base.retries,
        )


class ImageConfig(_Wire):
    """What a container inherits from its image unless the service overrides it."""

    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    labels: dict[str, str] = {}
    stop_signal: str | None = None
    healthcheck: HealthConfig | None = None

    @field_validator("env", "exposed_ports", "volumes", mode="before")
    @classmethod
    def _sequence(cls, value: Any) -> Any:
        """`null` reads as empty; the set-like fields arrive as objects (`{"80/tcp": {}}`)."""
        if value is None:
            return ()
        return tuple(value) if isinstance(value, dict) else value

    @field_validator("labels", mode="before")
    @classmethod
    def _mapping(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("working_dir", "user", mode="before")
    @classmethod
    def _string(cls, value: Any) -> Any:
        return "" if value is None else value

    def to_wire(self) -> dict[str, Any]:
        """The OCI `config` object, with the set-like fields back as JSON objects."""
        data = self.model_dump(by_alias=True, exclude_defaults=True)
        for key in ("ExposedPorts", "Volumes"):
            if key in data:
                data[key] = {item: {} for item in data[key]}
        return data
