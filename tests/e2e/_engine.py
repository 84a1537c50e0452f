"""A real `stackupd` on a private root for end-to-end tests, and the cleanup that always follows.

`running_engine` imports the busybox test image straight into the root's image store, starts the
engine with `ensure_engine`, and on the way out (pass or fail) removes every container and
network through the API, stops the engine, then scrubs by hand whatever a broken engine left
(runc containers, mounts, namespaces, this root's nft table and tagged links) and reports what
is still there so the test can fail on it. Only this root's resources are touched or checked:
other runs on the same machine may be using their own `stk*` links right now.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackup.errors import StackupError
from stackup.net import netns
from stackup.net.firewall import Firewall
from stackup.runtime.engine import linux
from stackup.runtime.engine.containers import cgroups, conmon
from stackup.runtime.engine.containers.config import default_cgroup_parent
from stackup.runtime.engine.images.store import ImageStore
from stackup.runtime.engine.images.testimage import TEST_IMAGE_REF, ensure_busybox_image
from stackup.runtime.engine.network.doctor import tag_of
from stackup.runtime.engine.network.foreign import ForeignFilter
from stackup.runtime.native.client import EngineClient
from stackup.runtime.native.launcher import ensure_engine, stop_engine
from stackup.runtime.wire.models import ContainerCreate, ExecRequest, ExecResult
from stackup.runtime.wire.paths import EnginePaths
from stackup.runtime.wire.records import ContainerRecord

GUARD_S = 30.0
"""Only turns a hang into a failure; nothing asserts on durations."""


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = GUARD_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@dataclass
class Engine:
    """A client of the test's engine plus unique names, so runs never collide."""

    paths: EnginePaths
    client: EngineClient
    token: str = field(default_factory=lambda: secrets.token_hex(3))

    def name(self, label: str) -> str:
        return f"{label}-{self.token}"

    def network(self, label: str, **options: Any) -> str:
        name = self.name(label)
        self.client.create_network(name, **options)
        return name

    def run(self, label: str, *command: str, **fields: Any) -> ContainerRecord:
        """Create and start a busybox container named after `label`; return its record."""
        record = self.client.create_container(
            ContainerCreate(name=self.name(label), image=TEST_IMAGE_REF, command=command, **fields)
        )
        return self.client.start_container(record.id)

    def exec(self, ref: str, *args: str) -> ExecResult:
        return self.client.exec(ref, ExecRequest(args=args))


def _text(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


def _mounts_under(root: Path) -> list[str]:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points if p == str(root) or p.startswith(f"{root}/")]


def _tagged_links(paths: EnginePaths) -> list[str]:
    """`stk*` links carrying this root's alias (`ip -o link` prints it as `alias <tag>`)."""
    tag = tag_of(Firewall(paths.root).table)
    return [
        line.split(": ")[1].split("@")[0]
        for line in _text("ip", "-o", "link").splitlines()
        if f"alias {tag}" in line and ": stk" in line
    ]


def leftovers(paths: EnginePaths) -> list[str]:
    """What of this root is still on the machine."""
    found = [f"link {name}" for name in _tagged_links(paths)]
    if Firewall(paths.root).table in _text("nft", "list", "tables"):
        found.append(f"nft table {Firewall(paths.root).table}")
    found += [f"mount {point}" for point in _mounts_under(paths.root)]
    found += [f"runc container {cid}" for cid in conmon.list_ids(paths=paths)]
    directory = netns.netns_dir(paths.root)
    found += [f"netns {p}" for p in directory.iterdir()] if directory.exists() else []
    return found


def _scrub(paths: EnginePaths) -> None:
    """By hand, after the engine stopped: whatever it failed to remove."""
    directory = netns.netns_dir(paths.root)
    namespaces = sorted(directory.iterdir()) if directory.exists() else []
    steps: list[Callable[[], object]] = [
        *(lambda c=c: conmon.delete(c, paths=paths) for c in conmon.list_ids(paths=paths)),
        *(lambda p=p: netns.delete(p) for p in namespaces),
        *(lambda p=p: linux.umount(p) for p in reversed(_mounts_under(paths.root))),
        *(lambda n=n: _text("ip", "link", "del", n) for n in _tagged_links(paths)),
        Firewall(paths.root).destroy,
        lambda: ForeignFilter().remove(Firewall(paths.root).table),
        lambda: cgroups.remove_if_empty(default_cgroup_parent(paths.root)),
    ]
    for step in steps:
        with contextlib.suppress(StackupError, OSError):
            step()


def _remove_everything(paths: EnginePaths) -> None:
    with ensure_engine(paths) as client:  # the test may have stopped or killed it
        for record in client.list_containers():
            with contextlib.suppress(StackupError):
                client.remove_container(record.id, force=True)
        for network in client.list_networks():
            with contextlib.suppress(StackupError):
                client.remove_network(network.name, force=True)
        client.doctor(fix=True)


@contextlib.contextmanager
def running_engine(root: Path) -> Iterator[Engine]:
    """An engine on `root` with the busybox image; everything removed afterwards, always.

    Yields the engine; after cleanup, raises AssertionError listing anything left behind.
    """
    paths = EnginePaths(root)
    ensure_busybox_image(ImageStore(paths))  # before the engine starts: it reads the same store
    handle = Engine(paths, ensure_engine(paths))
    try:
        yield handle
    finally:
        handle.client.close()  # a test that restarted the engine replaced the client
        try:
            _remove_everything(paths)
        finally:
            stop_engine(paths)
            left = leftovers(paths)
            _scrub(paths)
        assert not left, f"the engine left resources behind: {left}"
