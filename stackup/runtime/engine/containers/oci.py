"""The OCI bundle of one container: `config.json` with Docker's defaults, plus its /etc files.

Defaults follow Docker (moby `daemon/pkg/oci/defaults.go`, `oci_linux.go`) rather than Podman,
because stackup's users come from Compose and expect what `docker run` gives them: 14
capabilities (NET_RAW, MKNOD and AUDIT_WRITE included), the masked and read-only /proc and /sys
paths, a deny-all device cgroup with the usual character devices allowed, the two unprivileged
networking sysctls, and the default seccomp profile. `privileged` lifts all of that.

Bind-mount sources for `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` are *relative to
the bundle* (the runtime spec allows it), which keeps `oci_config` a pure function of the config;
`write_bundle` writes those files next to `config.json`. The network layer may rewrite them
later, in place (not by rename: a bind mount pins the inode).
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import stat
from pathlib import Path, PurePosixPath
from typing import Any

from stackup import keyvalue
from stackup.errors import RuntimeFailure
from stackup.runtime.engine.containers import cgroups
from stackup.runtime.engine.containers.config import ContainerConfig, NetworkMode, resolve_user
from stackup.runtime.engine.containers.seccomp import default_seccomp
from stackup.runtime.engine.containers.seccomp_bpf import ANNOTATION, BpfCache
from stackup.runtime.wire.models import MountKind

CATATONIT = Path("/usr/bin/catatonit")
#: Where the init binary appears inside the container. /dev is the runtime's tmpfs, so the
#: mount point never has to be created in the image, even with a read-only rootfs.
INIT_PATH = "/dev/init"

#: Stands for the serialised seccomp section in `write_bundle`'s JSON; random, so no user string can
#: be it.
_SECCOMP_MARK = f"seccomp-{secrets.token_hex(16)}"

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

DEFAULT_CAPABILITIES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

#: Linux capabilities by number (linux/capability.h).
_ALL_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)  # fmt: skip

MASKED_PATHS = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

#: Deny everything, then allow null, zero, urandom, random, tty, console; deny /dev/fuse
#: explicitly. runc appends its own defaults (ptmx, pts, mknod) after these.
_DEVICE_RULES: tuple[dict[str, Any], ...] = (
    {"allow": False, "access": "rwm"},
    *({"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"}
      for major, minor in ((1, 5), (1, 3), (1, 9), (1, 8), (5, 0), (5, 1))),
    {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
)  # fmt: skip

#: Docker sets these in every container with its own network namespace: binding low ports and
#: `ping` must not need a capability.
DEFAULT_SYSCTLS = {"net.ipv4.ip_unprivileged_port_start": "0", "net.ipv4.ping_group_range": "0 2147483647"}

_RLIM_INFINITY = 2**64 - 1

#: Files `write_bundle` creates in the bundle, and where each is mounted in the container.
ETC_FILES = {"hosts": "/etc/hosts", "hostname": "/etc/hostname", "resolv.conf": "/etc/resolv.conf"}


def capabilities(cfg: ContainerConfig) -> list[str]:
    """Docker's rule: start from the defaults (or all, or none, for `ALL`), drop, then add."""
    if cfg.privileged or "ALL" in cfg.cap_add:
        return list(all_capabilities())
    base = [] if "ALL" in cfg.cap_drop else list(DEFAULT_CAPABILITIES)
    caps = [c for c in base if c not in cfg.cap_drop]
    caps += [c for c in cfg.cap_add if c != "ALL" and c not in caps]
    unknown = [c for c in caps if c not in _ALL_CAPABILITIES]
    if unknown:
        raise RuntimeFailure(f"container {cfg.name}: unknown capabilities {', '.join(unknown)}")
    return caps


def all_capabilities() -> tuple[str, ...]:
    """`ALL` = what the engine itself may pass on: its own bounding set, not the kernel's list.

    runc cannot grant a capability its caller lacks ("unable to apply caps"), and engines do run
    in restricted sandboxes (this CI machine drops CAP_SYS_RESOURCE).
    """
    try:
        status = Path("/proc/self/status").read_text()
        bounding = int(
            next(line.split()[1] for line in status.splitlines() if line.startswith("CapBnd:")), 16
        )
    except (OSError, StopIteration, ValueError):
        return _ALL_CAPABILITIES
    return tuple(cap for bit, cap in enumerate(_ALL_CAPABILITIES) if bounding >> bit & 1)


def _environment(cfg: ContainerConfig, home: str) -> list[str]:
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": cfg.effective_hostname}
    if cfg.tty:
        env["TERM"] = "xterm"
    env.update(cfg.env)
    env.setdefault("HOME", home)
    return [f"{key}={value}" for key, value in env.items()]


def _rlimits(cfg: ContainerConfig) -> list[dict[str, Any]]:
    """Only the ulimits asked for. The rest are inherited from conmon, i.e. from the engine, as
    Docker containers inherit dockerd's; a fixed default such as NOFILE 1048576 would fail
    wherever the engine itself runs under a lower hard limit without CAP_SYS_RESOURCE."""
    limits = {u.name: (u.soft, u.hard) for u in cfg.ulimits}

    def raw(value: int) -> int:
        return _RLIM_INFINITY if value < 0 else value

    return [
        {"type": f"RLIMIT_{name.upper()}", "soft": raw(soft), "hard": raw(hard)}
        for name, (soft, hard) in sorted(limits.items())
    ]


def _mount(destination: str, fstype: str, source: str, *options: str) -> dict[str, Any]:
    return {"destination": destination, "type": fstype, "source": source, "options": list(options)}


_DEVPTS_OPTIONS = ("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5")


def _default_mounts(cfg: ContainerConfig) -> list[dict[str, Any]]:
    ro = () if cfg.privileged else ("ro",)
    rro = () if cfg.privileged else ("rro",)
    shm_size = f"size={cfg.shm_size}" if cfg.shm_size else "size=65536k"
    return [
        _mount("/proc", "proc", "proc", "nosuid", "noexec", "nodev"),
        _mount("/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k"),
        _mount("/dev/pts", "devpts", "devpts", *_DEVPTS_OPTIONS),
        _mount("/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", *ro),
        _mount("/sys/fs/cgroup", "cgroup", "cgroup", *ro, *rro, "nosuid", "noexec", "nodev"),
        _mount("/dev/mqueue", "mqueue", "mqueue", "nosuid", "noexec", "nodev"),
        _mount("/dev/shm", "tmpfs", "shm", "nosuid", "noexec", "nodev", "mode=1777", shm_size),
    ]  # fmt: skip


def _user_mounts(cfg: ContainerConfig) -> list[dict[str, Any]]:
    """User mounts, parents before children (Docker sorts by path depth for the same reason)."""
    result: list[dict[str, Any]] = []
    for mount in sorted(cfg.mounts, key=lambda m: len(m.target.parts)):
        ro = ["ro"] if mount.read_only else []
        if mount.kind is MountKind.TMPFS:
            options = ["nosuid", "nodev", *ro]
            if mount.tmpfs_size:
                options.append(f"size={mount.tmpfs_size}")
            if mount.tmpfs_mode is not None:
                options.append(f"mode={mount.tmpfs_mode:o}")
            result.append(_mount(str(mount.target), "tmpfs", "tmpfs", *options))
        else:
            result.append(_mount(str(mount.target), "bind", str(mount.source), "rbind", "rprivate", *ro))
    return result


def _mounts(cfg: ContainerConfig) -> list[dict[str, Any]]:
    user = _user_mounts(cfg)
    taken = {m["destination"] for m in user}
    mounts = [m for m in _default_mounts(cfg) if m["destination"] not in taken]
    mounts += [
        _mount(target, "bind", name, "rbind", "rprivate")
        for name, target in ETC_FILES.items()
        if target not in taken
    ]
    if cfg.init:
        mounts.append(_mount(INIT_PATH, "bind", str(CATATONIT), "bind", "ro", "nosuid"))
    return mounts + user


def _namespaces(cfg: ContainerConfig) -> list[dict[str, str]]:
    # A private cgroup namespace, as Docker's default on cgroup v2: the container sees its own
    # cgroup as `/` (in /proc/self/cgroup and at /sys/fs/cgroup), never the engine's tree.
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "cgroup")]
    if cfg.network_mode is NetworkMode.NONE:
        namespaces.append({"type": "network"})
    elif cfg.network_mode is NetworkMode.PATH:
        namespaces.append({"type": "network", "path": str(cfg.netns_path)})
    return namespaces


_HOST_DEV = Path("/dev")
#: Not device nodes a container should get from the host: its own pts, shm and mqueue.
_SKIP_DEV = ("pts", "shm", "mqueue", "console")


def _device(path: Path, target: str, permissions: str = "rwm") -> tuple[dict[str, Any], dict[str, Any]]:
    """The `linux.devices` entry and the device-cgroup rule that make host node `path` usable."""
    st = path.stat()  # follows symlinks, as Docker does for `devices:`
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        raise RuntimeFailure(f"devices: {path} is not a character or block device")
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    node = {"path": target, "type": kind, "major": major, "minor": minor,
            "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}
    rule = {"allow": True, "type": kind, "major": major, "minor": minor, "access": permissions}
    return node, rule


def host_devices(root: Path = _HOST_DEV) -> list[dict[str, Any]]:
    """Every character and block device under /dev, for a privileged container (as Docker's
    `HostDevices`); unreadable or vanishing nodes are skipped."""
    nodes: list[dict[str, Any]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == root:
            dirnames[:] = [d for d in dirnames if d not in _SKIP_DEV]
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink() or (Path(dirpath) == root and name in _SKIP_DEV):
                continue
            try:
                node, _ = _device(path, str(path))
            except (OSError, RuntimeFailure):
                continue
            nodes.append(node)
    return nodes


def _devices(cfg: ContainerConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`linux.devices` and the extra cgroup rules: `devices:` entries, all host nodes if privileged."""
    nodes: list[dict[str, Any]] = host_devices() if cfg.privileged else []
    rules: list[dict[str, Any]] = []
    for request in cfg.devices:
        node, rule = _device(Path(request.source), request.target, request.permissions)
        nodes = [n for n in nodes if n["path"] != node["path"]] + [node]
        rules.append(rule)
    return nodes, rules


def _resources(cfg: ContainerConfig, device_rules: list[dict[str, Any]]) -> dict[str, Any]:
    devices: list[dict[str, Any]] = (
        [{"allow": True, "access": "rwm"}] if cfg.privileged
        else [dict(rule) for rule in _DEVICE_RULES] + device_rules
    )
    resources: dict[str, Any] = {"devices": devices}
    if cfg.memory:
        memory: dict[str, Any] = {"limit": cfg.memory}
        if cgroups.swap_accounting():
            # Docker's default when only --memory is given: as much swap as memory again.
            memory["swap"] = cfg.memory * 2
        resources["memory"] = memory
    if cfg.cpus:
        period = 100_000
        resources["cpu"] = {"quota": max(1000, round(cfg.cpus * period)), "period": period}
    if cfg.pids_limit is not None:
        resources["pids"] = {"limit": cfg.pids_limit if cfg.pids_limit > 0 else -1}
    return resources


def oci_config(cfg: ContainerConfig, *, seccomp_bpf: BpfCache | None = None) -> dict[str, Any]:
    """The runtime-spec `config.json` for `cfg` (reads the rootfs's passwd/group files only).

    With `seccomp_bpf` (crun), the seccomp profile is also given compiled, as the annotation
    crun prefers to compiling `linux.seccomp` itself; the section stays for any other runtime.
    """
    config, seccomp = _config(cfg, seccomp_bpf)
    if seccomp is not None:
        config["linux"]["seccomp"] = json.loads(seccomp)
    return config


def _config(cfg: ContainerConfig, seccomp_bpf: BpfCache | None) -> tuple[dict[str, Any], str | None]:
    """`oci_config` with `linux.seccomp` left as `_SECCOMP_MARK`, and that section serialised.

    The section (about 300 rules) and its compiled annotation depend only on the capabilities
    and the profile, shared by nearly every container: made once (`_seccomp`), not per container.
    """
    user = resolve_user(cfg.rootfs, cfg.user)
    caps = capabilities(cfg)
    args = [INIT_PATH, "--", *cfg.args] if cfg.init else list(cfg.args)
    process: dict[str, Any] = {
        "terminal": cfg.tty,
        "user": {"uid": user.uid, "gid": user.gid, "additionalGids": list(user.additional_gids)},
        "args": args,
        "env": _environment(cfg, user.home),
        "cwd": str(cfg.cwd),
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": _rlimits(cfg),
        "noNewPrivileges": cfg.no_new_privileges,
    }
    sysctls = dict(DEFAULT_SYSCTLS) if cfg.network_mode is not NetworkMode.HOST else {}
    sysctls.update(cfg.sysctls)
    nodes, device_rules = _devices(cfg)
    linux: dict[str, Any] = {
        "namespaces": _namespaces(cfg),
        "cgroupsPath": cfg.cgroup_path,
        "resources": _resources(cfg, device_rules),
        "sysctl": sysctls,
    }
    if nodes:
        linux["devices"] = nodes
    seccomp: str | None = None
    annotation: str | None = None
    if not cfg.privileged:
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
        if cfg.seccomp != "unconfined":
            seccomp, annotation = _seccomp(tuple(caps), cfg.seccomp or None, seccomp_bpf)
            linux["seccomp"] = _SECCOMP_MARK
    config: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "root": {"path": str(cfg.rootfs), "readonly": cfg.read_only},
        "process": process,
        "hostname": cfg.effective_hostname,
        "mounts": _mounts(cfg),
        "linux": linux,
    }
    if annotation is not None:
        config["annotations"] = {ANNOTATION: annotation}
    return config, seccomp


@functools.lru_cache(maxsize=32)
def _seccomp(caps: tuple[str, ...], profile: str | None, bpf: BpfCache | None) -> tuple[str, str | None]:
    """The serialised `linux.seccomp` for `caps` and a profile (Docker's when None), and its
    compiled annotation when `bpf` is given (crun)."""
    section = default_seccomp(caps, profile=json.loads(profile) if profile else None)
    return json.dumps(section, separators=(",", ":")), bpf.annotation(section) if bpf is not None else None


def exec_process_spec(
    config: dict[str, Any],
    bundle_dir: Path,
    args: list[str] | tuple[str, ...],
    *,
    env: dict[str, str],
    user: str | None,
    cwd: str | None,
    tty: bool,
    capabilities: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The process.json of an exec into the container whose config.json is `config`.

    Docker's exec semantics: the container's process (user, env, cwd, capabilities, rlimits),
    with `env` merged over its environment, `user` resolved against its rootfs, and
    `capabilities` added to its own.
    """
    process: dict[str, Any] = {k: v for k, v in config["process"].items() if k != "consoleSize"}
    process["args"] = list(args)
    process["terminal"] = tty
    if env:
        merged = keyvalue.to_dict(process.get("env", []))
        merged.update(env)
        process["env"] = [f"{key}={value}" for key, value in merged.items()]
    if user:
        resolved = resolve_user(_rootfs(config, bundle_dir), user)
        process["user"] = {
            "uid": resolved.uid, "gid": resolved.gid, "additionalGids": list(resolved.additional_gids)
        }  # fmt: skip
    if cwd:
        process["cwd"] = cwd
    if capabilities:
        caps = dict(process.get("capabilities") or {})
        for key in ("bounding", "effective", "permitted"):
            present = list(caps.get(key) or [])
            caps[key] = present + [cap for cap in capabilities if cap not in present]
        process["capabilities"] = caps
    return process


_LOCALHOST_LINES = (
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "ff00::0\tip6-mcastprefix",
    "ff02::1\tip6-allnodes",
    "ff02::2\tip6-allrouters",
)


def hosts_file(cfg: ContainerConfig, host_hosts: Path = Path("/etc/hosts")) -> str:
    """/etc/hosts: the host's own with `network_mode: host` (as Docker), else localhost lines."""
    if cfg.network_mode is NetworkMode.HOST:
        lines = host_hosts.read_text().splitlines() if host_hosts.exists() else list(_LOCALHOST_LINES)
    else:
        lines = list(_LOCALHOST_LINES)
    lines += [f"{entry.address}\t{entry.hostname}" for entry in cfg.extra_hosts]
    return "\n".join(lines) + "\n"


def resolv_conf(cfg: ContainerConfig, host_resolv: Path = Path("/etc/resolv.conf")) -> str:
    """/etc/resolv.conf: explicit `dns` wins; else the host's, minus loopback servers a private
    network namespace cannot reach (Docker falls back to public resolvers if none remain)."""
    host_lines = host_resolv.read_text().splitlines() if host_resolv.exists() else []
    servers = list(cfg.dns)
    if not servers:
        servers = [
            line.split()[1] for line in host_lines if line.startswith("nameserver") and len(line.split()) > 1
        ]
        if cfg.network_mode is not NetworkMode.HOST:
            servers = [s for s in servers if not s.startswith("127.") and s != "::1"]
        servers = servers or ["8.8.8.8", "8.8.4.4"]
    search = list(cfg.dns_search) or [
        word for line in host_lines if line.startswith("search") for word in line.split()[1:]
    ]
    lines = [f"nameserver {s}" for s in servers]
    if search:
        lines.append("search " + " ".join(search))
    if cfg.dns_options:
        lines.append("options " + " ".join(cfg.dns_options))
    return "\n".join(lines) + "\n"


def write_bundle(cfg: ContainerConfig, bundle_dir: Path, *, seccomp_bpf: BpfCache | None = None) -> Path:
    """Write `config.json` and the /etc files into `bundle_dir`; return the config path."""
    bundle_dir.mkdir(parents=True, exist_ok=True)
    contents = {
        "hosts": hosts_file(cfg),
        "hostname": cfg.effective_hostname + "\n",
        "resolv.conf": resolv_conf(cfg),
    }
    for name, text in contents.items():
        (bundle_dir / name).write_text(text)
    config_path = bundle_dir / "config.json"
    tmp = config_path.with_suffix(".json.tmp")
    config, seccomp = _config(cfg, seccomp_bpf)
    text = json.dumps(config, separators=(",", ":"))
    if seccomp is not None:
        text = text.replace(f'"{_SECCOMP_MARK}"', seccomp, 1)
    tmp.write_text(text)
    os.replace(tmp, config_path)
    return config_path


def rootfs_of(bundle_dir: Path) -> Path:
    """The rootfs recorded in a bundle's config.json (needed later, e.g. to resolve an exec user)."""
    return _rootfs(json.loads((bundle_dir / "config.json").read_text()), bundle_dir)


def _rootfs(config: dict[str, Any], bundle_dir: Path) -> Path:
    root = PurePosixPath(config["root"]["path"])
    return Path(root) if root.is_absolute() else bundle_dir / root
