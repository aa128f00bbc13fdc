"""Networking figures: `run -d` with one published port vs. without networking, and HTTP throughput to busybox
httpd through the published port (127.0.0.1:PORT and the host's address) vs. directly to the container's address.

    sudo .venv/bin/python bench/net_bench.py [runs] [--registry HOST:PORT]

Needs busybox in a registry (`make demo` seeds 127.0.0.1:5000; default). Uses its own engine root, bridge,
subnet and nftables table; removes everything at the end. Traffic stays on this machine (loopback, the host's
own address, the container's bridge). Prints figures only; nothing here is asserted by the test suite.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

PYCONTAINER = os.path.join(os.path.dirname(sys.executable), "pycontainer")
REQUEST = b"GET /hostname HTTP/1.0\r\nHost: bench\r\n\r\n"


def cli(root: str, config: str, *args: str) -> str:
    proc = subprocess.run([PYCONTAINER, "--root", root, "--config", config, *args], capture_output=True, text=True,
                          check=False)
    if proc.returncode:
        raise SystemExit(f"pycontainer {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def timed(root: str, config: str, *args: str) -> float:
    t = time.perf_counter()
    cli(root, config, *args)
    return time.perf_counter() - t


def _client(args: tuple[str, int, float]) -> int:
    """HTTP/1.0 requests (a new connection each, as busybox httpd closes them) until the deadline.

    Each connection ends with a reset once the server's FIN is in: the server's side then keeps no TIME_WAIT,
    whose collisions with quickly reused client ports otherwise cost 1 s SYN retransmits on every path and
    drown the figures in noise.
    """
    host, port, seconds = args
    done = 0
    linger = struct.pack("ii", 1, 0)
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        with socket.create_connection((host, port), timeout=5) as s:
            s.sendall(REQUEST)
            while s.recv(65536):
                pass
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        done += 1
    return done


def throughput(host: str, port: int, seconds: float = 3.0, clients: int = 4) -> float:
    with multiprocessing.Pool(clients) as pool:
        counts = pool.map(_client, [(host, port, seconds)] * clients)
    return sum(counts) / seconds


def host_address() -> str:
    out = subprocess.run(["ip", "-4", "-o", "route", "get", "192.0.2.1"], capture_output=True, text=True,
                         check=False).stdout
    words = out.split()
    return words[words.index("src") + 1]


def docker_side_by_side(registry: str, base: float) -> None:
    """The same container under Docker (its userland proxy answers at 127.0.0.1), when a daemon runs."""
    if not shutil.which("docker") or subprocess.run(["docker", "info"], capture_output=True, check=False).returncode:
        print("docker: no running daemon, no side-by-side figure")
        return
    image = f"{registry}/library/busybox:latest"
    name = "pycontainer-netbench"
    subprocess.run(["docker", "pull", "-q", image], capture_output=True, check=True)
    subprocess.run(["docker", "run", "-d", "--name", name, "-p", "18080:80", image, "httpd", "-f", "-p", "80",
                    "-h", "/etc"], capture_output=True, check=True)
    try:
        time.sleep(0.5)
        rate = statistics.median(throughput("127.0.0.1", 18080) for _i in range(3))
        print(f"{'docker 127.0.0.1:18080':28s} {rate:8.0f} req/s  ({rate / base * 100:5.1f}% of our direct)")
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def main() -> None:
    argv = sys.argv[1:]
    registry = "127.0.0.1:5000"
    if "--registry" in argv:
        i = argv.index("--registry")
        registry = argv[i + 1]
        del argv[i:i + 2]
    runs = int(argv[0]) if argv else 15
    tmp = tempfile.mkdtemp(prefix="pycontainer-netbench-")
    root, config = os.path.join(tmp, "root"), os.path.join(tmp, "engine.json")
    with open(config, "w") as f:
        json.dump({"registry_mirrors": [f"http://{registry}"], "blocked_registries": ["docker.io"],
                   "bridge_name": "pcbench0", "bridge_subnet": "10.213.0.0/24", "nft_table": "pcbench",
                   "log_file": ""}, f)
    try:
        cli(root, config, "pull", "-q", "busybox")
        figures: dict[str, float] = {}
        for label, extra in (("run -d --network none", ["--network", "none"]),
                             ("run -d (bridge)", []),
                             ("run -d -p 8080:80", ["-p", "8080:80"])):
            times = []
            for i in range(runs + 1):  # the first run warms caches (and starts the monitor): dropped
                times.append(timed(root, config, "run", "-d", "--name", f"b{i}", *extra, "busybox", "sleep", "60"))
                cli(root, config, "rm", "-f", f"b{i}")
            figures[label] = statistics.median(times[1:])
            print(f"{label:28s} median {figures[label] * 1000:6.1f} ms  (min {min(times[1:]) * 1000:.1f}, "
                  f"{runs} runs)")
        # Same shape kept running: the bridge stays up, so this is the per-container cost alone.
        cli(root, config, "run", "-d", "--name", "keeper", "busybox", "sleep", "300")
        times = []
        for i in range(runs + 1):
            times.append(timed(root, config, "run", "-d", "--name", f"k{i}", "-p", "8080:80", "busybox", "sleep",
                               "60"))
            cli(root, config, "rm", "-f", f"k{i}")
        print(f"{'run -d -p 8080:80 (bridge up)':28s} median {statistics.median(times[1:]) * 1000:6.1f} ms")
        t = time.perf_counter()
        cli(root, config, "rm", "-f", "keeper")
        print(f"{'rm -f of the last container':28s} {(time.perf_counter() - t) * 1000:6.1f} ms "
              "(bridge and table removed with it)")

        cli(root, config, "run", "-d", "--name", "web", "-p", "8080:80", "busybox", "httpd", "-f", "-p", "80",
            "-h", "/etc")
        direct = json.loads(cli(root, config, "inspect", "web"))[0]["NetworkSettings"]["IPAddress"]
        time.sleep(0.3)
        results = {}
        for label, host, port in (("direct to container", direct, 80), ("mapped 127.0.0.1:8080", "127.0.0.1", 8080),
                                  (f"mapped {host_address()}:8080", host_address(), 8080)):
            throughput(host, port, seconds=0.5)  # warm-up
            results[label] = statistics.median(throughput(host, port) for _i in range(3))
        base = results["direct to container"]
        for label, rate in results.items():
            print(f"{label:28s} {rate:8.0f} req/s  ({rate / base * 100:5.1f}% of direct)")
        docker_side_by_side(registry, base)
        cli(root, config, "rm", "-f", "web")
    finally:
        subprocess.run([PYCONTAINER, "--root", root, "--config", config, "rm", "-f",
                        *subprocess.run([PYCONTAINER, "--root", root, "--config", config, "ps", "-aq"],
                                        capture_output=True, text=True, check=False).stdout.split()],
                       capture_output=True, check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
