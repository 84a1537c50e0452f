"""Hypothesis strategies for stack files, dotenv text and substitutions, and the loader property.

Shared by the fast tests (`tests/spec/test_fuzz_*.py`) and the long runs of `bench/fuzz/run.py`.
Trees are built from Compose's own keys with values that are sometimes right, sometimes nearly
right (the short syntaxes with a part missing or out of range) and sometimes anything, because
the interesting bugs sit between "valid" and "obviously garbage". The property: loading either
succeeds or raises a `StackupError`; any other exception is a bug, and so is a hang.
"""

from __future__ import annotations

import io
import json
import signal
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from ruamel.yaml import YAML

from stackup.errors import StackupError
from stackup.spec import LoadOptions, load

SERVICE_KEYS = [
    "image",
    "build",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "expose",
    "volumes",
    "volumes_from",
    "networks",
    "network_mode",
    "depends_on",
    "links",
    "restart",
    "healthcheck",
    "deploy",
    "labels",
    "profiles",
    "extends",
    "secrets",
    "configs",
    "scale",
    "ulimits",
    "devices",
    "cap_add",
    "cap_drop",
    "security_opt",
    "sysctls",
    "extra_hosts",
    "logging",
    "develop",
    "tmpfs",
    "init",
    "privileged",
    "user",
    "working_dir",
    "mem_limit",
    "cpus",
    "pids_limit",
    "stop_grace_period",
    "stop_signal",
    "container_name",
    "hostname",
    "dns",
    "pull_policy",
    "post_start",
    "pre_stop",
    "annotations",
    "shm_size",
    "ipc",
    "pid",
    "enviroment",
    "port",
    "x-meta",
]
NAMES = st.sampled_from(["web", "db", "api", "cache", "w-1", "a_b", "Web", "", "x y", "ü", "0", "default"])
VARIABLES = st.sampled_from(["A", "B", "TAG", "COMPOSE_PROJECT_NAME", "PORT", "EMPTY", "_x1"])

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_ints = st.integers(min_value=-2, max_value=70000)
_scalars = st.one_of(st.none(), st.booleans(), _ints, st.floats(allow_nan=True, width=32), _text)


def _substitution() -> st.SearchStrategy[str]:
    op = st.sampled_from(["", ":-", "-", ":?", "?", ":+", "+", ":", "!"])
    simple = st.builds(
        lambda v, o, d: f"${{{v}{o}{d}}}", VARIABLES, op, st.sampled_from(["", "x", "}", "$$"])
    )
    atoms = st.one_of(
        simple,
        st.sampled_from(["$", "$$", "${", "}", "$A", "${A", "{}", "x", " "]),
        VARIABLES.map(lambda v: f"${v}"),
    )
    return st.recursive(
        atoms,
        lambda inner: st.one_of(
            st.builds(lambda v, o, d: f"${{{v}{o}{d}}}", VARIABLES, op, inner),
            st.lists(inner, min_size=1, max_size=4).map("".join),
        ),
        max_leaves=6,
    )


SUBSTITUTIONS = _substitution()
"""Strings of `$` syntax: nested defaults, bad braces, escapes."""

_strings = st.one_of(_text, SUBSTITUTIONS)
_durations = st.sampled_from(["10s", "1m30s", "0", "-1s", "1.5h", "5", "10x", "", "1us", "9999999999h"])
_sizes = st.sampled_from(["512m", "1g", "0", "-1", "1.5kb", "10", "12q", "9" * 30])


def _port() -> st.SearchStrategy[Any]:
    number = st.one_of(_ints.map(str), st.sampled_from(["", "a", "8000-8001", "80-79", "0"]))
    short = st.builds(
        lambda ip, h, c, p: ":".join(x for x in (ip, h, c) if x is not None) + p,
        st.sampled_from([None, "127.0.0.1", "::1", "[::1]", "0.0.0.0", "bad"]),
        st.one_of(st.none(), number),
        number,
        st.sampled_from(["", "/udp", "/tcp", "/sctp", "/x"]),
    )
    long = st.fixed_dictionaries(
        {"target": st.one_of(_ints, _text)},
        optional={
            "published": st.one_of(_ints, number),
            "protocol": st.sampled_from(["tcp", "udp", "x"]),
            "host_ip": st.sampled_from(["127.0.0.1", "x"]),
            "mode": st.sampled_from(["host", "ingress", "y"]),
        },
    )
    return st.one_of(short, long, _ints)


def _volume() -> st.SearchStrategy[Any]:
    short = st.builds(
        lambda s, t, m: ":".join(x for x in (s, t, m) if x),
        st.sampled_from(["", "data", "./src", "/abs", "~/h", "${A}", "C:\\x", "../up"]),
        st.sampled_from(["/x", "", "rel", "/y:z"]),
        st.sampled_from(["", "ro", "rw", "z", "nocopy", "q"]),
    )
    long = st.fixed_dictionaries(
        {"type": st.sampled_from(["volume", "bind", "tmpfs", "image", "bogus"])},
        optional={
            "source": st.sampled_from(["data", "./src", ""]),
            "target": st.sampled_from(["/x", "", "rel"]),
            "read_only": st.booleans(),
            "tmpfs": st.fixed_dictionaries({}, optional={"size": _sizes}),
        },
    )
    return st.one_of(short, long)


def _depends_on() -> st.SearchStrategy[Any]:
    condition = st.sampled_from(
        ["service_started", "service_healthy", "service_completed_successfully", "up"]
    )
    return st.one_of(
        st.lists(NAMES, max_size=3),
        st.dictionaries(
            NAMES,
            st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {}, optional={"condition": condition, "required": st.booleans(), "restart": st.booleans()}
                ),
            ),
            max_size=3,
        ),
    )


def _anything(depth: int = 2) -> st.SearchStrategy[Any]:
    return st.recursive(
        _scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_text, inner, max_size=3)),
        max_leaves=8,
    )


_mapping_or_list = st.one_of(
    st.dictionaries(VARIABLES, st.one_of(_strings, st.none(), _ints), max_size=3),
    st.lists(st.builds(lambda k, v: f"{k}={v}", VARIABLES, _strings), max_size=3),
    st.lists(VARIABLES, max_size=2),
)
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "image": _strings,
    "command": st.one_of(_strings, st.lists(_strings, max_size=3)),
    "entrypoint": st.one_of(_strings, st.lists(_strings, max_size=3)),
    "environment": _mapping_or_list,
    "labels": _mapping_or_list,
    "annotations": _mapping_or_list,
    "sysctls": _mapping_or_list,
    "extra_hosts": st.one_of(_mapping_or_list, st.just(["h:1.2.3.4", "h=::1"])),
    "ports": st.lists(_port(), max_size=3),
    "expose": st.lists(st.one_of(_ints, _text), max_size=2),
    "volumes": st.lists(_volume(), max_size=3),
    "depends_on": _depends_on(),
    "networks": st.one_of(
        st.lists(NAMES, max_size=2),
        st.dictionaries(
            NAMES,
            st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {},
                    optional={
                        "aliases": st.lists(_text, max_size=2),
                        "ipv4_address": st.sampled_from(["10.0.0.2", "x"]),
                    },
                ),
            ),
            max_size=2,
        ),
    ),
    "restart": st.sampled_from(
        [
            "no",
            "always",
            "on-failure",
            "on-failure:3",
            "on-failure:x",
            "unless-stopped",
            "sometimes",
            "",
            "no:1",
        ]
    ),
    "healthcheck": st.fixed_dictionaries(
        {},
        optional={
            "test": st.one_of(_strings, st.lists(_strings, max_size=3), st.just(["CMD-SHELL", "true"])),
            "interval": _durations,
            "timeout": _durations,
            "retries": _ints,
            "disable": st.booleans(),
        },
    ),
    "deploy": st.fixed_dictionaries(
        {},
        optional={
            "replicas": _ints,
            "resources": st.fixed_dictionaries(
                {},
                optional={"limits": st.fixed_dictionaries({}, optional={"memory": _sizes, "cpus": _strings})},
            ),
            "restart_policy": st.fixed_dictionaries(
                {}, optional={"condition": st.sampled_from(["any", "x"])}
            ),
        },
    ),
    "mem_limit": _sizes,
    "shm_size": _sizes,
    "stop_grace_period": _durations,
    "scale": _ints,
    "extends": st.one_of(
        NAMES,
        st.fixed_dictionaries(
            {"service": NAMES},
            optional={"file": st.sampled_from(["compose.yaml", "other.yaml", "missing.yaml", "/dev/null"])},
        ),
    ),
    "secrets": st.lists(st.one_of(NAMES, st.fixed_dictionaries({"source": NAMES})), max_size=2),
    "configs": st.lists(NAMES, max_size=2),
    "profiles": st.lists(st.sampled_from(["dev", "", "x"]), max_size=2),
    "env_file": st.one_of(
        st.sampled_from([".env", "missing.env", "a.env"]),
        st.lists(
            st.fixed_dictionaries(
                {"path": st.sampled_from([".env", "missing.env"])}, optional={"required": st.booleans()}
            ),
            max_size=2,
        ),
    ),
    "ulimits": st.dictionaries(
        st.sampled_from(["nofile", "nproc", "x"]),
        st.one_of(_ints, st.fixed_dictionaries({"soft": _ints, "hard": _ints})),
        max_size=2,
    ),
    "network_mode": st.sampled_from(["host", "none", "bridge", "service:db", "container:x", "service:"]),
    "tmpfs": st.one_of(_strings, st.lists(st.sampled_from(["/run", "/tmp:size=64m", "rel"]), max_size=2)),
    "develop": st.fixed_dictionaries(
        {},
        optional={
            "watch": st.lists(
                st.fixed_dictionaries(
                    {
                        "path": st.sampled_from(["./src", ""]),
                        "action": st.sampled_from(["sync", "rebuild", "nope"]),
                    },
                    optional={"target": st.sampled_from(["/app", ""])},
                ),
                max_size=2,
            )
        },
    ),
}


def service() -> st.SearchStrategy[Any]:
    keys = st.lists(st.sampled_from(SERVICE_KEYS), max_size=7, unique=True)

    def build(draw: Callable[[st.SearchStrategy[Any]], Any]) -> Any:
        out: dict[str, Any] = {}
        for key in draw(keys):
            out[key] = draw(VALUES.get(key, _anything()))
        return out

    return st.one_of(st.composite(build)(), st.sampled_from([None, [], "web", 0]))


def resources() -> st.SearchStrategy[Any]:
    entry = st.one_of(
        st.none(),
        st.fixed_dictionaries(
            {},
            optional={
                "external": st.booleans(),
                "name": _strings,
                "driver": st.sampled_from(["bridge", "local", "x"]),
                "internal": st.booleans(),
                "file": st.sampled_from(["./s.txt", "missing"]),
                "environment": VARIABLES,
                "content": _strings,
                "ipam": st.fixed_dictionaries(
                    {
                        "config": st.lists(
                            st.fixed_dictionaries(
                                {"subnet": st.sampled_from(["10.5.0.0/16", "x", "10.5.0.1/33"])}
                            ),
                            max_size=2,
                        )
                    }
                ),
            },
        ),
    )
    return st.one_of(st.dictionaries(NAMES, entry, max_size=3), st.lists(NAMES, max_size=2), _scalars)


def project() -> st.SearchStrategy[dict[str, Any]]:
    """A whole stack file as a tree."""
    return st.fixed_dictionaries(
        {"services": st.one_of(st.dictionaries(NAMES, service(), max_size=4), _scalars)},
        optional={
            "name": st.one_of(st.sampled_from(["demo", "Demo", "", "-x"]), _strings),
            "networks": resources(),
            "volumes": resources(),
            "secrets": resources(),
            "configs": resources(),
            "version": st.sampled_from(["3.8", "2"]),
            "x-common": _anything(),
            "include": st.lists(st.sampled_from(["other.yaml", "missing.yaml", "."]), max_size=2),
            "bogus": _anything(),
        },
    )


_RAW_SNIPPETS = [
    "x-a: &a {image: busybox}\nservices:\n  w:\n    <<: *a\n",
    "services:\n  w: !reset {}\n",
    'services:\n  w:\n    ports: !override ["80:80"]\n',
    "services:\n  w:\n    image: x\n    command: !reset null\n",
    "services:\n  w: *undefined\n",
    "services:\n  w:\n    <<: [*a]\n",
    "services:\n  w: !bogus x\n",
    "services: {w: {image: x}}\n---\nservices: {}\n",
    "? [a, b]\n: c\nservices: {}\n",
    "services:\n  w:\n    image: x\n    image: y\n",
]


_BLOCK = YAML(typ="safe")
_BLOCK.default_flow_style = False


def yaml_text() -> st.SearchStrategy[str]:
    """A stack file's text: a dumped tree (block or flow style), or a raw snippet with tags and
    anchors, sometimes with a line of the dump removed."""

    def dump(tree: dict[str, Any], flow: bool) -> str:
        if flow:  # JSON is YAML too
            return json.dumps(tree, ensure_ascii=False)
        out = io.StringIO()
        _BLOCK.dump(tree, out)
        return out.getvalue()

    dumped = st.builds(dump, project(), st.booleans())
    damaged = st.builds(
        lambda text, i: "\n".join(line for n, line in enumerate(text.splitlines()) if n != i),
        dumped,
        st.integers(0, 20),
    )
    return st.one_of(dumped, dumped, damaged, st.sampled_from(_RAW_SNIPPETS))


def dotenv_text() -> st.SearchStrategy[str]:
    key = st.one_of(VARIABLES, st.sampled_from(["export A", "1A", "A B", "", "A.B", "a-b"]))
    value = st.one_of(
        _strings,
        st.builds(
            lambda q, v, c: f"{q}{v}{c}",
            st.sampled_from(["'", '"', ""]),
            _strings,
            st.sampled_from(["'", '"', "", " # c", "\\", "\n  more"]),
        ),
    )
    line = st.one_of(
        st.builds(lambda k, s, v: f"{k}{s}{v}", key, st.sampled_from(["=", " = ", ":", ""]), value),
        st.sampled_from(["# comment", "", "   ", "export", "=x", "A='unterminated", 'B="a\\nb"']),
    )
    return st.lists(line, max_size=8).map("\n".join)


@contextmanager
def time_bound(seconds: float) -> Iterator[None]:
    """Turn a hang into a `TimeoutError` in the main thread (SIGALRM, so reads are interrupted)."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"one input took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_load(
    files: dict[str, str | bytes], environ: dict[str, str] | None = None, seconds: float = 10.0
) -> bool:
    """Load `files` (name -> content) from a fresh directory; True if it loaded, False if it
    failed with a `StackupError`. Anything else (an exception, a hang) propagates: a bug."""
    with tempfile.TemporaryDirectory(prefix="stackup-fuzz-") as tmp:
        root = Path(tmp) / "proj"
        root.mkdir()
        for name, content in files.items():
            (root / name).write_bytes(
                content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content
            )
        (root / "s.txt").write_text("secret\n")
        try:
            with time_bound(seconds):
                load(LoadOptions(working_dir=root, environ=dict(environ or {})))
        except StackupError:
            return False
        return True
