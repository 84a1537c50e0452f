"""The Debian mirror this machine's apt uses, read from its sources (one-line and deb822 forms).

`image bootstrap debian:SUITE` fetches from the same mirror as `apt-get` on the host: it is
the one known to be reachable (a proxy, a local mirror, a snapshot) when no registry is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from stackup.errors import NotFound

APT_DIR = Path("/etc/apt")
_SCHEMES = ("http://", "https://", "ftp://", "file:/")
_OPTIONS = re.compile(r"\[[^\]]*\]")


@dataclass(frozen=True, slots=True)
class AptSource:
    """One `deb` source: where it was read (file:line), its URI and suites."""

    where: str
    uri: str
    suites: tuple[str, ...]


def source_files(apt_dir: Path = APT_DIR) -> list[Path]:
    """`sources.list` then `sources.list.d/*.list|*.sources` in name order, as apt reads them."""
    found = [apt_dir / "sources.list"] if (apt_dir / "sources.list").is_file() else []
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        found += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources") and p.is_file())
    return found


def _one_line(path: Path, text: str) -> Iterable[AptSource]:
    for number, raw in enumerate(text.splitlines(), 1):
        words = _OPTIONS.sub(" ", raw.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb":
            yield AptSource(f"{path}:{number}", words[1], (words[2],))


def _deb822(path: Path, text: str) -> Iterable[AptSource]:
    fields: dict[str, str] = {}
    start = key = None
    for number, raw in enumerate([*text.splitlines(), ""], 1):
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if fields and "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
                suites = tuple(fields.get("suites", "").split())
                for uri in fields.get("uris", "").split():
                    yield AptSource(f"{path}:{start}", uri, suites)
            fields, start, key = {}, None, None
            continue
        if raw[0] in " \t" and key is not None:
            fields[key] += " " + raw.strip()
            continue
        name, colon, value = raw.partition(":")
        if colon:
            key = name.strip().lower()
            fields[key] = value.strip()
            start = start or number


def read_sources(apt_dir: Path = APT_DIR) -> list[AptSource]:
    sources: list[AptSource] = []
    for path in source_files(apt_dir):
        text = path.read_text(errors="replace")
        sources += _deb822(path, text) if path.suffix == ".sources" else _one_line(path, text)
    return sources


def mirror_for(suite: str, apt_dir: Path = APT_DIR) -> str:
    """The URI of the first `deb` source serving `suite` itself (not `-security`/`-updates`)."""
    sources = read_sources(apt_dir)
    for source in sources:
        if suite in source.suites and source.uri.startswith(_SCHEMES):
            return source.uri.rstrip("/")
    listed = ", ".join(f"{s.uri} {' '.join(s.suites)} ({s.where})" for s in sources) or "none"
    raise NotFound(
        f"no apt source serves the Debian suite {suite!r} on this machine (sources: {listed}); "
        f"add one to {apt_dir}/sources.list.d or name a mirror explicitly")
