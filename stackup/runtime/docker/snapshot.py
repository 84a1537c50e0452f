"""What the Docker daemon holds for a project, read with the standard library only.

For the CLI's no-op `up -d` shortcut (`cli/fastpath.py`): that path must answer in a fraction of
a second, and importing the docker SDK (requests, urllib3: ~0.2 s) or the planner (pydantic,
networkx: ~0.5 s) would be most of it. Four GETs over the Unix socket with `http.client` (the
native client's `UnixHTTP`) give the same shape as the native `engine_snapshot`: per container
its state, exit code and stackup config hash; the image IDs they run; the project's networks and
volumes. A TCP / TLS / ssh endpoint raises `OSError`, which sends the CLI down the full path.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stackup.runtime.docker.endpoint import API_VERSION, resolve

_EXITED = re.compile(r"Exited \((-?\d+)\)")


def docker_snapshot(project: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The project's containers, their images' IDs, networks and volumes (by Compose's label)."""
    from stackup.runtime.native.unixhttp import UnixHTTP

    env = os.environ if environ is None else environ
    url = resolve(env).url
    if not url.startswith("unix://"):
        raise OSError(f"{url}: the shortcut reads Unix sockets only")
    version = env.get("DOCKER_API_VERSION") or API_VERSION
    label = json.dumps({"label": [f"com.docker.compose.project={project}"]})
    http = UnixHTTP(Path(url.removeprefix("unix://")), timeout_s=5.0)

    def get(path: str, params: dict[str, str] | None = None) -> Any:
        answer = http.request("GET", f"/v{version}{path}", params=params)
        if answer.status != 200:
            raise OSError(f"docker answered {answer.status} for {path}")
        return json.loads(answer.content)

    try:
        containers = get("/containers/json", {"all": "1", "filters": label})
        images = {ref: i["Id"] for i in get("/images/json") for ref in i.get("RepoTags") or ()}
        networks = sorted(n["Name"] for n in get("/networks", {"filters": label}))
        volumes = sorted(v["Name"] for v in get("/volumes", {"filters": label}).get("Volumes") or ())
    finally:
        http.close()
    return {
        "containers": {
            c["Id"]: [
                c.get("State"),
                _exit_code(str(c.get("Status") or "")),
                (c.get("Labels") or {}).get("io.stackup.config-hash", ""),
            ]
            for c in containers
        },
        "images": {c["Image"]: images.get(c["Image"]) for c in containers},
        "networks": networks,
        "volumes": volumes,
    }


def _exit_code(status: str) -> int | None:
    found = _EXITED.search(status)
    return int(found.group(1)) if found else None
