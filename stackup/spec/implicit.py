"""Implicit dependencies, worked out in one place: `links`, `service:x` namespaces, `volumes_from`.

Each names a service that must exist and start first, so compose-go folds them into
`depends_on` (normalisation does the same), the reference checks report a missing one where it
was written, and `stackup graph` shows which key made an edge. All three read this function.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

NAMESPACE_KEYS = ("network_mode", "ipc", "pid", "uts", "cgroup")
"""Keys whose `service:x` value joins another service's namespace."""


@dataclass(frozen=True, slots=True)
class ImplicitRef:
    """`service` is referenced by `key` (and list `index`); `restart` is compose-go's choice for
    the folded depends_on entry (a namespace or link follows its target's restarts)."""

    service: str
    key: str
    index: int | None = None
    restart: bool = True


def implicit_refs(
    links: Sequence[object] | None,
    namespaces: Mapping[str, object],
    volumes_from: Sequence[object] | None,
) -> Iterator[ImplicitRef]:
    """The implicit references of one service, in written order; non-strings are skipped (the
    structural check reports them), as are `container:` sources, which name no service."""
    for index, link in enumerate(links or ()):
        if isinstance(link, str):
            yield ImplicitRef(link.split(":", 1)[0], "links", index)
    for key in NAMESPACE_KEYS:
        mode = namespaces.get(key)
        if isinstance(mode, str) and mode.startswith("service:"):
            yield ImplicitRef(mode.removeprefix("service:"), key)
    for index, source in enumerate(volumes_from or ()):
        if isinstance(source, str) and not source.startswith("container:"):
            yield ImplicitRef(source.split(":", 1)[0], "volumes_from", index, restart=False)


def implicit_refs_of(service: object) -> Iterator[ImplicitRef]:
    """`implicit_refs` of a validated `Service` model."""
    return implicit_refs(
        getattr(service, "links", None),
        {key: getattr(service, key, None) for key in NAMESPACE_KEYS},
        getattr(service, "volumes_from", None),
    )
