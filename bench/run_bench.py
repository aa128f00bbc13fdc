"""Container start-up and supervision cost (prints figures; not a test).

    .venv/bin/python bench/run_bench.py [--runs 20] [--containers 100] [--skip-docker]

- ``run --rm busybox true``: median (and min/p90) of N runs with ``--network none`` and with the default
  network, plus the first run of a fresh engine root (which also starts the monitor);
- 100 containers started one after another with ``run -d``: total and per-container time;
- memory of supervision (PSS of the monitor, from /proc/<pid>/smaps_rollup) with 1 and with 100 running
  containers: total per container and the marginal cost of one more;
- the same ``run --rm`` with Docker when ``docker`` is installed and its daemon answers.

It starts its own registry on a free loopback port and seeds busybox there (as the tests do), with docker.io
blocked, so nothing leaves the machine.
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


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.decode()}")
    return elapsed


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return (f"median {statistics.median(samples):.3f} s  min {ordered[0]:.3f} s  p90 {p90:.3f} s  "
            f"(n={len(samples)})")


def pss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def monitor_pids(root: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(b"supervision.monitor import main" in a for a in argv) and root.encode() in argv:
            found.append(int(entry))
    return found


def main() -> int:
    as_installed()
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--containers", type=int, default=100)
    parser.add_argument("--skip-docker", action="store_true")
    args = parser.parse_args()

    from tests.fixtures.images import seed_busybox
    from tests.fixtures.registry import Registry, free_port

    work = tempfile.mkdtemp(prefix="pycontainer-bench-")
    registry = Registry(os.path.join(work, "registry"), free_port())
    registry.start()
    root = os.path.join(work, "root")
    try:
        seed_busybox(registry.host)
        config = os.path.join(work, "engine.json")
        with open(config, "w") as f:
            json.dump({"registry_mirrors": [f"http://{registry.host}"], "blocked_registries": ["docker.io"],
                       "log_file": ""}, f)
        cli = [PYCONTAINER, "--root", root, "--config", config]
        subprocess.run([*cli, "pull", "-q", "busybox"], check=True, stdout=subprocess.DEVNULL)
        time.sleep(1.5)  # no monitor yet: the first run starts one
        first = timed([*cli, "run", "--rm", "--network", "none", "busybox", "true"])
        print(f"first run (starts the monitor):        {first:.3f} s")
        for label, extra in (("--network none", ["--network", "none"]), ("default network", [])):
            try:
                samples = [timed([*cli, "run", "--rm", *extra, "busybox", "true"]) for _i in range(args.runs)]
            except SystemExit as exc:
                print(f"run --rm busybox true, {label}: not measured ({exc})")
                continue
            print(f"run --rm busybox true, {label:16s} {summary(samples)}")

        start = time.perf_counter()
        timed([*cli, "run", "-d", "--network", "none", "busybox", "sleep", "3600"])
        pids = monitor_pids(root)
        one = pss_kib(pids[0]) if pids else 0
        for _i in range(args.containers - 1):
            timed([*cli, "run", "-d", "--network", "none", "busybox", "sleep", "3600"])
        total = time.perf_counter() - start
        print(f"{args.containers} containers started one after another: {total:.2f} s "
              f"({total / args.containers * 1000:.0f} ms each)")
        pids = monitor_pids(root)
        many = sum(pss_kib(p) for p in pids)
        print(f"supervision PSS: monitor with 1 container {one / 1024:.1f} MiB; with {args.containers} "
              f"{many / 1024:.1f} MiB = {many / args.containers / 1024:.2f} MiB per container; marginal "
              f"{(many - one) / max(args.containers - 1, 1):.0f} KiB per additional container "
              f"({len(pids)} monitor process(es))")
        ids = subprocess.run([*cli, "ps", "-q"], capture_output=True, text=True, check=True).stdout.split()
        start = time.perf_counter()
        subprocess.run([*cli, "rm", "-f", *ids], stdout=subprocess.DEVNULL, check=True)
        print(f"rm -f of {len(ids)} running containers: {time.perf_counter() - start:.2f} s")

        if not args.skip_docker and shutil.which("docker"):
            if subprocess.run(["docker", "image", "inspect", "busybox"], capture_output=True,
                              check=False).returncode == 0:
                samples = [timed(["docker", "run", "--rm", "--network", "none", "busybox", "true"])
                           for _i in range(args.runs)]
                print(f"docker run --rm busybox true, --network none: {summary(samples)}")
                samples = [timed(["docker", "run", "--rm", "busybox", "true"]) for _i in range(args.runs)]
                print(f"docker run --rm busybox true, default network: {summary(samples)}")
            else:
                print("docker: busybox not present locally; not measured (no pulls from the internet)")
        else:
            print("docker: not installed (or skipped)")
    finally:
        subprocess.run([PYCONTAINER, "--root", root, "rm", "-f", *subprocess.run(
            [PYCONTAINER, "--root", root, "ps", "-aq"], capture_output=True, text=True, check=False).stdout.split()],
            capture_output=True, check=False)
        registry.stop()
        time.sleep(1.5)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
