"""The leak check itself must see what it is there to catch."""

from __future__ import annotations

import subprocess

from tests.leakcheck import HostState


def test_leak_check_sees_a_left_mount_and_a_left_process(tmp_path):
    before = HostState.capture()
    target = tmp_path / "m"
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "leaktest", str(target)], check=True)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        leaks = HostState.capture().leaks_since(before)
        assert any(str(target) in m for m in leaks.get("mounts", []))
        assert (sleeper.pid, "sleep") in leaks.get("processes", [])
    finally:
        sleeper.kill()
        sleeper.wait()
        subprocess.run(["umount", str(target)], check=True)
    assert HostState.capture().leaks_since(before) == {}
