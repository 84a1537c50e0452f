"""Parse nodes -> typed instructions, with BuildKit's checks (flags, argument counts, stage names)
and this builder's refusals: what it cannot do is a located error, never silently dropped.

Refused, with the reason and what to do instead: ADD of a URL or git repository (no outside network
is assumed), `ADD --checksum`/`--keep-git-dir` (they only make sense for remote sources),
`RUN --security`, `RUN --mount=type=ssh`, `COPY --from=$VAR`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass

from stackup.build.dockerfile.ast import Node, ParseResult
from stackup.build.dockerfile.flags import FlagError, FlagKind, Flags, parse_duration, parse_flags
from stackup.build.dockerfile.instructions import (
    Add,
    Arg,
    ArgDef,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    InlineSource,
    Instruction,
    KeyValue,
    Label,
    Maintainer,
    NetworkMode,
    Onbuild,
    Run,
    Shell,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from stackup.build.dockerfile.lineparse import KNOWN_INSTRUCTIONS
from stackup.build.dockerfile.mounts import MountError, check_from, parse_mount
from stackup.build.dockerfile.parser import parse_heredoc
from stackup.build.dockerfile.shell import ShellError, ShellLexer
from stackup.errors import DockerfileError

_STAGE_NAME = re.compile(r"[a-z][a-z0-9\-_.]*\Z")
_B, _S, _L = FlagKind.BOOL, FlagKind.STRING, FlagKind.STRINGS


class _Refused(ValueError):
    pass


@dataclass(frozen=True)
class Dockerfile:
    """Typed instructions: ARGs before the first FROM (`meta_args`), then each stage's FROM and
    its instructions in order."""

    path: str
    escape: str
    meta_args: tuple[Arg, ...]
    stages: tuple[tuple[From, tuple[Instruction, ...]], ...]


def parse_instructions(result: ParseResult) -> Dockerfile:
    """Check and type every instruction; group them into stages. Raises `DockerfileError`."""
    meta: list[Arg] = []
    stages: list[tuple[From, list[Instruction]]] = []
    for node in result.nodes:
        instr = to_instruction(node, result.path)
        if isinstance(instr, From):
            stages.append((instr, []))
        elif not stages and isinstance(instr, Arg):
            meta.append(instr)
        elif not stages:
            raise _located(node, result.path, f"no build stage in current context: {node.keyword.upper()} "
                           "comes before the first FROM (only ARG may)")
        else:
            stages[-1][1].append(instr)
    return Dockerfile(result.path, result.escape, tuple(meta), tuple((f, tuple(i)) for f, i in stages))


def _located(node: Node, path: str, message: str) -> DockerfileError:
    return DockerfileError(message, path=path, line=node.line, column=node.column)


def to_instruction(node: Node, path: str = "Dockerfile") -> Instruction:
    command = node.command
    builder = _BUILDERS.get(command)
    if builder is None:
        hint = difflib.get_close_matches(command, sorted(KNOWN_INSTRUCTIONS), n=1)
        extra = f" (did you mean {hint[0].upper()}?)" if hint else ""
        raise _located(node, path, f"unknown instruction: {node.keyword}{extra}")
    try:
        return builder(node)
    except (FlagError, MountError, ShellError, _Refused) as exc:
        raise _located(node, path, str(exc)) from None


def _flags(node: Node, spec: dict[str, FlagKind]) -> Flags:
    return parse_flags(node.flags, spec)


def _exactly_one(node: Node) -> str:
    if len(node.args) != 1:
        raise _Refused(f"{node.keyword.upper()} requires exactly one argument")
    _flags(node, {})
    return node.args[0]


def _at_least_one(node: Node) -> None:
    if not node.args:
        raise _Refused(f"{node.keyword.upper()} requires at least one argument")


def _kvps(node: Node) -> tuple[KeyValue, ...]:
    _flags(node, {})
    name = node.keyword.upper()
    if not node.args:
        raise _Refused(f"{name} requires at least one argument")
    if len(node.args) % 3:
        raise _Refused(f"Bad input to {name}, too many arguments")
    out = []
    for i in range(0, len(node.args), 3):
        key, value, sep = node.args[i : i + 3]
        if not key:
            raise _Refused(f"{name} names can not be blank")
        out.append(KeyValue(key, value, legacy=sep == ""))
    return tuple(out)


def _command_line(node: Node, empty_as_none: bool = False) -> tuple[str, ...]:
    if node.json:
        return node.args
    return (" ".join(node.args),) if node.args or not empty_as_none else ()


def _from(node: Node) -> From:
    args = node.args
    name = ""
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not _STAGE_NAME.match(name):
            raise _Refused(f'invalid name for build stage: "{args[2]}", name can\'t start with a number or '
                           "contain symbols")
    elif len(args) != 1:
        raise _Refused("FROM requires either one or three arguments")
    flags = _flags(node, {"platform": _S})
    return From(node, base=args[0], stage_name=name, platform=flags.string("platform"))


def _run(node: Node) -> Run:
    flags = _flags(node, {"mount": _L, "network": _S, "security": _S, "device": _L})
    if flags.given("security"):
        raise _Refused("RUN --security is not supported: build steps always run with Docker's default "
                       "confinement")
    if flags.given("device"):
        raise _Refused("RUN --device is not supported: build steps get no host devices")
    network = flags.string("network") or "default"
    try:
        mode = NetworkMode(network)
    except ValueError:
        raise _Refused(f"unsupported network mode {network!r} (default, none or host)") from None
    for spec in flags.strings("mount"):
        check_from(spec)
        if "$" not in spec:
            parse_mount(spec, lambda v: v)  # refuse what is wrong now; with variables: when planned
    return Run(node, command=_command_line(node), prepend_shell=not node.json, heredocs=node.heredocs,
               mount_specs=flags.strings("mount"), network=mode)


def _cmd(node: Node) -> Cmd:
    _flags(node, {})
    return Cmd(node, command=_command_line(node), prepend_shell=not node.json, heredocs=node.heredocs)


def _entrypoint(node: Node) -> Entrypoint:
    _flags(node, {})
    return Entrypoint(node, command=_command_line(node, empty_as_none=True), prepend_shell=not node.json)


def _shell(node: Node) -> Shell:
    _flags(node, {})
    if not node.args:
        raise _Refused("SHELL requires at least one argument")
    if not node.json:
        raise _Refused(f"SHELL requires the arguments to be in JSON form: {node.original}")
    return Shell(node, shell=node.args)


def _sources(node: Node) -> tuple[tuple[str, ...], str, tuple[InlineSource, ...]]:
    name = node.keyword.upper()
    if len(node.args) < 2:
        raise _Refused(f"{name} requires at least two arguments, but only one was provided. Destination "
                       "could not be determined")
    *srcs, dest = node.args
    if parse_heredoc(dest) is not None:
        raise _Refused(f"{name} cannot accept a heredoc as a destination")
    docs = {d.name: d for d in node.heredocs}
    paths: list[str] = []
    inline: list[InlineSource] = []
    for src in srcs:
        doc = parse_heredoc(src)
        if doc is None:
            paths.append(src)
            continue
        found = docs.get(doc.name)
        data = found.content if found else ""
        if doc.chomp:
            data = type(doc)(doc.name, doc.expand, True, content=data).body()
        inline.append(InlineSource(doc.name, data, doc.expand))
    return tuple(paths), dest, tuple(inline)


def refuse_remote(source: str) -> None:
    """ADD's remote sources: a URL or a git repository. Also called after substitution."""
    low = source.lower()
    if low.startswith(("http://", "https://")):
        raise _Refused("ADD from a URL is not supported: no outside network is assumed; download it in a "
                       "RUN step or COPY a local file")
    if low.startswith(("git@", "git://", "ssh://", "github.com/")):
        raise _Refused("ADD from a git repository is not supported: no outside network is assumed; clone "
                       "it in a RUN step or COPY a local checkout")


def _add(node: Node) -> Add:
    flags = _flags(node, {"chown": _S, "chmod": _S, "link": _B, "keep-git-dir": _B, "checksum": _S,
                          "unpack": _B, "exclude": _L})
    if flags.given("checksum"):
        raise _Refused("ADD --checksum is not supported: it only applies to remote sources, which need an "
                       "outside network; COPY a local file and check it in a RUN step")
    if flags.given("keep-git-dir"):
        raise _Refused("ADD --keep-git-dir is not supported: ADD of a git repository is not (no outside "
                       "network is assumed)")
    paths, dest, inline = _sources(node)
    for src in paths:
        refuse_remote(src)
    return Add(node, sources=paths, dest=dest, inline=inline, chown=flags.string("chown"),
               chmod=flags.string("chmod"), link=flags.boolean("link"), excludes=flags.strings("exclude"),
               unpack=flags.boolean("unpack") if flags.given("unpack") else None)


def _copy(node: Node) -> Copy:
    flags = _flags(node, {"chown": _S, "from": _S, "chmod": _S, "link": _B, "exclude": _L, "parents": _B})
    source = flags.string("from")
    if source and ShellLexer().process_word(source, {}).result != source:
        raise _Refused("variable expansion is not supported for --from, define a new stage with FROM using "
                       "ARG from global scope as a workaround")
    paths, dest, inline = _sources(node)
    return Copy(node, sources=paths, dest=dest, inline=inline, chown=flags.string("chown"),
                chmod=flags.string("chmod"), link=flags.boolean("link"), excludes=flags.strings("exclude"),
                from_=source, parents=flags.boolean("parents"))


def _arg(node: Node) -> Arg:
    _flags(node, {})
    if not node.args:
        raise _Refused("ARG requires at least one argument")
    out = []
    for word in node.args:
        key, has_value, value = word.partition("=")
        if has_value and not key:
            raise _Refused("ARG names can not be blank")
        out.append(ArgDef(key, value if has_value else None))
    return Arg(node, args=tuple(out))


def _interval(flags: Flags, name: str) -> int:
    text = flags.string(name)
    if not text:
        return 0
    value = parse_duration(text)
    if 0 < value < 1_000_000 or value < 0:
        raise _Refused(f'Interval "{name}" cannot be less than 1ms')
    return value


def _healthcheck(node: Node) -> Healthcheck:
    _at_least_one(node)
    kind = node.args[0].upper()
    rest = node.args[1:]
    if kind == "NONE":
        if rest:
            raise _Refused("HEALTHCHECK NONE takes no arguments")
        _flags(node, {})
        return Healthcheck(node, test=("NONE",))
    flags = _flags(node, {"interval": _S, "timeout": _S, "start-period": _S, "start-interval": _S,
                          "retries": _S})
    if kind != "CMD":
        raise _Refused(f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    cmd = rest if node.json else ((" ".join(rest),) if rest else ())
    if not cmd:
        raise _Refused("Missing command after HEALTHCHECK CMD")
    retries = 0
    if text := flags.string("retries"):
        try:
            retries = int(text, 10)
        except ValueError:
            raise _Refused(f'strconv.ParseInt: parsing "{text}": invalid syntax') from None
        if retries < 0:
            raise _Refused(f"--retries cannot be negative ({retries})")
    return Healthcheck(node, test=("CMD" if node.json else "CMD-SHELL", *cmd),
                       interval_ns=_interval(flags, "interval"), timeout_ns=_interval(flags, "timeout"),
                       start_period_ns=_interval(flags, "start-period"),
                       start_interval_ns=_interval(flags, "start-interval"), retries=retries)


def _onbuild(node: Node) -> Onbuild:
    _at_least_one_sub(node)
    _flags(node, {})
    assert node.sub is not None
    trigger = node.sub.keyword.upper()
    if trigger == "ONBUILD":
        raise _Refused("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise _Refused(f"{trigger} isn't allowed as an ONBUILD trigger")
    expression = re.sub(r"(?i)^\s*ONBUILD\s*", "", node.original)
    for doc in node.heredocs:
        expression += "\n" + doc.content + doc.name
    return Onbuild(node, expression=expression)


def _at_least_one_sub(node: Node) -> None:
    if node.sub is None:
        raise _Refused("ONBUILD requires at least one argument")


def _expose(node: Node) -> Expose:
    _at_least_one(node)
    _flags(node, {})
    return Expose(node, ports=tuple(sorted(node.args)))


def _volume(node: Node) -> Volume:
    _at_least_one(node)
    _flags(node, {})
    paths = tuple(v.strip() for v in node.args)
    if any(p == "" for p in paths):
        raise _Refused("VOLUME specified can not be an empty string")
    return Volume(node, paths=paths)


def _maintainer(node: Node) -> Maintainer:
    return Maintainer(node, maintainer=_exactly_one(node))


_BUILDERS: dict[str, Callable[[Node], Instruction]] = {
    "from": _from,
    "run": _run,
    "cmd": _cmd,
    "entrypoint": _entrypoint,
    "shell": _shell,
    "copy": _copy,
    "add": _add,
    "env": lambda n: Env(n, pairs=_kvps(n)),
    "label": lambda n: Label(n, pairs=_kvps(n)),
    "arg": _arg,
    "workdir": lambda n: Workdir(n, path=_exactly_one(n)),
    "user": lambda n: User(n, user=_exactly_one(n)),
    "stopsignal": lambda n: StopSignal(n, signal=_exactly_one(n)),
    "expose": _expose,
    "volume": _volume,
    "healthcheck": _healthcheck,
    "onbuild": _onbuild,
    "maintainer": _maintainer,
}
