"""What the launcher needs to start one container: a plain description, no behaviour.

The engine (``engine.py``) translates images, container configs and CLI flags into a ``ContainerSpec``;
``launcher.start`` turns it into a running process. Keeping this a dumb dataclass lets the spec be pickled
to a supervisor later and keeps the launcher independent of image/config formats.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..linux.cgroups import CgroupConfig

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Docker's default capability set (moby oci/caps/defaults.go), by name.
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_KILL", "CAP_AUDIT_WRITE",
)

# Docker's default masked and read-only paths (moby oci/defaults.go).
DEFAULT_MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
DEFAULT_READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


@dataclass
class ProcessSpec:
    args: list[str]  # argv; argv[0] without "/" is looked up in the container's PATH (from env)
    env: list[str]  # "KEY=VALUE"
    cwd: str = "/"  # created if missing, as Docker does for --workdir
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(default_factory=list)
    # fd 0 is a terminal (a pty slave the caller allocated): it becomes the controlling terminal
    terminal: bool = False
    # None: Docker's default set. Bounding, permitted and effective sets (root keeps them
    # after exec; another user gets none); ambient is always cleared. ["ALL"] means every capability.
    capabilities: list[str] | None = None
    # A Docker-format seccomp profile (already parsed JSON), compiled for ``capabilities`` at start;
    # None: no filter (unconfined).
    seccomp: dict | None = None
    no_new_privileges: bool = False
    # (resource name as in --ulimit: "nofile", "nproc", ...; soft; hard), clamped to the host's hard limits
    rlimits: list[tuple[str, int, int]] = field(default_factory=list)


@dataclass
class MountSpec:
    """One user mount (-v, --mount, --tmpfs, image VOLUME), resolved to host paths by runtime/volumes.py."""

    type: str  # "bind" (host paths and volumes' _data) | "tmpfs"
    source: str  # host path; "" for tmpfs
    target: str  # container path, resolved inside the container's root (symlinks cannot leave it)
    read_only: bool = False
    recursive: bool = True  # rbind, as Docker's binds
    copy_up: bool = False  # an empty volume is first filled with the image's content at target
    options: list[str] = field(default_factory=list)  # tmpfs: mount(8) options (nosuid, size=..., mode=...)


@dataclass
class ContainerSpec:
    id: str  # 64 hex
    hostname: str
    lower_dirs: list[str]  # image layer dirs, BOTTOM layer first (each already in overlay whiteout form)
    container_dir: str  # per-container state dir; the launcher creates upper/, work/, merged/ inside
    process: ProcessSpec
    network_mode: str = "none"  # "none": new netns with only lo (up); "host": the host's netns
    # --network container:<id>: the network namespace of that container's PID 1 is joined instead of a new
    # one; its start time (/proc/<pid>/stat field 22) guards against pid reuse
    join_netns_pid: int = 0
    join_netns_start_time: int = 0
    readonly_rootfs: bool = False
    # container path -> host file to bind-mount (/etc/hostname, /etc/hosts, /etc/resolv.conf ...)
    etc_files: dict[str, str] = field(default_factory=dict)
    masked_paths: list[str] = field(default_factory=lambda: list(DEFAULT_MASKED_PATHS))
    readonly_paths: list[str] = field(default_factory=lambda: list(DEFAULT_READONLY_PATHS))
    shm_size: int = 64 * 1024 * 1024
    # user mounts, parents before children (applied after the root filesystem, see linux/binds.py)
    mounts: list[MountSpec] = field(default_factory=list)
    # namespaces shared with the host ("" private, "host" the host's)
    pid_mode: str = ""
    ipc_mode: str = ""
    uts_mode: str = ""
    # --privileged: every host device in /dev, /sys and /proc writable, no masked paths
    privileged: bool = False
    # --device: (host path, container path, permissions "rwm") resolved to nodes made in the container's /dev
    devices: list[tuple[str, str, str]] = field(default_factory=list)
    # --init: a minimal reaper (tini) runs as PID 1 and execs the process as its child
    init: bool = False
    # the container's cgroup (always created: stats, pause and OOM detection need it); None: none at all
    cgroup: CgroupConfig | None = field(default_factory=CgroupConfig)

    @property
    def upper_dir(self) -> str:
        return f"{self.container_dir}/upper"

    @property
    def work_dir(self) -> str:
        return f"{self.container_dir}/work"

    @property
    def rootfs(self) -> str:
        return f"{self.container_dir}/merged"
