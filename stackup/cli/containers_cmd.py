"""Container verbs on a project: ps, logs, exec, stop, start, restart, kill, rm, top, wait, ls, events.

These act on what the runtime has, selected by the project label (and service names), so most of
them work without a valid stack file when `-p` names the project, as in Compose. Each is one call
of the Python API (`stackup.api.Stack`) and the printing of its answer.
"""

from __future__ import annotations

import contextlib
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from stackup.cli import masking
from stackup.cli.output import out, write
from stackup.errors import NotFound, StackupError, UsageError
from stackup.runtime import labels as lbl
from stackup.runtime.base import ContainerState

if TYPE_CHECKING:
    from stackup.api.stack import Stack
    from stackup.runtime.base import ContainerInfo

ServicesArg = Annotated[list[str] | None, typer.Argument(metavar="[SERVICE]...")]


def _stack(ctx: typer.Context) -> Stack:
    return ctx.obj.named()  # type: ignore[no-any-return]


def _mask(ctx: typer.Context, stack: Stack, records: list[ContainerInfo]) -> None:
    """Mask what the containers were created with marked secret and, when the stack file loads,
    what it marks (a `secrets:` entry read from the environment is known only there)."""
    masking.install(stack.secret_values(records))
    with contextlib.suppress(StackupError):  # these commands work with a broken or missing file
        ctx.obj.load()  # installs the file's values


def _records(stack: Stack, services: list[str] | None, *, all_: bool = True) -> list[ContainerInfo]:
    infos = stack.ps(oneoff=True)
    wanted = set(services or ())
    known = {r.labels.get(lbl.SERVICE, "") for r in infos}
    missing = sorted(wanted - known)
    if missing:
        raise NotFound(f"no containers for service {', '.join(missing)} in project {stack.name}")
    picked = [r for r in infos if not wanted or r.labels.get(lbl.SERVICE) in wanted]
    if not all_:
        picked = [r for r in picked if r.state is ContainerState.RUNNING]
    return sorted(picked, key=lambda r: (r.labels.get(lbl.SERVICE, ""), _number(r), r.name))


def _number(r: ContainerInfo) -> int:
    value = r.labels.get(lbl.CONTAINER_NUMBER, "")
    return int(value) if value.isdigit() else 0


def _status(r: ContainerInfo) -> str:
    now = datetime.now(UTC)
    match r.state.value:
        case "running":
            since = now - (r.started_at or now)
            text = f"Up {_ago(since)}"
            if r.health.value != "none":
                text += f" ({r.health.value})"
            return text
        case "exited":
            ago = _ago(now - (r.finished_at or now))
            return f"Exited ({r.exit_code}) {ago} ago"
        case other:
            return other.capitalize()


def _ago(delta: timedelta) -> str:
    s = int(delta.total_seconds())
    if s < 60:
        return f"{s} seconds"
    if s < 3600:
        return f"{s // 60} minutes"
    return f"{s // 3600} hours"


def _ports(r: ContainerInfo) -> str:
    """`127.0.0.1:8080->80/tcp, 0.0.0.0:32768->53/udp`, as `docker compose ps` shows them."""
    return ", ".join(
        f"{p.host_ip or '0.0.0.0'}:{p.host_port}->{p.container_port}/{p.protocol}" for p in r.ports
    )


def ps(
    ctx: typer.Context,
    services: ServicesArg = None,
    all_: Annotated[bool, typer.Option("--all", "-a", help="Include stopped containers.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only IDs.")] = False,
) -> None:
    """List the project's containers."""
    stack = _stack(ctx)
    records = _records(stack, services, all_=all_)
    if quiet:
        write("\n".join(r.id for r in records))
        return
    if fmt == "json":
        rows = [
            {
                "ID": r.id, "Name": r.name, "Image": r.image, "Project": r.labels.get(lbl.PROJECT),
                "Service": r.labels.get(lbl.SERVICE), "State": r.state.value,
                "Health": "" if r.health.value == "none" else r.health.value, "ExitCode": r.exit_code,
                "Status": _status(r), "RestartCount": r.restart_count, "Ports": _ports(r),
                "Publishers": [
                    {"URL": p.host_ip or "0.0.0.0", "TargetPort": p.container_port,
                     "PublishedPort": p.host_port, "Protocol": p.protocol}
                    for p in r.ports
                ],
            }
            for r in records
        ]
        write(json.dumps(rows, indent=2, default=str))
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("NAME", "IMAGE", "SERVICE", "STATUS", "RESTARTS", "PORTS"):
        table.add_column(col)
    for r in records:
        table.add_row(r.name, r.image, r.labels.get(lbl.SERVICE, ""), _status(r), str(r.restart_count),
                      _ports(r))
    out().print(table)


def logs(
    ctx: typer.Context,
    services: ServicesArg = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Follow log output.")] = False,
    since: Annotated[str | None, typer.Option("--since", help="RFC 3339 time or duration (10m).")] = None,
    tail: Annotated[int | None, typer.Option("--tail", "-n", help="Lines from the end.")] = None,
    timestamps: Annotated[bool, typer.Option("--timestamps", "-t", help="Show timestamps.")] = False,
    no_prefix: Annotated[bool, typer.Option("--no-log-prefix")] = False,
) -> None:
    """Show the logs of the project's containers (all of them, or the named services')."""
    import threading

    from rich.markup import escape

    from stackup.cli.attached import prefixes

    stack = _stack(ctx)
    records = _records(stack, services)
    _mask(ctx, stack, records)
    when = _since(since)
    marks = prefixes(records)
    lock = threading.Lock()

    def show(r: ContainerInfo) -> None:
        prefix = "" if no_prefix else marks[r.id]
        for line in stack.backend.logs(r.id, follow=follow, since=when, tail=tail):
            stamp = f"{line.time.isoformat()} " if timestamps and line.time else ""
            with lock:
                out().print(f"{prefix}{stamp}{escape(line.text)}", highlight=False)

    with ThreadPoolExecutor(max_workers=max(1, len(records))) as pool:
        list(pool.map(show, records))


def _since(value: str | None, option: str = "--since") -> datetime | None:
    if not value:
        return None
    units = {"s": 1, "m": 60, "h": 3600}
    if value[-1] in units and value[:-1].isdigit():
        return datetime.now(UTC) - timedelta(seconds=int(value[:-1]) * units[value[-1]])
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f'{option}: "{value}" is neither a duration (10m) nor an RFC 3339 time') from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _one(stack: Stack, service: str, index: int) -> ContainerInfo:
    records = [r for r in _records(stack, [service]) if r.state is ContainerState.RUNNING]
    for r in records:
        if (_number(r) or 1) == index:
            return r
    raise NotFound(f"service {service} has no running container with index {index}")


def exec_(
    ctx: typer.Context,
    service: Annotated[str, typer.Argument()],
    command: Annotated[list[str], typer.Argument(metavar="COMMAND [ARGS]...")],
    no_tty: Annotated[bool, typer.Option("--no-TTY", "-T", help="Disable pseudo-TTY allocation.")] = False,
    env: Annotated[list[str] | None, typer.Option("--env", "-e", help="KEY=VALUE")] = None,
    user: Annotated[str | None, typer.Option("--user", "-u")] = None,
    workdir: Annotated[str | None, typer.Option("--workdir", "-w")] = None,
    index: Annotated[int, typer.Option("--index", help="Replica index.")] = 1,
    privileged: Annotated[bool, typer.Option("--privileged", help="Every capability.")] = False,
    no_stdin: Annotated[bool, typer.Option("--no-stdin", help="Do not forward standard input.")] = False,
) -> None:
    """Run a command in a running service container; its exit code becomes stackup's."""
    from stackup.cli.terminal import run_stream
    from stackup.keyvalue import parse_assignments
    from stackup.runtime.base import ExecSpec

    stack = _stack(ctx)
    record = _one(stack, service, index)
    tty = not no_tty and sys.stdin.isatty() and sys.stdout.isatty()
    spec = ExecSpec(
        tuple(command), user=user, working_dir=workdir,
        environment=parse_assignments(env or (), what="--env"), privileged=privileged,
        tty=tty, stdin=not no_stdin,
    )
    if not tty and no_stdin:
        result = stack.backend.exec(record.id, spec)
        sys.stdout.buffer.write(result.stdout)
        sys.stderr.buffer.write(result.stderr)
        raise typer.Exit(result.exit_code)
    raise typer.Exit(run_stream(stack.backend.exec_stream(record.id, spec), tty=tty))


def _each(stack: Stack, records: list[ContainerInfo], action: str, **kw: object) -> None:
    """`Stack.act` on the chosen containers, a line per container as it is done."""
    from stackup.api.stack import ContainerAction
    from stackup.cli.output import err

    def done(r: ContainerInfo) -> None:
        err().print(f" [green]\u2714[/] Container {r.name}  {action}")

    timeout = kw.get("timeout")
    stack.act(
        records, ContainerAction(action), timeout=timeout if isinstance(timeout, int | float) else None,
        signal=str(kw.get("signal", "SIGKILL")), on_done=done,
    )


def stop(ctx: typer.Context, services: ServicesArg = None,
         timeout: Annotated[float | None, typer.Option("--timeout", "-t")] = None) -> None:
    """Stop the project's containers without removing them."""
    stack = _stack(ctx)
    _each(stack, _records(stack, services, all_=False), "stop", timeout=timeout)


def start(ctx: typer.Context, services: ServicesArg = None) -> None:
    """Start existing containers."""
    stack = _stack(ctx)
    recs = [r for r in _records(stack, services) if r.state is not ContainerState.RUNNING]
    _each(stack, recs, "start")


def restart(ctx: typer.Context, services: ServicesArg = None,
            timeout: Annotated[float | None, typer.Option("--timeout", "-t")] = None) -> None:
    """Restart the project's containers."""
    stack = _stack(ctx)
    _each(stack, _records(stack, services), "restart", timeout=timeout)


def kill(ctx: typer.Context, services: ServicesArg = None,
         sig: Annotated[str, typer.Option("--signal", "-s")] = "SIGKILL") -> None:
    """Send a signal (SIGKILL by default) to running containers."""
    stack = _stack(ctx)
    _each(stack, _records(stack, services, all_=False), "kill", signal=sig)


def rm(ctx: typer.Context, services: ServicesArg = None,
       force: Annotated[bool, typer.Option("--force", "-f", help="Also remove running ones.")] = False,
       stop_first: Annotated[bool, typer.Option("--stop", "-s", help="Stop them first.")] = False) -> None:
    """Remove stopped containers (running ones with -f or -s)."""
    stack = _stack(ctx)
    recs = _records(stack, services)
    if stop_first:
        _each(stack, [r for r in recs if r.state is ContainerState.RUNNING], "stop")
        force = True
    if not force:
        recs = [r for r in recs if r.state is not ContainerState.RUNNING]
    _each(stack, recs, "rm")


def top(ctx: typer.Context, services: ServicesArg = None) -> None:
    """Show the processes of running containers."""
    stack = _stack(ctx)
    for r in _records(stack, services, all_=False):
        result = stack.backend.top(r.id)
        write(r.name)
        write("  ".join(result.titles))
        for row in result.processes:
            write("  ".join(row))
        write("")


def wait(ctx: typer.Context, services: Annotated[list[str], typer.Argument(metavar="SERVICE...")]) -> None:
    """Block until the services' containers exit; exit with the first non-zero code (else 0)."""
    stack = _stack(ctx)
    records = _records(stack, services)
    codes = [stack.backend.wait_container(r.id) for r in records]
    for r, code in zip(records, codes, strict=True):
        write(f"{r.name} {code}")
    raise typer.Exit(next((c for c in codes if c), 0))


def ls(ctx: typer.Context, fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
       all_: Annotated[bool, typer.Option("--all", "-a")] = False) -> None:
    """List projects the runtime runs."""
    from stackup.api.backends import open_backend

    backend = open_backend(ctx.obj.runtime)
    projects: dict[str, dict[str, int]] = {}
    files: dict[str, str] = {}
    for r in backend.list_containers(""):
        name = r.labels.get(lbl.PROJECT)
        if not name:
            continue
        counts = projects.setdefault(name, {})
        counts[r.state.value] = counts.get(r.state.value, 0) + 1
        files.setdefault(name, r.labels.get(lbl.CONFIG_FILES, ""))
    rows = [
        {"Name": n, "Status": ", ".join(f"{k}({v})" for k, v in sorted(c.items())), "ConfigFiles": files[n]}
        for n, c in sorted(projects.items())
        if all_ or "running" in c
    ]
    if fmt == "json":
        write(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("NAME", "STATUS", "CONFIG FILES"):
        table.add_column(col)
    for row in rows:
        table.add_row(row["Name"], row["Status"], row["ConfigFiles"])
    out().print(table)


def events(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    since: Annotated[
        str | None, typer.Option("--since", help="Replay past events from this time or duration (10m).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Print past events up to this time or duration, then exit.")
    ] = None,
) -> None:
    """Stream the engine's events for this project (container, network, volume).

    The engine keeps a bounded event log, so `--since` replays what happened before the command
    ran and `--until` makes a finished report of it (what scripts and benchmarks read) instead
    of a stream that never ends.
    """
    stack = _stack(ctx)
    start, end = _since(since), _since(until, "--until")
    history = start is not None or end is not None
    for event in stack.backend.events(project=stack.name, follow=end is None, history=history):
        if start is not None and event.time < start:
            continue
        if end is not None and event.time > end:
            break
        if as_json:
            write(json.dumps({
                "id": event.sequence, "time": event.time.isoformat(), "type": event.type,
                "action": event.action, "actor": event.id, "attributes": dict(event.attributes),
            }))
        else:
            write(f"{event.time.isoformat()} {event.type} {event.action} {event.id}")


def port(
    ctx: typer.Context,
    service: Annotated[str, typer.Argument()],
    private_port: Annotated[str, typer.Argument(metavar="PRIVATE_PORT[/PROTOCOL]")],
    index: Annotated[int, typer.Option("--index", help="Replica index.")] = 1,
) -> None:
    """Print the host address a container port is published on (`127.0.0.1:32768`)."""
    number, _, proto = private_port.partition("/")
    if not number.isdigit():
        raise UsageError(f'expected PRIVATE_PORT[/PROTOCOL], got "{private_port}"')
    record = _one(_stack(ctx), service, index)
    for p in record.ports:
        if p.container_port == int(number) and p.protocol == (proto or "tcp"):
            write(f"{p.host_ip or '0.0.0.0'}:{p.host_port}")
            return
    raise NotFound(f"service {service}: port {private_port} is not published")


def inspect(ctx: typer.Context, services: ServicesArg = None) -> None:
    """Everything the runtime records about the services' containers (health log included), as JSON."""
    stack = _stack(ctx)
    records = _records(stack, services)
    _mask(ctx, stack, records)
    write(json.dumps([dict(r.details) for r in records], indent=2, default=str))


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect)
    app.command("port")(port)
    app.command("ps")(ps)
    app.command("logs")(logs)
    app.command("exec", context_settings={"allow_interspersed_args": False})(exec_)
    app.command("stop")(stop)
    app.command("start")(start)
    app.command("restart")(restart)
    app.command("kill")(kill)
    app.command("rm")(rm)
    app.command("top")(top)
    app.command("wait")(wait)
    app.command("ls")(ls)
    app.command("events")(events)

