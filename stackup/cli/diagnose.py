"""How the CLI shows a `StackFailed`: per culprit, the blocking chain, its probes and log tail."""

from __future__ import annotations

from stackup.cli.output import error, write
from stackup.errors import StackFailed


def show_diagnoses(exc: StackFailed) -> None:
    from stackup.api.readiness import Diagnosis

    for found in exc.diagnoses:
        if not isinstance(found, Diagnosis):
            continue
        if found.what != "failed" and found.headline not in exc.message:
            error(found.headline)
        if found.probes:
            write(f"--- last {len(found.probes)} health probes of {found.container} ---")
            for probe in found.probes:
                output = " ".join(probe.output.split())
                end = probe.end.isoformat() if probe.end else ""
                write(f"{found.container} | {end} exit {probe.exit_code}: {output}")
        if found.log_tail:
            write(f"--- last {len(found.log_tail)} log lines of {found.container} ---")
            for line in found.log_tail:
                write(f"{found.container} | {line}")
