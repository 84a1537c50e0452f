"""`STACKUP_HOST` / `--host` URLs, the dialer each picks, and `-H` among the CLI's global options."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stackup.cli.entry import take_host
from stackup.errors import UsageError
from stackup.runtime.native.dialers import SSHDialer, TLSDialer, UnixDialer, dialer_for
from stackup.runtime.wire.hosts import DEFAULT_TCP_PORT, EngineHost, HostScheme, parse_host


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("unix:///run/stackupd.sock", EngineHost(HostScheme.UNIX, path=Path("/run/stackupd.sock"))),
        ("/var/lib/s/x.sock", EngineHost(HostScheme.UNIX, path=Path("/var/lib/s/x.sock"))),
        ("tcp://10.0.0.5:2377", EngineHost(HostScheme.TCP, host="10.0.0.5", port=2377)),
        ("tcp://build.example", EngineHost(HostScheme.TCP, host="build.example", port=DEFAULT_TCP_PORT)),
        ("tcp://127.0.0.1:0", EngineHost(HostScheme.TCP, host="127.0.0.1", port=0)),
        ("tcp://[::1]:2376", EngineHost(HostScheme.TCP, host="::1", port=2376)),
        ("ssh://deploy@box:2222", EngineHost(HostScheme.SSH, host="box", port=2222, user="deploy")),
        ("ssh://box", EngineHost(HostScheme.SSH, host="box")),
    ],
)
def test_host_urls_parse(value: str, expected: EngineHost) -> None:
    host = parse_host(value)
    assert host == expected
    assert host.remote is (expected.scheme is not HostScheme.UNIX)
    assert parse_host(str(host)) == host  # what error messages show can be pasted back


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("localhost:2376", "use unix:///path"),
        ("http://x:1", 'unknown scheme "http"'),
        ("tcp://x:99999", "port must be a number"),
        ("tcp://:2376", "no host name"),
        ("tcp://me@x:2376", "takes no user"),
        ("unix://relative.sock", "absolute path"),
        ("ssh://box/path", "unexpected path"),
    ],
)
def test_bad_host_urls_say_what_to_write(value: str, says: str) -> None:
    with pytest.raises(UsageError, match=says):
        parse_host(value)


def test_dialers_follow_the_scheme_and_environment(tmp_path: Path) -> None:
    assert isinstance(dialer_for(parse_host("unix:///x.sock"), {}), UnixDialer)
    ssh = dialer_for(parse_host("ssh://u@h:2222"), {"STACKUP_SSH_COMMAND": "ssh -F /cfg"})
    assert isinstance(ssh, SSHDialer) and ssh.remote
    assert ssh.argv == ["ssh", "-F", "/cfg", "-o", "BatchMode=yes", "-p", "2222", "-l", "u", "h", "--",
                        "stackup", "system", "dial-stdio"]  # fmt: skip
    plain = dialer_for(parse_host("tcp://h:1"), {"STACKUP_TLS": "0"})
    assert isinstance(plain, TLSDialer) and plain.context is None
    with pytest.raises(UsageError, match=r"ca\.pem not found"):
        dialer_for(parse_host("tcp://h:1"), {"STACKUP_CERT_PATH": str(tmp_path)})


def test_dash_h_among_global_options_becomes_stackup_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKUP_HOST", "")  # recorded, so whatever take_host sets is undone after
    monkeypatch.delenv("STACKUP_HOST")
    assert take_host(["-p", "demo", "-H", "ssh://box", "ps"]) == ["-p", "demo", "ps"]
    assert os.environ["STACKUP_HOST"] == "ssh://box"
    assert take_host(["--host=tcp://h:1", "up", "-d"]) == ["up", "-d"]
    assert os.environ["STACKUP_HOST"] == "tcp://h:1"
    monkeypatch.delenv("STACKUP_HOST")
    args = ["exec", "web", "curl", "-H", "Accept: x"]  # the command's own -H is left alone
    assert take_host(args) == args and "STACKUP_HOST" not in os.environ
