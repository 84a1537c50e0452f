"""What a remote engine costs per request: the Unix socket vs TCP with mutual TLS vs ssh.

One engine (`stackupd --host tcp://127.0.0.1:0 --tls-verify`) and one loopback sshd, as the
tests make them (`tests/e2e/_remote.py`); for each transport: a request on a kept-alive
connection (`GET /_ping`), a request on a fresh connection (TLS handshake; for ssh the ssh
handshake plus `stackup system dial-stdio` starting on the far side), a whole CLI command
(`stackup ls`), and `up -d` then `down` of six busybox services (each once; `down` waits out
`sleep`'s 10 s stop grace). Medians; the load average is recorded next to them.

    python bench/bench_remote.py [--pings 200] [--fresh 20] [--cli 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stackup.runtime.engine.images.store import ImageStore
from stackup.runtime.engine.images.testimage import TEST_IMAGE_REF, ensure_busybox_image
from stackup.runtime.native.client import EngineClient
from stackup.runtime.native.dialers import Dialer, UnixDialer, dialer_for
from stackup.runtime.wire.hosts import parse_host
from stackup.runtime.wire.paths import EnginePaths
from tests.e2e._remote import Pki, engine_env, running_sshd, start_engine

RESULTS = Path(__file__).parent / "results" / "remote.json"


def _median_ms(runs: int, once: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        once()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 2)


def _fresh_ping(dialer: Dialer) -> None:
    with EngineClient(dialer) as client:
        client.ping()


def _cli_ls(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "stackup", "ls"], env=env, check=True, capture_output=True)


def _up_down(env: dict[str, str], project: Path) -> tuple[float, float]:
    times = []
    for verb in (["up", "-d"], ["down"]):
        start = time.perf_counter()
        argv = [sys.executable, "-m", "stackup", *verb]
        subprocess.run(argv, cwd=project, env=env, check=True, capture_output=True)
        times.append(round(time.perf_counter() - start, 2))
    return times[0], times[1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pings", type=int, default=200)
    parser.add_argument("--fresh", type=int, default=20)
    parser.add_argument("--cli", type=int, default=5)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="stackup-bench-remote-"))
    root = base / "engine"
    results: dict[str, dict[str, float]] = {}
    try:
        ensure_busybox_image(ImageStore(EnginePaths(root)))
        project = base / "benchremote"
        project.mkdir()
        service = "  s{}:\n    image: " + TEST_IMAGE_REF + "\n    command: [sleep, '1000']\n"
        services = "".join(service.format(i) for i in range(6))
        (project / "compose.yaml").write_text(f"services:\n{services}")
        pki = Pki(base / "pki")
        server, client = pki.issue("engine", server=True), pki.issue("client", server=False)
        tls = ["--tls-verify", "--tlscacert", str(server / "ca.pem"), "--tlscert", str(server / "cert.pem"),
               "--tlskey", str(server / "key.pem")]  # fmt: skip
        with start_engine(root, "--host", "tcp://127.0.0.1:0", *tls) as (_proc, port), \
                running_sshd(base / "ssh", root) as sshd:  # fmt: skip
            envs = {
                "unix": {**engine_env(), "STACKUP_ROOT": str(root)},
                "tcp+tls": {**engine_env(), "STACKUP_ROOT": str(base / "c"), "STACKUP_HOST": f"tcp://127.0.0.1:{port}",
                            "STACKUP_CERT_PATH": str(client)},
                "ssh": {**engine_env(), "STACKUP_ROOT": str(base / "c"), "STACKUP_HOST": sshd.url,
                        "STACKUP_SSH_COMMAND": sshd.ssh_command},
            }  # fmt: skip
            for name, env in envs.items():
                host = env.get("STACKUP_HOST")
                dialer = dialer_for(parse_host(host), env) if host else UnixDialer(root / "stackupd.sock")
                with EngineClient(dialer) as kept:
                    kept.ping()
                    ping = _median_ms(args.pings, kept.ping)
                fresh = _median_ms(args.fresh, lambda d=dialer: _fresh_ping(d))  # type: ignore[misc]
                cli = _median_ms(args.cli, lambda e=env: _cli_ls(e))  # type: ignore[misc]
                up, down = _up_down(env, project)
                results[name] = {"ping_kept_ms": ping, "ping_fresh_connection_ms": fresh, "cli_ls_ms": cli,
                                 "up_6_services_s": up, "down_6_services_s": down}  # fmt: skip
                print(f"{name:8} ping {ping:6.2f} ms  fresh connection {fresh:8.2f} ms  ls {cli:7.1f} ms  "
                      f"up {up:5.2f} s  down {down:5.2f} s")  # fmt: skip
            subprocess.run([sys.executable, "-m", "stackup", "engine", "stop"], env=envs["unix"], check=False)
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    RESULTS.write_text(json.dumps({"results": results, "loadavg": load, "runs": vars(args)}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
