"""``--network container:<name|id>``: a container joining the network namespace of a running one (Docker's
semantics): same interfaces and address, the target's /etc files, loopback shared; conflicting options and a
stopped target refused; the joiner outliving its target; nothing left behind."""

from __future__ import annotations

import os
import re

import pytest

from tests.integration import test_network
from tests.integration.test_network import NetCli, links, nft_table_exists, wait_for

net_cli = test_network.net_cli  # the fixture: own bridge, subnets and nftables table per test

pytestmark = pytest.mark.integration


def netns_of(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/ns/net")


def http_get(cli: NetCli, container: str, host: str, port: int, path: str = "/hostname") -> str:
    script = f"printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {host} {port}"
    out = cli("exec", container, "sh", "-c", script, check=True).stdout
    return re.split(r"\r?\n\r?\n", out, maxsplit=1)[-1]


def test_joiner_shares_interfaces_address_and_loopback(net_cli: NetCli):
    target = net_cli.start("--name", "web", "--hostname", "webhost", net_cli.image,
                           "httpd", "-f", "-p", "127.0.0.1:8081", "-h", "/etc")
    joiner = net_cli.start("--name", "side", "--network", "container:web", net_cli.image, "sleep", "600")
    assert netns_of(net_cli.pid_of("web")) == netns_of(net_cli.pid_of("side"))
    ip = net_cli.ip_of("web")
    addrs = net_cli("exec", "side", "ip", "-4", "-o", "addr", check=True).stdout
    assert re.search(rf"eth0\s+inet {re.escape(ip)}/24", addrs), addrs
    assert sorted(net_cli("exec", "side", "ls", "/sys/class/net", check=True).stdout.split()) == \
        sorted(net_cli("exec", "web", "ls", "/sys/class/net", check=True).stdout.split())
    # The target's server on ITS loopback answers the joiner's 127.0.0.1.
    body = wait_for(lambda: _try(lambda: http_get(net_cli, "side", "127.0.0.1", 8081)), what="httpd")
    assert body.strip() == "webhost"
    wget = net_cli("exec", "side", "wget", "-qO-", "http://127.0.0.1:8081/hostname")
    assert wget.returncode == 0 and wget.stdout.strip() == "webhost", wget.stderr
    # Docker: the target's hostname and /etc files.
    assert net_cli("exec", "side", "hostname", check=True).stdout.strip() == "webhost"
    assert net_cli("exec", "side", "cat", "/etc/hosts", check=True).stdout == \
        net_cli("exec", "web", "cat", "/etc/hosts", check=True).stdout
    assert net_cli("exec", "side", "cat", "/etc/resolv.conf", check=True).stdout == \
        net_cli("exec", "web", "cat", "/etc/resolv.conf", check=True).stdout
    info = net_cli.inspect("side")
    assert info["HostConfig"]["NetworkMode"] == f"container:{target}"
    assert info["NetworkSettings"]["Networks"] == {}
    rows = net_cli("ps", "--format", "{{.Names}} [{{.Networks}}]", check=True).stdout.splitlines()
    assert "side []" in rows and "web [bridge]" in rows
    # The joiner going away does not disturb the target.
    net_cli("rm", "-f", joiner, check=True)
    assert net_cli.inspect("web")["State"]["Running"]
    assert net_cli.ip_of("web") == ip
    out = net_cli("exec", "web", "ip", "-4", "-o", "addr", "show", "eth0", check=True).stdout
    assert out.count(f"inet {ip}/24") == 1


def _try(fn):
    try:
        return fn()
    except AssertionError:
        return ""


def test_joiner_keeps_the_namespace_when_the_target_goes(net_cli: NetCli):
    net_cli.start("--name", "web", net_cli.image, "sleep", "600")
    net_cli.start("--name", "side", "--network", "container:web", net_cli.image, "sleep", "600")
    ns = netns_of(net_cli.pid_of("side"))
    net_cli("rm", "-f", "web", check=True)
    assert net_cli.inspect("side")["State"]["Running"]
    assert netns_of(net_cli.pid_of("side")) == ns
    assert "lo" in net_cli("exec", "side", "ls", "/sys/class/net", check=True).stdout.split()
    net_cli("rm", "-f", "side", check=True)
    wait_for(lambda: net_cli.bridge not in links() and not nft_table_exists(net_cli.table), what="cleanup")


def test_joining_a_stopped_or_missing_container_is_refused(net_cli: NetCli):
    net_cli("create", "--name", "idle", net_cli.image, "sleep", "600", check=True)
    proc = net_cli("run", "-d", "--name", "j1", "--network", "container:idle", net_cli.image, "sleep", "600")
    assert proc.returncode == 125
    assert "cannot join network of a non running container" in proc.stderr
    assert not net_cli.inspect("j1")["State"]["Running"]
    proc = net_cli("run", "--rm", "--network", "container:nosuch", net_cli.image, "true")
    assert proc.returncode == 125 and "No such container: nosuch" in proc.stderr
    # Started later, once the target runs, it works.
    net_cli("start", "idle", check=True)
    net_cli("start", "j1", check=True)
    assert netns_of(net_cli.pid_of("j1")) == netns_of(net_cli.pid_of("idle"))


@pytest.mark.parametrize(("flags", "message"), [
    (["-p", "8080:80"], "conflicting options: port publishing and the container type network mode"),
    (["-P"], "conflicting options: port publishing and the container type network mode"),
    (["--expose", "80"], "conflicting options: port exposing and the container type network mode"),
    (["--hostname", "x"], "conflicting options: hostname and the network mode"),
    (["--dns", "192.0.2.53"], "conflicting options: dns and the network mode"),
    (["--add-host", "a:192.0.2.1"], "conflicting options: custom host-to-IP mapping and the network mode"),
    (["--ip", "10.1.2.3"], "user specified IP address is supported on user defined networks only"),
    (["--mac-address", "02:42:00:00:00:01"], "conflicting options: mac-address and the network mode"),
])
def test_conflicting_options_are_refused(net_cli: NetCli, flags, message):
    net_cli.start("--name", "web", net_cli.image, "sleep", "600")
    proc = net_cli("run", "-d", "--name", "bad", "--network", "container:web", *flags, net_cli.image, "true")
    assert proc.returncode == 125, proc.stderr
    assert message in proc.stderr
    assert net_cli("ps", "-aq", "--filter", "name=bad", check=True).stdout.strip() == ""
