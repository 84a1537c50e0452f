"""The one exception tree of stackup.

    StackupError                    root; the CLI catches only this and maps `exit_code`
    ├── SpecError                   the stack file is wrong (all problems at once, located)
    ├── DependencyCycle             depends_on forms a cycle (a SpecError with the cycle path)
    ├── PlanError                   the plan cannot be made (e.g. an unsatisfiable option)
    ├── RuntimeFailure              a runtime/engine operation failed
    │   ├── OperationFailed         one plan operation failed (carries the operation and cause)
    │   ├── UpstreamFailed          an operation was skipped because a dependency failed
    │   ├── EngineUnavailable       the engine could not be reached or started
    │   ├── NotFound                a container, image, network or volume does not exist
    │   ├── BuildFailed             a build step failed (its step, Dockerfile line, output tail)
    │   └── StackFailed             `up` did not bring the stack to its target (diagnoses attached)
    ├── DockerfileError             a Dockerfile, .dockerignore or build context is wrong (located)
    └── UsageError                  a CLI option combination is invalid

Exit codes are distinct so CI can tell a bad stack file (3) from a runtime failure (1);
`stackup plan` uses 2 for "there are changes", as terraform does.
"""

from __future__ import annotations


class StackupError(Exception):
    """Root of every error stackup raises on purpose. Anything else escaping is a bug."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(StackupError):
    """Options that cannot be combined, or a missing argument the CLI parser could not catch."""

    exit_code = 2


class PlanError(StackupError):
    """The planner cannot produce a plan for this project and these options."""

    exit_code = 1


class RuntimeFailure(StackupError):
    """A runtime operation failed: the engine, runc, conmon, the kernel said no."""

    exit_code = 1


class EngineUnavailable(RuntimeFailure):
    """The engine's socket does not answer and the engine could not be started."""


class NotFound(RuntimeFailure):
    """A named container, image, network or volume does not exist."""


class InvalidRequest(RuntimeFailure):
    """The engine was asked something malformed (a bad path, signal, name or archive): the caller's
    mistake, answered 400, not an engine failure (500)."""


class Conflict(RuntimeFailure):
    """A well-formed request that the object's state forbids now (in use, running, not running,
    name taken): answered 409."""


class ProjectBusy(RuntimeFailure):
    """Another `up`/`down` of the same project held its lock for longer than we were willing to
    wait; `holder` says who (as that client described itself)."""

    def __init__(self, message: str, holder: str = "") -> None:
        super().__init__(message)
        self.holder = holder


class OperationFailed(RuntimeFailure):
    """One operation of a plan failed; `resource` names what, `cause` says why."""

    def __init__(self, resource: str, cause: str) -> None:
        super().__init__(f"{resource}: {cause}")
        self.resource = resource
        self.cause = cause


class UpstreamFailed(RuntimeFailure):
    """An operation did not run because something it depends on failed.

    `chain` is the dependency path from this resource down to the failed one, so the message
    can read `web <- api <- db (unhealthy: ...)`.
    """

    def __init__(self, resource: str, chain: tuple[str, ...], cause: str) -> None:
        path = " <- ".join((resource, *chain))
        super().__init__(f"{path} ({cause})")
        self.resource = resource
        self.chain = chain
        self.cause = cause


class StackFailed(RuntimeFailure):
    """`up` (or `up --wait`) did not get every service to its target state.

    `diagnoses` carries, per culprit container, what the CLI or a test report shows: the blocking
    chain, the last health probes and the log tail (`stackup.api.readiness.Diagnosis`). Typed as
    `tuple[object, ...]` here so the root of the tree imports nothing.
    """

    def __init__(self, message: str, diagnoses: tuple[object, ...] = ()) -> None:
        super().__init__(message)
        self.diagnoses = diagnoses


class BuildFailed(RuntimeFailure):
    """A build step failed: `step` (`[stage 2/5]`), its Dockerfile `line`, and the last lines of
    its output in `tail`, so the message can show where and why without a rerun."""

    def __init__(self, message: str, *, step: str = "", line: int = 0, tail: tuple[str, ...] = ()) -> None:
        super().__init__(message + ("\n" + "\n".join(f"  | {t}" for t in tail) if tail else ""))
        self.step = step
        self.line = line
        self.tail = tail


class DockerfileError(StackupError):
    """A Dockerfile (or its .dockerignore, or what it asks of the build context) is wrong or asks for
    something the builder refuses. Located like a compiler error, `Dockerfile:12:1: message`, so an
    editor can jump to it; exit code 3 as for a bad stack file, since the input is at fault."""

    exit_code = 3

    def __init__(self, message: str, *, path: str = "Dockerfile", line: int = 0, column: int = 0) -> None:
        where = path if line <= 0 else f"{path}:{line}:{max(column, 1)}"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line
        self.column = column
        self.reason = message
