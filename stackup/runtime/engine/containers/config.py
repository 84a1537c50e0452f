"""What the native engine needs to know to run one container, and nothing about how.

`ContainerConfig` is the seam between the engine's container manager (which turns a Compose
service plus an image into concrete values: a mounted rootfs, resolved volume paths, a netns) and
the OCI layer (`oci.py` turns it into `config.json`; `conmon.py` runs it). Values here are already
concrete: byte counts, absolute host paths, a signal number. Parsing Compose's human syntax
(`512m`, `1m30s`) is the spec package's job, not this one's.

The user is kept as the string the user wrote (`1000:1000`, `www-data`, `app:staff`) and resolved
against the image's own `/etc/passwd` and `/etc/group` by `resolve_user`, because the same
service may run on different images and because Docker resolves names that way too.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stackup.errors import RuntimeFailure
from stackup.runtime.engine.containers import logpolicy
from stackup.runtime.engine.containers.logpolicy import LogPolicy
from stackup.runtime.wire.models import DeviceRequest, HostEntry, MountKind, Ulimit
from stackup.runtime.wire.paths import EnginePaths

_FROZEN = ConfigDict(frozen=True, extra="forbid")

#: runc accepts a narrower alphabet for ids than Docker for names; keep to the intersection.
CONTAINER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"

class NetworkMode(StrEnum):
    """How the container gets its network namespace.

    `none` gives it a fresh namespace with only loopback; `host` shares the host's; `path` joins
    a namespace the network layer has already made and wired (bind-mounted under /run/netns).
    """

    NONE = "none"
    HOST = "host"
    PATH = "path"


class Mount(BaseModel):
    """One filesystem attached to the container. For volumes `source` is the volume's host directory."""

    model_config = _FROZEN

    kind: MountKind
    target: PurePosixPath
    source: Path | None = None
    read_only: bool = False
    #: tmpfs only: size limit in bytes (None = the kernel's default of half the RAM) and mode.
    tmpfs_size: int | None = Field(default=None, gt=0)
    tmpfs_mode: int | None = Field(default=None, ge=0, le=0o7777)

    @model_validator(mode="after")
    def _check(self) -> Mount:
        if not self.target.is_absolute():
            raise ValueError(f"mount target {self.target} must be absolute")
        if self.kind is MountKind.TMPFS:
            if self.source is not None:
                raise ValueError("a tmpfs mount takes no source")
        elif self.source is None or not self.source.is_absolute():
            raise ValueError(f"a {self.kind} mount needs an absolute host source")
        return self


class ProcessUser(BaseModel):
    """A user resolved to numbers, which is all the kernel (and runc) understand."""

    model_config = _FROZEN

    uid: int = Field(ge=0)
    gid: int = Field(ge=0)
    additional_gids: tuple[int, ...] = ()
    home: str = "/"


def parse_signal(value: object) -> signal.Signals:
    """Accept `SIGTERM`, `TERM`, `sigterm`, `15` or a `Signals`, as Compose's `stop_signal` does."""
    if isinstance(value, signal.Signals):
        return value
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        try:
            return signal.Signals(int(value))
        except ValueError:
            raise ValueError(f"unknown signal number {value}") from None
    if isinstance(value, str):
        name = value.strip().upper()
        name = name if name.startswith("SIG") else f"SIG{name}"
        try:
            return signal.Signals[name]
        except KeyError:
            raise ValueError(f"unknown signal {value!r}") from None
    raise ValueError(f"not a signal: {value!r}")


class ContainerConfig(BaseModel):
    """Everything `oci_config` and `conmon.create` need for one container, already concrete."""

    model_config = _FROZEN

    id: Annotated[str, Field(pattern=CONTAINER_ID_PATTERN)]
    name: Annotated[str, Field(min_length=1)]
    rootfs: Path
    args: Annotated[tuple[str, ...], Field(min_length=1)]
    env: dict[str, str] = Field(default_factory=dict)
    cwd: PurePosixPath = PurePosixPath("/")
    #: As written by the user; "" means the image default (root). See `resolve_user`.
    user: str = ""
    hostname: str = ""
    tty: bool = False
    stdin_open: bool = False
    read_only: bool = False
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    sysctls: dict[str, str] = Field(default_factory=dict)
    ulimits: tuple[Ulimit, ...] = ()
    mounts: tuple[Mount, ...] = ()
    memory: int | None = Field(default=None, gt=0, description="memory limit in bytes")
    cpus: float | None = Field(default=None, gt=0)
    pids_limit: int | None = Field(default=None, description="-1 or None: unlimited")
    shm_size: int | None = Field(default=None, gt=0)
    init: bool = False
    stop_signal: signal.Signals = signal.SIGTERM
    stop_grace_period: float = Field(default=10.0, ge=0)
    network_mode: NetworkMode = NetworkMode.NONE
    netns_path: Path | None = None
    extra_hosts: tuple[HostEntry, ...] = ()
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    devices: tuple[DeviceRequest, ...] = ()
    no_new_privileges: bool = False
    seccomp: str | None = None
    """`unconfined`, or a profile in Docker's JSON format; None: Docker's default profile."""
    log_driver: str | None = None
    log_options: dict[str, str] = Field(default_factory=dict)
    #: The cgroup directory (relative to each hierarchy's root) that holds this engine's containers.
    cgroup_parent: str = Field(default_factory=lambda: default_cgroup_parent(EnginePaths.from_env().root))

    @field_validator("stop_signal", mode="before")
    @classmethod
    def _signal(cls, value: Any) -> signal.Signals:
        return parse_signal(value)

    @field_validator("cap_add", "cap_drop", mode="before")
    @classmethod
    def _caps(cls, value: Any) -> tuple[str, ...]:
        return tuple(normalize_capability(str(cap)) for cap in value)

    @field_validator("rootfs")
    @classmethod
    def _rootfs(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError(f"rootfs {value} must be an absolute path")
        return value

    @field_validator("cgroup_parent")
    @classmethod
    def _cgroup_parent(cls, value: str) -> str:
        if not value.startswith("/") or ".." in value.split("/"):
            raise ValueError(f"cgroup parent {value!r} must be an absolute path without '..'")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _check(self) -> ContainerConfig:
        self.log_policy  # noqa: B018 - a bad `logging:` fails the create, not the first rotation
        if (self.network_mode is NetworkMode.PATH) != (self.netns_path is not None):
            raise ValueError("netns_path is required with network_mode 'path', and only then")
        if not self.cwd.is_absolute():
            raise ValueError(f"working directory {self.cwd} must be absolute")
        return self

    @property
    def log_policy(self) -> LogPolicy:
        return logpolicy.policy(self.log_driver, self.log_options)

    @property
    def effective_hostname(self) -> str:
        """Docker's default hostname is the first 12 characters of the container id."""
        return self.hostname or self.id[:12]

    @property
    def cgroup_path(self) -> str:
        """This container's cgroup, relative to the root of every hierarchy."""
        return f"{self.cgroup_parent}/{self.id}"


def default_cgroup_parent(root: Path) -> str:
    """A cgroup parent unique to one engine root, so two engines never share or clean each other's."""
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
    return f"/stackup-{digest}"


def normalize_capability(name: str) -> str:
    """`net_raw`, `NET_RAW` and `CAP_NET_RAW` all mean `CAP_NET_RAW`; `ALL` stays `ALL`."""
    upper = name.strip().upper()
    if upper == "ALL" or upper.startswith("CAP_"):
        return upper
    return f"CAP_{upper}"


# --- user resolution -------------------------------------------------------------------------

_MAX_SYMLINKS = 40


def rootfs_path(rootfs: Path, inner: str) -> Path:
    """Resolve `inner` inside `rootfs` following symlinks as the container would see them.

    An image's `/etc/passwd` may be a symlink (even an absolute one); following it naively on the
    host would read the host's file. This walks component by component and re-roots every link.
    """
    parts = [p for p in PurePosixPath(inner).parts if p not in ("/", "")]
    resolved = PurePosixPath("/")
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            resolved = resolved.parent
            continue
        candidate = resolved / part
        host = rootfs / candidate.relative_to("/")
        if host.is_symlink():
            hops += 1
            if hops > _MAX_SYMLINKS:
                raise RuntimeFailure(f"too many symlinks resolving {inner} in {rootfs}")
            target = PurePosixPath(os.readlink(host))
            parts = [p for p in target.parts if p != "/"] + parts
            if target.is_absolute():
                resolved = PurePosixPath("/")
            continue
        resolved = candidate
    return rootfs / resolved.relative_to("/")


def _read_db(rootfs: Path, name: str) -> list[list[str]]:
    """Rows of a colon-separated database (`/etc/passwd`, `/etc/group`); missing file = no rows."""
    try:
        text = rootfs_path(rootfs, f"/etc/{name}").read_text(errors="replace")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return []
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


_NUMERIC = re.compile(r"^\d+$")


def resolve_user(rootfs: Path, user: str) -> ProcessUser:
    """Turn `user`, `uid`, `user:group`, `uid:gid` (any mix) into numbers, as Docker does.

    Names must exist in the image's databases; numbers need not (a numeric uid with no passwd
    entry runs with gid 0 and home `/`). Without an explicit group, supplementary groups are the
    groups listing the user's name as a member. Anything else is a `RuntimeFailure` naming the
    file that was searched.
    """
    spec = user.strip() or "0"
    user_part, _, group_part = spec.partition(":")
    if not user_part:
        raise RuntimeFailure(f"invalid user {user!r}: the user part is empty")
    passwd = _read_db(rootfs, "passwd")
    entry = next(
        (row for row in passwd if len(row) >= 4 and (row[0] == user_part or row[2] == user_part)), None
    )
    if entry is not None:
        uid, gid, name, home = int(entry[2]), int(entry[3]), entry[0], (entry[5] if len(entry) > 5 else "/")
    elif _NUMERIC.match(user_part):
        uid, gid, name, home = int(user_part), 0, "", "/"
    else:
        raise RuntimeFailure(
            f"unable to find user {user_part!r}: no matching entry in the image's /etc/passwd"
        )

    groups = _read_db(rootfs, "group")
    if group_part:
        row = next((r for r in groups if len(r) >= 3 and (r[0] == group_part or r[2] == group_part)), None)
        if row is not None:
            gid = int(row[2])
        elif _NUMERIC.match(group_part):
            gid = int(group_part)
        else:
            raise RuntimeFailure(
                f"unable to find group {group_part!r}: no matching entry in the image's /etc/group"
            )
    # Like Docker, an explicit group replaces the supplementary groups instead of adding to them.
    extra = sorted(
        {int(r[2]) for r in groups if len(r) >= 4 and name and name in r[3].split(",") and r[2].isdigit()}
        - {gid}
        if not group_part
        else set()
    )
    return ProcessUser(uid=uid, gid=gid, additional_gids=tuple(extra), home=home or "/")
