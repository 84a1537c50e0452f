"""The only place that writes to the terminal: consoles, error lines, JSON/YAML dumps."""

from __future__ import annotations

import json
import sys
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


@cache
def out() -> Console:
    from rich.console import Console

    # piped output (scripts, CI logs) must not be cut to 80 columns: tables would lose columns
    width = None if sys.stdout.isatty() else 4096
    return Console(highlight=False, soft_wrap=True, width=width)


@cache
def err() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def write(text: str) -> None:
    """Plain text to stdout, untouched by rich (for machine-readable output)."""
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
    sys.stdout.flush()


def warn(message: str) -> None:
    err().print(f"[yellow]warning:[/] {message}", markup=True, highlight=False)


def error(message: str) -> None:
    from rich.markup import escape

    for line in message.splitlines() or [message]:
        err().print(f"[bold red]error:[/] {escape(line)}")


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def dump_yaml(data: Any) -> str:
    """YAML the way `docker compose config` prints it: block style, keys in model order."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    setattr(yaml, "sort_base_mapping_type_on_output", False)  # noqa: B010  (typed None in the stubs)
    yaml.width = 4096
    buf = io.StringIO()
    yaml.dump(data, buf)
    return buf.getvalue()
