"""Start a container process, wait for it, clean up after it.

Process model
-------------
The caller stays in the host namespaces. ``start`` unshares a new pid namespace *for its children only*
and forks: the child is directly the container's PID 1 and the caller's own child, so ``wait`` is a
plain ``waitpid`` giving the real status (code, or 128+signal), with no relaying intermediate process.
A future supervisor that calls ``start`` itself is therefore the natural parent; one that adopts
containers started by a CLI which then exited should set PR_SET_CHILD_SUBREAPER before forking that CLI.
The child unshares mount/uts/ipc/cgroup (+net for "none") namespaces, mounts the overlay and the
rest of the root filesystem, pivots into it, drops capabilities and user, and execs. Setup errors and
exec errors travel back over a close-on-exec report pipe; end-of-file with no data means exec succeeded.
A second pipe ("go") holds the child after fork until the caller says so: the place for caller-side setup
(cgroup placement, later) via ``parent_hooks``; it also stops a child whose caller died.

Mount choice
------------
The overlay (and every other mount) exists only in the container's private mount namespace, never in
the host's. When the container's last process exits the kernel tears the namespace down and unmounts
everything, before ``wait`` returns; a crashed launcher or engine can leak no mount. The rootfs of a
running container is reachable from the host as ``/proc/<pid>/root``; its changes are in ``upper/``.
``cleanup`` therefore only has to remove directories (and unmount leftovers, should any exist).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .. import trace
from ..errors import CommandNotExecutable, CommandNotFound, EngineError, InvalidArgument
from ..linux import mounts, namespaces
from . import init
from .spec import ContainerSpec, ProcessSpec

# "host" shares the host's network namespace; every other mode gets its own, unshared by the child before
# the go-ahead so that parent hooks can wire it (bridge, user networks: network/attachment.py).
NETWORK_MODES = ("none", "host")


@dataclass
class ContainerProcess:
    pid: int  # host pid of the container's PID 1 (a child of the process that called start)
    exit_code: int | None = None  # set by wait()
    oom_killed: bool = False  # set by wait(): the kernel OOM-killed a process of the container's cgroup
    cgroup: object = None  # the container's ContainerCgroup (None for exec_in processes / no cgroup)
    listeners: list = dataclasses.field(default_factory=list)  # published-port sockets the monitor relays
    console: int | None = None  # *_in_terminal: the pty master, of the container's own devpts


def _validate(spec: ContainerSpec) -> None:
    if not spec.process.args:
        raise InvalidArgument("no command specified")
    if (spec.network_mode.startswith("container:") and not spec.join_netns_pid) or not spec.network_mode:
        raise InvalidArgument(f"network mode {spec.network_mode!r} is not supported (use one of "
                              f"{', '.join(NETWORK_MODES)})")
    if not spec.lower_dirs:
        raise InvalidArgument("the container has no image layers")
    for path, src in spec.etc_files.items():
        if not os.path.isabs(path) or not os.path.isfile(src):
            raise InvalidArgument(f"cannot bind {src!r} to {path!r}: need an absolute container path and "
                                  "an existing host file")
    if spec.init and not os.path.exists(init.INIT_BINARY):
        raise EngineError(f"--init needs {init.INIT_BINARY} (Debian: tini)")


def _seccomp_program(process: ProcessSpec) -> bytes | None:
    """Compile the process's profile here, in the caller: the container never loads libseccomp."""
    if process.seccomp is None:
        return None
    from ..linux import capabilities, seccomp

    names = {capabilities.CAPABILITIES[n] for n in init.capability_numbers(process.capabilities)
             if n < len(capabilities.CAPABILITIES)}
    return seccomp.compile_bpf(process.seccomp, names)


def start(spec: ContainerSpec, stdin: int | None, stdout: int, stderr: int, *,
          parent_hooks: Sequence[Callable[[int], None]] = (),
          init_hooks: Sequence[init.Step] = ()) -> ContainerProcess:
    """Create the container's namespaces, cgroup and root filesystem and exec its process.

    ``parent_hooks`` run in the caller with the child's pid before the child may continue (after the
    launcher's own: the cgroup); ``init_hooks`` run in the container as root after its filesystem is set up.
    Raises CommandNotFound (127) / CommandNotExecutable (126) / EngineError (125); nothing is left
    behind on failure.
    """
    return _start(spec, (stdin, stdout, stderr), parent_hooks, init_hooks, None)


def start_in_terminal(spec: ContainerSpec, *, size: tuple[int, int] | None = None,
                      parent_hooks: Sequence[Callable[[int], None]] = (),
                      init_hooks: Sequence[init.Step] = ()) -> ContainerProcess:
    """``start`` on a terminal of the container's own devpts (``docker run -t``): the container opens it
    once its /dev/pts is mounted, before its hooks and the user switch; the master is the returned process's
    ``console`` (the caller closes it), ``size`` (rows, columns) its initial window size. Why not a host
    pty: see ``exec_in_terminal``. Sets ``spec.process.terminal``."""
    spec.process.terminal = True
    return _with_console(size, lambda console: _start(spec, (None, -1, -1), parent_hooks, init_hooks, console))


def _start(spec: ContainerSpec, stdio: tuple[int | None, int, int], parent_hooks: Sequence[Callable[[int], None]],
           init_hooks: Sequence[init.Step], console: init.Step | None) -> ContainerProcess:
    _validate(spec)
    program = _seccomp_program(spec.process)
    trace.mark("seccomp program")
    os.makedirs(spec.upper_dir, 0o755, exist_ok=True)
    os.makedirs(spec.work_dir, 0o700, exist_ok=True)
    os.makedirs(spec.rootfs, 0o755, exist_ok=True)
    cgroup = None
    hooks = list(parent_hooks)
    if spec.cgroup is not None:
        from ..linux import cgroups

        cgroup = cgroups.container_cgroup(spec.id, spec.cgroup)
        try:
            cgroup.create()
        except BaseException:
            with contextlib.suppress(Exception):
                cgroup.destroy()
            raise
        hooks.insert(0, cgroup.add)
    trace.mark("cgroup create")
    steps = init.build_steps(init_hooks, console)
    pidns = spec.pid_mode != "host"
    netns_fd = -1
    try:
        if spec.join_netns_pid:
            netns_fd = _open_joined_netns(spec)
        proc = _spawn(lambda go_r: init.InitContext(spec, stdio, go_r, program, netns_fd=netns_fd), steps, hooks,
                      namespaces.new_pid_namespace_for_children() if pidns else contextlib.nullcontext())
    except BaseException:
        if cgroup is not None:
            with contextlib.suppress(Exception):
                cgroup.destroy()
        raise
    finally:
        if netns_fd >= 0:
            os.close(netns_fd)
    proc.cgroup = cgroup
    return proc


def _open_joined_netns(spec: ContainerSpec) -> int:
    """The network namespace of ``spec.join_netns_pid`` (--network container:), checked to belong to the
    process that was meant: the start time is compared after the open, so a reused pid cannot slip in."""
    from ..records.containers import process_start_time

    target = spec.network_mode.partition(":")[2][:12] or str(spec.join_netns_pid)
    try:
        fd = os.open(f"/proc/{spec.join_netns_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        fd = -1
    if fd >= 0 and process_start_time(spec.join_netns_pid) == spec.join_netns_start_time:
        return fd
    if fd >= 0:
        os.close(fd)
    raise EngineError(f"cannot join network of a non running container: {target}")


def exec_in(spec: ContainerSpec, target_pid: int, process: ProcessSpec, stdin: int | None, stdout: int,
            stderr: int, privileged: bool = False) -> ContainerProcess:
    """Run ``process`` inside the running container whose PID 1 is ``target_pid`` (``docker exec``).

    It joins the container's namespaces and cgroup and gets the container's capabilities, seccomp filter,
    no_new_privs and rlimits (those fields of ``process`` are ignored); args, env, cwd, user and terminal
    are its own; ``privileged`` (``docker exec --privileged``) gives it every capability instead. The process
    is the caller's child: ``wait``/``poll`` it like a container. Raises as ``start`` does.
    """
    return _exec_spawn(spec, target_pid, process, privileged, (stdin, stdout, stderr), init.build_exec_steps())


def exec_in_terminal(spec: ContainerSpec, target_pid: int, process: ProcessSpec, privileged: bool = False,
                     size: tuple[int, int] | None = None) -> ContainerProcess:
    """``exec_in`` on a terminal of the container's own devpts (``docker exec -t``); the master is the
    returned process's ``console`` (the caller closes it), ``size`` (rows, columns) its initial window size.

    A host pty would not do: its slave is a node of the host's devpts, which the container's /dev/pts (its
    own instance) cannot name (``tty`` says "not a tty"). So the process opens /dev/ptmx itself once it has
    joined the container's mount namespace, and hands the master back over a socket (SCM_RIGHTS), as runc
    does with its console socket. All three stdio are the slave, its controlling terminal (Docker)."""
    terminal = dataclasses.replace(process, terminal=True)
    return _with_console(size, lambda console: _exec_spawn(
        spec, target_pid, terminal, privileged, (None, -1, -1),
        [init.wait_for_go, init.join_container, console, init.setup_stdio, *init.PROCESS_STEPS]))


def _with_console(size: tuple[int, int] | None,
                  spawn: Callable[[init.Step], ContainerProcess]) -> ContainerProcess:
    """Run ``spawn(console_step)``, whose process runs the step (it opens the terminal and sends the master
    over a socketpair), and return the process with the master received as its ``console``."""
    import socket

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)  # both close-on-exec
    try:
        try:
            proc = spawn(_console_step(theirs, size))
        finally:
            theirs.close()
        # The process sent the master before it exec'd (the spawn saw that exec succeed): it is here.
        try:
            _msg, fds, _flags, _addr = socket.recv_fds(ours, 1, 1)
        except OSError as exc:
            _abandon(proc)
            raise EngineError(f"cannot receive the terminal of the container process: {exc}") from None
        if not fds:
            _abandon(proc)
            raise EngineError("the container process sent no terminal")
    finally:
        ours.close()  # a master still in flight (setup failed after sending it) goes with the socket
    proc.console = fds[0]
    return proc


def _abandon(proc: ContainerProcess) -> None:
    """Kill a process that started but cannot be used, and its cgroup (a container's)."""
    _kill_and_reap(proc)
    if proc.cgroup is not None:
        with contextlib.suppress(Exception):
            proc.cgroup.destroy()


def _console_step(sock, size: tuple[int, int] | None) -> init.Step:
    """The child's step, in the container's mount namespace and still root: a pty of the container's
    devpts (/dev/ptmx is its pts/ptmx), the slave as stdio (``setup_stdio`` makes it the controlling
    terminal), owned by the process's user (as runc's fixStdioPermissions), the master sent to the caller."""
    import fcntl
    import socket
    import struct
    import termios

    def open_console(ctx: init.InitContext) -> None:
        master, slave = os.openpty()  # glibc: /dev/ptmx, then TIOCGPTPEER (or /dev/pts/<n>)
        if size:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
        os.fchown(slave, ctx.process.uid, -1)
        socket.send_fds(sock, [b"m"], [master])
        os.close(master)
        sock.close()
        ctx.stdio = (slave, slave, slave)

    return open_console


def _exec_spawn(spec: ContainerSpec, target_pid: int, process: ProcessSpec, privileged: bool,
                stdio: tuple[int | None, int, int], steps: list) -> ContainerProcess:
    if not process.args:
        raise InvalidArgument("no command specified")
    c = spec.process
    process = dataclasses.replace(process, capabilities=["ALL"] if privileged else c.capabilities,
                                  seccomp=c.seccomp,
                                  no_new_privileges=c.no_new_privileges, rlimits=list(c.rlimits))
    program = _seccomp_program(process)
    hooks: list[Callable[[int], None]] = []
    if spec.cgroup is not None:
        from ..linux import cgroups

        cg = cgroups.container_cgroup(spec.id, spec.cgroup)
        if cg.exists():
            hooks.append(cg.add)
    # The child is born in the container's pid namespace (and stays the caller's child).
    pidns = contextlib.nullcontext() if spec.pid_mode == "host" else namespaces.pid_namespace_of(target_pid)
    return _spawn(lambda go_r: init.InitContext(spec, stdio, go_r, program, process, target_pid), steps, hooks,
                  pidns)


def _spawn(make_context, steps: list, parent_hooks: Sequence[Callable[[int], None]], pidns) -> ContainerProcess:
    report_r, report_w = os.pipe()  # both ends close-on-exec (Python's default)
    go_r, go_w = os.pipe()
    try:
        with pidns:
            pid = os.fork()
            if pid == 0:  # the new process: must never return into the caller's code
                try:
                    os.close(report_r)
                    os.close(go_w)
                    init.run(make_context(go_r), steps, report_w)
                finally:
                    os._exit(125)
    except OSError as exc:
        for fd in (report_r, report_w, go_r, go_w):
            os.close(fd)
        raise EngineError(f"cannot create the container process: {exc}") from None
    os.close(report_w)
    os.close(go_r)
    trace.mark("fork (namespaces)")
    proc = ContainerProcess(pid)
    try:
        try:
            for hook in parent_hooks:
                hook(pid)
            trace.mark("parent hooks (cgroup, network connect, pid on disk)")
            os.write(go_w, b"g")
        finally:
            os.close(go_w)
        report = _read_all(report_r)
        trace.mark("container setup until exec (mounts, pivot_root, seccomp)")
    except BaseException:
        _kill_and_reap(proc)
        raise
    finally:
        os.close(report_r)
    if report:
        wait(proc)
        kind, _sep, message = report.partition(b"\0")
        text = message.decode(errors="replace")
        if kind == init.NOT_FOUND:
            raise CommandNotFound(text)
        if kind == init.NOT_EXECUTABLE:
            raise CommandNotExecutable(text)
        raise EngineError(f"container setup failed: {text}")
    return proc


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _kill_and_reap(proc: ContainerProcess) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGKILL)
    wait(proc)


def wait(proc: ContainerProcess) -> int:
    """Wait for PID 1 to exit; Docker's exit status: its code, or 128+signal. Idempotent.

    When PID 1 exits the kernel kills every other process of the pid namespace and reaps them before
    reporting PID 1's exit, and the mount namespace (the overlay) is gone with them.
    """
    if proc.exit_code is None:
        try:
            _pid, status = os.waitpid(proc.pid, 0)
        except ChildProcessError:
            raise EngineError(f"process {proc.pid} is not a child of this process") from None
        _record_exit(proc, status)
    return proc.exit_code


def _record_exit(proc: ContainerProcess, status: int) -> None:
    code = os.waitstatus_to_exitcode(status)
    proc.exit_code = 128 - code if code < 0 else code
    if proc.cgroup is not None:
        with contextlib.suppress(Exception):
            proc.oom_killed = proc.cgroup.oom_killed()


def poll(proc: ContainerProcess) -> int | None:
    """The exit status if PID 1 has exited (reaping it), else None."""
    if proc.exit_code is None:
        pid, status = os.waitpid(proc.pid, os.WNOHANG)
        if pid == 0:
            return None
        _record_exit(proc, status)
    return proc.exit_code


def cleanup(spec: ContainerSpec, remove_layers: bool = False) -> None:
    """Release what a container left on the host. Idempotent; a no-op when nothing is there.

    Normally nothing is mounted in the host namespace (see the module docstring); leftovers under the
    container directory are detached anyway. The container's cgroup is removed, killing whatever still
    runs in it (processes of a ``--pid host`` container outlive its PID 1). ``remove_layers`` deletes
    upper/, work/ and merged/.
    """
    from ..linux import cgroups

    cgroups.container_cgroup(spec.id, spec.cgroup if spec.cgroup is not None else cgroups.CgroupConfig()).destroy()
    mounts.umount_all_under(spec.container_dir)
    if remove_layers:
        import shutil

        for path in (spec.upper_dir, spec.work_dir, spec.rootfs):
            if os.path.lexists(path):
                shutil.rmtree(path)
