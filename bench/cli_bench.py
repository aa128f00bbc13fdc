"""The command line side by side with Docker: each command timed through the warm CLI server, in its own process
(PYCONTAINER_CLI_SERVER=0) and with the docker CLI against dockerd, interleaved, medians; then where the time
goes (PYCONTAINER_TRACE phases, medians). Prints figures; not a test.

    .venv/bin/python bench/cli_bench.py [--runs 11] [--many 1000] [--skip-docker]

Docker: start it first (``python -m tests.fixtures.docker_peer start --bridge`` and export the DOCKER_HOST it
prints); its busybox comes from the same loopback registry this benchmark starts and seeds.
- `run --rm busybox true` with `--network none` and on the default bridge;
- `run -d -p <port>:80 busybox sleep` then `rm -f` (a published port);
- `ps -a`, `images`, `info`, `inspect` with 10 containers, then with ``--many`` (created, not running);
- the interpreter's own start (`python -c pass`, with and without site), which no Python command avoids.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from bench.installed import as_installed  # noqa: E402

PYCONTAINER = os.path.join(os.path.dirname(sys.executable), "pycontainer")


def timed(argv: list[str], env: dict | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.decode()}")
    return elapsed


def docker_ready() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False).returncode == 0


class Peers:
    """The three ways of running one command, interleaved so that machine noise hits them alike."""

    def __init__(self, cli: list[str], docker: bool, runs: int) -> None:
        self.cli, self.docker, self.runs = cli, docker, runs
        base = {k: v for k, v in os.environ.items() if not k.startswith("PYCONTAINER_CLI")}
        self.served_env = dict(base, PYCONTAINER_CLI_SERVER="1", PYCONTAINER_CLI_LINGER="600")
        self.local_env = dict(base, PYCONTAINER_CLI_SERVER="0")

    def compare(self, label: str, args: list[str], then: list[str] | None = None) -> None:
        """Median time of ``args`` (and ``then`` right after it, timed together) for each of the three."""
        samples: dict[str, list[float]] = {"served": [], "local": [], "docker": []}
        for _i in range(self.runs):
            for mode, env in (("served", self.served_env), ("local", self.local_env)):
                elapsed = timed([*self.cli, *args], env)
                if then:
                    elapsed += timed([*self.cli, *then], env)
                samples[mode].append(elapsed)
            if self.docker:
                elapsed = timed(["docker", *args])
                if then:
                    elapsed += timed(["docker", *then])
                samples["docker"].append(elapsed)
        med = {k: statistics.median(v) * 1000 for k, v in samples.items() if v}
        line = f"{label:44s} served {med['served']:7.1f} ms   local {med['local']:7.1f} ms"
        if "docker" in med:
            line += (f"   docker {med['docker']:7.1f} ms   ratio served/docker {med['served'] / med['docker']:.2f}"
                     f"  local/docker {med['local'] / med['docker']:.2f}")
        else:
            line += "   docker: not measured"
        print(line, flush=True)

    def trace(self, label: str, args: list[str]) -> None:
        for mode, env in (("served", self.served_env), ("local", self.local_env)):
            phases: dict[str, list[float]] = {}
            for _i in range(self.runs):
                proc = subprocess.run([*self.cli, *args], env=dict(env, PYCONTAINER_TRACE="1"),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
                for line in proc.stderr.splitlines():
                    if line.startswith("trace: "):
                        name, _sep, ms = line[7:].rpartition(" ")
                        phases.setdefault(name, []).append(float(ms))
            print(f"  trace of `{label}` ({mode}, medians of {self.runs}, ms):")
            for name, values in phases.items():
                print(f"    {statistics.median(values):7.1f}  {name}")


def interpreter_floor(runs: int) -> None:
    for label, argv in (("python -c pass (venv, site)", [sys.executable, "-c", "pass"]),
                        ("python -I -S -c pass", [sys.executable, "-I", "-S", "-c", "pass"])):
        samples = [timed(argv) for _i in range(runs)]
        print(f"{label:44s} {statistics.median(samples) * 1000:7.1f} ms  (no Python command starts faster)")


def main() -> int:
    as_installed()
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--many", type=int, default=1000)
    parser.add_argument("--skip-docker", action="store_true")
    args = parser.parse_args()

    from tests.fixtures.images import seed_busybox
    from tests.fixtures.registry import Registry, free_port

    docker = not args.skip_docker and docker_ready()
    work = tempfile.mkdtemp(prefix="pycontainer-cli-bench-")
    registry = Registry(os.path.join(work, "registry"), free_port())
    registry.start()
    root = os.path.join(work, "root")
    cli = [PYCONTAINER, "--root", root]
    labels = ["--label", "pycontainer-cli-bench=1"]
    try:
        seed_busybox(registry.host)
        image = f"{registry.host}/library/busybox"
        config = os.path.join(work, "engine.json")
        with open(config, "w") as f:
            json.dump({"registry_mirrors": [f"http://{registry.host}"], "blocked_registries": ["docker.io"],
                       "log_file": ""}, f)
        cli += ["--config", config]
        subprocess.run([*cli, "pull", "-q", image], check=True, stdout=subprocess.DEVNULL)
        if docker:
            subprocess.run(["docker", "pull", "-q", image], check=True, stdout=subprocess.DEVNULL)
        peers = Peers(cli, docker, args.runs)
        print(f"docker: {'dockerd answers' if docker else 'not measured (not installed, not running or skipped)'}")
        interpreter_floor(args.runs)

        peers.compare("run --rm busybox true, --network none", ["run", "--rm", "--network", "none", image, "true"])
        peers.compare("run --rm busybox true, default bridge", ["run", "--rm", image, "true"])

        port_args = ["run", "-d", "--name", "cli-bench-port", "-p", "127.0.0.1:18093:80", image, "sleep", "60"]
        peers.compare("run -d -p busybox sleep, then rm -f", port_args, then=["rm", "-f", "cli-bench-port"])

        def populate(count: int) -> None:
            have = len(subprocess.run([*cli, "ps", "-aq"], capture_output=True, text=True, check=True).stdout.split())
            for _i in range(have, count):
                subprocess.run([*cli, "create", *labels, "--network", "none", image, "true"], check=True,
                               stdout=subprocess.DEVNULL, env=peers.served_env)
                if docker:
                    subprocess.run(["docker", "create", *labels, "--network", "none", image, "true"], check=True,
                                   stdout=subprocess.DEVNULL)

        for count in (10, args.many):
            populate(count)
            subprocess.run([*cli, "run", "-d", "--name", "cli-bench-inspect", "--network", "none", image, "sleep",
                            "600"], check=True, stdout=subprocess.DEVNULL)
            if docker:
                subprocess.run(["docker", "run", "-d", "--name", "cli-bench-inspect", "--network", "none", image,
                                "sleep", "600"], check=True, stdout=subprocess.DEVNULL)
            for verb in (["ps", "-a"], ["images"], ["info"], ["inspect", "cli-bench-inspect"]):
                peers.compare(f"{' '.join(verb)} ({count + 1} containers)", verb)
            subprocess.run([*cli, "rm", "-f", "cli-bench-inspect"], check=True, stdout=subprocess.DEVNULL)
            if docker:
                subprocess.run(["docker", "rm", "-f", "cli-bench-inspect"], check=True, stdout=subprocess.DEVNULL)

        print("where the time goes (PYCONTAINER_TRACE=1; the interpreter's start comes before these):")
        peers.trace("run --rm --network none busybox true", ["run", "--rm", "--network", "none", image, "true"])
        peers.trace("run --rm busybox true (bridge)", ["run", "--rm", image, "true"])
        peers.trace(f"ps -a ({args.many} containers)", ["ps", "-a"])
    finally:
        ids = subprocess.run([*cli, "ps", "-aq"], capture_output=True, text=True, check=False).stdout.split()
        if ids:
            subprocess.run([*cli, "rm", "-f", *ids], capture_output=True, check=False)
        if docker:
            ids = subprocess.run(["docker", "ps", "-aq", "--filter", "label=pycontainer-cli-bench=1"],
                                 capture_output=True, text=True, check=False).stdout.split()
            ids += ["cli-bench-inspect", "cli-bench-port"]
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, check=False)
        registry.stop()
        time.sleep(1.5)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
