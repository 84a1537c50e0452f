"""The desired-state hash of a service: what decides "up to date" versus "recreate".

sha256 over the canonical service model (sorted JSON, as `stackup config` prints it) with a named
list of fields removed, plus the *contents* of the files the service references. Why both halves:
hashing only the model misses an edited `env_file` (Compose #13045, #4140), while hashing the file
*path* recreates everything when the same content moves (Compose #8725). The per-field digests
("components") are kept next to the hash so a plan can say which input changed.

The image ID is deliberately not part of the hash: when a pull or build is planned it is unknown
until execution, and `reconcile` compares it on its own (a container's image ID against the local
image's) so a plan never needs an engine call to compute a hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final

from stackup.runtime import labels as lbl
from stackup.spec.models_base import dump_set_fields

if TYPE_CHECKING:
    from stackup.spec.models import Service

HASH_EXCLUDED: Final = frozenset(
    {
        "build",  # how the image is made; the image ID decides whether it changed
        "pull_policy",  # when to fetch, not what runs
        "scale",  # replica count: scaling adds or removes replicas, never recreates them
        "depends_on",  # start order; `restart: true` is handled by reconcile, not the hash
        "profiles",  # whether the service is enabled, not how it runs
        "develop",  # watch rules act on a running container
        "env_file",  # the paths; their contents are hashed as `env_file <path>` components
    }
)
"""Top-level service keys that never cause a recreate. `deploy.replicas` is removed too (nested)."""

ENV_FILE_PREFIX: Final = "env_file "
"""Components key prefix of an env_file's content digest (`env_file /abs/path`)."""

MISSING_FILE: Final = "missing"
"""Component value for an env_file that is optional (`required: false`) and absent."""


@dataclass(frozen=True)
class ServiceHash:
    """A service's canonical JSON (exclusions removed), its file digests, and their digest."""

    config: Mapping[str, Any]
    files: Mapping[str, str]

    @cached_property
    def digest(self) -> str:
        """sha256 of the canonical config and file digests; computed when a label needs it."""
        return _sha(_dumps({"service": self.config, "files": self.files}))

    def matches(
        self, config_hash: str, components: Mapping[str, str], config: Mapping[str, Any] | None
    ) -> bool:
        """Whether a container whose labels recorded these values runs this desired state.

        The labels keep the canonical config itself, so the common case is a comparison of two
        dicts (plus the env_file digests) instead of serialising and hashing every service on
        every plan; the digest decides only for containers labelled without a config.
        """
        if config is None:
            return config_hash == self.digest
        recorded = {
            k[len(ENV_FILE_PREFIX) :]: v for k, v in components.items() if k.startswith(ENV_FILE_PREFIX)
        }
        return config == self.config and recorded == self.files  # Mapping equality, no copies

    @property
    def components(self) -> dict[str, str]:
        """`{field: sha256}` for each top-level field plus `{"env_file <path>": sha256}` per file."""
        out = {key: _sha(_dumps(value)) for key, value in self.config.items()}
        out.update({f"{ENV_FILE_PREFIX}{path}": digest for path, digest in self.files.items()})
        return out

    def labels(self) -> dict[str, str]:
        """The labels that let a later `reconcile` explain a difference down to the field."""
        return {
            lbl.CONFIG_HASH: self.digest,
            lbl.CONFIG_HASH_COMPONENTS: _dumps(self.components),
            lbl.CONFIG: _dumps(self.config),
        }


def canonical_service(service: Service) -> dict[str, Any]:
    """The service as `stackup config` prints it, minus `HASH_EXCLUDED` and `deploy.replicas`.

    Only the fields the stack file set (after normalisation) are serialised: every `Service`
    default is empty, so they would be dropped anyway, and the loader's normaliser writes out the
    non-empty defaults of nested parts (port protocol and mode, bind `create_host_path`), so an
    explicit default and an omitted one hash alike (tests/planner/test_hashing.py checks both
    over the corpus). Serialising all 93 fields only to drop them was most of a large plan's cost.
    """
    data = dump_set_fields(service, HASH_EXCLUDED)
    deploy = data.get("deploy")
    if isinstance(deploy, dict) and "replicas" in deploy:
        rest = {k: v for k, v in deploy.items() if k != "replicas"}
        if rest:
            data["deploy"] = rest
        else:
            del data["deploy"]
    return data


def service_hash(service: Service, referenced_files: Mapping[str, bytes]) -> ServiceHash:
    """Hash `service` together with the env_file contents found in `referenced_files` (path -> bytes)."""
    config = canonical_service(service)
    files: dict[str, str] = {}
    for env_file in service.env_file:
        path = str(env_file.path)
        content = referenced_files.get(path)
        files[path] = MISSING_FILE if content is None else hashlib.sha256(content).hexdigest()
    return ServiceHash(config=config, files=files)


_ENCODER: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _dumps(value: Any) -> str:
    return _ENCODER.encode(value)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
