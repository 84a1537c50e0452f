"""The supervisor bound to one engine: what it watches, what it persists, what it publishes.

`supervisor.Supervisor` knows nothing of records; this module feeds it each container's recorded
policy and health check, and writes back what must survive the engine: the restart count after
an automatic restart, the health state whenever its status changes and when the container exits,
and Docker's `HasBeenManuallyStopped` (`manually_stopped`), which decides what comes back when
the engine starts. While a container runs, `live` lays the supervisor's current view (latest
probe outputs) over the record, so `inspect` and `ps` never show stale health. Every start it
makes itself (a restart policy's, the engine's at boot) runs the container's `post_start` hooks,
whose failures are published rather than raised: nobody is waiting for that start.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping

from stackup.errors import NotFound, StackupError
from stackup.runtime.engine.containers.manager import ContainerManager
from stackup.runtime.engine.state.events import EventBus
from stackup.runtime.engine.state.store import StateStore
from stackup.runtime.engine.supervision.health import HealthConfig, HealthStatus
from stackup.runtime.engine.supervision.hooks import HookRunner
from stackup.runtime.engine.supervision.supervisor import Supervisor, runtime_exec_probe
from stackup.runtime.wire.records import ContainerRecord, ContainerStatus, EventType, event_attributes
from stackup.runtime.wire.restart import RestartMode, RestartPolicy, start_on_engine_start

log = logging.getLogger("stackupd.supervision")

HOLD_STARTS_MAX_S = 300.0
"""A bound on `hold_starts`, so a bug in the engine's start sequence cannot park restarts forever."""


def policy_of(record: ContainerRecord) -> RestartPolicy:
    return RestartPolicy.parse(record.restart)


def health_config_of(record: ContainerRecord) -> HealthConfig | None:
    """The recorded check (already merged with the image's) resolved; None if none or disabled."""
    return HealthConfig.merged(record.healthcheck, None)


class Supervision:
    """Health checks and restart policies for the containers of one engine."""

    def __init__(self, containers: ContainerManager, state: StateStore, events: EventBus) -> None:
        self._containers = containers
        self._state = state
        self._events = events
        self.hooks = HookRunner(containers.paths, self._publish)
        self.supervisor = Supervisor(self._start, runtime_exec_probe(containers.paths), self._on_event)
        self._starts_allowed = threading.Event()
        self._starts_allowed.set()
        # The supervisor decides first; then `container_exited` below records its health view.
        containers.exit_observers += [self.supervisor, self]

    # -- engine start and stop ---------------------------------------------------------------

    def adopt(self, records: Iterable[ContainerRecord]) -> None:
        """Watch the running containers again (before the monitor records exits that happened
        while no engine ran, so those exits get their restart policy)."""
        for record in records:
            if record.status is ContainerStatus.RUNNING:
                self.supervisor.watch(
                    record.id,
                    policy_of(record),
                    health_config_of(record),
                    started_at=record.started_at,
                    restart_count=record.restart_count,
                )

    def start_on_boot(self, exited: Iterable[ContainerRecord]) -> None:
        """Start `always` / `unless-stopped` containers that had exited before this engine
        opened, as dockerd does when it starts. Exits found during re-adoption are not among
        them: the supervisor already applies their policy (with backoff and the count)."""
        for before in exited:
            policy = policy_of(before)
            if policy.mode not in (RestartMode.ALWAYS, RestartMode.UNLESS_STOPPED):
                continue
            if not start_on_engine_start(policy, before.exit_code or 0, before.manually_stopped):
                continue
            try:
                started = self._start(before.id)
            except (StackupError, OSError) as exc:
                log.error("starting %s on engine start failed: %s", before.name, exc)
                continue
            self.watch(started, reset_count=False)

    def close(self) -> None:
        self.supervisor.close()

    def hold_starts(self) -> None:
        """Until `allow_starts`, the starts the engine makes on its own wait. At engine start the
        exits re-adoption records trigger restart policies at once, before the networks are
        restored: a restart then would join a namespace a reboot emptied (found by the simulated
        reboot, tests/e2e/test_reboot.py)."""
        self._starts_allowed.clear()

    def allow_starts(self) -> None:
        self._starts_allowed.set()

    def _start(self, container_id: str) -> ContainerRecord:
        """A start the engine makes on its own: the container, then its `post_start` hooks."""
        self._starts_allowed.wait(HOLD_STARTS_MAX_S)
        record = self._containers.start(container_id)
        self.hooks.post_start(record)
        return record

    # -- user actions ------------------------------------------------------------------------

    def watch(self, record: ContainerRecord, *, reset_count: bool) -> ContainerRecord:
        """A container was just started by a user (or the engine): supervise it from now.

        A user's start resets the restart count (Docker); every start clears `manually_stopped`.
        """
        count = 0 if reset_count else record.restart_count
        record = self._state.update_container(record.id, restart_count=count, manually_stopped=False)
        self.supervisor.watch(
            record.id,
            policy_of(record),
            health_config_of(record),
            started_at=record.started_at,
            restart_count=count,
        )
        return record

    def stopping(self, container_id: str) -> None:
        """The user stops, kills or restarts it: no automatic restart may undo that."""
        self.supervisor.stop_by_user(container_id)
        self._state.update_container(container_id, manually_stopped=True)

    def forget(self, container_id: str) -> None:
        self.supervisor.forget(container_id)

    # -- views -------------------------------------------------------------------------------

    def live(self, record: ContainerRecord) -> ContainerRecord:
        """The record with the supervisor's current health and count while it is watched."""
        health = self.supervisor.health(record.id)
        if health.status is HealthStatus.NONE or record.status is not ContainerStatus.RUNNING:
            return record
        return record.model_copy(
            update={
                "health": health.model_dump(mode="json"),
                "restart_count": max(record.restart_count, self.supervisor.restart_count(record.id)),
            }
        )

    # -- what the supervisor says ------------------------------------------------------------

    def container_exited(self, record: ContainerRecord, *, requested: bool) -> None:
        """`ExitObserver`: keep the health view as it was at the exit (the checker is gone)."""
        health = self.supervisor.health(record.id)
        if health.status is not HealthStatus.NONE:
            self._state.update_container(record.id, health=health.model_dump(mode="json"))

    def _publish(self, record: ContainerRecord, action: str, attributes: Mapping[str, str]) -> None:
        self._events.publish(EventType.CONTAINER, action, record.id, event_attributes(record, attributes))

    def _on_event(self, container_id: str, action: str, attributes: Mapping[str, str]) -> None:
        """Persist what must survive the engine, then publish Docker's event."""
        try:
            if action == "restart":
                record = self._state.update_container(
                    container_id, restart_count=int(attributes["restartCount"])
                )
            elif action.startswith("health_status"):
                health = self.supervisor.health(container_id).model_dump(mode="json")
                record = self._state.update_container(container_id, health=health)
            else:
                record = self._state.get_container(container_id)
        except NotFound:
            return  # removed meanwhile: nothing to record or tell
        self._events.publish(EventType.CONTAINER, action, container_id, event_attributes(record, attributes))
