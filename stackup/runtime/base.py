"""The seam between the planner and an engine: the `Runtime` protocol and the data it speaks.

The planner never talks to an engine except through this protocol, so the native engine, the
Docker API client and the in-memory fake (`runtime/fake.py`) are interchangeable. Everything here
is a frozen value: a spec says what to make, an info says what exists. Nothing carries behaviour
beyond trivial accessors, so a runtime is free to store and serialise them however it likes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import IO, Protocol, runtime_checkable


class ContainerState(StrEnum):
    """Lifecycle states, spelled as Docker and the OCI runtime spell them."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    EXITED = "exited"
    DEAD = "dead"


class Health(StrEnum):
    """Health-check status; `NONE` means the container has no health check at all."""

    NONE = "none"
    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


class MountType(StrEnum):
    BIND = "bind"
    VOLUME = "volume"
    TMPFS = "tmpfs"


@dataclass(frozen=True, slots=True)
class Mount:
    """One filesystem mount; `source` is a host path (bind) or a volume resource name (volume)."""

    type: MountType
    target: str
    source: str = ""
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class PortBinding:
    """A published port: `host_ip:host_port -> container_port/protocol`; host_port None = ephemeral."""

    container_port: int
    host_port: int | None = None
    host_ip: str = ""
    protocol: str = "tcp"


@dataclass(frozen=True, slots=True)
class NetworkAttachment:
    """A container's endpoint on one network (resource name, not the stack-file key)."""

    network: str
    aliases: tuple[str, ...] = ()
    ipv4_address: str | None = None
    ipv6_address: str | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits as the OCI `resources` section wants them; None = unlimited."""

    memory_bytes: int | None = None
    cpus: float | None = None
    pids: int | None = None


@dataclass(frozen=True, slots=True)
class HealthcheckSpec:
    """A service's health check as written, for the engine to lay over the image's HEALTHCHECK.

    `test` is the exec form (`["CMD-SHELL", "..."]` or `["CMD", ...]`), empty to keep the image's
    test, or `("NONE",)` for `disable: true`, which turns the image's check off too. Unset
    durations and retries stay None: the engine inherits the image's value first and only then
    falls back to Docker's defaults (30s, 30s, 3, 0s, 5s), which filling them in here would defeat.
    """

    test: tuple[str, ...] = ()
    interval_s: float | None = None
    timeout_s: float | None = None
    retries: int | None = None
    start_period_s: float | None = None
    start_interval_s: float | None = None

    @property
    def disabled(self) -> bool:
        return self.test[:1] == ("NONE",)


@dataclass(frozen=True, slots=True)
class HookSpec:
    """A lifecycle hook (Compose's `post_start` / `pre_stop` service_hook): a command run in the
    container by exec, as `user` in `working_dir` with `environment` added; `privileged` gives
    that process every capability (as `docker exec --privileged`)."""

    command: tuple[str, ...]
    user: str | None = None
    privileged: bool = False
    working_dir: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """Everything a runtime needs to create one container of a service replica.

    Built by the planner from a `Service` (see `planner/specs.py`); the runtime adds nothing of its
    own except what it has to resolve (the image ID, addresses from IPAM).
    """

    name: str
    image: str
    labels: Mapping[str, str] = field(default_factory=dict)
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    user: str | None = None
    hostname: str | None = None
    mounts: tuple[Mount, ...] = ()
    ports: tuple[PortBinding, ...] = ()
    networks: tuple[NetworkAttachment, ...] = ()
    network_mode: str | None = None
    limits: Limits = Limits()
    healthcheck: HealthcheckSpec | None = None
    restart: str = "no"
    init: bool = False
    tty: bool = False
    stdin_open: bool = False
    read_only: bool = False
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    stop_signal: str | None = None
    stop_grace_period_s: float = 10.0
    devices: tuple[tuple[str, str, str], ...] = ()
    """(host path, container path, cgroup permissions such as `rwm`) per `devices:` entry."""
    security_opt: tuple[str, ...] = ()
    """As written: `no-new-privileges[:true]`, `seccomp=unconfined`, `seccomp=PROFILE.json`, ..."""
    extra_hosts: tuple[tuple[str, str], ...] = ()
    """(hostname, address) pairs for /etc/hosts; an IPv6 address stays whole."""
    dns: tuple[str, ...] = ()
    sysctls: Mapping[str, str] = field(default_factory=dict)
    post_start: tuple[HookSpec, ...] = ()
    pre_stop: tuple[HookSpec, ...] = ()
    log_driver: str | None = None
    """Compose's `logging.driver` (None: the runtime's default); `log_options` its options."""
    log_options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NetworkSpec:
    """A network to create; `subnets` empty means "let IPAM pick"."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    driver: str = "bridge"
    internal: bool = False
    enable_ipv6: bool = False
    subnets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VolumeSpec:
    """A named volume to create."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    driver: str = "local"
    driver_opts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BuildSpec:
    """A Dockerfile build whose result is tagged `tag` (and `tags`). Compose's `build` section:
    `secrets` maps a secret id to a host file, `secret_values` one to its value (a secret from the
    environment), `extra_hosts` a hostname to an address."""

    tag: str
    context: str
    dockerfile: str = "Dockerfile"
    args: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    dockerfile_inline: str | None = None
    tags: tuple[str, ...] = ()
    no_cache: bool = False
    pull: bool = False
    secrets: Mapping[str, str] = field(default_factory=dict)
    additional_contexts: Mapping[str, str] = field(default_factory=dict)
    secret_values: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Secrets from the environment (`secrets.x.environment`): id -> value, never printed."""
    network: str | None = None
    extra_hosts: Mapping[str, str] = field(default_factory=dict)
    shm_size: int | None = None


BuildProgress = Callable[[str], None]
"""Receives a build's progress, one line at a time (`[stage 2/5] RUN ...`, output, `CACHED`)."""


@dataclass(frozen=True, slots=True)
class PublishedPort:
    """A port the runtime actually published: `host_ip:host_port -> container_port/protocol`."""

    container_port: int
    host_port: int
    host_ip: str = ""
    protocol: str = "tcp"


@dataclass(frozen=True, slots=True)
class HealthProbe:
    """One health probe's result, kept so a failure can show the last few, not only the last."""

    exit_code: int
    output: str = ""
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    """What a runtime reports about one container.

    `last_probe` is the output of the most recent health probe, kept so a failure can be explained
    ("unhealthy: last probe ...") rather than merely reported. `ports` are the bindings in force
    (ephemeral host ports resolved); `addresses` maps a network's resource name to the
    container's IPv4 address on it.
    """

    id: str
    name: str
    image: str
    labels: Mapping[str, str] = field(default_factory=dict)
    state: ContainerState = ContainerState.CREATED
    health: Health = Health.NONE
    exit_code: int | None = None
    image_id: str | None = None
    last_probe: str | None = None
    created: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    ports: tuple[PublishedPort, ...] = ()
    addresses: Mapping[str, str] = field(default_factory=dict)
    command: tuple[str, ...] = ()
    health_log: tuple[HealthProbe, ...] = ()
    restart_count: int = 0
    details: Mapping[str, object] = field(default_factory=dict, compare=False)
    """The backend's own full description (what `stackup inspect` prints), JSON-ready."""
    spec: ContainerSpec | None = None
    """For a container without stackup's config label (made by another tool, e.g. Docker Compose):
    the spec that would make it again, read back by the runtime, so `reconcile` can tell whether
    the stack file still describes it. None for stackup's own containers (their labels say it)."""


@dataclass(frozen=True, slots=True)
class NetworkInfo:
    name: str
    id: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VolumeInfo:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """A local image: its content ID and every reference (`name:tag`) that points at it.

    `last_pulled` is when one of its references was last pulled from a registry (None: never,
    or the runtime does not say), what `pull_policy: daily` compares against."""

    id: str
    refs: tuple[str, ...] = ()
    last_pulled: datetime | None = None


@dataclass(frozen=True, slots=True)
class PullSpec:
    """A registry pull the plan asks for: the reference and `platform:` (`linux/arm64`), if set."""

    ref: str
    platform: str | None = None


class TransferState(StrEnum):
    """Where one layer of a pull or push is (`exists`: nothing to transfer)."""

    EXISTS = "exists"
    DOWNLOADING = "downloading"
    UPLOADING = "uploading"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class LayerProgress:
    """One progress report of a pull or push: `done`/`total` bytes of layer `layer` of `image`."""

    image: str
    layer: str
    state: TransferState
    done: int = 0
    total: int = 0


TransferProgress = Callable[[LayerProgress], None]
"""Called from transfer threads, several at once: keep it cheap and thread-safe."""


class OutputStream(StrEnum):
    """Which of a process's streams a chunk of output came from (Docker's stream ids 0-2)."""

    STDIN = "stdin"
    STDOUT = "stdout"
    STDERR = "stderr"


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One line a container wrote, as its runtime recorded it (`text` without the newline)."""

    stream: OutputStream
    text: str
    time: datetime | None = None


@dataclass(frozen=True, slots=True)
class ExecSpec:
    """A process to run in a running container (`exec`, `sync+exec`, hooks run by hand)."""

    command: tuple[str, ...]
    user: str | None = None
    working_dir: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    privileged: bool = False
    tty: bool = False
    stdin: bool = False


@dataclass(frozen=True, slots=True)
class ExecOutput:
    """A finished, non-interactive exec: its exit code and everything it wrote."""

    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""


class ProcessStream(Protocol):
    """A live connection to a process in a container (`exec -it`, `run -it`, `attach`).

    Without a TTY, output arrives demultiplexed by stream; with one, everything is STDOUT.
    `wait` returns the process's exit code once it has ended (after `read` returned None).
    """

    def fileno(self) -> int:
        """For `select`: readable when `read` will not block."""
        ...

    def read(self) -> tuple[OutputStream, bytes] | None:
        """The next chunk of output, or None at the end of the stream."""
        ...

    def write(self, data: bytes) -> None: ...

    def close_stdin(self) -> None: ...

    def resize(self, rows: int, cols: int) -> None: ...

    def wait(self) -> int: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class TopInfo:
    """`ps` inside a container: column titles and one row per process."""

    titles: tuple[str, ...]
    processes: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class RuntimeEvent:
    """Something that happened to an object of the runtime (`create`, `start`, `die`, `health_status`...)."""

    time: datetime
    type: str
    action: str
    id: str
    name: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)
    sequence: int = 0
    """Orders events of one runtime (the engine's event id; a counter where the runtime has none)."""


class Runtime(Protocol):
    """What the planner's executor and `observe` need from an engine.

    Methods block until the engine has done the thing (or raise a `stackup.errors.RuntimeFailure`);
    waiting for health or exit is the caller's job, by polling `inspect_container`. Implementations
    must be safe to call from several threads at once: `execute` runs independent operations in
    parallel.
    """

    def list_containers(self, project: str) -> list[ContainerInfo]:
        """Containers labelled with `project` (any state); `""`: those of every project."""
        ...

    def inspect_container(self, container_id: str) -> ContainerInfo:
        """Current state, health and exit code of one container (raises NotFound)."""
        ...

    def create_container(self, spec: ContainerSpec) -> ContainerInfo:
        """Create (not start) a container; the name must be free."""
        ...

    def start_container(self, container_id: str) -> None: ...

    def stop_container(self, container_id: str, timeout_s: float | None = None) -> None:
        """Stop gracefully (`stop_signal`, then SIGKILL after the grace period); no-op if stopped."""
        ...

    def remove_container(self, container_id: str) -> None: ...

    def list_networks(self) -> list[NetworkInfo]:
        """All networks, not only the project's: external networks carry no project label."""
        ...

    def create_network(self, spec: NetworkSpec) -> NetworkInfo: ...

    def remove_network(self, name: str) -> None: ...

    def list_volumes(self) -> list[VolumeInfo]:
        """All volumes (see `list_networks` for why unfiltered)."""
        ...

    def create_volume(self, spec: VolumeSpec) -> VolumeInfo: ...

    def remove_volume(self, name: str) -> None: ...

    def list_images(self) -> list[ImageInfo]: ...

    def pull_image(self, ref: str, *, platform: str | None = None,
                   progress: TransferProgress | None = None) -> ImageInfo:
        """Fetch `ref` from its registry (credentials as the invoking user's Docker config has them)."""
        ...

    def push_image(self, ref: str, *, progress: TransferProgress | None = None) -> str:
        """Upload the local image `ref` to the registry it names; returns the manifest digest."""
        ...

    def tag_image(self, ref: str, target: str) -> ImageInfo: ...

    def build_image(self, spec: BuildSpec, progress: BuildProgress | None = None) -> ImageInfo: ...

    def remove_image(self, ref: str) -> None: ...


class ContainerOps(Protocol):
    """Operations on existing containers that front ends offer (logs, exec, cp, ...), beyond what
    the planner needs. Every runtime implements both this and `Runtime` (see `Backend`)."""

    def logs(
        self, container_id: str, *, follow: bool = False, since: datetime | None = None,
        tail: int | None = None,
    ) -> Iterator[LogEntry]:
        """The container's output, oldest first; `follow` keeps the iterator open until it exits."""
        ...

    def exec(self, container_id: str, spec: ExecSpec) -> ExecOutput:
        """Run a process to completion, capturing its output (no TTY, no stdin)."""
        ...

    def exec_stream(self, container_id: str, spec: ExecSpec) -> ProcessStream:
        """Run a process with a live connection (TTY and stdin as `spec` says)."""
        ...

    def attach(self, container_id: str) -> ProcessStream:
        """Connect to the main process's stdio (its TTY when it has one)."""
        ...

    def kill_container(self, container_id: str, signal: str = "SIGKILL") -> None: ...

    def restart_container(self, container_id: str, timeout_s: float | None = None) -> None: ...

    def wait_container(self, container_id: str) -> int:
        """Block until the container has exited; its exit code."""
        ...

    def top(self, container_id: str) -> TopInfo: ...

    def events(
        self, *, project: str | None = None, follow: bool = True, history: bool = False
    ) -> Iterator[RuntimeEvent]:
        """Events as they happen (of one project's objects when `project` is set); with `history`,
        first those the runtime still remembers."""
        ...

    def copy_to(self, container_id: str, path: str, archive: IO[bytes]) -> None:
        """Extract a tar stream into the directory `path` of the container's filesystem."""
        ...

    def copy_from(self, container_id: str, path: str) -> Iterator[bytes]:
        """`path` of the container's filesystem as a tar stream (its last component at the top)."""
        ...


@runtime_checkable
class ContainerImages(Protocol):
    """A container's filesystem out as an image (`commit`) or a tar (`export`). Both runtimes
    have it; a runtime without it (the in-memory fake) makes `Stack.commit` a clear error."""

    def commit_container(self, container_id: str, ref: str | None = None) -> ImageInfo:
        """A new image: the container's image plus its changes as one layer, named `ref`."""
        ...

    def export_container(self, container_id: str) -> Iterator[bytes]:
        """The container's root filesystem (without volumes) as a tar stream, in chunks."""
        ...


@runtime_checkable
class TreeSync(Protocol):
    """A backend that applies a batch of file changes in one call (`stackup watch`'s fast path).

    `archive` is a tar relative to directory `path` (made if missing): files, directories and
    symlinks to write, OCI whiteouts (`dir/.wh.NAME`) for `dir/NAME` to delete. The container may
    be running or stopped; new entries take the owner of the directory they land in. Backends
    without it are synced with `copy_to` and an `rm` exec (`stackup.dev.sync`)."""

    def sync_tree(self, container_id: str, path: str, archive: bytes) -> tuple[int, int]:
        """Apply the batch; (entries written, entries really deleted)."""
        ...


class Backend(Runtime, ContainerOps, Protocol):
    """A complete runtime: what the Python API (`stackup.api`) drives. `name` is `native`/`docker`."""

    name: str

    def close(self) -> None: ...


@runtime_checkable
class ProjectLocking(Protocol):
    """A backend that can serialise `up`/`down` of one project across clients (the native
    engine: a lock held by the client's connection, released when it closes or dies)."""

    def project_lock(
        self,
        project: str,
        *,
        holder: str = "",
        timeout_s: float | None = None,
        on_wait: Callable[[str], None] | None = None,
    ) -> AbstractContextManager[None]: ...
