"""Console entry point.

`stackup --version` answers before anything heavy is imported (target: < 150 ms end to end), and
so does a no-op `up -d` that `fastpath` can prove unchanged;
every other invocation loads the typer app, and `StackupError`s become one-line messages and
their exit codes instead of tracebacks.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args in (["--version"], ["-v"], ["version", "--short"]):
        from stackup import __version__

        sys.stdout.write(f"stackup {__version__}\n" if args[0] != "version" else f"{__version__}\n")
        raise SystemExit(0)
    if "up" in args:
        from stackup.cli.fastpath import try_noop_up

        code = try_noop_up(args)
        if code is not None:
            raise SystemExit(code)
    from stackup.cli.main import run

    raise SystemExit(run(args))


if __name__ == "__main__":
    main()
