"""The connection plugin pycontainer.engine.pycontainer through real `ansible` and `ansible-playbook` runs:
tasks inside containers of the Debian python image (raw, command, copy, fetch, facts with the container's
python3, pipelining, remote_user, become), files resolved inside the container's root, and the errors for a
missing or stopped container."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.fixtures.debian_image import DebianImageMissing, seed_debian_python
from tests.integration.helpers import REPO, VENV_BIN, Cli, ansible_env, write_engine_config

pytestmark = pytest.mark.integration

CONNECTION = "pycontainer.engine.pycontainer"


@dataclass
class Target:
    """An engine root holding the Debian python image, and the inventory that reaches its containers."""

    cli: Cli
    image: str
    workdir: str

    def inventory(self, *hosts: str, **host_vars: object) -> str:
        path = os.path.join(self.workdir, "inventory.json")
        group_vars = {"ansible_connection": CONNECTION, "ansible_python_interpreter": "/usr/bin/python3",
                      "ansible_pycontainer_root": self.cli.root, "ansible_pycontainer_config": self.cli.config,
                      **host_vars}
        with open(path, "w") as f:
            json.dump({"all": {"hosts": {h: None for h in hosts}, "vars": group_vars}}, f)
        return path

    @contextlib.contextmanager
    def container(self, name: str, *run_args: str) -> Iterator[str]:
        """A running container (no network: nothing here needs one), removed at the end whatever happens."""
        self.cli("run", "-d", "--network", "none", "--name", name, *run_args, self.image, "sleep", "infinity",
                 check=True)
        try:
            yield name
        finally:
            self.cli("rm", "-f", name)


@pytest.fixture(scope="module")
def target(registry, debian_python_image) -> Iterator[Target]:
    # One root for the module: pulling the image once; pulling leaves no host state for the leak check.
    workdir = tempfile.mkdtemp(prefix="pycontainer-conn-")
    try:
        root = os.path.join(workdir, "root")
        os.mkdir(root)
        cli = Cli(root=root, config=write_engine_config(os.path.join(workdir, "engine.json"), registry.host))
        cli("pull", debian_python_image, check=True)
        yield Target(cli, debian_python_image, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def ansible(inventory: str, host: str, module: str, args: str = "", *extra: str,
            env: dict[str, str] | None = None) -> tuple[int, dict, str]:
    """`ansible HOST -m MODULE -a ARGS`: rc, the host's result (from --tree) and the whole output."""
    with tempfile.TemporaryDirectory() as tree:
        cmd = [os.path.join(VENV_BIN, "ansible"), host, "-i", inventory, "-m", module, "--tree", tree, *extra]
        if args:
            cmd += ["-a", args]
        proc = subprocess.run(cmd, cwd=REPO, env={**ansible_env(), **(env or {})}, capture_output=True, text=True,
                              timeout=300, check=False)
        output = proc.stdout + proc.stderr
        try:
            with open(os.path.join(tree, host)) as f:
                result = json.load(f)
        except (OSError, ValueError):
            raise AssertionError(f"no result from ansible (rc {proc.returncode}): {output}") from None
    assert "Traceback" not in output, output
    return proc.returncode, result, output


def playbook(inventory: str, path: str, *extra: str, env: dict[str, str] | None = None):
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory, path, *extra], cwd=REPO,
                          env={**ansible_env(), **(env or {})}, capture_output=True, text=True, timeout=600,
                          check=False)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc


def test_adhoc_raw_command_and_facts_with_the_containers_python(target: Target):
    with target.container("conn-adhoc"):
        inv = target.inventory("conn-adhoc")
        rc, result, out = ansible(inv, "conn-adhoc", "raw", "cat /etc/debian_version; id -un")
        assert rc == 0, out
        version, user = result["stdout_lines"]
        assert version.startswith("12.") and user == "root"
        rc, result, out = ansible(inv, "conn-adhoc", "command", "python3 -c 'import sys; print(sys.executable)'")
        assert rc == 0 and result["stdout"] == "/usr/bin/python3" and result["changed"] is True, out
        rc, result, out = ansible(inv, "conn-adhoc", "setup", "gather_subset=min")
        assert rc == 0, out
        facts = result["ansible_facts"]
        assert facts["ansible_distribution"] == "Debian" and facts["ansible_distribution_major_version"] == "12"
        assert facts["ansible_python"]["executable"] == "/usr/bin/python3"
        # The facts are the container's: its hostname is its short ID, as with Docker.
        container_id = target.cli("inspect", "--format", "{{.Id}}", "conn-adhoc", check=True).stdout.strip()
        assert facts["ansible_hostname"] == container_id[:12]
        # A failing command is the task's failure with the container's exit code, not the connection's.
        rc, result, out = ansible(inv, "conn-adhoc", "raw", "echo to-stderr >&2; exit 3")
        assert rc == 2 and result["rc"] == 3 and "to-stderr" in result["stderr"], out


@pytest.mark.parametrize("pipelining", [False, True], ids=["files", "pipelining"])
def test_playbook_copy_fetch_remote_user_and_become(target: Target, tmp_path, pipelining: bool):
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # more than one chunk of put_file/fetch_file
    fetched = tmp_path / "fetched"
    book = tmp_path / "play.yml"
    book.write_text(f"""
- name: As root
  hosts: all
  gather_facts: true
  tasks:
    - name: Copy a binary file in
      ansible.builtin.copy:
        src: {payload}
        dest: /srv/payload.bin
        mode: "0640"
    - name: Write a file from content
      ansible.builtin.copy:
        content: "hello from {{{{ inventory_hostname }}}}\\n"
        dest: /etc/motd
        mode: "0644"
    - name: Fetch both back
      ansible.builtin.fetch:
        src: "{{{{ item }}}}"
        dest: {fetched}/
        flat: false
      loop: [/srv/payload.bin, /etc/motd]
    - name: Run as nobody through su (no password needed from root)
      ansible.builtin.command: id -un
      become: true
      become_method: ansible.builtin.su
      become_user: nobody
      become_flags: -s /bin/sh
      register: become_id
      changed_when: false
    - name: The become user is nobody
      ansible.builtin.assert:
        that: become_id.stdout == "nobody"

- name: As the container user nobody (files put in are owned by it)
  hosts: all
  gather_facts: false
  remote_user: nobody
  vars:
    ansible_remote_tmp: /tmp/.ansible-nobody
  tasks:
    - name: Copy as nobody
      ansible.builtin.copy:
        content: "mine\\n"
        dest: /tmp/owned-by-nobody
        mode: "0600"
    - name: Stat it
      ansible.builtin.stat:
        path: /tmp/owned-by-nobody
      register: owned
    - name: Owned by nobody
      ansible.builtin.assert:
        that: owned.stat.pw_name == "nobody" and owned.stat.uid == 65534
""")
    with target.container("conn-play"):
        inv = target.inventory("conn-play", ansible_pipelining=pipelining)
        proc = playbook(inv, str(book))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # Three copies and the fetch (its first run).
        assert "changed=4" in proc.stdout.split("PLAY RECAP")[1], proc.stdout
        assert (fetched / "conn-play" / "srv" / "payload.bin").read_bytes() == payload.read_bytes()
        assert (fetched / "conn-play" / "etc" / "motd").read_text() == "hello from conn-play\n"
        seen = target.cli("exec", "conn-play", "stat", "-c", "%a %U %s", "/srv/payload.bin", "/tmp/owned-by-nobody",
                          check=True).stdout.split("\n")
        assert seen[:2] == [f"640 root {payload.stat().st_size}", "600 nobody 5"]
        # A second run changes nothing: the copies are idempotent through the connection.
        again = playbook(inv, str(book))
        assert again.returncode == 0 and "changed=0" in again.stdout.split("PLAY RECAP")[1], again.stdout


def test_paths_resolve_inside_the_container_root(target: Target, tmp_path):
    """Symlinks in the container mean what they mean in it: an absolute or ../-climbing link never reaches the
    host's file of the same path (the plugin opens through /proc/<pid>/root with RESOLVE_IN_ROOT)."""
    host_dir = tmp_path / "host-side"
    host_dir.mkdir()
    (host_dir / "secret").write_text("host file\n")
    book = tmp_path / "play.yml"
    book.write_text(f"""
- name: Symlinks inside the container
  hosts: all
  gather_facts: false
  tasks:
    - name: The same path as the host's, with other content, and links to it
      ansible.builtin.shell: |
        mkdir -p {host_dir} /tmp/links
        echo "container file" > {host_dir}/secret
        ln -sfn {host_dir}/secret /tmp/links/absolute
        ln -sfn ../../../../../../../..{host_dir}/secret /tmp/links/climbing
        ln -sfn {host_dir} /tmp/links/dir
      changed_when: true
    - name: Fetch through the links
      ansible.builtin.fetch:
        src: "/tmp/links/{{{{ item }}}}"
        dest: {tmp_path}/fetched/{{{{ item }}}}
        flat: true
      loop: [absolute, climbing]
    - name: Ansible's temporary files go through a link to a directory
      ansible.builtin.copy:
        content: "put through a link\\n"
        dest: /tmp/copied
        mode: "0644"
      vars:
        ansible_remote_tmp: /tmp/links/dir/remote-tmp
""")
    with target.container("conn-paths"):
        # Without pipelining: the module itself is put as a file under the linked remote tmp dir.
        proc = playbook(target.inventory("conn-paths", ansible_pipelining=False), str(book))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        for name in ("absolute", "climbing"):
            assert (tmp_path / "fetched" / name).read_text() == "container file\n"
        assert target.cli("exec", "conn-paths", "cat", "/tmp/copied", check=True).stdout == "put through a link\n"
    # The host's side is untouched: same content, and nothing was created beside it.
    assert (host_dir / "secret").read_text() == "host file\n"
    assert sorted(os.listdir(host_dir)) == ["secret"]


def test_fetch_of_a_missing_file_fails_the_task_not_the_connection(target: Target):
    with target.container("conn-missing-file"):
        inv = target.inventory("conn-missing-file")
        rc, result, out = ansible(inv, "conn-missing-file", "fetch",
                                  "src=/no/such/file dest=/tmp/unused fail_on_missing=true")
        assert rc == 2 and result.get("unreachable") is not True, out
        assert "the remote file does not exist" in result["msg"], result


def test_missing_container_is_unreachable(target: Target):
    inv = target.inventory("conn-ghost")
    rc, result, out = ansible(inv, "conn-ghost", "raw", "true")
    assert rc == 4 and result["unreachable"] is True, out
    assert 'container "conn-ghost" not found' in result["msg"] and target.cli.root in result["msg"]


def test_stopped_or_paused_container_is_unreachable(target: Target):
    with target.container("conn-stopped"):
        inv = target.inventory("conn-stopped")
        target.cli("pause", "conn-stopped", check=True)
        rc, result, out = ansible(inv, "conn-stopped", "command", "true")
        assert rc == 4 and result["unreachable"] is True, out
        assert 'container "conn-stopped" is not running (status: paused)' in result["msg"], result
        target.cli("unpause", "conn-stopped", check=True)
        target.cli("stop", "-t", "0", "conn-stopped", check=True)
        rc, result, out = ansible(inv, "conn-stopped", "command", "true")
        assert rc == 4 and result["unreachable"] is True, out
        assert 'container "conn-stopped" is not running (status: exited)' in result["msg"], result


def test_engine_root_from_the_environment(target: Target, tmp_path):
    """Without the inventory variables the root and config come from PYCONTAINER_ROOT/PYCONTAINER_CONFIG, as for
    the CLI."""
    inv = tmp_path / "inv.json"
    inv.write_text(json.dumps({"all": {"hosts": {"conn-env": None}, "vars": {
        "ansible_connection": CONNECTION, "ansible_python_interpreter": "/usr/bin/python3"}}}))
    with target.container("conn-env"):
        rc, result, out = ansible(str(inv), "conn-env", "raw", "hostname",
                                  env={"PYCONTAINER_ROOT": target.cli.root, "PYCONTAINER_CONFIG": target.cli.config})
        assert rc == 0 and len(result["stdout"].strip()) == 12, out


def test_plugin_documentation_renders():
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-doc"), "-t", "connection", CONNECTION], cwd=REPO,
                          env=ansible_env(), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    for option in ("remote_addr", "remote_user", "pycontainer_root", "pycontainer_config", "timeout", "pipelining"):
        assert option in proc.stdout


def test_missing_debian_tarball_says_which_make_target_builds_it(registry, tmp_path):
    with pytest.raises(DebianImageMissing, match=r"run `make debian-image`"):
        seed_debian_python(registry.host, tarball=str(tmp_path / "absent.tar"), repo="library/never-pushed")


# Drives the connection plugin itself, as ansible-playbook loads it, so that put_file/fetch_file get exactly the
# container paths under test (a task's own temporary file names are random). One line of JSON per call.
_TRANSFER = r"""
import json, sys
from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import connection_loader, init_plugin_loader

init_plugin_loader()
host, root, config, calls = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
conn = connection_loader.get("pycontainer.engine.pycontainer", PlayContext(), sys.stdin)
conn.set_options(var_options={"inventory_hostname": host, "ansible_pycontainer_root": root,
                              "ansible_pycontainer_config": config})
conn._connect()
for op, remote, local in calls:
    try:
        conn.put_file(local, remote) if op == "put" else conn.fetch_file(remote, local)
        print(json.dumps([op, remote, "ok"]), flush=True)
    except Exception as exc:
        print(json.dumps([op, remote, f"{type(exc).__name__}: {exc}"]), flush=True)
"""


def transfer(target: Target, host: str, calls: list[tuple[str, str, str]]) -> dict[tuple[str, str], str]:
    """(op, container path) -> "ok" or the error; a call that hangs fails the test through the timeout."""
    proc = subprocess.run([os.path.join(VENV_BIN, "python"), "-c", _TRANSFER, host, target.cli.root,
                           target.cli.config, json.dumps(calls)], cwd=REPO, env=ansible_env(), capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return {(op, remote): outcome for op, remote, outcome in map(json.loads, proc.stdout.splitlines())}


def test_file_transfer_refuses_what_is_not_a_regular_file(target: Target, tmp_path):
    """A container plants a FIFO, a device node (mknod: in Docker's default caps), a symlink to /etc/shadow and a
    hard link to a file of a host directory it has mounted; put/fetch as host root must neither hang, nor open a
    node, nor leave the container's root, nor write through the link into the host's file."""
    host_dir = tmp_path / "shared"
    host_dir.mkdir()
    victim = host_dir / "victim"
    victim.write_text("host data\n")
    with open("/etc/shadow", "rb") as f:
        shadow = f.read()
    payload = tmp_path / "payload"
    payload.write_text("from the controller\n")
    fetched = tmp_path / "fetched"
    with target.container("conn-nodes", "-v", f"{host_dir}:/data"):
        target.cli("exec", "conn-nodes", "sh", "-c",
                   "mkfifo /tmp/fifo && mknod /tmp/null c 1 3 && ln -s /etc/shadow /tmp/shadow "
                   "&& ln /data/victim /data/link && echo container > /tmp/regular", check=True)
        container_shadow = target.cli("exec", "conn-nodes", "cat", "/etc/shadow", check=True).stdout
        results = transfer(target, "conn-nodes", [
            ("put", "/tmp/fifo", str(payload)), ("fetch", "/tmp/fifo", str(fetched)),
            ("put", "/tmp/null", str(payload)), ("fetch", "/tmp/null", str(fetched)),
            ("put", "/tmp/shadow", str(payload)),
            ("put", "/data/link", str(payload)),
            ("fetch", "/tmp/shadow", str(fetched)),
        ])
        for call in (("put", "/tmp/fifo"), ("put", "/tmp/null"), ("put", "/tmp/shadow")):
            assert "is not a regular file" in results[call], (call, results[call])
        for call in (("fetch", "/tmp/fifo"), ("fetch", "/tmp/null")):
            assert "not a regular file" in results[call], (call, results[call])
        assert results[("put", "/data/link")] == "ok"
        assert results[("fetch", "/tmp/shadow")] == "ok"
        # The link resolved inside the container: its /etc/shadow, not the host's.
        assert fetched.read_text() == container_shadow
        nodes = target.cli("exec", "conn-nodes", "sh", "-c",
                           "ls -l /tmp/fifo /tmp/null | cut -c1; readlink /tmp/shadow; cat /data/link; "
                           "ls /tmp | grep -c '\\.tmp$' || true", check=True).stdout.split("\n")
        assert nodes[:5] == ["p", "c", "/etc/shadow", "from the controller", "0"], nodes
    # The host's files are as they were: the hard link was replaced, not written through.
    assert victim.read_text() == "host data\n"
    with open("/etc/shadow", "rb") as f:
        assert f.read() == shadow
    assert sorted(os.listdir(host_dir)) == ["link", "victim"]


def test_a_path_shaped_inventory_name_is_no_container(target: Target):
    """The inventory name is a container reference: one that is a path is refused before any record is read."""
    planted = tempfile.mkdtemp(prefix="conn-ref-", dir="/tmp")
    try:
        ref = planted + "/" + "c" * (63 - len(planted))
        os.mkdir(ref)
        with open(os.path.join(ref, "config.json"), "w") as f:
            json.dump({"id": ref, "name": "planted"}, f)
        inv = target.inventory("planted-host", ansible_host=ref)
        rc, result, out = ansible(inv, "planted-host", "raw", "true")
        assert rc == 4 and result["unreachable"] is True, out
        assert f'container "{ref}" not found' in result["msg"], result
    finally:
        shutil.rmtree(planted)
