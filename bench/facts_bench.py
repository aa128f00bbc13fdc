"""Listing and facts commands on a big store (prints figures; not a test).

    .venv/bin/python bench/facts_bench.py [--containers 1000] [--images 50] [--runs 5]

Fills a fresh engine root with N containers (all but 5% of them exited) and M images, then times the CLI:
`ps -a`, `images`, `system df` and `events --since 1h --until now` (median of --runs), side by side with
Docker's when a Docker daemon answers. Containers are created through the engine API and most are marked
exited the way the monitor records an exit (state only: starting 1,000 processes would measure `run`, not
listing). Images are imported from small generated rootfs tarballs. A loopback registry seeded with busybox
provides the base image, docker.io blocked: nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from bench.installed import as_installed  # noqa: E402

PYCONTAINER = os.path.join(os.path.dirname(sys.executable), "pycontainer")


def rootfs_tarball(path: str, n: int) -> None:
    with tarfile.open(path, "w") as tar:
        data = f"image {n}\n".encode() * 100
        info = tarfile.TarInfo(f"etc/bench-{n}")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def median_time(argv: list[str], runs: int) -> float:
    samples = []
    for _i in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        samples.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.decode()}")
    return statistics.median(samples)


def follow_latency(cli: list[str], engine) -> float:
    """Seconds from an event being recorded (here) to `events` (following in another process) printing it."""
    import select

    follower = subprocess.Popen([*cli, "events", "--filter", "type=volume", "--format", "{{.Actor.ID}}"],
                                stdout=subprocess.PIPE, text=True)
    samples = []
    try:
        time.sleep(1.0)  # the follower has started watching
        for n in range(5):
            start = time.perf_counter()
            engine.events.record("volume", "create", f"probe{n}")
            ready, _writable, _exceptional = select.select([follower.stdout], [], [], 10)
            if not ready or follower.stdout.readline().strip() != f"probe{n}":
                raise SystemExit("events follow did not deliver the probe event")
            samples.append(time.perf_counter() - start)
    finally:
        follower.terminate()
        follower.wait()
    return statistics.median(samples)


def docker_available() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def main() -> None:
    as_installed()
    parser = argparse.ArgumentParser()
    parser.add_argument("--containers", type=int, default=1000)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the filled engine root (its path is printed)")
    args = parser.parse_args()

    from ansible_collections.pycontainer.engine.plugins.module_utils.config import load_config
    from ansible_collections.pycontainer.engine.plugins.module_utils.container.options import CreateOptions
    from ansible_collections.pycontainer.engine.plugins.module_utils.engine import Engine
    from ansible_collections.pycontainer.engine.plugins.module_utils.records.hostconfig import HostConfig
    from ansible_collections.pycontainer.engine.plugins.module_utils.timefmt import utc_now_rfc3339

    from tests.fixtures.images import seed_busybox
    from tests.fixtures.registry import Registry, free_port

    work = tempfile.mkdtemp(prefix="pycontainer-facts-bench-")
    registry = Registry(os.path.join(work, "registry"), free_port())
    registry.start()
    try:
        seed_busybox(registry.host)
        root, config_path = os.path.join(work, "root"), os.path.join(work, "engine.json")
        with open(config_path, "w") as f:
            json.dump({"registry_mirrors": [f"http://{registry.host}"], "blocked_registries": ["docker.io"],
                       "log_file": os.path.join(work, "engine.log")}, f)
        engine = Engine(load_config(config_path, root=root))
        engine.images.pull("busybox")
        for n in range(args.images - 1):
            tarball = os.path.join(work, f"rootfs-{n}.tar")
            rootfs_tarball(tarball, n)
            engine.images.import_image(tarball, f"bench/img{n}:v1")
        start = time.perf_counter()
        for n in range(args.containers):
            record = engine.containers.create(CreateOptions(
                image="busybox", name=f"c{n}", command=["true"], host_config=HostConfig(network_mode="none")))
            if n % 20:  # 95% exited, as `run` leaves them
                state = record.state
                state.status, state.exit_code = "exited", n % 3
                state.started_at = state.finished_at = utc_now_rfc3339()
                engine.containers.store.save_state(record)
        fill = time.perf_counter() - start
        print(f"store: {args.containers} containers ({args.containers - args.containers // 20} exited), "
              f"{len(engine.images.list())} images; filled in {fill:.1f} s")

        cli = [PYCONTAINER, "--root", root, "--config", config_path]
        commands = {
            "ps -a": ["ps", "-a"],
            "images": ["images"],
            "system df": ["system", "df"],
            "events --since 1h --until now": ["events", "--since", "1h", "--until", f"{time.time():.0f}"],
        }
        have_docker = docker_available()
        print(f"{'command':32} {'pycontainer':>12} {'docker':>10}   (median of {args.runs}, target <= 0.200 s)")
        for label, argv in commands.items():
            ours = median_time(cli + argv, args.runs)
            theirs = f"{median_time(['docker', *argv], args.runs):9.3f}s" if have_docker else "       n/a"
            print(f"{label:32} {ours:11.3f}s {theirs}")
        print(f"events follow: another process's event shows up after {follow_latency(cli, engine) * 1000:.1f} ms "
              "(median of 5; target <= 1000 ms)")
        if not have_docker:
            print("docker: no daemon answers here, so no Docker figures")
    finally:
        registry.stop()
        if args.keep:
            print(f"kept: --root {os.path.join(work, 'root')} --config {os.path.join(work, 'engine.json')}")
        else:
            subprocess.run(["rm", "-rf", work], check=False)


if __name__ == "__main__":
    main()
