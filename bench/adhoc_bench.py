"""Ad hoc `ansible localhost -m pycontainer` re-run on a container that already exists and matches (the idempotent
case, `changed: false`): wall time beside `ansible localhost -m ping`'s (Ansible's floor) and beside
community.docker.docker_container's against Docker, and the module's own time (prints figures; not a test).

    sudo .venv/bin/python bench/adhoc_bench.py [--runs 7] [--registry HOST:PORT] [--python /usr/bin/python3]

Wall time: the whole `ansible localhost -m pycontainer -a 'name=… image=busybox command="sleep 1d"'` command,
median of --runs, interleaved with `ansible localhost -m ping` runs; the difference is what the module costs
above Ansible's floor (controller: its action plugin, packing the payload; target: the payload's own work).
Module's own time: the AnsiballZ payload Ansible ran (kept with ANSIBLE_KEEP_REMOTE_FILES=1) timed inside one
interpreter, from the payload's first line to its exit_json (unzipping, imports, the engine's comparison);
beside it the same figure for ansible.builtin.ping. The engine's code is kept on the target (engine_code.py):
the first run installs it in this benchmark's own code dir and is not counted. Side by side with
community.docker.docker_container against Docker when both are there (else "not installed"). Needs busybox
in a registry: 127.0.0.1:5000 (`make demo`) when it answers, else a throwaway loopback registry seeded from the
test fixtures. Own engine root, config, code dir and container; removed at the end; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from bench.installed import as_installed  # noqa: E402
from plugins.module_utils.ansible.code_bundle import code_digest, code_files  # noqa: E402
from plugins.module_utils.ansible.engine_code import ENV_CODE_DIR, ENV_DIGEST  # noqa: E402

VENV_BIN = os.path.dirname(sys.executable)
ANSIBLE = os.path.join(VENV_BIN, "ansible")
PYCONTAINER = os.path.join(VENV_BIN, "pycontainer")
MODULE_UTILS = os.path.join(REPO, "plugins", "module_utils")
NAME = "adhoc-bench"
# Runs the kept payload in this interpreter and reports the seconds from its start to its exit.
_PAYLOAD_TIMER = """
import os, runpy, sys, time
t = time.perf_counter()
sys.argv = [sys.argv[1]]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit:
    pass
os.write(int(os.environ["BENCH_FD"]), repr(time.perf_counter() - t).encode())
"""


def ansible_env(tmp: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=os.path.join(tmp, "local"), ANSIBLE_REMOTE_TMP=os.path.join(tmp, "remote"))
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    env.update(extra)
    return env


def adhoc(module: str, args: str, env: dict[str, str], python: str) -> tuple[float, dict]:
    """One ad hoc run: its wall time and the module's result (must succeed)."""
    start = time.perf_counter()
    proc = subprocess.run([ANSIBLE, "localhost", "-m", module, "-a", args, "-o",
                           "-e", f"ansible_python_interpreter={python}"],
                          cwd=REPO, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if proc.returncode != 0 or "=>" not in line:
        raise SystemExit(f"{module} failed (rc {proc.returncode}): {proc.stdout}{proc.stderr}")
    return wall, json.loads(line.split("=>", 1)[1])


def median_runs(module: str, args: str, env: dict[str, str], python: str, runs: int,
                floor: bool = False) -> tuple[float, float, float | None]:
    """Median and minimum wall time of idempotent re-runs; with ``floor``, each run is followed by an
    `ansible -m ping` run, and third comes the median of the pairwise differences (interleaved, so both see the
    same machine: this machine's noise moves both by more than the difference)."""
    adhoc(module, args, env, python)  # creates the container (and installs the engine's code): not counted
    walls, pings = [], []
    for _i in range(runs):
        wall, result = adhoc(module, args, env, python)
        if result.get("changed"):
            raise SystemExit(f"{module}: the re-run reported a change: {result.get('actions') or result}")
        walls.append(wall)
        if floor:
            pings.append(adhoc("ping", "", env, python)[0])
    above = statistics.median(wall - ping for wall, ping in zip(walls, pings, strict=True)) if pings else None
    return statistics.median(walls), min(walls), above


def payload_times(module: str, args: str, tmp: str, python: str, runs: int,
                  code_dir: str) -> tuple[float, float, float]:
    """Medians: the module's own time inside the payload, the payload process, and a bare interpreter."""
    keep = os.path.join(tmp, "keep")
    os.makedirs(keep, exist_ok=True)
    env = ansible_env(keep, ANSIBLE_KEEP_REMOTE_FILES="1", **{ENV_CODE_DIR: code_dir})
    adhoc(module, args, env, python)
    (payload,) = glob.glob(os.path.join(keep, "remote", "ansible-tmp-*", f"AnsiballZ_{module}.py"))
    # What the action plugin puts in the module's environment: the version of the engine's code to use.
    payload_env = dict(os.environ, **{ENV_DIGEST: code_digest(code_files(MODULE_UTILS)), ENV_CODE_DIR: code_dir})
    inside, process, bare = [], [], []
    for _i in range(runs):
        read_fd, write_fd = os.pipe()
        start = time.perf_counter()
        subprocess.run([python, "-c", _PAYLOAD_TIMER, payload], env=dict(payload_env, BENCH_FD=str(write_fd)),
                       pass_fds=(write_fd,), stdout=subprocess.DEVNULL, check=True)
        process.append(time.perf_counter() - start)
        os.close(write_fd)
        with os.fdopen(read_fd) as f:
            inside.append(float(f.read()))
        start = time.perf_counter()
        subprocess.run([python, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - start)
    return statistics.median(inside), statistics.median(process), statistics.median(bare)


def registry_answers(host: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}/v2/library/busybox/tags/list", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def docker_side_by_side(registry: str, runs: int, tmp: str) -> float | None:
    """community.docker.docker_container re-run against the Docker peer; its modules run with a Python of their
    own that has `requests` and `docker` (tests/fixtures/community_docker.py), the same Python version."""
    if not shutil.which("docker"):
        print("community.docker.docker_container: not measured (no docker CLI)")
        return None
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode:
        print("community.docker.docker_container: not measured (no Docker daemon answers; DOCKER_HOST?)")
        return None
    from tests.fixtures.community_docker import PeerUnavailable, ensure

    try:
        collections, python = ensure()
    except PeerUnavailable as exc:
        print(f"community.docker.docker_container: not installed ({exc})")
        return None
    paths = os.pathsep.join([os.path.join(REPO, ".collections"), collections])
    env = ansible_env(tmp, ANSIBLE_COLLECTIONS_PATH=paths)
    version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                             text=True, check=False).stdout.strip()
    print(f"community.docker: {collections}; its modules' python {python} ({version})")
    image = f"{registry}/library/busybox:latest"
    args = f'name={NAME} image={image} command="sleep 1d" network_mode=none'
    try:
        median, low, _floor = median_runs("community.docker.docker_container", args, env, python, runs)
    finally:
        subprocess.run(["docker", "rm", "-f", NAME], capture_output=True, check=False)
    print(f"{'docker_container re-run (wall)':36s} median {median:6.3f} s  (min {low:.3f})")
    return median


def main() -> None:
    as_installed()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--registry", default="127.0.0.1:5000")
    parser.add_argument("--python", default=sys.executable, help="the target's interpreter")
    opts = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (containers)")
    tmp = tempfile.mkdtemp(prefix="pycontainer-adhocbench-")
    registry = None
    try:
        host = opts.registry
        if not registry_answers(host):
            from tests.fixtures.images import seed_busybox
            from tests.fixtures.registry import Registry, free_port

            registry = Registry(os.path.join(tmp, "registry"), free_port())
            os.makedirs(registry.state_dir, exist_ok=True)
            registry.start()
            host = seed_busybox(registry.host).split("/", 1)[0]
            print(f"registry: {host} (throwaway, seeded with busybox)")
        root, config = os.path.join(tmp, "root"), os.path.join(tmp, "engine.json")
        with open(config, "w") as f:
            json.dump({"registry_mirrors": [f"http://{host}"], "blocked_registries": ["docker.io"],
                       "log_file": os.path.join(tmp, "engine.log")}, f)
        args = f'name={NAME} image=busybox command="sleep 1d" network_mode=none root={root} config={config}'
        print(f"target python: {opts.python}; {opts.runs} runs each")
        code_dir = os.path.join(tmp, "code")
        env = ansible_env(tmp, **{ENV_CODE_DIR: code_dir})
        median, low, above = median_runs("pycontainer", args, env, opts.python, opts.runs, floor=True)
        print(f"{'pycontainer re-run (wall)':36s} median {median:6.3f} s  (min {low:.3f})")
        print(f"{'  above ansible -m ping (paired)':36s} median {above * 1000:6.1f} ms  (target <= 50 ms)")
        inside, process, bare = payload_times("pycontainer", args, tmp, opts.python, opts.runs, code_dir)
        floor, _process, _bare = payload_times("ping", "", os.path.join(tmp, "ping"), opts.python, opts.runs, code_dir)
        print(f"{'  module own time (in the payload)':36s} median {inside * 1000:6.1f} ms")
        print(f"{'  ansible.builtin.ping payload, same':36s} median {floor * 1000:6.1f} ms  (AnsiballZ's floor)")
        print(f"{'  pycontainer payload beyond that':36s} median {(inside - floor) * 1000:6.1f} ms")
        print(f"{'  payload process (python + module)':36s} median {process * 1000:6.1f} ms")
        print(f"{'  python start-up alone':36s} median {bare * 1000:6.1f} ms")
        docker = docker_side_by_side(host, opts.runs, tmp)
        if docker:
            print(f"{'ratio pycontainer / docker_container':36s} {median / docker:6.2f}x (target <= 0.8x)")
    finally:
        subprocess.run([PYCONTAINER, "--root", os.path.join(tmp, "root"), "--config", os.path.join(tmp, "engine.json"),
                        "rm", "-f", NAME], capture_output=True, check=False)
        if registry is not None:
            registry.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
