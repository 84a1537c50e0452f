"""The image configuration a stage produces (env, user, workdir, cmd, entrypoint, ...), folded from
its base's configuration and its metadata instructions, as Docker folds them.

Rules worth knowing: ENTRYPOINT clears a CMD inherited from the base (not one set earlier in the
same stage); WORKDIR is relative to the previous WORKDIR; ARG values are never part of it.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, replace

from stackup.build.dockerfile.gotext import go_clean
from stackup.build.dockerfile.instructions import (
    Cmd,
    Entrypoint,
    Env,
    Expose,
    Healthcheck,
    Instruction,
    Label,
    Maintainer,
    Onbuild,
    Shell,
    StopSignal,
    User,
    Volume,
    Workdir,
)

DEFAULT_SHELL = ("/bin/sh", "-c")


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an OCI image config a Dockerfile can set. `env` keeps order (the first
    definition's position, the last value), as Docker's config does."""

    env: tuple[tuple[str, str], ...] = ()
    user: str = ""
    workdir: str = ""
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    shell: tuple[str, ...] = DEFAULT_SHELL
    labels: tuple[tuple[str, str], ...] = ()
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    stop_signal: str = ""
    healthcheck: Healthcheck | None = None
    onbuild: tuple[str, ...] = ()
    author: str = ""

    def env_dict(self) -> dict[str, str]:
        return dict(self.env)

    def with_env(self, key: str, value: str) -> ImageConfig:
        return replace(self, env=_set(self.env, key, value))


def _set(pairs: tuple[tuple[str, str], ...], key: str, value: str) -> tuple[tuple[str, str], ...]:
    if any(k == key for k, _ in pairs):
        return tuple((k, value if k == key else v) for k, v in pairs)
    return (*pairs, (key, value))


def _command(instr: Cmd | Entrypoint, shell: tuple[str, ...]) -> tuple[str, ...]:
    if instr.prepend_shell and instr.command:
        return (*shell, *instr.command)
    return instr.command


def apply(config: ImageConfig, instr: Instruction, *, cmd_set: bool) -> ImageConfig:
    """The configuration after one (substituted) metadata instruction."""
    if isinstance(instr, Env):
        for pair in instr.pairs:
            config = config.with_env(pair.key, pair.value)
        return config
    if isinstance(instr, Label):
        labels = config.labels
        for pair in instr.pairs:
            labels = _set(labels, pair.key, pair.value)
        return replace(config, labels=labels)
    if isinstance(instr, Workdir):
        base = config.workdir or "/"
        return replace(config, workdir=go_clean(posixpath.join(base, instr.path)))
    if isinstance(instr, User):
        return replace(config, user=instr.user)
    if isinstance(instr, Cmd):
        return replace(config, cmd=_command(instr, config.shell))
    if isinstance(instr, Entrypoint):
        cmd = config.cmd if cmd_set else None
        return replace(config, entrypoint=_command(instr, config.shell) or None, cmd=cmd)
    if isinstance(instr, Shell):
        return replace(config, shell=instr.shell)
    if isinstance(instr, Expose):
        ports = list(config.exposed_ports)
        for port in instr.ports:
            norm = port if "/" in port else f"{port}/tcp"
            if norm not in ports:
                ports.append(norm)
        return replace(config, exposed_ports=tuple(ports))
    if isinstance(instr, Volume):
        return replace(config, volumes=tuple(dict.fromkeys((*config.volumes, *instr.paths))))
    if isinstance(instr, StopSignal):
        return replace(config, stop_signal=instr.signal)
    if isinstance(instr, Healthcheck):
        return replace(config, healthcheck=instr)
    if isinstance(instr, Onbuild):
        return replace(config, onbuild=(*config.onbuild, instr.expression))
    if isinstance(instr, Maintainer):
        return replace(config, author=instr.maintainer)
    return config
