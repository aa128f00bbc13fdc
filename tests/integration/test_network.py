"""Bridge networking through the real CLI: addresses, routes, MACs, /etc files, user networks, name resolution,
the network verbs, concurrent allocation, and cleanup (after exit, rm, and a killed monitor).

Every test gets its own bridge name, subnets and nftables table (engine config), so nothing it does can touch
another engine on the host; ``net_cli`` also checks that bridge, veths and table are gone at the end.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass

import pytest

from tests.integration.helpers import Cli, free_second_octets, write_engine_config

pytestmark = pytest.mark.integration


# --- shared with test_ports.py ----------------------------------------------------------------------------

@dataclass
class NetCli(Cli):
    image: str = ""
    bridge: str = ""
    table: str = ""
    prefix: str = ""        # "10.240.17": the default bridge is prefix.0/24, its gateway prefix.1
    pool_prefix: str = ""   # user networks take /24s from pool_prefix.0/16... (first: pool_prefix.0.0/24)

    def json(self, *args: str) -> object:
        return json.loads(self(*args, check=True).stdout)

    def inspect(self, name: str) -> dict:
        return self.json("inspect", name)[0]

    def ip_of(self, name: str, network: str = "bridge") -> str:
        return self.inspect(name)["NetworkSettings"]["Networks"][network]["IPAddress"]

    def pid_of(self, name: str) -> int:
        return self.inspect(name)["State"]["Pid"]

    def start(self, *args: str) -> str:
        """run -d; returns the container ID."""
        return self("run", "-d", *args, check=True).stdout.strip()


def nft_table_exists(table: str) -> bool:
    return subprocess.run(["nft", "list", "table", "ip", table], capture_output=True, check=False).returncode == 0


def nft_table_text(table: str) -> str:
    return subprocess.run(["nft", "list", "table", "ip", table], capture_output=True, text=True, check=False).stdout


def links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def curl(url: str, netns: str | None = None, timeout: float = 5) -> str:
    cmd = ["curl", "-sS", "--max-time", str(timeout), "--noproxy", "*", url]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 5, check=False)
    assert proc.returncode == 0, f"{url}: {proc.stderr}"
    return proc.stdout


def bridge_ports(bridge: str) -> list[str]:
    return sorted(os.listdir(f"/sys/class/net/{bridge}/brif"))


def host_interface() -> str:
    out = subprocess.run(["ip", "-4", "-o", "route", "get", "192.0.2.1"], capture_output=True, text=True,
                         check=False).stdout
    words = out.split()
    return words[words.index("dev") + 1]


def host_address() -> str:
    """The host's primary IPv4 address (on its default-route interface), never loopback."""
    out = subprocess.run(["ip", "-4", "-o", "route", "get", "192.0.2.1"], capture_output=True, text=True,
                         check=False).stdout
    words = out.split()
    return words[words.index("src") + 1]


@pytest.fixture
def net_cli(engine_root, registry, busybox_image, tmp_path):
    tag = secrets.token_hex(3)
    second, third = free_second_octets(20, 220), secrets.randbelow(250)
    prefix = f"10.{second}.{third}"
    config = write_engine_config(
        str(tmp_path / "engine.json"), registry.host, bridge_name=f"pct{tag}", bridge_subnet=f"{prefix}.0/24",
        network_pool=f"10.{second + 1}.0.0/16", nft_table=f"pct_{tag}")
    cli = NetCli(root=engine_root, config=config, image=busybox_image, bridge=f"pct{tag}", table=f"pct_{tag}",
                 prefix=prefix, pool_prefix=f"10.{second + 1}")
    cli("pull", "-q", busybox_image, check=True)
    try:
        yield cli
    finally:
        ids = cli("ps", "-aq", "--no-trunc").stdout.split()
        if ids:
            cli("rm", "-f", *ids)
        cli("network", "prune", "-f")
        # Only this engine's objects: other engines (and test sessions) may share the host meanwhile.
        wait_for(lambda: cli.bridge not in links() and not nft_table_exists(cli.table)
                 and not [n for n in links() if n.startswith("br-") and _owned(cli, n)], timeout=5,
                 what="bridge, veths and nftables table to go")


def gone(cli: NetCli, *links_too: str) -> None:
    """The table, the bridge (and these links) are removed: within seconds, not before the command returns."""
    wait_for(lambda: not nft_table_exists(cli.table) and not ({cli.bridge, *links_too} & links()), timeout=5,
             what="the bridge, veths and nftables table to go after the last container")


def _owned(cli: NetCli, bridge: str) -> bool:
    try:
        with open(os.path.join(cli.root, "network", "state.json")) as f:
            return bridge in f.read()
    except FileNotFoundError:
        return False


# --- tests --------------------------------------------------------------------------------------------------

def test_bridge_container_gets_address_route_mac_and_etc_files(net_cli: NetCli):
    p = net_cli.prefix
    out = net_cli("run", "--rm", "--network", "bridge", "--hostname", "web", net_cli.image, "sh", "-c",
                  "ip -4 addr show eth0; ip route; ip link show eth0; ip link show lo; cat /etc/hosts; "
                  "cat /etc/resolv.conf", check=True).stdout
    assert f"inet {p}.2/24" in out
    assert f"default via {p}.1 dev eth0" in out
    octets = ":".join(f"{int(x):02x}" for x in p.split("."))
    assert f"link/ether 02:42:{octets}:02" in out  # Docker's MAC: 02:42 + the IPv4 address
    assert "<LOOPBACK,UP" in out
    assert f"{p}.2\tweb" in out.splitlines()
    assert "nameserver 127." not in out and "nameserver" in out
    # It exited: no bridge, no veth, no table (the monitor tidies once it has answered, and removes the bridge
    # when it leaves, idle: network/state.py's PendingCleanup and tidy).
    gone(net_cli)


def test_bridge_is_the_default_network(net_cli: NetCli):
    out = net_cli("run", "--rm", net_cli.image, "ip", "-4", "addr", "show", "eth0", check=True).stdout
    assert f"inet {net_cli.prefix}.2/24" in out


def test_dns_and_add_host(net_cli: NetCli):
    out = net_cli("run", "--rm", "--dns", "192.0.2.53", "--dns-search", "example.test", "--dns-option", "ndots:2",
                  "--add-host", "db:192.0.2.10", "--add-host", "gw:host-gateway", net_cli.image,
                  "sh", "-c", "cat /etc/resolv.conf /etc/hosts", check=True).stdout
    lines = out.splitlines()
    assert "nameserver 192.0.2.53" in lines
    assert [ln for ln in lines if ln.startswith("nameserver")] == ["nameserver 192.0.2.53"]
    assert "search example.test" in lines and "options ndots:2" in lines
    assert "192.0.2.10\tdb" in lines
    assert f"{net_cli.prefix}.1\tgw" in lines


def test_host_and_none_modes_have_no_veth(net_cli: NetCli):
    out = net_cli("run", "--rm", "--network", "none", net_cli.image, "ls", "/sys/class/net", check=True).stdout
    assert out.split() == ["lo"]
    host = set(net_cli("run", "--rm", "--network", "host", net_cli.image, "ls", "/sys/class/net",
                       check=True).stdout.split())
    assert {"lo", host_interface()} <= host and net_cli.bridge not in host
    assert net_cli.bridge not in links()


def test_user_network_name_resolution_follows_members(net_cli: NetCli):
    net_cli("network", "create", "appnet", check=True)
    net_cli.start("--name", "db", "--network", "appnet", "--network-alias", "database", net_cli.image,
                  "sleep", "60")
    net_cli.start("--name", "web", "--network", "appnet", net_cli.image, "sleep", "60")
    db_ip, web_ip = net_cli.ip_of("db", "appnet"), net_cli.ip_of("web", "appnet")
    assert db_ip.startswith(net_cli.pool_prefix + ".") and db_ip != web_ip
    ping = net_cli("exec", "web", "ping", "-c1", "-W2", "database", check=True).stdout
    assert f"({db_ip})" in ping
    assert f"({web_ip})" in net_cli("exec", "db", "ping", "-c1", "-W2", "web", check=True).stdout
    # A member that comes later is added to everyone's hosts file; one that leaves is removed from it.
    net_cli.start("--name", "cache", "--network", "appnet", net_cli.image, "sleep", "60")
    cache_ip = net_cli.ip_of("cache", "appnet")
    hosts = net_cli("exec", "web", "cat", "/etc/hosts", check=True).stdout
    assert any(ln.startswith(cache_ip + "\t") and "cache" in ln.split() for ln in hosts.splitlines())
    net_cli("rm", "-f", "cache", check=True)
    hosts = net_cli("exec", "web", "cat", "/etc/hosts", check=True).stdout
    assert "cache" not in hosts
    # network rm refuses a network in use; prune keeps it too.
    assert net_cli("network", "rm", "appnet").returncode == 1
    assert "appnet" not in net_cli("network", "prune", "-f").stdout


def test_fixed_ip_and_conflicting_ip(net_cli: NetCli):
    net_cli("network", "create", "--subnet", f"{net_cli.pool_prefix}.77.0/24", "--gateway",
            f"{net_cli.pool_prefix}.77.254", "fixed", check=True)
    ip = f"{net_cli.pool_prefix}.77.10"
    net_cli.start("--name", "fixa", "--network", "fixed", "--ip", ip, net_cli.image, "sleep", "60")
    out = net_cli("exec", "fixa", "ip", "route", check=True).stdout
    assert f"default via {net_cli.pool_prefix}.77.254" in out
    assert net_cli.ip_of("fixa", "fixed") == ip
    clash = net_cli("run", "-d", "--name", "fixb", "--network", "fixed", "--ip", ip, net_cli.image, "sleep", "60")
    assert clash.returncode == 125 and "already in use" in clash.stderr
    bad = net_cli("run", "--rm", "--ip", f"{net_cli.prefix}.50", net_cli.image, "true")
    assert bad.returncode == 125 and "user defined networks" in bad.stderr
    unknown = net_cli("run", "--rm", "--network", "nosuchnet", net_cli.image, "true")
    assert unknown.returncode == 125 and "not found" in unknown.stderr


def test_network_verbs(net_cli: NetCli):
    created = net_cli("network", "create", "--label", "team=a", "one", check=True).stdout.strip()
    assert len(created) == 64
    names = net_cli("network", "ls", "--format", "{{.Name}}", check=True).stdout.split()
    assert names == sorted(["bridge", "host", "none", "one"])
    table = net_cli("network", "ls", check=True).stdout.splitlines()
    assert table[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    doc = net_cli.json("network", "inspect", "one")[0]
    assert doc["Id"] == created and doc["Driver"] == "bridge" and doc["Labels"] == {"team": "a"}
    assert doc["IPAM"]["Config"][0]["Subnet"] == f"{net_cli.pool_prefix}.0.0/24"
    assert doc["Options"]["com.docker.network.bridge.name"] == "br-" + created[:12]
    dup = net_cli("network", "create", "one")
    assert dup.returncode == 125 and "already exists" in dup.stderr
    overlap = net_cli("network", "create", "--subnet", f"{net_cli.pool_prefix}.0.0/16", "two")
    assert overlap.returncode == 125 and "overlaps" in overlap.stderr
    assert net_cli("network", "rm", "bridge").returncode == 1
    assert net_cli("network", "inspect", "nosuch").returncode == 1
    assert net_cli("network", "rm", created[:12], check=True).stdout.strip() == created[:12]
    net_cli("network", "create", "two", check=True)
    assert net_cli("network", "prune", "-f", check=True).stdout.split() == ["Deleted", "Networks:", "two"]


def test_connect_and_disconnect_a_running_container(net_cli: NetCli):
    net_cli("network", "create", "side", check=True)
    net_cli.start("--name", "cc", net_cli.image, "sleep", "60")
    net_cli("network", "connect", "--alias", "sidekick", "side", "cc", check=True)
    out = net_cli("exec", "cc", "ip", "-4", "-o", "addr", check=True).stdout
    assert "eth0" in out and "eth1" in out and f"{net_cli.pool_prefix}.0.2/24" in out
    doc = net_cli.json("network", "inspect", "side")[0]
    assert [m["Name"] for m in doc["Containers"].values()] == ["cc"]
    assert net_cli("network", "connect", "side", "cc").returncode == 125
    net_cli("network", "disconnect", "side", "cc", check=True)
    out = net_cli("exec", "cc", "ip", "-o", "link", check=True).stdout
    assert "eth1" not in out and "eth0" in out
    net_cli("network", "rm", "side", check=True)


def test_a_network_given_at_run_is_removable_once_the_container_is_disconnected(net_cli: NetCli):
    net_cli("network", "create", "front", check=True)
    net_cli.start("--name", "fc", "--network", "front", net_cli.image, "sleep", "60")
    refused = net_cli("network", "rm", "front")
    assert refused.returncode != 0 and "has active endpoints (fc)" in refused.stderr
    net_cli("network", "disconnect", "front", "fc", check=True)
    net_cli("network", "rm", "front", check=True)  # Docker: the endpoint is gone, nothing uses it


def test_a_container_whose_network_was_removed_still_stops_and_is_removed(net_cli: NetCli):
    # Running, disconnected from the network it was run with, which is then removed: its exit and its rm
    # must not need that network (they raised "network front not found" and left the container behind).
    net_cli("network", "create", "front", check=True)
    net_cli.start("--name", "fc", "--network", "front", net_cli.image, "sleep", "60")
    net_cli("network", "disconnect", "front", "fc", check=True)
    net_cli("network", "rm", "front", check=True)
    net_cli("stop", "-t", "1", "fc", check=True)
    state = net_cli.inspect("fc")["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 137, state
    net_cli("rm", "fc", check=True)
    # Created (never started) on a network that is then removed: start refuses as Docker does, rm -f removes.
    net_cli("network", "create", "gone", check=True)
    net_cli("create", "--name", "gc", "--network", "gone", net_cli.image, "true", check=True)
    net_cli("network", "rm", "gone", check=True)
    refused = net_cli("start", "gc")
    assert refused.returncode != 0 and "network gone not found" in refused.stderr, refused.stderr
    net_cli("rm", "-f", "gc", check=True)
    assert net_cli("ps", "-aq").stdout.strip() == ""


def test_twenty_concurrent_runs_get_distinct_addresses_and_ports(net_cli: NetCli):
    def run(i: int) -> str:
        return net_cli.start("--name", f"c{i}", "-p", "0:80", net_cli.image, "sleep", "60")

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        ids = list(pool.map(run, range(20)))
    assert len(set(ids)) == 20
    ips, ports = set(), set()
    for i in range(20):
        doc = net_cli.inspect(f"c{i}")
        ips.add(doc["NetworkSettings"]["Networks"]["bridge"]["IPAddress"])
        ports.add(doc["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"])
    assert len(ips) == 20 and len(ports) == 20
    rules = nft_table_text(net_cli.table)
    assert all(f"dport {port} dnat to" in rules for port in ports)
    net_cli("rm", "-f", *[f"c{i}" for i in range(20)], check=True)
    gone(net_cli)


def test_stop_and_rm_remove_rules_and_links(net_cli: NetCli):
    net_cli.start("--name", "ss", "-p", "18080:80", net_cli.image, "sleep", "60")
    assert "dport 18080" in nft_table_text(net_cli.table)
    ports = bridge_ports(net_cli.bridge)
    assert len(ports) == 1 and ports[0].startswith("veth")
    net_cli("stop", "-t", "0", "ss", check=True)
    gone(net_cli, ports[0])
    assert net_cli("ps", "-a", "--format", "{{.Ports}}", check=True).stdout.strip() == ""
    net_cli("start", "ss", check=True)
    assert "dport 18080" in nft_table_text(net_cli.table)
    ports = bridge_ports(net_cli.bridge)
    net_cli("rm", "-f", "ss", check=True)
    gone(net_cli, ports[0])


def test_killed_monitor_leaves_nothing_once_reconciled(net_cli: NetCli):
    net_cli.start("--name", "kk", "-p", "18081:80", net_cli.image, "sleep", "60")
    veths = bridge_ports(net_cli.bridge)
    pid = net_cli.pid_of("kk")
    with open(f"/proc/{pid}/stat") as f:
        monitor = int(f.read().rsplit(")", 1)[1].split()[1])  # the container's parent
    os.kill(monitor, signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), what="container to die")
    # Any later command reconciles: the allocation's holder is gone.
    net_cli("ps", "-a", check=True)
    net_cli("network", "ls", check=True)
    wait_for(lambda: not nft_table_exists(net_cli.table) and net_cli.bridge not in links(), what="cleanup")
    assert not set(veths) & links()
    # The port is free again.
    net_cli.start("--name", "kk2", "-p", "18081:80", net_cli.image, "sleep", "60")


def test_the_monitor_keeps_an_idle_bridge_for_the_next_run_and_removes_it_when_it_leaves(net_cli: NetCli):
    # A container on no network keeps the monitor alive between the runs, whatever the machine's speed.
    net_cli.start("--name", "keeper", "--network", "none", net_cli.image, "sleep", "60")

    def bridge_index() -> int:
        with open(f"/sys/class/net/{net_cli.bridge}/ifindex") as f:
            return int(f.read())

    net_cli("run", "--rm", net_cli.image, "true", check=True)
    first = bridge_index()
    net_cli("run", "--rm", net_cli.image, "true", check=True)
    assert bridge_index() == first  # not deleted and made again (~40 ms per run)
    assert bridge_ports(net_cli.bridge) == []
    net_cli("rm", "-f", "keeper", check=True)
    gone(net_cli)  # the monitor leaves, idle, and takes the bridge and the table with it
