"""Pull a generated ~100 MB image (5 layers of mostly incompressible data, gzip) from a loopback registry
into an empty store: wall time and peak RSS (VmHWM of the pulling process), beside `skopeo copy` to a
directory (no unpacking) and `docker pull` / `podman pull` when a working one is installed.

    sudo .venv/bin/python bench/pull_bench.py [runs] [layer_mb]

Prints figures only; nothing here is asserted by the test suite.
"""

from __future__ import annotations

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
from tests.fixtures.images import File, _skopeo_policy_args, build_oci_layout, push  # noqa: E402
from tests.fixtures.registry import Registry, free_port  # noqa: E402

_PULL = """
import sys, time
t = time.perf_counter()
from ansible_collections.pycontainer.engine.plugins.module_utils.config import EngineConfig
from ansible_collections.pycontainer.engine.plugins.module_utils.engine import Engine
Engine(EngineConfig(root=sys.argv[1], blocked_registries=["docker.io"])).images.pull(sys.argv[2])
elapsed = time.perf_counter() - t
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(elapsed, hwm)
"""


def layers(n: int, layer_mb: int) -> list[list]:
    result = []
    for i in range(n):
        # Mostly random (incompressible) files, plus a little compressible text, as real layers have.
        files = [File(f"layer{i}/blob{j}", os.urandom(layer_mb * (1 << 20) // 4)) for j in range(4)]
        files.append(File(f"layer{i}/notes.txt", "the quick brown fox\n" * 5000))
        result.append(files)
    return result


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    as_installed()
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    layer_mb = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    work = tempfile.mkdtemp(prefix="pull-bench-")
    reg = Registry(os.path.join(work, "registry"), free_port())
    os.makedirs(reg.state_dir)
    reg.start()
    try:
        built = build_oci_layout(os.path.join(work, "layout"), layers(5, layer_mb), {}, compression="gzip")
        ref = f"{reg.host}/bench/big:v1"
        push(built.path, ref)
        blob_mb = sum(os.path.getsize(os.path.join(built.path, "blobs/sha256", d[7:]))
                      for d in built.images[0].layer_digests) / 1e6
        print(f"image: 5 layers, {blob_mb:.1f} MB compressed, registry {reg.host}")

        ours, hwms = [], []
        for _i in range(runs):
            root = os.path.join(work, "root")
            shutil.rmtree(root, ignore_errors=True)
            subprocess.run(["sync"], check=True)
            t = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", _PULL, root, ref], check=True, capture_output=True,
                                 text=True, cwd=REPO).stdout.split()
            ours.append(time.perf_counter() - t)
            hwms.append(int(out[1]) / 1024)
        cli_times = []
        for _i in range(runs):
            root = os.path.join(work, "root")
            shutil.rmtree(root, ignore_errors=True)
            cfg = os.path.join(work, "engine.json")
            with open(cfg, "w") as f:
                f.write('{"blocked_registries": ["docker.io"]}')
            cli_times.append(timed([os.path.join(os.path.dirname(sys.executable), "pycontainer"), "--root", root,
                                    "--config", cfg, "pull", "-q", ref]))
        print(f"pycontainer pull (engine API, process wall): median {statistics.median(ours):.2f}s "
              f"min {min(ours):.2f}s; peak RSS (VmHWM) max {max(hwms):.1f} MB")
        print(f"pycontainer pull (CLI, incl. start-up):     median {statistics.median(cli_times):.2f}s")

        skopeo = []
        for _i in range(runs):
            dest = os.path.join(work, "skopeo-dir")
            shutil.rmtree(dest, ignore_errors=True)
            skopeo.append(timed(["skopeo", *_skopeo_policy_args(), "copy", "--quiet", "--src-tls-verify=false",
                                 f"docker://{ref}", f"dir:{dest}"]))
        print(f"skopeo copy to dir (no unpack):             median {statistics.median(skopeo):.2f}s")

        for tool in ("podman", "docker"):
            if not shutil.which(tool) or subprocess.run([tool, "info"], capture_output=True,
                                                        check=False).returncode != 0:
                print(f"{tool}: not available (no working {tool} on this machine)")
                continue
            times = []
            for _i in range(runs):
                subprocess.run([tool, "rmi", "-f", ref], capture_output=True, check=False)
                extra = ["--tls-verify=false"] if tool == "podman" else []
                times.append(timed([tool, "pull", "-q", *extra, ref]))
            subprocess.run([tool, "rmi", "-f", ref], capture_output=True, check=False)
            print(f"{tool} pull:                                 median {statistics.median(times):.2f}s")
    finally:
        reg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
