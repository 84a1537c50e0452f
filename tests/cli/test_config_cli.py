"""`stackup config` on real stack files: exit 0, and its output loads again to the same output.

The canonical form must be a fixed point (normalisation is idempotent), in YAML and in JSON, so
tools that feed Compose's `config` output back in keep working.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stackup.cli.main import run

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "awesome-compose"
STACKS = sorted(p for p in CORPUS.glob("*/compose.y*ml"))


def _config(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_corpus_is_there() -> None:
    assert len(STACKS) >= 29


@pytest.mark.parametrize("fmt", ["yaml", "json"])
@pytest.mark.parametrize("stack", STACKS, ids=lambda p: p.parent.name)
def test_config_loads_and_is_a_fixed_point(
    stack: Path, fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # plex mounts ${PLEX_MEDIA_PATH}: unset, it is ":/media/", which Compose rejects as well
    monkeypatch.setenv("PLEX_MEDIA_PATH", str(tmp_path / "media"))
    code, first, err = _config(capsys, "-f", str(stack), "config", "--format", fmt)
    assert code == 0, err
    again = tmp_path / f"compose.{fmt}"
    again.write_text(first)
    code, second, err = _config(
        capsys, "-f", str(again), "--project-directory", str(stack.parent), "config", "--format", fmt
    )
    assert code == 0, err
    assert second == first


def test_unset_variable_in_a_volume_is_a_located_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PLEX_MEDIA_PATH", raising=False)
    code, _, err = _config(capsys, "-f", str(CORPUS / "plex" / "compose.yaml"), "config", "-q")
    assert code == 3
    assert 'variable is not set' in err
    assert "compose.yaml:10:9: services.plex.volumes[0]: invalid volume" in err


def test_services_volumes_profiles_and_hash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "compose.yaml").write_text(
        "name: demo\nservices:\n  web: {image: a, profiles: [debug]}\n  db: {image: b, volumes: [data:/d]}\n"
        "volumes: {data: {}}\n"
    )
    f = str(tmp_path / "compose.yaml")
    assert _config(capsys, "-f", f, "config", "--services")[1].split() == ["db"]
    assert _config(capsys, "-f", f, "--profile", "debug", "config", "--services")[1].split() == ["db", "web"]
    assert _config(capsys, "-f", f, "config", "--volumes")[1].split() == ["data"]
    assert _config(capsys, "-f", f, "config", "--profiles")[1].split() == ["debug"]
    code, out, _ = _config(capsys, "-f", f, "config", "--hash", "db")
    name, digest = out.split()
    assert code == 0 and name == "db" and len(digest) == 64
    assert _config(capsys, "-f", f, "config", "-q") == (0, "", "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["config", "--no-such-flag"], "No such option: --no-such-flag"),
        (["no-such-command"], "No such command"),
        (["config", "--format", "xml"], "Invalid value"),
    ],
)
def test_usage_errors_are_a_message_and_exit_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web: {image: a}\n")
    code, out, err = _config(capsys, "-f", str(tmp_path / "compose.yaml"), *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in out + err
