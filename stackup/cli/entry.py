"""Console entry point.

`stackup --version` answers before anything heavy is imported (target: < 150 ms end to end), and
so does a no-op `up -d` that `fastpath` can prove unchanged, a `build` whose recorded
requests are proven current (`buildfast`), `image pull` on a running engine (`pullfast`) and a
`pull` of an unchanged stack (`pullstack`), and a plain `down` (`downfast`: no typer app);
every other invocation loads the typer app, and `StackupError`s become one-line messages and
their exit codes instead of tracebacks.

The cyclic garbage collector is tuned for a short-lived process that imports a lot: importing
the pydantic models and networkx allocates hundreds of thousands of objects, and with Python's
default thresholds (700, 10, 10) the collections this triggers, each scanning everything imported
so far, took a fifth of every command (measured: importing what `stackup up` needs took 1.20 s
median with the defaults and 0.96 s with these thresholds, 9 runs each). A higher first
threshold still collects in long-running commands (`up` attached, `logs -f`), and freezing what
exists at exit spares the interpreter's final collection.
"""

from __future__ import annotations

import gc
import sys

GC_THRESHOLDS = (50_000, 20, 100)


def main(argv: list[str] | None = None) -> None:
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        _main(sys.argv[1:] if argv is None else argv)
    finally:
        gc.freeze()  # nothing left is garbage worth finding; skips the final full collection


_HOST_OPTIONS = ("-H", "--host")
_GLOBAL_VALUE_OPTIONS = {
    "-f", "--file", "-p", "--project-name", "--profile", "--env-file", "--project-directory", "--progress",
    "--parallel", "--runtime",
}  # fmt: skip


def take_host(args: list[str]) -> list[str]:
    """`-H URL` / `--host URL` among the global options (before the command name) becomes
    `STACKUP_HOST`, as Docker's `-H` is `DOCKER_HOST`: every layer below reads the one variable,
    and the fast paths see a remote host and step aside. Arguments after the command name are
    the command's (`exec web curl -H ...`) and are left alone."""
    import os

    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if name in _HOST_OPTIONS:
            if not eq:
                if i + 1 >= len(args):
                    return args  # typer reports the missing value
                value = args[i + 1]
                i += 1
            os.environ["STACKUP_HOST"] = value
            i += 1
            continue
        if not arg.startswith("-"):
            return rest + args[i:]
        rest.append(arg)
        if name in _GLOBAL_VALUE_OPTIONS and not eq and i + 1 < len(args):
            rest.append(args[i + 1])
            i += 1
        i += 1
    return rest


def _main(args: list[str]) -> None:
    if args[:2] == ["system", "dial-stdio"] and len(args) == 2:
        from stackup.runtime.native.dialstdio import dial_stdio

        raise SystemExit(dial_stdio())
    args = take_host(args)
    if args in (["--version"], ["-v"], ["version", "--short"]):
        from stackup import __version__

        sys.stdout.write(f"stackup {__version__}\n" if args[0] != "version" else f"{__version__}\n")
        raise SystemExit(0)
    if "up" in args and not _remote_host():
        from stackup.cli.fastpath import try_noop_up

        code = try_noop_up(args)
        if code is not None:
            raise SystemExit(code)
    if "build" in args:
        from stackup.cli.buildfast import try_build

        code = try_build(args)
        if code is not None:
            raise SystemExit(code)
    if "pull" in args and args[:2] != ["image", "pull"]:
        from stackup.cli.pullstack import try_stack_pull

        code = try_stack_pull(args)
        if code is not None:
            raise SystemExit(code)
    if args[:2] == ["image", "pull"]:
        from stackup.cli.pullfast import try_image_pull

        code = try_image_pull(args)
        if code is not None:
            raise SystemExit(code)
    if "down" in args:
        from stackup.cli.downfast import try_down

        code = try_down(args)
        if code is not None:
            raise SystemExit(code)
    from stackup.cli.main import run

    raise SystemExit(run(args))


def _remote_host() -> bool:
    """Whether `STACKUP_HOST` names an engine: the no-op shortcut keeps its record beside the
    local root's engine and reads that engine, so it must not answer for another one."""
    import os

    return bool(os.environ.get("STACKUP_HOST"))


if __name__ == "__main__":
    main()
