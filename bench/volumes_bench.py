"""What user mounts cost a container start, and what volume operations cost (medians of N runs).

    sudo .venv/bin/python bench/volumes_bench.py [runs]

- launcher.start + wait of `true` in a busybox rootfs with no mounts, 5 binds (2 read-only), 5 tmpfs;
- the first start on an empty volume that copies up 1000 small files (Docker's population), vs later starts;
- VolumeService.create / prepare_mounts / release / remove, in-process.

Prints figures only; nothing here is asserted by the test suite.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time

PKG = "ansible_collections.pycontainer.engine.plugins.module_utils"


def make_rootfs(root: str, files: int = 0) -> None:
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "seed"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy2("/bin/busybox", os.path.join(root, "bin/busybox"))
    for applet in ("sh", "true"):
        os.symlink("busybox", os.path.join(root, "bin", applet))
    for i in range(files):
        sub = os.path.join(root, "seed", f"d{i // 100}")
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, f"f{i}"), "w") as f:
            f.write("x" * 512)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    from importlib import import_module

    launcher = import_module(f"{PKG}.runtime.launcher")
    spec_mod = import_module(f"{PKG}.runtime.spec")
    ContainerSpec, ProcessSpec, MountSpec = spec_mod.ContainerSpec, spec_mod.ProcessSpec, spec_mod.MountSpec

    def measure(tmp: str, mounts: list, fresh_volume: str | None = None) -> list[float]:
        spec = ContainerSpec(id="b" * 64, hostname="bench", lower_dirs=[f"{tmp}/layer"], container_dir=f"{tmp}/ctr",
                             process=ProcessSpec(args=["true"], env=["PATH=/bin"]), mounts=mounts)
        spec.cgroup = None
        devnull = os.open("/dev/null", os.O_WRONLY)
        times = []
        for _i in range(runs + 1):  # the first run warms caches and is dropped
            if fresh_volume:
                shutil.rmtree(fresh_volume)
                os.mkdir(fresh_volume)
            t = time.perf_counter()
            proc = launcher.start(spec, None, devnull, devnull)
            code = launcher.wait(proc)
            launcher.cleanup(spec)
            times.append(time.perf_counter() - t)
            assert code == 0, code
        os.close(devnull)
        return times[1:]

    with tempfile.TemporaryDirectory(prefix="volumes-bench-") as tmp:
        make_rootfs(f"{tmp}/layer", files=1000)
        for i in range(5):
            os.makedirs(f"{tmp}/host{i}")
        os.makedirs(f"{tmp}/vol")
        binds = [MountSpec("bind", f"{tmp}/host{i}", f"/mnt/b{i}", read_only=i < 2) for i in range(5)]
        tmpfs = [MountSpec("tmpfs", "", f"/mnt/t{i}", options=["nosuid", "nodev", "size=1048576"]) for i in range(5)]
        copy = [MountSpec("bind", f"{tmp}/vol", "/seed", recursive=False, copy_up=True)]
        rows = {
            "no mounts": measure(tmp, []),
            "5 binds (2 :ro)": measure(tmp, binds),
            "5 tmpfs": measure(tmp, tmpfs),
            "volume, already populated": measure(tmp, copy),
            "volume, copy-up of 1000 files": measure(tmp, copy, fresh_volume=f"{tmp}/vol"),
        }
    base = statistics.median(rows["no mounts"])
    for name, times in rows.items():
        med = statistics.median(times)
        print(f"start+wait `true`, {name:30s}: {med * 1000:6.1f} ms median (+{(med - base) * 1000:5.1f} ms), "
              f"n={runs}")

    config_mod = import_module(f"{PKG}.config")
    events_mod = import_module(f"{PKG}.events")
    volumes = import_module(f"{PKG}.runtime.volumes")
    with tempfile.TemporaryDirectory(prefix="volumes-bench-") as root:
        svc = volumes.VolumeService(config_mod.EngineConfig(root=root), events_mod.EventJournal(f"{root}/events"))
        timings: dict[str, list[float]] = {"create": [], "inspect": [], "remove": []}
        for i in range(runs):
            t = time.perf_counter()
            svc.create(f"vol{i}")
            timings["create"].append(time.perf_counter() - t)
            t = time.perf_counter()
            svc.inspect(f"vol{i}")
            timings["inspect"].append(time.perf_counter() - t)
        t = time.perf_counter()
        svc.list()
        t_list = time.perf_counter() - t
        for i in range(runs):
            t = time.perf_counter()
            svc.remove(f"vol{i}")
            timings["remove"].append(time.perf_counter() - t)
    for name, times in timings.items():
        print(f"VolumeService.{name:8s}: {statistics.median(times) * 1e6:7.0f} µs median, n={runs}")
    print(f"VolumeService.list of {runs} volumes: {t_list * 1e6:7.0f} µs")


if __name__ == "__main__":
    main()
