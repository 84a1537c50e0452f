"""Every label stackup writes on the resources it makes, as one documented constant each.

Labels are the planner's memory: `observe` reads them back to know which project, service and
replica a container belongs to and what configuration it was created from, so a later `up` can
tell "up to date" from "changed, and here is the field". Keys live under one reverse-DNS prefix so
`stackup` never mistakes another tool's containers for its own.
"""

from __future__ import annotations

from typing import Final

PREFIX: Final = "io.stackup"

PROJECT: Final = f"{PREFIX}.project"
"""Project name; every container, network and volume of a stack carries it (the `observe` filter)."""

SERVICE: Final = f"{PREFIX}.service"
"""Service key in the stack file; containers without it are not replicas of a service."""

CONTAINER_NUMBER: Final = f"{PREFIX}.container-number"
"""Replica number, 1-based, as a decimal string: `web-2` is number 2 of service `web`."""

CONFIG_HASH: Final = f"{PREFIX}.config-hash"
"""sha256 (hex) of the service's canonical configuration plus referenced file contents."""

CONFIG_HASH_COMPONENTS: Final = f"{PREFIX}.config-hash-components"
"""JSON object `{component: sha256}`: one entry per top-level service field and per `env_file <path>`.

Kept so a plan can name *which* input changed instead of only "config changed".
"""

CONFIG: Final = f"{PREFIX}.config"
"""Canonical service JSON (hash exclusions removed), so a plan can print `old -> new` leaf values."""

ONEOFF: Final = f"{PREFIX}.oneoff"
"""`"True"` for `stackup run` containers; they are never replicas, orphans or reconcile targets."""

DEPENDS_ON: Final = f"{PREFIX}.depends_on"
"""Comma-separated `service:condition:restart` triples, recorded for `down` ordering of orphans."""

IMAGE_ID: Final = f"{PREFIX}.image-id"
"""Image ID the container was created from; set by the runtime when it resolves the image."""

WORKING_DIR: Final = f"{PREFIX}.project.working_dir"
"""Project directory, so a second stack with the same project name can be detected (Compose #2120)."""

CONFIG_FILES: Final = f"{PREFIX}.project.config_files"
"""Comma-separated stack files the project was loaded from."""

NETWORK: Final = f"{PREFIX}.network"
"""Network key in the stack file (the resource name may differ: `<project>_<key>` or `name:`)."""

VOLUME: Final = f"{PREFIX}.volume"
"""Volume key in the stack file (the resource name may differ: `<project>_<key>` or `name:`)."""

VERSION: Final = f"{PREFIX}.version"
"""stackup version that made the resource; informational, never part of a hash."""

TRUE: Final = "True"
"""The value boolean labels carry (Compose's spelling, so tooling that greps labels keeps working)."""

# -- Docker Compose's labels ----------------------------------------------------------------------
# Written next to stackup's own by the Docker runtime (so `docker compose ps` lists a stack stackup
# started) and read by `observe` as a fallback (so stackup adopts a stack Compose started).

COMPOSE_PREFIX: Final = "com.docker.compose"

COMPOSE_PROJECT: Final = f"{COMPOSE_PREFIX}.project"
COMPOSE_SERVICE: Final = f"{COMPOSE_PREFIX}.service"
COMPOSE_CONTAINER_NUMBER: Final = f"{COMPOSE_PREFIX}.container-number"
COMPOSE_ONEOFF: Final = f"{COMPOSE_PREFIX}.oneoff"
COMPOSE_CONFIG_HASH: Final = f"{COMPOSE_PREFIX}.config-hash"
"""Compose's own digest of the service; stackup writes its digest here (Compose's is not reproducible)."""
COMPOSE_WORKING_DIR: Final = f"{COMPOSE_PREFIX}.project.working_dir"
COMPOSE_CONFIG_FILES: Final = f"{COMPOSE_PREFIX}.project.config_files"
COMPOSE_DEPENDS_ON: Final = f"{COMPOSE_PREFIX}.depends_on"
"""Compose v2's `service:condition:restart` list, the same spelling as `DEPENDS_ON`."""
COMPOSE_VERSION: Final = f"{COMPOSE_PREFIX}.version"
COMPOSE_IMAGE: Final = f"{COMPOSE_PREFIX}.image"
"""Image ID the container was created from (Compose v2 compares it to detect a new image)."""
COMPOSE_NETWORK: Final = f"{COMPOSE_PREFIX}.network"
COMPOSE_VOLUME: Final = f"{COMPOSE_PREFIX}.volume"
