"""Typed Dockerfile instructions: one frozen record per instruction kind.

Values are as written (before substitution); `stackup.build.expand` produces the substituted
copies a build uses. Every instruction keeps its `Node`, so errors and progress lines can say
`Dockerfile:12:1` and show the original text.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from stackup.build.dockerfile.ast import Heredoc, Node


class MountType(StrEnum):
    BIND = "bind"
    CACHE = "cache"
    SECRET = "secret"
    TMPFS = "tmpfs"


class Sharing(StrEnum):
    SHARED = "shared"
    PRIVATE = "private"
    LOCKED = "locked"


class NetworkMode(StrEnum):
    DEFAULT = "default"
    NONE = "none"
    HOST = "host"


@dataclass(frozen=True)
class Mount:
    """A `RUN --mount=...`. `source` and `from_` name where a bind or cache seed comes from; for a
    secret, `secret_id` names the secret and the content is never part of this record."""

    type: MountType
    target: str = ""
    source: str = ""
    from_: str = ""
    readonly: bool = False
    cache_id: str = ""
    sharing: Sharing = Sharing.SHARED
    required: bool = False
    size: int = 0
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    env: str | None = None

    @property
    def secret_id(self) -> str:
        """BuildKit's rule: `id`, else the base name of `target`."""
        if self.cache_id:
            return self.cache_id
        return self.source or self.target.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: str
    legacy: bool = False
    """Written `ENV key value` (no `=`): the rest of the line is the value."""


@dataclass(frozen=True)
class ArgDef:
    key: str
    default: str | None = None


@dataclass(frozen=True)
class InlineSource:
    """A heredoc used as a COPY/ADD source: `COPY <<EOF /file`."""

    name: str
    data: str
    expand: bool


@dataclass(frozen=True)
class Instruction:
    node: Node

    @property
    def line(self) -> int:
        return self.node.line

    @property
    def column(self) -> int:
        return self.node.column

    @property
    def original(self) -> str:
        return self.node.original

    @property
    def name(self) -> str:
        """The instruction in upper case: `RUN`, `COPY`, ..."""
        return self.node.keyword.upper()


@dataclass(frozen=True)
class From(Instruction):
    base: str
    stage_name: str = ""
    platform: str = ""


@dataclass(frozen=True)
class CommandLine(Instruction):
    """RUN/CMD/ENTRYPOINT: exec form (`json`, the argv) or shell form (one string run by SHELL)."""

    command: tuple[str, ...] = ()
    prepend_shell: bool = True
    heredocs: tuple[Heredoc, ...] = ()


@dataclass(frozen=True)
class Run(CommandLine):
    mount_specs: tuple[str, ...] = ()
    """The raw `--mount` values: substituted per stage, then parsed with `mounts.parse_mount`."""
    network: NetworkMode = NetworkMode.DEFAULT


@dataclass(frozen=True)
class Cmd(CommandLine):
    pass


@dataclass(frozen=True)
class Entrypoint(CommandLine):
    pass


@dataclass(frozen=True)
class Shell(Instruction):
    shell: tuple[str, ...]


@dataclass(frozen=True)
class CopyBase(Instruction):
    sources: tuple[str, ...]
    dest: str
    inline: tuple[InlineSource, ...] = ()
    chown: str = ""
    chmod: str = ""
    link: bool = False
    excludes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Copy(CopyBase):
    from_: str = ""
    parents: bool = False


@dataclass(frozen=True)
class Add(CopyBase):
    unpack: bool | None = None


@dataclass(frozen=True)
class Env(Instruction):
    pairs: tuple[KeyValue, ...]


@dataclass(frozen=True)
class Label(Instruction):
    pairs: tuple[KeyValue, ...]


@dataclass(frozen=True)
class Arg(Instruction):
    args: tuple[ArgDef, ...]


@dataclass(frozen=True)
class Workdir(Instruction):
    path: str


@dataclass(frozen=True)
class User(Instruction):
    user: str


@dataclass(frozen=True)
class Expose(Instruction):
    ports: tuple[str, ...]


@dataclass(frozen=True)
class Volume(Instruction):
    paths: tuple[str, ...]


@dataclass(frozen=True)
class StopSignal(Instruction):
    signal: str


@dataclass(frozen=True)
class Maintainer(Instruction):
    maintainer: str


@dataclass(frozen=True)
class Healthcheck(Instruction):
    """`test` as in an image config: `["NONE"]`, `["CMD", ...]` or `["CMD-SHELL", "..."]`;
    durations in nanoseconds (0: the default)."""

    test: tuple[str, ...]
    interval_ns: int = 0
    timeout_ns: int = 0
    start_period_ns: int = 0
    start_interval_ns: int = 0
    retries: int = 0


@dataclass(frozen=True)
class Onbuild(Instruction):
    """A trigger stored in the image for builds that use it as a base (never run here)."""

    expression: str
