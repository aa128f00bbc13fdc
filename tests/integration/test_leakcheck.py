"""The leak check itself must see what it is there to catch."""

from __future__ import annotations

import json
import os
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


# On a fresh host /run/netns does not exist; the first `ip netns add` creates it as a mount and keeps it.
# Run in a mount namespace with a new, empty /run, as on a freshly booted machine.
FIRST_NETNS = r"""
set -e
mount -t tmpfs tmpfs /run
python3 - "$@" <<'PY'
import json, subprocess, sys
sys.path.insert(0, sys.argv[1])
from tests.leakcheck import HostState
before = HostState.capture()
subprocess.run(["ip", "netns", "add", "leakcheck-first"], check=True)
with_ns = HostState.capture().leaks_since(before)
subprocess.run(["ip", "netns", "delete", "leakcheck-first"], check=True)
after = HostState.capture().leaks_since(before)
print(json.dumps({"mounts": sorted(with_ns.get("mounts", [])), "netns": sorted(with_ns.get("netns", [])),
                  "after": after}))
PY
"""


def test_leak_check_tolerates_the_hosts_first_netns_mount_but_not_a_namespace():
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", FIRST_NETNS, "sh", repo],
                         capture_output=True, text=True, check=True).stdout.strip()
    seen = json.loads(out)
    mounts = seen["mounts"]
    assert seen["netns"] == ["leakcheck-first"]
    assert any(m.endswith(" /run/netns/leakcheck-first") for m in mounts)  # the namespace itself is a leak
    assert not any(m.endswith(" /run/netns") for m in mounts)
    assert seen["after"] == {}
