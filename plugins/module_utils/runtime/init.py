"""The container side of ``launcher.start``: what the container's PID 1 runs between fork and exec.

Runs in a forked copy of the caller, as PID 1 of the new pid namespace. It never returns: it either
execs the container process or reports why it could not over the report pipe and ``_exit``s. The report
pipe is close-on-exec, so a successful exec shows up at the caller as end-of-file with no data.

The work is a list of steps (``build_steps``); later concerns (cgroup namespace entry, seccomp, ...)
slot in as further steps or as ``hooks`` passed by the launcher.
"""

from __future__ import annotations

import errno
import fcntl
import os
import resource  # (after pivot_root no new extension module can be imported: everything is loaded here)
import signal
import stat
import termios
from collections.abc import Callable, Sequence

from ..faults import fault_point
from ..linux import binds, capabilities, libc, mounts, namespaces, rootfs
from .spec import DEFAULT_CAPABILITIES, DEFAULT_PATH, ContainerSpec, ProcessSpec

TYPE_CHECKING = False  # typing costs ~4 ms to import; only type checkers need it here
if TYPE_CHECKING:
    from typing import NoReturn

# Report kinds written to the report pipe as b"<kind>\0<message>".
NOT_FOUND = b"notfound"
NOT_EXECUTABLE = b"notexec"
SETUP = b"setup"

# --init: Docker's choice, tini, bind-mounted from the host where Docker puts its docker-init. A static
# binary of ~0.7 MB: its PSS per container is a few hundred kB, where a Python reaper would keep ~8 MB.
INIT_BINARY = "/usr/bin/tini-static"
INIT_PATH = "/sbin/docker-init"


class ExecFailed(Exception):
    def __init__(self, kind: bytes, message: str):
        super().__init__(message)
        self.kind = kind


class InitContext:
    """What the steps share. (A plain class: a dataclass costs ~0.5 ms of start-up per definition.)"""

    __slots__ = ("cwd_fd", "go_fd", "netns_fd", "process", "seccomp_bpf", "spec", "stdio", "target_pid")

    def __init__(self, spec: ContainerSpec, stdio: tuple[int | None, int, int], go_fd: int,
                 seccomp_bpf: bytes | None = None, process: ProcessSpec | None = None, target_pid: int = 0,
                 netns_fd: int = -1):
        self.spec = spec
        self.stdio = stdio
        self.go_fd = go_fd  # the caller writes one byte once its own setup (cgroups, network) is done
        self.seccomp_bpf = seccomp_bpf  # compiled by the caller (libseccomp never loads in the container)
        self.process = process or spec.process  # exec_in runs another process than the container's
        self.target_pid = target_pid  # exec_in: the container's PID 1, whose namespaces are joined
        self.netns_fd = netns_fd  # --network container:: the other container's network namespace, opened by the caller
        self.cwd_fd = -1  # open_cwd: the working directory, resolved inside the container's root


Step = Callable[[InitContext], None]


def env_lookup(env: list[str], key: str) -> str | None:
    prefix = key + "="
    value = None
    for item in env:
        if item.startswith(prefix):
            value = item[len(prefix):]  # the last one wins, as in execve's environment
    return value


def env_dict(env: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in env:
        key, _sep, value = item.partition("=")
        if key:
            out[key] = value
    return out


def lookup_executable(name: str, path: str | None) -> str:
    """Resolve argv[0] like Go's exec.LookPath (what runc does): names with a '/' are used as they are;
    others are the first *executable regular file* of that name in PATH (empty entries mean ".")."""
    if not name:
        raise ExecFailed(NOT_FOUND, 'exec: "": executable file not found in $PATH')
    if "/" in name:
        return name
    for directory in (DEFAULT_PATH if path is None else path).split(":"):
        candidate = os.path.join(directory or ".", name)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return candidate
    raise ExecFailed(NOT_FOUND, f'exec: "{name}": executable file not found in $PATH')


def exec_error(name: str, path: str, exc: OSError) -> ExecFailed:
    """Map an execve failure to Docker's wording and exit class (127 not found, 126 cannot invoke)."""
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        if not os.path.lexists(path):
            return ExecFailed(NOT_FOUND, f'exec: "{name}": stat {path}: no such file or directory')
        return ExecFailed(NOT_FOUND, f"exec {path}: no such file or directory")  # e.g. missing interpreter
    if exc.errno == errno.EACCES:
        return ExecFailed(NOT_EXECUTABLE, f'exec: "{name}": permission denied')
    return ExecFailed(NOT_EXECUTABLE, f"exec {path}: {os.strerror(exc.errno or 0).lower()}")


# --- steps ---


def setup_stdio(ctx: InitContext) -> None:
    stdin, stdout, stderr = ctx.stdio
    if stdin is None:
        stdin = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    # Move all three out of the 0..2 range first so that e.g. stdout=0 does not clobber stdin.
    tmp = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3) for fd in (stdin, stdout, stderr)]
    for target, fd in enumerate(tmp):
        os.dup2(fd, target, inheritable=True)
        os.close(fd)
    if ctx.process.terminal:
        # run() made us a session leader; the pty slave on fd 0 becomes our controlling terminal.
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def enter_network_namespace(ctx: InitContext) -> None:
    # Before the go-ahead: the caller's network hooks (network/attachment.py) wire this namespace up (veth,
    # addresses, routes) while we wait. Every mode but "host" has its own, except "container:", which joins
    # the namespace of another container (the caller checked its pid; the namespace lives on with us).
    if ctx.netns_fd >= 0:
        libc.setns(ctx.netns_fd, libc.CLONE_NEWNET)
        os.close(ctx.netns_fd)
    elif ctx.spec.network_mode != "host":
        libc.unshare(libc.CLONE_NEWNET)


def wait_for_go(ctx: InitContext) -> None:
    # EOF instead of the byte means the caller died or gave up: do not start an orphaned container.
    if os.read(ctx.go_fd, 1) != b"g":
        raise ExecFailed(SETUP, "launcher went away before the container was started")
    os.close(ctx.go_fd)


def enter_namespaces(ctx: InitContext) -> None:
    s = ctx.spec
    flags = libc.CLONE_NEWNS | libc.CLONE_NEWCGROUP  # after the caller put us in our cgroup: it is our root
    if s.uts_mode != "host":
        flags |= libc.CLONE_NEWUTS
    if s.ipc_mode != "host":
        flags |= libc.CLONE_NEWIPC
    libc.unshare(flags)
    mounts.make_private("/")  # before any mount: nothing of ours may propagate to the host


def setup_uts(ctx: InitContext) -> None:
    if ctx.spec.hostname and ctx.spec.uts_mode != "host":
        libc.sethostname(ctx.spec.hostname)


def setup_network(ctx: InitContext) -> None:
    if ctx.spec.network_mode != "host" and not ctx.spec.join_netns_pid:
        libc.interface_up("lo")


def mount_rootfs(ctx: InitContext) -> None:
    s = ctx.spec
    mounts.mount_overlay(s.lower_dirs, s.upper_dir, s.work_dir, s.rootfs)
    rootfs.setup(s.rootfs, etc_files=s.etc_files, masked=s.masked_paths, readonly=s.readonly_paths,
                 readonly_rootfs=s.readonly_rootfs, shm_size=s.shm_size, cwd=_cwd(s),
                 privileged=s.privileged, devices=s.devices, init_binary=INIT_BINARY if s.init else None,
                 cgroup_mounts=s.cgroup is not None)
    fault_point("init.after_mount")


def restrict_capabilities(ctx: InitContext) -> None:
    capabilities.restrict(capability_numbers(ctx.process.capabilities))


def capability_numbers(names: list[str] | None) -> set[int]:
    if names is None:
        names = list(DEFAULT_CAPABILITIES)
    if any(n.upper() in ("ALL", "CAP_ALL") for n in names):
        return set(range(capabilities.last_cap() + 1))
    return capabilities.numbers(names)


def set_rlimits(ctx: InitContext) -> None:
    for name, soft, hard in ctx.process.rlimits:
        res = getattr(resource, "RLIMIT_" + name.upper())
        _cur_soft, cur_hard = resource.getrlimit(res)
        # Clamp to the host's hard limit: raising it would need CAP_SYS_RESOURCE games; never fail on it.
        if cur_hard != resource.RLIM_INFINITY:
            hard = cur_hard if hard < 0 or hard > cur_hard else hard
            soft = hard if soft < 0 or soft > hard else soft
        resource.setrlimit(res, (soft, hard))


def load_seccomp(ctx: InitContext) -> None:
    # Still root with CAP_SYS_ADMIN here: the filter needs no no_new_privs unless asked for.
    if ctx.process.no_new_privileges:
        libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1)
    if ctx.seccomp_bpf:
        libc.seccomp_set_filter(ctx.seccomp_bpf)


def switch_user(ctx: InitContext) -> None:
    p = ctx.process
    os.setgroups(sorted(set(p.additional_gids)))
    os.setresgid(p.gid, p.gid, p.gid)
    os.setresuid(p.uid, p.uid, p.uid)


def _cwd(spec: ContainerSpec, process: ProcessSpec | None = None) -> str:
    return os.path.join("/", (process or spec.process).cwd or "/")  # "" (image without WORKDIR) means "/"


def _cwd_error(cwd: str, reason: str) -> ExecFailed:
    return ExecFailed(SETUP, f"chdir to cwd ({cwd!r}) set in config.json failed: {reason}")


def open_cwd(ctx: InitContext) -> None:
    """Resolve the working directory inside the container's root (the current ``/``, the old root detached
    or, for exec, the container's mount namespace joined): symlinks and ``..`` cannot leave it and magic
    links (``/proc/self/fd/N`` naming a directory fd inherited from the engine, CVE-2024-21626) are refused.
    Done as root before the filter; ``enter_cwd`` changes into it as the process's user."""
    cwd = _cwd(ctx.spec, ctx.process)
    root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        ctx.cwd_fd = libc.openat2(root, cwd, os.O_PATH | os.O_DIRECTORY, 0,
                                  libc.RESOLVE_IN_ROOT | libc.RESOLVE_NO_MAGICLINKS)
    except OSError as exc:
        reason = "it is outside the container or a magic link" if exc.errno == errno.ELOOP else (
            exc.strerror.lower() if exc.strerror else str(exc))
        raise _cwd_error(cwd, reason.removeprefix("openat2: ")) from None
    finally:
        os.close(root)


def enter_cwd(ctx: InitContext) -> None:
    cwd = _cwd(ctx.spec, ctx.process)
    try:
        os.fchdir(ctx.cwd_fd)  # checks search permission as the process's user (Docker's chdir does too)
    except OSError as exc:
        raise _cwd_error(cwd, exc.strerror.lower() if exc.strerror else str(exc)) from None
    finally:
        os.close(ctx.cwd_fd)
        ctx.cwd_fd = -1
    try:  # getcwd fails (ENOENT) when the directory is not below our root: never exec there
        os.getcwd()
    except OSError:
        raise _cwd_error(cwd, "current working directory is outside of the container's root") from None


# What turns the root process into the configured one: shared by start and exec_in.
PROCESS_STEPS = (open_cwd, restrict_capabilities, set_rlimits, load_seccomp, switch_user, enter_cwd)


def build_steps(hooks: Sequence[Step] = (), console: Step | None = None) -> list[Step]:
    """The ordered setup of the container; ``hooks`` run as root inside the final view, before the
    capability and user switch (the place for seccomp-independent extras). ``console`` (a terminal of the
    container's devpts: launcher.start_in_terminal) opens it and sets the stdio, which is why the stdio then
    comes after the filesystem: /dev/pts and /dev/ptmx must be the container's."""
    if console is None:
        early, late = [setup_stdio], []
    else:
        early, late = [], [console, setup_stdio]
    return [
        *early, enter_network_namespace, wait_for_go, enter_namespaces, setup_uts, setup_network,
        binds.open_step, mount_rootfs, binds.attach_step,  # user mounts: sources before pivot, targets after
        *late, *hooks, *PROCESS_STEPS,
    ]


def join_container(ctx: InitContext) -> None:
    """exec_in: enter the namespaces of the container's PID 1 (pid was joined by the caller at fork)."""
    s = ctx.spec
    names = ["cgroup", "mount"]
    if s.ipc_mode != "host":
        names.append("ipc")
    if s.uts_mode != "host":
        names.append("uts")
    if s.network_mode != "host":
        names.append("network")
    namespaces.join(ctx.target_pid, names)


def build_exec_steps() -> list[Step]:
    return [setup_stdio, wait_for_go, join_container, *PROCESS_STEPS]


def close_inherited_fds(keep: int) -> None:
    """Close every descriptor but stdio and ``keep`` (the report pipe) before resolving and exec'ing the
    process: nothing the engine had open (a host directory, a lock file) is reachable through
    ``/proc/self/fd`` from PATH lookups or the exec itself. (Close-on-exec alone would leave them open
    until the exec.)"""
    if keep > 3:
        libc.close_range(3, keep - 1)
    libc.close_range(keep + 1, 0xFFFFFFFF)


def do_exec(ctx: InitContext) -> NoReturn:
    p = ctx.process
    path = lookup_executable(p.args[0], env_lookup(p.env, "PATH"))
    args = p.args
    if ctx.spec.init and ctx.target_pid == 0:
        # tini as PID 1 runs the process as its child, reaps orphans and forwards signals.
        path, args = INIT_PATH, [INIT_PATH, "--", *p.args]
    libc.prctl(libc.PR_SET_PDEATHSIG, 0)  # the container outlives the launcher (detached runs)
    # Python ignores SIGPIPE and SIGXFSZ; ignored dispositions survive exec, so restore the defaults.
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    libc.close_range(3, 0xFFFFFFFF, libc.CLOSE_RANGE_CLOEXEC)  # only 0..2 reach the container
    try:
        os.execve(path, args, env_dict(p.env))
    except OSError as exc:
        raise exec_error(p.args[0], path, exc) from None


def run(ctx: InitContext, steps: Sequence[Step], report_fd: int) -> NoReturn:
    """Run ``steps`` then exec; on any failure write the report and exit. Never returns."""
    code = 125
    try:
        try:
            libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)  # die with the launcher during setup
            # Not dumpable until exec (which resets it): container processes cannot ptrace us or open our
            # /proc/<pid>/exe, fds, cwd or root (the engine's interpreter and host paths; CVE-2019-5736 class).
            libc.prctl(libc.PR_SET_DUMPABLE, 0)
            os.setsid()  # own session: not killed by the caller's terminal, like a daemon-started container
            for step in steps:
                step(ctx)
            close_inherited_fds(report_fd)
            do_exec(ctx)
        except ExecFailed as exc:
            kind, message = exc.kind, str(exc)
        except OSError as exc:
            kind, message = SETUP, _describe(exc)
        except BaseException as exc:  # anything here must be reported, never raised into the caller's code
            kind, message = SETUP, f"{type(exc).__name__}: {exc} (at {_where(exc)})"
        # Only an exception gets here (do_exec execs or raises), so kind and message are set.
        code = {NOT_FOUND: 127, NOT_EXECUTABLE: 126}.get(kind, 125)  # pylint: disable=used-before-assignment
        os.write(report_fd, kind + b"\0" + message.encode(errors="replace"))  # pylint: disable=used-before-assignment
    finally:
        os._exit(code)


def _where(exc: BaseException) -> str:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return f"{os.path.basename(tb.tb_frame.f_code.co_filename)}:{tb.tb_lineno}" if tb else "?"


def _describe(exc: OSError) -> str:
    if exc.filename and str(exc.filename) not in str(exc.strerror):
        return f"{exc.strerror} ({exc.filename})"
    return str(exc.strerror or exc)
