"""Options shared by every command (`-f`, `-p`, `--profile`, ...) and the project loading they drive."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stackup.api.stack import Stack
    from stackup.spec.loader import LoadedProject
    from stackup.spec.options import LoadOptions

ARGV: list[str] = []
"""The arguments of the running invocation (for `up`'s no-op shortcut record)."""


@dataclass(frozen=True)
class GlobalOptions:
    """What the user said before the command name, as Compose's global flags."""

    files: tuple[Path, ...] = ()
    project_name: str | None = None
    profiles: tuple[str, ...] = ()
    env_files: tuple[Path, ...] = ()
    project_directory: Path | None = None
    progress: str = "auto"
    parallel: int | None = None
    runtime: str | None = None
    warnings: list[str] = field(default_factory=list)

    def stack(self, services: tuple[str, ...] = ()) -> Stack:
        """The stack loaded and validated, on the chosen runtime (`plan`, `up`, `run`, ...)."""
        from stackup.api.stack import Stack
        from stackup.cli import masking

        stack = Stack.from_options(self.load_options(services), runtime=self.runtime, parallel=self.parallel)
        masking.install(stack.secret_values(containers=()))  # the file's; `plan` adds the containers'
        return stack

    def named(self) -> Stack:
        """The running project by name only (`down`, `ps`, `logs`, ...): works with a broken file."""
        from stackup.api.stack import Stack

        return Stack.by_name(self.resolved_name(), runtime=self.runtime, parallel=self.parallel)

    def backend_kind(self) -> str:
        from stackup.api.backends import runtime_kind

        return runtime_kind(self.runtime).value

    def load(self, services: tuple[str, ...] = ()) -> LoadedProject:
        """Load the stack as Compose would for this invocation (services named activate profiles)."""
        from stackup.cli import masking
        from stackup.spec.loader import load
        from stackup.spec.secretenv import secret_values

        options = self.load_options(services)
        loaded = load(options)
        masking.install(secret_values(loaded.project, loaded.environment))
        return loaded

    def resolved_name(self) -> str:
        """The project's name, read without validating the stack (`spec/naming.py` says why)."""
        from stackup.spec.naming import resolve_project_name

        return resolve_project_name(self.load_options())

    def load_options(self, services: tuple[str, ...] = ()) -> LoadOptions:
        from stackup.spec.options import LoadOptions

        return LoadOptions(
            files=list(self.files),
            project_directory=self.project_directory,
            project_name=self.project_name,
            env_files=list(self.env_files),
            profiles=list(self.profiles),
            services=list(services),
            environ=dict(os.environ),
            working_dir=Path.cwd(),
        )
