"""Time launcher.start + wait of `true` in a busybox rootfs (median of N runs), plus import costs.

    sudo .venv/bin/python bench/launcher_bench.py [runs]

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


def make_rootfs(root: str) -> None:
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy2("/bin/busybox", os.path.join(root, "bin/busybox"))
    for applet in ("sh", "true"):
        os.symlink("busybox", os.path.join(root, "bin", applet))


def import_time(module: str) -> float:
    """Wall time of a fresh interpreter importing ``module`` minus one importing nothing (median of 5)."""
    def once(code: str) -> float:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - t
    base = statistics.median(once("pass") for _i in range(5))
    return statistics.median(once(f"import {module}") for _i in range(5)) - base


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    pkg = "ansible_collections.pycontainer.engine.plugins.module_utils"
    t0 = time.perf_counter()
    from ansible_collections.pycontainer.engine.plugins.module_utils.runtime import launcher
    from ansible_collections.pycontainer.engine.plugins.module_utils.runtime.spec import (
        ContainerSpec,
        ProcessSpec,
    )
    t_import = time.perf_counter() - t0

    from ansible_collections.pycontainer.engine.plugins.module_utils.linux import seccomp

    def measure(tmp: str, seccomp_on: bool, cgroup_on: bool) -> tuple[list[float], list[float]]:
        spec = ContainerSpec(id="b" * 64, hostname="bench", lower_dirs=[f"{tmp}/layer"],
                             container_dir=f"{tmp}/ctr",
                             process=ProcessSpec(args=["true"], env=["PATH=/bin"]))
        if not cgroup_on:
            spec.cgroup = None
        if seccomp_on:
            spec.process.seccomp = seccomp.docker_default_profile()
        devnull = os.open("/dev/null", os.O_WRONLY)
        times, starts = [], []
        for _i in range(runs + 1):  # the first run warms caches and is dropped
            seccomp._bpf_cache.clear()  # each CLI run compiles the filter once
            t = time.perf_counter()
            proc = launcher.start(spec, None, devnull, devnull)
            t_started = time.perf_counter()
            code = launcher.wait(proc)
            launcher.cleanup(spec)
            times.append(time.perf_counter() - t)
            starts.append(t_started - t)
            assert code == 0, code
        os.close(devnull)
        return times[1:], starts[1:]

    with tempfile.TemporaryDirectory(prefix="launcher-bench-") as tmp:
        make_rootfs(f"{tmp}/layer")
        variants = {}
        for name, sc, cg in (("bare (no seccomp, no cgroup)", False, False), ("cgroup only", False, True),
                             ("seccomp only", True, False), ("seccomp + cgroup (default)", True, True)):
            variants[name] = measure(tmp, sc, cg)
        times, starts = variants["seccomp + cgroup (default)"]
        t0 = time.perf_counter()
        seccomp._bpf_cache.clear()
        seccomp.compile_bpf(seccomp.docker_default_profile(), {"CAP_CHOWN"})
        t_compile = time.perf_counter() - t0

    print(f"launcher import (in-process, first)  : {t_import * 1000:6.1f} ms")
    print(f"import runtime.launcher (fresh python): {import_time(pkg + '.runtime.launcher') * 1000:6.1f} ms")
    print(f"start (fork..exec confirmed), median : {statistics.median(starts) * 1000:6.1f} ms")
    print(f"start+wait+cleanup `true`, median    : {statistics.median(times) * 1000:6.1f} ms "
          f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}, n={runs})")
    print(f"seccomp default profile compile (libseccomp, per start): {t_compile * 1000:6.1f} ms")
    for name, (vt, vs) in variants.items():
        print(f"  {name:32s}: start {statistics.median(vs) * 1000:6.1f} ms, "
              f"start+wait+cleanup {statistics.median(vt) * 1000:6.1f} ms")


if __name__ == "__main__":
    main()
