"""Container verbs on a project: ps, logs, exec, stop, start, restart, kill, rm, top, wait, ls, events.

These act on what the engine has, selected by the project label (and service names), so most of
them work without a valid stack file when `-p` names the project, as in Compose.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from stackup.cli.output import out, write
from stackup.cli.stack_cmd import project_name, runtime
from stackup.errors import NotFound, UsageError
from stackup.runtime import labels as lbl

if TYPE_CHECKING:
    from stackup.runtime.native.runtime import NativeRuntime
    from stackup.runtime.wire.records import ContainerRecord

ServicesArg = Annotated[list[str] | None, typer.Argument(metavar="[SERVICE]...")]


def _records(
    rt: NativeRuntime, project: str, services: list[str] | None, *, all_: bool = True
) -> list[ContainerRecord]:
    records = rt.client.list_containers(labels={lbl.PROJECT: project})
    wanted = set(services or ())
    known = {r.labels.get(lbl.SERVICE, "") for r in records}
    missing = sorted(wanted - known)
    if missing:
        raise NotFound(f"no containers for service {', '.join(missing)} in project {project}")
    picked = [r for r in records if not wanted or r.labels.get(lbl.SERVICE) in wanted]
    if not all_:
        picked = [r for r in picked if r.status.value == "running"]
    return sorted(picked, key=lambda r: (r.labels.get(lbl.SERVICE, ""), r.number or 0, r.name))


def _status(r: ContainerRecord) -> str:
    now = datetime.now(UTC)
    match r.status.value:
        case "running":
            since = now - (r.started_at or now)
            text = f"Up {_ago(since)}"
            health = (r.health or {}).get("status")
            if health and health != "none":
                text += f" ({health})"
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


def _ports(r: ContainerRecord) -> str:
    """`127.0.0.1:8080->80/tcp, 0.0.0.0:32768->53/udp`, as `docker compose ps` shows them."""
    if r.network is None:
        return ""
    return ", ".join(
        f"{p.host_ip or '0.0.0.0'}:{p.host_port}->{p.container_port}/{p.protocol}" for p in r.network.ports
    )


def ps(
    ctx: typer.Context,
    services: ServicesArg = None,
    all_: Annotated[bool, typer.Option("--all", "-a", help="Include stopped containers.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only IDs.")] = False,
) -> None:
    """List the project's containers."""
    rt = runtime()
    records = _records(rt, project_name(ctx.obj), services, all_=all_)
    if quiet:
        write("\n".join(r.id for r in records))
        return
    if fmt == "json":
        rows = [
            {
                "ID": r.id, "Name": r.name, "Image": r.image, "Project": r.project,
                "Service": r.labels.get(lbl.SERVICE), "State": r.status.value,
                "Health": (r.health or {}).get("status", ""), "ExitCode": r.exit_code,
                "Status": _status(r), "RestartCount": r.restart_count, "Ports": _ports(r),
                "Publishers": [
                    {"URL": p.host_ip or "0.0.0.0", "TargetPort": p.container_port,
                     "PublishedPort": p.host_port, "Protocol": p.protocol}
                    for p in (r.network.ports if r.network else ())
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

    rt = runtime()
    records = _records(rt, project_name(ctx.obj), services)
    when = _since(since)
    width = max((len(r.name) for r in records), default=0)
    lock = threading.Lock()
    from stackup.cli.attach import COLOURS

    def show(i: int, r: ContainerRecord) -> None:
        prefix = "" if no_prefix else f"[{COLOURS[i % len(COLOURS)]}]{r.name:<{width}} |[/] "
        for line in rt.client.logs(r.id, follow=follow, since=when, tail=tail):
            stamp = f"{line.time.isoformat()} " if timestamps else ""
            with lock:
                out().print(f"{prefix}{stamp}{escape(line.text)}", highlight=False)

    with ThreadPoolExecutor(max_workers=max(1, len(records))) as pool:
        list(pool.map(lambda pair: show(*pair), enumerate(records)))


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


def _one(rt: NativeRuntime, project: str, service: str, index: int) -> ContainerRecord:
    records = [r for r in _records(rt, project, [service]) if r.status.value == "running"]
    for r in records:
        if (r.number or 1) == index:
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
) -> None:
    """Run a command in a running service container; its exit code becomes stackup's."""
    from stackup.runtime.engine.containers.conmon import exec_process

    rt = runtime()
    record = _one(rt, project_name(ctx.obj), service, index)
    env_map = dict(item.partition("=")[::2] for item in env or ())
    tty = not no_tty and sys.stdin.isatty() and sys.stdout.isatty()
    code = exec_process(record.id, command, env=env_map, user=user, cwd=workdir, tty=tty)
    raise typer.Exit(code)


def _each(rt: NativeRuntime, records: list[ContainerRecord], action: str, **kw: object) -> None:
    from stackup.cli.output import err

    def one(r: ContainerRecord) -> None:
        match action:
            case "stop":
                rt.stop_container(r.id, kw.get("timeout"))  # type: ignore[arg-type]
            case "start":
                rt.client.start_container(r.id)
            case "restart":
                rt.client.restart_container(r.id, kw.get("timeout"))  # type: ignore[arg-type]
            case "kill":
                rt.client.kill_container(r.id, str(kw.get("signal", "SIGKILL")))
            case "rm":
                rt.client.remove_container(r.id, force=bool(kw.get("force")))
        err().print(f" [green]\u2714[/] Container {r.name}  {action}")

    with ThreadPoolExecutor(max_workers=max(1, min(16, len(records)))) as pool:
        list(pool.map(one, records))


def stop(ctx: typer.Context, services: ServicesArg = None,
         timeout: Annotated[float | None, typer.Option("--timeout", "-t")] = None) -> None:
    """Stop the project's containers without removing them."""
    rt = runtime()
    _each(rt, _records(rt, project_name(ctx.obj), services, all_=False), "stop", timeout=timeout)


def start(ctx: typer.Context, services: ServicesArg = None) -> None:
    """Start existing containers."""
    rt = runtime()
    recs = [r for r in _records(rt, project_name(ctx.obj), services) if r.status.value != "running"]
    _each(rt, recs, "start")


def restart(ctx: typer.Context, services: ServicesArg = None,
            timeout: Annotated[float | None, typer.Option("--timeout", "-t")] = None) -> None:
    """Restart the project's containers."""
    rt = runtime()
    _each(rt, _records(rt, project_name(ctx.obj), services), "restart", timeout=timeout)


def kill(ctx: typer.Context, services: ServicesArg = None,
         sig: Annotated[str, typer.Option("--signal", "-s")] = "SIGKILL") -> None:
    """Send a signal (SIGKILL by default) to running containers."""
    rt = runtime()
    _each(rt, _records(rt, project_name(ctx.obj), services, all_=False), "kill", signal=sig)


def rm(ctx: typer.Context, services: ServicesArg = None,
       force: Annotated[bool, typer.Option("--force", "-f", help="Also remove running ones.")] = False,
       stop_first: Annotated[bool, typer.Option("--stop", "-s", help="Stop them first.")] = False) -> None:
    """Remove stopped containers (running ones with -f or -s)."""
    rt = runtime()
    recs = _records(rt, project_name(ctx.obj), services)
    if stop_first:
        _each(rt, [r for r in recs if r.status.value == "running"], "stop")
        force = True
    if not force:
        recs = [r for r in recs if r.status.value != "running"]
    _each(rt, recs, "rm", force=force)


def top(ctx: typer.Context, services: ServicesArg = None) -> None:
    """Show the processes of running containers."""
    rt = runtime()
    for r in _records(rt, project_name(ctx.obj), services, all_=False):
        result = rt.client.top(r.id)
        write(r.name)
        write("  ".join(result.titles))
        for row in result.processes:
            write("  ".join(row))
        write("")


def wait(ctx: typer.Context, services: Annotated[list[str], typer.Argument(metavar="SERVICE...")]) -> None:
    """Block until the services' containers exit; exit with the first non-zero code (else 0)."""
    rt = runtime()
    records = _records(rt, project_name(ctx.obj), services)
    codes = [rt.client.wait_container(r.id) for r in records]
    for r, code in zip(records, codes, strict=True):
        write(f"{r.name} {code}")
    raise typer.Exit(next((c for c in codes if c), 0))


def ls(fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
       all_: Annotated[bool, typer.Option("--all", "-a")] = False) -> None:
    """List projects the engine runs."""
    rt = runtime()
    projects: dict[str, dict[str, int]] = {}
    files: dict[str, str] = {}
    for r in rt.client.list_containers():
        name = r.labels.get(lbl.PROJECT)
        if not name:
            continue
        counts = projects.setdefault(name, {})
        counts[r.status.value] = counts.get(r.status.value, 0) + 1
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
    rt = runtime()
    name = project_name(ctx.obj)
    start, end = _since(since), _since(until, "--until")
    history = start is not None or end is not None
    for event in rt.client.events(since_id=0 if history else None, follow=end is None):
        if event.attributes.get(lbl.PROJECT, name) != name or (start is not None and event.time < start):
            continue
        if end is not None and event.time > end:
            break
        if as_json:
            write(event.model_dump_json())
        else:
            write(f"{event.time.isoformat()} {event.type} {event.action} {event.actor}")


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
    rt = runtime()
    record = _one(rt, project_name(ctx.obj), service, index)
    for p in record.network.ports if record.network else ():
        if p.container_port == int(number) and p.protocol == (proto or "tcp"):
            write(f"{p.host_ip or '0.0.0.0'}:{p.host_port}")
            return
    raise NotFound(f"service {service}: port {private_port} is not published")


def inspect(ctx: typer.Context, services: ServicesArg = None) -> None:
    """Everything the engine records about the services' containers (health log included), as JSON."""
    rt = runtime()
    records = _records(rt, project_name(ctx.obj), services)
    write(json.dumps([r.model_dump(mode="json") for r in records], indent=2))


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

