"""Confinement, shown from inside containers: what a default container cannot see or do, and
exactly what `privileged`, `cap_add`, `devices` and `security_opt` change.

Black box: every probe is a busybox command run through `stackup exec`, so the test sees what a
user's process sees. Each probe is checked both ways: refused in the default container, and
allowed where an option says so (or in the privileged container), so a probe that cannot
work at all does not pass for confinement.

"""

from __future__ import annotations

import base64
import platform
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Stackup

pytestmark = pytest.mark.engine

SECCOMP_PROFILE = """{"defaultAction": "SCMP_ACT_ALLOW",
 "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
"""

STACK = """
x-box: &box
  image: $IMAGE
  command: ["sleep", "3600"]
  network_mode: none
services:
  box: *box
  priv:
    <<: *box
    privileged: true
  netadmin:
    <<: *box
    cap_add: [NET_ADMIN]
  dev:
    <<: *box
    devices: ["/dev/net/tun:/dev/net/tun"]
  unconfined:
    <<: *box
    security_opt: ["seccomp=unconfined"]
  profiled:
    <<: *box
    security_opt: ["seccomp=./profile.json"]
  nnp:
    <<: *box
    security_opt: ["no-new-privileges"]
"""

CAP_NET_ADMIN = 12


def euid_probe() -> bytes:
    """A 136-byte static x86-64 ELF: `exit(geteuid() & 255)`. The image has only busybox, and
    busybox drops a setuid bit itself for most applets, so it cannot show what the kernel does."""
    code = bytes.fromhex("b86b0000000f0589c7b83c0000000f05")  # mov eax,107; syscall; mov edi,eax; exit
    base, offset = 0x400000, 64 + 56
    size = offset + len(code)
    header = b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack(
        "<HHIQQQIHHHHHH", 2, 0x3E, 1, base + offset, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    segment = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)
    return header + segment + code


PROBE = r"""
probe() { name=$1; shift; out=$(sh -c "$*" 2>&1); echo "$name=$?:$(echo "$out" | head -n 1)"; }
for p in /proc/[0-9]*; do echo "cmd:$(tr '\0' ' ' < $p/cmdline)"; done
sed 's/^/mnt:/' /proc/mounts
sed 's/^/st:/' /proc/self/status
sed 's/^/cg:/' /proc/self/cgroup
probe ps 'ps -o pid,comm | wc -l'
probe mount 'mkdir -p /tmp/m && mount -t tmpfs none /tmp/m'
probe insmod 'head -c 8192 /dev/zero > /tmp/m.ko && insmod /tmp/m.ko'
probe procsys 'echo probe > /proc/sys/kernel/hostname'
probe sys 'touch /sys/stackup-probe'
probe mem 'mknod /tmp/mem c 1 1 && head -c 1 /tmp/mem > /dev/null'
probe zero 'head -c 4 /dev/zero | wc -c'
probe mtu 'ip link set lo mtu 1400'
probe tun 'head -c 1 /dev/net/tun'
probe tunnode 'mkdir -p /tmp/n && mknod /tmp/n/tun c 10 200 && head -c 1 /tmp/n/tun'
probe unshare 'unshare -U true'
probe mkdir 'mkdir /tmp/d1'
probe cgroupfs 'mkdir /sys/fs/cgroup/stackup-probe || mkdir /sys/fs/cgroup/pids/stackup-probe'
probe setuid 'echo %s | base64 -d > /tmp/euid && chmod 4755 /tmp/euid'
"""


class Boxes:
    """The project of `STACK`, one container per option. Every probe runs in one `exec` per
    container (each `stackup exec` is a CLI start), and the results are kept for the tests."""

    def __init__(self, stackup: Stackup, cwd: Path) -> None:
        self.stackup = stackup
        self.cwd = cwd
        self._seen: dict[str, str] = {}

    def _report(self, service: str) -> str:
        if service not in self._seen:
            script = PROBE % base64.b64encode(euid_probe()).decode()
            proc = self.stackup.run("exec", "-T", service, "sh", "-c", script, cwd=self.cwd, check=False)
            self._seen[service] = proc.stdout + proc.stderr
        return self._seen[service]

    def lines(self, service: str, prefix: str) -> list[str]:
        return [line[len(prefix):] for line in self._report(service).splitlines() if line.startswith(prefix)]

    def probe(self, service: str, name: str) -> tuple[int, str]:
        """(exit status, first line of output) of probe `name` in `service`."""
        line = next(x for x in self.lines(service, f"{name}="))
        status, _, text = line.partition(":")
        return int(status), text

    def status(self, service: str, field: str) -> str:
        """A field of /proc/self/status of a process in `service`."""
        found = (x.split(":", 1)[1] for x in self.lines(service, "st:") if x.startswith(f"{field}:"))
        return next(found).strip()

    def caps(self, service: str) -> int:
        return int(self.status(service, "CapEff"), 16)

    def as_user(self, service: str, *command: str) -> int:
        return self.stackup.run("exec", "-T", "-u", "1000", service, *command, cwd=self.cwd,
                                check=False).returncode


@pytest.fixture(scope="module")
def boxes(stackup: Stackup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Boxes]:
    cwd = stackup.project(tmp_path_factory.mktemp("confinement"), STACK, prefix="conf")
    (cwd / "profile.json").write_text(SECCOMP_PROFILE)
    stackup.run("up", "-d", cwd=cwd)
    yield Boxes(stackup, cwd)
    stackup.run("down", "-t", "1", cwd=cwd, check=False)


def _host_caps() -> int:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("CapBnd:"))
    return int(line.split()[1], 16)


def test_no_host_processes_are_visible(boxes: Boxes) -> None:
    commands = [line.strip() for line in boxes.lines("box", "cmd:")]
    assert commands and commands[0] == "sleep 3600", commands  # PID 1 is the container's own command
    assert not [c for c in commands if any(w in c for w in ("pytest", "stackupd", "conmon", "stackup"))]
    status, count = boxes.probe("box", "ps")
    assert status == 0 and int(count) <= 8  # a header, sleep, and the probe's own shells and ps


def test_no_host_mounts_are_visible(boxes: Boxes) -> None:
    inside = {line.split()[1] for line in boxes.lines("box", "mnt:")}
    host = {line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()}
    container_paths = ("/", "/proc", "/dev", "/sys", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf")
    host_only = {p for p in host
                 if p not in container_paths and not p.startswith(("/proc/", "/dev/", "/sys/"))}
    assert not inside & host_only, f"host mount points visible inside: {sorted(inside & host_only)}"
    assert not [p for p in inside if str(boxes.stackup.root) in p]


def test_mounting_is_refused_but_allowed_when_privileged(boxes: Boxes) -> None:
    status, text = boxes.probe("box", "mount")
    assert status != 0 and "permission denied" in text
    assert boxes.probe("priv", "mount")[0] == 0


def test_kernel_modules_cannot_be_loaded(boxes: Boxes) -> None:
    """`init_module` is refused before the kernel looks at the module; a privileged container
    gets past that check (and then hears the file is no module, or that modules are off)."""
    assert "Operation not permitted" in boxes.probe("box", "insmod")[1]
    assert "Operation not permitted" not in boxes.probe("priv", "insmod")[1]
    assert not boxes.caps("box") & (1 << 16)  # CAP_SYS_MODULE


def test_proc_sys_and_sys_are_read_only(boxes: Boxes) -> None:
    """Written: the container's own hostname (UTS-namespaced) and a file sysfs cannot hold, so
    nothing on the host changes even where the write is allowed."""
    for probe in ("procsys", "sys"):
        status, text = boxes.probe("box", probe)
        assert status != 0 and "Read-only file system" in text, (probe, text)
    mounts = [line for line in boxes.lines("box", "mnt:") if line.split()[1] in ("/proc/sys", "/sys")]
    assert len(mounts) == 2 and all(line.split()[3].startswith("ro,") for line in mounts)
    assert boxes.probe("priv", "procsys")[0] == 0  # privileged lifts it


def test_sys_fs_cgroup_is_read_only_in_a_private_cgroup_namespace(boxes: Boxes) -> None:
    """As Docker mounts it: the container's own cgroup is its `/` (cgroupns private), and
    /sys/fs/cgroup is read-only; only `privileged` may write there."""
    status, text = boxes.probe("box", "cgroupfs")
    assert status != 0 and "Read-only file system" in text, text
    mounts = [line.split() for line in boxes.lines("box", "mnt:")]
    cgroup = [m for m in mounts if m[1] == "/sys/fs/cgroup" or m[1].startswith("/sys/fs/cgroup/")]
    assert cgroup and all(m[3].split(",")[0] == "ro" for m in cgroup), cgroup
    own = boxes.lines("box", "cg:")
    assert own and all(line.rsplit(":", 1)[1] == "/" for line in own), own  # no engine path seen
    assert boxes.probe("priv", "cgroupfs")[0] == 0


def test_devices_outside_the_allow_list_cannot_be_used(boxes: Boxes) -> None:
    """mknod is allowed (as Docker allows it), using the node is not: /dev/mem is 1:1."""
    status, text = boxes.probe("box", "mem")
    assert status != 0 and "Operation not permitted" in text
    assert "Operation not permitted" not in boxes.probe("priv", "mem")[1]  # the device cgroup is lifted
    assert boxes.probe("box", "zero") == (0, "4")  # the allowed ones work


def test_cap_add_net_admin_adds_exactly_that_capability(boxes: Boxes) -> None:
    assert boxes.caps("netadmin") == boxes.caps("box") | (1 << CAP_NET_ADMIN)
    assert not boxes.caps("box") & (1 << CAP_NET_ADMIN)
    assert boxes.probe("box", "mtu")[0] != 0
    assert boxes.probe("netadmin", "mtu")[0] == 0


def test_privileged_has_every_capability_and_no_seccomp(boxes: Boxes) -> None:
    assert boxes.caps("priv") == _host_caps()
    assert boxes.status("priv", "Seccomp") == "0"
    assert boxes.status("box", "Seccomp") == "2"


def _opened_tun(output: str) -> bool:
    """The tun node opened; reading it before TUNSETIFF fails with EBADFD, which busybox's head
    reports as an I/O error (coreutils says "bad state")."""
    return "bad state" in output or "Input/output error" in output


def test_privileged_sees_the_host_devices(boxes: Boxes) -> None:
    assert _opened_tun(boxes.probe("priv", "tun")[1])


def test_devices_option_exposes_exactly_that_device(boxes: Boxes) -> None:
    assert "No such file" in boxes.probe("box", "tun")[1]
    assert "Operation not permitted" in boxes.probe("box", "tunnode")[1]
    assert _opened_tun(boxes.probe("dev", "tun")[1])
    assert boxes.caps("dev") == boxes.caps("box")


def test_seccomp_unconfined_drops_only_the_filter(boxes: Boxes) -> None:
    assert boxes.caps("unconfined") == boxes.caps("box")
    assert boxes.probe("box", "unshare")[0] != 0  # creating a user namespace: filtered by default
    assert boxes.status("unconfined", "Seccomp") == "0"
    assert boxes.probe("unconfined", "unshare")[0] == 0


def test_seccomp_profile_file_is_applied(boxes: Boxes) -> None:
    assert boxes.probe("box", "mkdir")[0] == 0
    status, text = boxes.probe("profiled", "mkdir")
    assert status != 0 and "Operation not permitted" in text


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the setuid probe is x86-64 machine code")
def test_a_setuid_binary_gains_root_in_a_default_container(boxes: Boxes) -> None:
    """The probe's exit status is its effective uid: 0 as uid 1000 means the setuid bit worked."""
    assert boxes.probe("box", "setuid")[0] == 0
    assert boxes.status("box", "NoNewPrivs") == "0"
    assert boxes.as_user("box", "/tmp/euid") == 0
    assert boxes.as_user("box", "id", "-u") == 0  # and `id` runs as the user: the uid is real


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the setuid probe is x86-64 machine code")
def test_no_new_privileges_stops_a_setuid_binary(boxes: Boxes) -> None:
    assert boxes.probe("nnp", "setuid")[0] == 0
    assert boxes.status("nnp", "NoNewPrivs") == "1"
    assert boxes.as_user("nnp", "/tmp/euid") == 1000 & 255

LISTENER = """
services:
  %s:
    image: $IMAGE
    command: ["sh", "-c", "while true; do echo hi-from-%s | nc -l -p 7000; done"]
  %s:
    image: $IMAGE
    command: ["sleep", "3600"]
"""


def _address(stackup: Stackup, cwd: Path, service: str) -> str:
    out = stackup.run("exec", "-T", service, "ip", "-o", "-4", "addr", "show", cwd=cwd).stdout
    found = [f.split("/")[0] for line in out.splitlines() for f in line.split()[3:4]
             if not f.startswith("127.")]
    assert found, out
    return found[0]


def test_another_projects_network_is_unreachable(stackup: Stackup, tmp_path: Path) -> None:
    """Only addresses of this test's own containers are dialled: its own project's (reachable,
    which shows the probe works) and the other project's (not reachable)."""
    mine = stackup.project(tmp_path, LISTENER % ("server", "server", "client"), prefix="isoa")
    theirs = stackup.project(tmp_path, LISTENER % ("other", "other", "idle"), prefix="isob")
    stackup.run("up", "-d", cwd=mine)
    stackup.run("up", "-d", cwd=theirs)
    near, far = _address(stackup, mine, "server"), _address(stackup, theirs, "other")

    script = ("for a in {near} {far}; do echo at-$a; nc -w 2 $a 7000; "
              "ping -c 1 -W 1 $a >/dev/null && echo ping-ok; done")
    out = stackup.run("exec", "-T", "client", "sh", "-c", script.format(near=near, far=far), cwd=mine,
                      check=False).stdout
    assert out.split() == [f"at-{near}", "hi-from-server", "ping-ok", f"at-{far}"]


SECRETS = """
services:
  app:
    image: $IMAGE
    command: ["sleep", "3600"]
    network_mode: none
    secrets: [token]
secrets:
  token:
    file: ./token.txt
"""
SECRET_TEXT = "s3cr3t-7f1c9a-do-not-print"


@pytest.fixture(scope="module")
def secret_project(stackup: Stackup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    cwd = stackup.project(tmp_path_factory.mktemp("secrets"), SECRETS, prefix="sec")
    (cwd / "token.txt").write_text(SECRET_TEXT + "\n")
    yield cwd
    stackup.run("down", "-t", "1", cwd=cwd, check=False)


def test_secret_file_contents_are_never_printed(stackup: Stackup, secret_project: Path) -> None:
    cwd = secret_project
    shown = [stackup.run("config", cwd=cwd), stackup.run("plan", cwd=cwd, check=False),
             stackup.run("up", "-d", cwd=cwd), stackup.run("inspect", cwd=cwd)]
    for proc in shown:
        assert SECRET_TEXT not in proc.stdout + proc.stderr, proc.args


def test_a_file_secret_is_mounted_read_only(stackup: Stackup, secret_project: Path) -> None:
    stackup.run("up", "-d", cwd=secret_project)  # a no-op after the test above
    read = stackup.run("exec", "-T", "app", "cat", "/run/secrets/token", cwd=secret_project, check=False)
    assert read.stdout.strip() == SECRET_TEXT
    write = stackup.run("exec", "-T", "app", "sh", "-c", "echo x > /run/secrets/token", cwd=secret_project,
                        check=False)
    assert write.returncode != 0
