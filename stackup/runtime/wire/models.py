"""Request and answer bodies of the engine API that are not state records.

Shared by the server (to validate what arrives) and the client (to build requests and parse
answers), so the two sides cannot drift; the OpenAPI document is generated from these classes.
Kept free of starlette and httpx so the CLI can import it cheaply.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stackup.runtime.wire.imageconfig import HealthConfig
from stackup.runtime.wire.restart import RestartPolicy

API_VERSION = "1"


class MountKind(StrEnum):
    """Compose's `volumes[].type` values that the engine can express as OCI mounts."""

    BIND = "bind"
    VOLUME = "volume"
    TMPFS = "tmpfs"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ErrorKind(StrEnum):
    """Which `stackup.errors` class an error answer maps back to on the client."""

    NOT_FOUND = "not_found"
    INVALID = "invalid"
    FAILURE = "failure"


class ErrorBody(_Frozen):
    kind: ErrorKind
    message: str


class VersionInfo(_Frozen):
    version: str
    api_version: str = API_VERSION
    python: str
    #: The runtime new containers get (crun or runc), e.g. `crun version 1.8.1 (hybrid cgroups: ...)`.
    oci_runtime: str = ""
    runc: str
    conmon: str


class EngineInfo(_Frozen):
    """What `stackup engine status` shows; `rss_bytes` is the engine's own resident memory."""

    pid: int
    root: str
    socket: str
    started_at: datetime
    rss_bytes: int
    containers: int
    running: int
    volumes: int
    images: int
    #: The OCI runtime new containers get, as in `VersionInfo.oci_runtime`.
    oci_runtime: str = ""


class MountRequest(_Frozen):
    """A mount as a client names it: `source` is a host path (bind) or a volume *name* (volume).

    The engine resolves volume names to their data directories, creating a missing volume as
    Docker does, so clients never need to know where volumes live on disk.
    """

    kind: MountKind
    target: str
    source: str | None = None
    read_only: bool = False
    tmpfs_size: int | None = None
    tmpfs_mode: int | None = None


class NetworkEndpointRequest(_Frozen):
    """One network to join: Compose's `services.<s>.networks.<n>` (by engine network name)."""

    network: str = Field(min_length=1)
    aliases: tuple[str, ...] = ()
    ipv4_address: str | None = None


class PortRequest(_Frozen):
    """A port to publish; `host_port` None asks for a free one, `host_ip` "" means every address."""

    container_port: int = Field(ge=1, le=65535)
    host_port: int | None = Field(default=None, ge=1, le=65535)
    host_ip: str = ""
    protocol: str = Field(default="tcp", pattern=r"^(tcp|udp)$")


NETWORK_MODE_PATTERN = r"^(bridge|none|host|container:.+)$"


class Hook(_Frozen):
    """A lifecycle hook (Compose's service_hook) the engine runs in the container by exec.

    `user`, `cwd` and `env` work as for `ExecRequest` (env is laid over the container's own);
    `privileged` gives the hook's process every capability, as `docker exec --privileged`.
    """

    command: tuple[str, ...] = Field(min_length=1)
    user: str | None = None
    privileged: bool = False
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)


class ContainerHooks(_Frozen):
    """`post_start` hooks run, in order, right after every start of the container (a user's, a
    restart policy's, the engine's at boot); `pre_stop` hooks run before the stop signal of a
    user's stop or restart. See `stackup.runtime.engine.supervision.hooks` for failures and time limits."""

    post_start: tuple[Hook, ...] = ()
    pre_stop: tuple[Hook, ...] = ()


class Ulimit(_Frozen):
    """An rlimit by Compose name (`nofile`, `nproc`, ...); -1 means unlimited."""

    name: Annotated[str, Field(pattern=r"^[a-z]+$")]
    soft: int = Field(ge=-1)
    hard: int = Field(ge=-1)


class HostEntry(_Frozen):
    """One `extra_hosts` line for the container's /etc/hosts."""

    hostname: Annotated[str, Field(min_length=1)]
    address: Annotated[str, Field(min_length=1)]


class DeviceRequest(_Frozen):
    """A host device made available in the container (`devices: [HOST:CONTAINER:PERMS]`)."""

    source: Annotated[str, Field(min_length=1)]
    target: Annotated[str, Field(min_length=1)]
    permissions: Annotated[str, Field(pattern=r"^[rwm]{1,3}$")] = "rwm"


class ContainerOptions(_Frozen):
    """Everything about a container beyond its process, image, mounts and network: the
    user-settable fields of the engine's `ContainerConfig`, typed on the wire. Unset fields keep
    the engine's (or the image's) defaults."""

    tty: bool = False
    stdin_open: bool = False
    read_only: bool = False
    privileged: bool = False
    init: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    sysctls: dict[str, str] = Field(default_factory=dict)
    ulimits: tuple[Ulimit, ...] = ()
    memory: int | None = Field(default=None, gt=0, description="memory limit in bytes")
    cpus: float | None = Field(default=None, gt=0)
    pids_limit: int | None = None
    shm_size: int | None = Field(default=None, gt=0)
    stop_signal: str | None = None
    stop_grace_period: float | None = Field(default=None, ge=0)
    extra_hosts: tuple[HostEntry, ...] = ()
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    devices: tuple[DeviceRequest, ...] = ()
    no_new_privileges: bool = False
    seccomp: str | None = None
    """`unconfined`, or a profile in Docker's JSON format (the client read the file); None = default."""
    log_driver: str | None = Field(default=None, description="json-file (default), local, k8s-file, none")
    log_options: dict[str, str] = Field(
        default_factory=dict, description="Docker's json-file options: max-size (10m), max-file (3)"
    )


class ContainerCreate(_Frozen):
    """Create a container from an image.

    `command`, `entrypoint`, `cwd` and `user` default to the image's own values when None, and
    `env` is laid over the image's environment. `options` holds the rest (tty, init, memory,
    stop_signal, dns, extra hosts, ...), typed; the engine fills in what it owns (`id`, `rootfs`,
    `args`, `cgroup_parent`, the namespace).

    `network_mode` `bridge` (the default) joins `networks`, in order (eth0, eth1, ...); with no
    networks listed the container has loopback only, since this engine has no implicit default
    network (the planner always names the stack's `<project>_default`). `container:<ref>` joins
    that container's namespace. The DNS names on each network are the service label, the
    container name, `hostname` and the attachment's aliases. `restart` is Docker's policy text;
    `healthcheck` is Docker's wire form, merged with the image's HEALTHCHECK (zero = inherit,
    test `["NONE"]` disables both). `hooks` are Compose's `post_start` / `pre_stop`.
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    image: str = Field(min_length=1)
    labels: dict[str, str] = Field(default_factory=dict)
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    user: str | None = None
    mounts: tuple[MountRequest, ...] = ()
    hostname: str | None = None
    network_mode: str = Field(default="bridge", pattern=NETWORK_MODE_PATTERN)
    networks: tuple[NetworkEndpointRequest, ...] = ()
    ports: tuple[PortRequest, ...] = ()
    restart: str = "no"
    healthcheck: HealthConfig | None = None
    hooks: ContainerHooks = ContainerHooks()
    options: ContainerOptions = ContainerOptions()

    @field_validator("restart")
    @classmethod
    def _restart(cls, value: str) -> str:
        return str(RestartPolicy.parse(value))


class NetworkCreate(_Frozen):
    """Create a bridge network; `subnets` empty lets IPAM pick one that collides with nothing.

    One IPv4 subnet at most: a network is one bridge with one address range here.
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    labels: dict[str, str] = Field(default_factory=dict)
    driver: str = "bridge"
    internal: bool = False
    subnets: tuple[str, ...] = ()


class NetworkLeftover(_Frozen):
    """One thing `doctor` found that no record owns (a bridge, veth, namespace, nft table or rule);
    `foreign` when it may belong to another engine root and is therefore left alone."""

    kind: str
    name: str
    foreign: bool = False
    removed: bool = False


class VolumeCreate(_Frozen):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    labels: dict[str, str] = Field(default_factory=dict)
    driver: str = "local"
    options: dict[str, str] = Field(default_factory=dict)


class ImportFormat(StrEnum):
    """What `ImageImport.path` holds; `auto` takes an image archive (`docker save`, OCI layout)
    when it finds one's index file, else a root filesystem (directory or tar)."""

    AUTO = "auto"
    ROOTFS = "rootfs"
    ARCHIVE = "archive"


class ImageImport(_Frozen):
    """Import from a path on the engine's machine (the engine and its clients share one host)."""

    path: str
    ref: str | None = Field(default=None, description="name for the image; required for a rootfs")
    format: ImportFormat = ImportFormat.AUTO
    config: dict[str, Any] = Field(
        default_factory=dict, description="OCI image config fields (Cmd, Env, ...) for a rootfs import"
    )


class ExecRequest(_Frozen):
    """Run a process in a running container and collect its output (non-interactive).

    Interactive exec (a TTY, stdin) is a session streamed over an upgraded connection instead:
    `ExecCreate` and `stackup.runtime.wire.streams`.
    """

    args: tuple[str, ...] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    user: str | None = None


class ExecResult(_Frozen):
    exit_code: int
    stdout: str
    stderr: str


class WaitResult(_Frozen):
    exit_code: int


class TopResult(_Frozen):
    titles: tuple[str, ...]
    processes: tuple[tuple[str, ...], ...]


class LogLine(_Frozen):
    """One line of a container's log as `/containers/{id}/logs` streams it (NDJSON)."""

    time: datetime
    stream: str
    text: str


class PruneResult(_Frozen):
    removed: tuple[str, ...] = ()
    reclaimed_bytes: int = 0


class SyncResult(_Frozen):
    """What `POST /containers/{id}/sync` did: entries written and deleted."""

    written: int
    deleted: int


class LockState(StrEnum):
    WAITING = "waiting"
    HELD = "held"


class ProjectLockStatus(_Frozen):
    """One line of `/projects/{name}/lock`: someone else holds it (`waiting`), or it is ours
    (`held`, repeated as a keepalive while the client keeps the connection open)."""

    state: LockState
    project: str
    holder: str = ""
    #: With `held`: what `DELETE /projects/{name}/lock` takes to release the lock at once.
    token: str = ""
