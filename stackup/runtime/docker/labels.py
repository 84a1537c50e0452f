"""Docker Compose's labels, derived from stackup's, on everything the Docker runtime creates.

With both sets on a container, `docker compose ps` / `docker-compose ps` list a stack stackup
started, and `observe` (which reads stackup's keys first and Compose's as a fallback, see
`planner/observed.py`) sees a stack either tool started. Only the keys stackup has a value for are
written; `com.docker.compose.config-hash` carries stackup's digest, which means Compose will see
a changed hash and recreate such a container on its own `up` (its digest is its own business).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from stackup import __version__
from stackup.runtime import labels as lbl

_CONTAINER_KEYS: Final = (
    (lbl.PROJECT, lbl.COMPOSE_PROJECT),
    (lbl.SERVICE, lbl.COMPOSE_SERVICE),
    (lbl.CONTAINER_NUMBER, lbl.COMPOSE_CONTAINER_NUMBER),
    (lbl.ONEOFF, lbl.COMPOSE_ONEOFF),
    (lbl.CONFIG_HASH, lbl.COMPOSE_CONFIG_HASH),
    (lbl.WORKING_DIR, lbl.COMPOSE_WORKING_DIR),
    (lbl.CONFIG_FILES, lbl.COMPOSE_CONFIG_FILES),
    (lbl.DEPENDS_ON, lbl.COMPOSE_DEPENDS_ON),
)

COMPOSE_VERSION_VALUE: Final = f"stackup-{__version__}"
"""What `com.docker.compose.version` says on stackup's resources: who made them."""


def _derived(labels: Mapping[str, str], pairs: tuple[tuple[str, str], ...]) -> dict[str, str]:
    out = {compose: labels[ours] for ours, compose in pairs if ours in labels}
    if out:
        out[lbl.COMPOSE_VERSION] = COMPOSE_VERSION_VALUE
    return out


def container_labels(labels: Mapping[str, str], image_id: str | None = None) -> dict[str, str]:
    """`labels` plus their Compose equivalents (explicit Compose labels in `labels` win)."""
    out = _derived(labels, _CONTAINER_KEYS)
    if lbl.PROJECT in labels:
        out.setdefault(lbl.COMPOSE_ONEOFF, "False")
    if image_id and lbl.PROJECT in labels:
        out[lbl.COMPOSE_IMAGE] = image_id
    return {**out, **labels}


def network_labels(labels: Mapping[str, str]) -> dict[str, str]:
    pairs = ((lbl.PROJECT, lbl.COMPOSE_PROJECT), (lbl.NETWORK, lbl.COMPOSE_NETWORK))
    return {**_derived(labels, pairs), **labels}


def volume_labels(labels: Mapping[str, str]) -> dict[str, str]:
    pairs = ((lbl.PROJECT, lbl.COMPOSE_PROJECT), (lbl.VOLUME, lbl.COMPOSE_VOLUME))
    return {**_derived(labels, pairs), **labels}
