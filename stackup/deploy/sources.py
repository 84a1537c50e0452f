"""What a deploy target reads from the developer's machine: env files, config and secret content.

A cluster cannot read the developer's files, so their content is read at render time (the load's
copy when it kept one, for a consistent snapshot) and shipped inside the cluster's own objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from stackup.deploy.notes import Notes
from stackup.spec.dotenv import parse_dotenv
from stackup.spec.models import Config, Secret, Service


class Sources:
    def __init__(self, notes: Notes, environment: Mapping[str, str] | None = None,
                 referenced_files: Mapping[str, bytes] | None = None) -> None:
        self.notes = notes
        self.environment = environment or {}
        self.referenced_files = referenced_files or {}

    def read(self, path: str) -> bytes:
        content = self.referenced_files.get(path)
        return content if content is not None else Path(path).read_bytes()

    def service_env(self, name: str, service: Service) -> dict[str, str]:
        """env_file contents in order, then `environment` on top, as Compose merges them."""
        out: dict[str, str] = {}
        for i, env_file in enumerate(service.env_file):
            try:
                text = self.read(env_file.path).decode()
            except OSError as err:
                if env_file.required:
                    self.notes.add(("services", name, "env_file", i),
                                   f"cannot read {env_file.path}: {err.strerror}")
                continue
            out.update(parse_dotenv(text, filename=env_file.path))
        for key, value in service.environment.items():
            if value is None:
                self.notes.add(("services", name, "environment", key), "no value set; left out")
            else:
                out[key] = value
        return out

    def content(self, kind: str, key: str, item: Config | Secret) -> bytes | None:
        """A config's or secret's bytes, or None (with a located warning) when there are none."""
        path = (kind, key)
        if isinstance(item, Config) and item.content is not None:
            return item.content.encode()
        if item.file is not None:
            try:
                return self.read(item.file)
            except OSError as err:
                self.notes.add((*path, "file"), f"cannot read {item.file}: {err.strerror}; left out")
                return None
        if item.environment is not None:
            value = self.environment.get(item.environment)
            if value is None:
                self.notes.add((*path, "environment"), f"{item.environment} is not set; left out")
                return None
            return value.encode()
        self.notes.add(path, "no content (file, environment or content); left out")
        return None
