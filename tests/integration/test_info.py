"""`info` and `version` report what the host and the store really are."""

from __future__ import annotations

import json
import os
import platform


def _host_cgroup_version() -> str:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == "/sys/fs/cgroup":
                return "2" if fields[fields.index("-") + 1] == "cgroup2" else "1"
    return "1"


def test_info_json_matches_the_host_and_the_store(cli, busybox_image):
    cli("pull", "-q", busybox_image, check=True)
    cli("run", "--name", "stopped", busybox_image, "true", check=True)
    info = json.loads(cli("info", "--format", "json", check=True).stdout)
    assert info["NCPU"] == len(os.sched_getaffinity(0))
    with open("/proc/meminfo") as f:
        assert info["MemTotal"] == int(f.readline().split()[1]) * 1024
    assert info["KernelVersion"] == platform.release() and info["Architecture"] == platform.machine()
    assert info["CgroupVersion"] == _host_cgroup_version()
    assert (info["Containers"], info["ContainersRunning"], info["ContainersStopped"], info["Images"]) == (1, 0, 1, 1)
    assert info["DockerRootDir"] == cli.root
    assert info["RegistryConfig"]["Mirrors"] == [f"http://{busybox_image.split('/')[0]}"]
    again = json.loads(cli("info", "--format", "json", check=True).stdout)
    assert again["ID"] == info["ID"]  # stable for an engine root
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        forwarding = f.read().strip() == "1"
    assert ("WARNING: IPv4 forwarding is disabled" in info["Warnings"]) == (not forwarding)


def test_info_text_and_template(cli):
    text = cli("info", check=True)
    assert " Cgroup Version: " + _host_cgroup_version() in text.stdout.splitlines()
    assert " Storage Driver: overlay2" in text.stdout
    assert cli("info", "--format", "{{.OSType}}/{{.Architecture}}", check=True).stdout == (
        f"linux/{platform.machine()}\n")
    assert cli("system", "info", "--format", "{{.CgroupDriver}}", check=True).stdout == "cgroupfs\n"


def test_version(cli):
    version = json.loads(cli("version", "--format", "json", check=True).stdout)
    assert version["Server"]["KernelVersion"] == platform.release()
    assert version["Client"]["PythonVersion"] == platform.python_version()  # the CLI runs on this venv
    assert "Server: pycontainer engine" in cli("version", check=True).stdout
