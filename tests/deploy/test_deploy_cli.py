"""The deploy CLI functions through typer, as the integrator will register them on `main.app`.

Kubernetes: a kubeconfig pointing at the fake API server (conftest), so `--context`, kubeconfig
loading, apply, plan and `--down` run through the real client end to end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackup.cli import deploy_cmd
from stackup.cli.main import run
from stackup.deploy.kubernetes.render import translate
from tests.deploy._cli import stackup

STACK = """\
name: clidemo
services:
  web:
    image: stackup-bench/busybox:latest
    environment: {{GREETING: {greeting}}}
    ports: ["8080:80"]
    cap_add: [NET_ADMIN]
"""


def _stack(tmp_path: Path, greeting: str = "hi") -> Path:
    path = tmp_path / "compose.yaml"
    path.write_text(STACK.format(greeting=greeting))
    return path


def _kubeconfig(tmp_path: Path, host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(f"""\
apiVersion: v1
kind: Config
clusters: [{{name: fake, cluster: {{server: "{host}"}}}}]
users: [{{name: tester, user: {{token: not-a-secret}}}}]
contexts: [{{name: fake, context: {{cluster: fake, user: tester}}}}]
current-context: fake
""")
    monkeypatch.setenv("KUBECONFIG", str(config))


def test_render_prints_the_manifests_and_warns_with_file_and_line(
    tmp_path: Path, loader: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _stack(tmp_path)
    assert run(["-f", str(path), "render", "--target", "kubernetes"]) == 0
    out, err = capsys.readouterr()
    loaded = loader(path)
    assert out == translate(loaded.project, None, loaded.source_map).to_yaml()
    assert "compose.yaml:7:5: services.web.cap_add" not in err  # cap_add maps to capabilities
    assert "kind: Deployment" in out and "namespace: clidemo" in out


def test_render_warns_about_keys_that_do_not_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text("name: w\nservices:\n  a:\n    image: x\n    devices: [/dev/fuse]\n")
    assert run(["-f", str(path), "render", "--target", "kubernetes", "-n", "other"]) == 0
    out, err = capsys.readouterr()
    assert "compose.yaml:5:5: services.a.devices: not supported on kubernetes; left out" in err
    assert "namespace: other" in out


def test_render_for_swarm_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["-f", str(_stack(tmp_path)), "render", "--target", "swarm"]) == 2
    assert "kubernetes only" in capsys.readouterr().err


def test_deploy_plan_and_down_through_a_kubeconfig(
    fake_kube: Any, tmp_path: Path, loader: Any, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    _kubeconfig(tmp_path, fake_kube.host, monkeypatch)
    path = _stack(tmp_path)
    assert run(["-f", str(path), "deploy", "--target", "kubernetes", "--dry-run"]) == 0
    assert "(dry run)" in capsys.readouterr().out and fake_kube.stored("clidemo") == {}
    assert run(["-f", str(path), "deploy", "--target", "kubernetes", "--context", "fake"]) == 0
    out = capsys.readouterr().out
    assert "+ create Deployment/web" in out and "Deployment/web" in fake_kube.stored("clidemo")

    changed = loader(_stack(tmp_path, greeting="hello"))
    code = deploy_cmd.plan_target(changed, deploy_cmd.Target.KUBERNETES)
    assert code == deploy_cmd.EXIT_CHANGES
    assert capsys.readouterr().out == (
        "~ update Deployment/web\n"
        '    spec.template.spec.containers[web].env[GREETING].value: "hi" -> "hello"\n'
    )

    assert run(["-f", str(path), "deploy", "--target", "kubernetes", "--down"]) == 0
    assert "deleted Deployment/web" in capsys.readouterr().out
    assert fake_kube.stored("clidemo") == {}


def test_an_unknown_context_says_what_to_do(
    fake_kube: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _kubeconfig(tmp_path, fake_kube.host, monkeypatch)
    code = run(["-f", str(_stack(tmp_path)), "deploy", "--target", "kubernetes", "--context", "nope"])
    assert code == 1
    assert "check --context" in capsys.readouterr().err


def test_push_is_left_out_of_a_dry_run(
    fake_kube: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _kubeconfig(tmp_path, fake_kube.host, monkeypatch)
    path = tmp_path / "compose.yaml"
    path.write_text("name: drypush\nservices:\n  web:\n    build: .\n    image: 127.0.0.1:1/never/web:1\n")
    assert run(["-f", str(path), "deploy", "--target", "kubernetes", "--push", "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert "--push is left out with --dry-run" in err and "pushed" not in out
    assert fake_kube.stored("drypush") == {}


def test_render_starts_no_engine(tmp_path: Path) -> None:
    """Rendering needs no local engine: the root stays unmade (an engine started by `render` once
    outlived the test that ran it)."""
    root = tmp_path / "never-made"
    compose = Path(__file__).resolve().parents[2] / "examples" / "hello" / "compose.yaml"
    out = stackup(root, "-f", str(compose), "render", "--target", "kubernetes").stdout
    assert "kind: Deployment" in out
    assert not root.exists()
