# Copyright: pycontainer developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: pycontainer
short_description: Run tasks in containers of the pycontainer engine
version_added: 0.1.0
description:
  - Runs commands in, and copies files to and from, a running container made by this collection's engine on the
    controller, as P(community.docker.docker_api#connection) does for Docker.
  - The engine runs in the connection's own process (no daemon, no CLI); commands are C(exec)s into the
    container's namespaces and cgroup; files are read and written through the container's root, resolved with
    C(openat2(RESOLVE_IN_ROOT)) so that no symlink in the container can lead outside it.
  - The engine state is on the controller, so this plugin is for containers of the machine Ansible runs on.
  - Supports pipelining. Privilege escalation without a password (C(su) as root, C(sudo) with NOPASSWD) works;
    a password prompt cannot be answered (no terminal) and fails the task.
author:
  - pycontainer developers (!UNKNOWN)
extends_documentation_fragment:
  - connection_pipelining
requirements:
  - Linux, run as root on the controller
  - cffi and pyroute2 on the controller's Python
options:
  remote_addr:
    description:
      - The name or ID of the container to run tasks in.
    type: str
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: ansible_pycontainer_host
  remote_user:
    description:
      - The user to run commands as inside the container (a name or C(uid[:gid]) of the container's C(/etc/passwd)).
      - Files put into the container are owned by this user.
      - Unset, the container's own user (C(--user) at create, else the image's) applies.
    type: str
    vars:
      - name: ansible_user
      - name: ansible_pycontainer_user
    ini:
      - section: defaults
        key: remote_user
    env:
      - name: ANSIBLE_REMOTE_USER
    cli:
      - name: user
    keyword:
      - name: remote_user
  pycontainer_root:
    description:
      - The engine's state directory on the controller.
      - Defaults to E(PYCONTAINER_ROOT), else the engine config's C(root), else C(/var/lib/pycontainer).
    type: path
    vars:
      - name: ansible_pycontainer_root
    env:
      - name: PYCONTAINER_ROOT
  pycontainer_config:
    description:
      - The engine's config file on the controller.
      - Defaults to E(PYCONTAINER_CONFIG), else C(/etc/pycontainer/engine.json) when it exists.
    type: path
    vars:
      - name: ansible_pycontainer_config
    env:
      - name: PYCONTAINER_CONFIG
  timeout:
    description:
      - Seconds to wait, when connecting, for a container that is restarting (restart policy) to be running.
      - A container that is stopped, paused or missing fails at once.
    type: int
    default: 10
    vars:
      - name: ansible_pycontainer_timeout
    env:
      - name: ANSIBLE_TIMEOUT
    ini:
      - section: defaults
        key: timeout
    cli:
      - name: timeout
notes:
  - The engine's events journal records each command as an C(exec_create)/C(exec_start)/C(exec_die), like
    Docker's.
"""

EXAMPLES = r"""
# inventory.yml: containers made by pycontainer.engine.pycontainer on this machine
# all:
#   children:
#     containers:
#       hosts:
#         web1:
#         web2:
#       vars:
#         ansible_connection: pycontainer.engine.pycontainer
#         ansible_python_interpreter: /usr/bin/python3
#         ansible_pycontainer_root: /var/lib/pycontainer

- name: Configure the containers
  hosts: containers
  tasks:
    - name: Write a file inside each container
      ansible.builtin.copy:
        content: "hello from {{ inventory_hostname }}\n"
        dest: /etc/motd
        mode: "0644"
"""

import contextlib
import os
import posixpath
import secrets
import stat
import time

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

display = Display()

_CHUNK = 1 << 20
# The state from which a container becomes running by itself: worth waiting for (up to ``timeout``).
_TRANSIENT = ("restarting",)


class Connection(ConnectionBase):
    """Tasks in a running container of the in-process engine."""

    transport = "pycontainer.engine.pycontainer"
    has_pipelining = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._engine = None
        self._ids: dict[str | None, tuple[int, int]] = {}  # remote user -> (uid, gid) inside the container

    # -- the engine ------------------------------------------------------------------------------------------
    @property
    def _container(self) -> str:
        return self.get_option("remote_addr")

    def _engine_api(self):
        if self._engine is None:
            # Imported here: the engine pulls in cffi bindings, which only a connection that is used should pay.
            from ansible_collections.pycontainer.engine.plugins.module_utils.engine import Engine
            from ansible_collections.pycontainer.engine.plugins.module_utils.errors import EngineError

            try:
                self._engine = Engine.from_options(root=self.get_option("pycontainer_root"),
                                                   config_path=self.get_option("pycontainer_config"))
            except EngineError as exc:
                raise AnsibleConnectionFailure(f"pycontainer engine: {exc}") from None
        return self._engine

    def _running_record(self, wait: float = 0.0):
        """The container's record, which must be running (waiting up to ``wait`` s for a starting one)."""
        from ansible_collections.pycontainer.engine.plugins.module_utils import refs
        from ansible_collections.pycontainer.engine.plugins.module_utils.errors import ContainerNotFound, EngineError

        deadline = time.monotonic() + wait
        while True:
            try:
                # The inventory name is a reference like any other: neither a name nor hex is no container.
                record = self._engine_api().containers.lookup(refs.container_ref(self._container))
            except ContainerNotFound:
                raise AnsibleConnectionFailure(
                    f'container "{self._container}" not found (engine root '
                    f'{self._engine_api().config.root})') from None
            except EngineError as exc:
                raise AnsibleConnectionFailure(f'container "{self._container}": {exc}') from None
            status = record.state.status
            if status == "running":
                return record
            if status not in _TRANSIENT or time.monotonic() >= deadline:
                raise AnsibleConnectionFailure(f'container "{self._container}" is not running (status: {status})')
            time.sleep(0.1)

    # -- ConnectionBase ----------------------------------------------------------------------------------------
    def _connect(self):
        super()._connect()
        if not self._connected:
            display.vvv(f"ESTABLISH PYCONTAINER CONNECTION FOR USER: {self.get_option('remote_user') or '?'}",
                        host=self._container)
            self._running_record(wait=float(self.get_option("timeout") or 0))
            self._connected = True
        return self

    def exec_command(self, cmd, in_data=None, sudoable=True):
        """Run ``cmd`` with the play's shell in the container; ``in_data`` is its stdin (pipelining)."""
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        from ansible_collections.pycontainer.engine.plugins.module_utils.errors import ContainerNotFound, EngineError

        argv = [self._play_context.executable, "-c", to_text(cmd)]
        display.vvv(f"EXEC {argv}" + (f", with stdin ({len(in_data)} bytes)" if in_data is not None else ""),
                    host=self._container)
        try:
            result = self._engine_api().containers.exec_capture(
                self._container, argv, stdin=in_data, user=self.get_option("remote_user") or None)
        except ContainerNotFound:
            raise AnsibleConnectionFailure(f'container "{self._container}" not found') from None
        except EngineError as exc:
            # Conflict: stopped or paused since we connected; ContainerCommandError: no such shell.
            raise AnsibleConnectionFailure(f'container "{self._container}": {exc}') from None
        stdout, stderr = result.stdout, result.stderr
        if sudoable and self.become and getattr(self.become, "_id", None):
            stdout, stderr = self._become_output(stdout, stderr)
        return result.exit_code, stdout, stderr

    def _become_output(self, stdout: bytes, stderr: bytes) -> tuple[bytes, bytes]:
        """Drop the become preamble; a password prompt cannot be answered without a terminal: fail clearly."""
        if self.become.check_success(stdout):
            return self.become.strip_become_success(self.become.strip_become_prompt(stdout)), stderr
        if self.become.expect_prompt() and (self.become.check_password_prompt(stdout)
                                            or self.become.check_password_prompt(stderr)):
            raise AnsibleConnectionFailure(
                f'container "{self._container}": {self.become.name} asked for a password, which the pycontainer '
                f"connection cannot answer (use become without a password)")
        return stdout, stderr

    def _prefix_login_path(self, remote_path: str) -> str:
        # Relative paths are taken from / (no login directory is guaranteed), as the docker connections do.
        return posixpath.normpath(posixpath.join("/", remote_path))

    def _user_ids(self) -> tuple[int, int]:
        """uid/gid of the remote user as the container itself resolves them (its /etc/passwd, now)."""
        user = self.get_option("remote_user") or None
        if user not in self._ids:
            rc, out, err = self.exec_command("id -u && id -g", sudoable=False)
            try:
                uid, gid = (int(v) for v in out.split())
            except ValueError:
                raise AnsibleConnectionFailure(
                    f'container "{self._container}": cannot tell the ids of user {user or "(default)"}: '
                    f"rc={rc} {to_native(out + err)!r}") from None
            self._ids[user] = (uid, gid)
        return self._ids[user]

    def _open_root(self) -> int:
        """An O_PATH fd of the container's / (its mount namespace included), checked against pid reuse."""
        from ansible_collections.pycontainer.engine.plugins.module_utils.records.containers import process_alive

        record = self._running_record()
        pid = record.state.pid
        try:
            fd = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise AnsibleConnectionFailure(f'container "{self._container}" has exited ({exc})') from None
        # The pid could have died and been reused between the lookup and the open: the start time tells.
        if not process_alive(pid, record.state.pid_start_time):
            os.close(fd)
            raise AnsibleConnectionFailure(f'container "{self._container}" has exited')
        return fd

    def put_file(self, in_path, out_path):
        """Copy a controller file into the container, owned by the remote user.

        The content goes to a new file beside the destination, renamed over it: the host never opens what the
        container placed there (a FIFO would block, a device node would be written, a hard link would carry
        the write to another file). A destination that exists and is not a regular file is refused.
        """
        super().put_file(in_path, out_path)
        from ansible_collections.pycontainer.engine.plugins.module_utils.linux.safepath import open_parent

        out_path = self._prefix_login_path(to_text(out_path))
        display.vvv(f"PUT {in_path} TO {out_path}", host=self._container)
        b_in = to_bytes(in_path, errors="surrogate_or_strict")
        if not os.path.isfile(b_in):
            raise AnsibleFileNotFound(f"file or module does not exist: {to_native(in_path)}")
        uid, gid = self._user_ids()
        root_fd = self._open_root()
        try:
            with open(b_in, "rb") as src:
                mode = os.fstat(src.fileno()).st_mode & 0o7777
                try:
                    parent_fd, name = open_parent(root_fd, out_path, create=False)
                except (OSError, ValueError) as exc:
                    raise AnsibleError(f"cannot put {out_path} into {self._container}: "
                                       f"{getattr(exc, 'strerror', None) or exc}") from None
                try:
                    self._put_beside(src, parent_fd, name, out_path, mode, uid, gid)
                finally:
                    os.close(parent_fd)
        finally:
            os.close(root_fd)

    def _put_beside(self, src, parent_fd: int, name: str, out_path: str, mode: int, uid: int, gid: int) -> None:
        try:
            current = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            current = None
        except OSError as exc:
            raise AnsibleError(f"cannot put {out_path} into {self._container}: {exc.strerror}") from None
        if current is not None and not stat.S_ISREG(current.st_mode):
            raise AnsibleError(f"cannot put {out_path} into {self._container}: it exists and is not a regular file")
        tmp = f".{name[:200]}.{secrets.token_hex(6)}.tmp"
        try:
            # O_EXCL|O_NOFOLLOW: a fresh inode of ours, never something the container planted at that name.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=parent_fd)
        except OSError as exc:
            raise AnsibleError(f"cannot put {out_path} into {self._container}: {exc.strerror}") from None
        try:
            try:
                os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)
                while chunk := src.read(_CHUNK):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            # rename never follows the destination: a link or node placed there meanwhile is replaced, unopened.
            os.rename(tmp, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=parent_fd)
            if isinstance(exc, OSError):
                raise AnsibleError(f"cannot put {out_path} into {self._container}: {exc.strerror}") from None
            raise

    def fetch_file(self, in_path, out_path):
        """Copy a file of the container to the controller.

        The path is resolved inside the container's root to an O_PATH descriptor, which opens nothing: only a
        regular file is then opened for reading (a FIFO would hang the controller, opening a device node can
        act on the host's hardware)."""
        super().fetch_file(in_path, out_path)
        from ansible_collections.pycontainer.engine.plugins.module_utils.linux.safepath import open_in_root

        in_path = self._prefix_login_path(to_text(in_path))
        display.vvv(f"FETCH {in_path} TO {out_path}", host=self._container)
        root_fd = self._open_root()
        try:
            try:
                path_fd = open_in_root(root_fd, in_path, os.O_PATH)
            except FileNotFoundError:
                raise AnsibleFileNotFound(f"file not found in {self._container}: {in_path}") from None
            except OSError as exc:
                raise AnsibleError(f"cannot fetch {in_path} from {self._container}: {exc.strerror}") from None
        finally:
            os.close(root_fd)
        try:
            if not stat.S_ISREG(os.fstat(path_fd).st_mode):
                raise AnsibleError(f"cannot fetch {in_path} from {self._container}: not a regular file")
            # Reopening the O_PATH descriptor opens that very inode, whatever the path points to by now.
            fd = os.open(f"/proc/self/fd/{path_fd}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise AnsibleError(f"cannot fetch {in_path} from {self._container}: {exc.strerror}") from None
        finally:
            os.close(path_fd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise AnsibleError(f"cannot fetch {in_path} from {self._container}: not a regular file")
            with open(to_bytes(out_path, errors="surrogate_or_strict"), "wb") as dst:
                while chunk := os.read(fd, _CHUNK):
                    dst.write(chunk)
        finally:
            os.close(fd)

    def reset(self):
        self._ids.clear()

    def close(self):
        super().close()
        self._connected = False
