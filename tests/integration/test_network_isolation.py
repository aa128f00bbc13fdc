"""Network isolation as Docker's current releases do it, tested as an attacker would.

A "LAN host" is a network namespace the test creates, on a veth link to this host, addressed in a TEST-NET
(198.51.100.0/24, 203.0.113.0/24) on that link only, with routes for the engine's container subnets via this
host (a neighbour that routes them here). Nothing is ever sent to an address outside the namespaces the test
(or the engine under test) created. A test-owned nftables table counts, at a priority before the engine's,
that the attack packets really reached the host, so a refused connection is the host's doing.

(a) the LAN cannot reach a port published on 127.0.0.1 by routing 127.0.0.1 to this host (CVE-2020-8558);
(b) a container with NET_ADMIN cannot reach a host service bound to 127.0.0.1 through its gateway;
(c) the LAN reaches a published port but not an unpublished container port;
(d) networks do not reach each other (user networks, default bridge), published ports still do;
(e) an --internal network reaches its own members only: no other network, not the LAN, no default route.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.integration import test_network
from tests.integration.test_network import NetCli, curl
from tests.integration.test_ports import HTTPD, answers, free_port

net_cli = test_network.net_cli  # the fixture: own bridge, subnets and nftables table per test

pytestmark = pytest.mark.integration

# Connect timeout of busybox nc in the containers, seconds: a dropped SYN fails after this.
NC_WAIT = 2


@dataclass
class Lan:
    ns: str
    host_if: str    # this host's end of the link
    host_ip: str    # this host's address on the link
    ip: str         # the LAN host's address

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.ns, *cmd], capture_output=True, text=True,
                              check=check, timeout=30)


@pytest.fixture
def lan(net_cli: NetCli) -> Iterator[Lan]:
    """A neighbour on a veth link, routing the engine's container subnets (bridge and pool) via this host.

    Its loopback stays down: with no local 127.0.0.0/8 routes, the neighbour can route 127.0.0.1 to this
    host, as an attacker on the LAN does (and accepts replies from 127.0.0.1: route_localnet on its link).
    """
    tag = secrets.token_hex(3)
    net = secrets.choice(("198.51.100", "203.0.113"))
    base = 4 * secrets.randbelow(64)
    lan = Lan(f"pclan{tag}", f"pclh{tag}", f"{net}.{base + 1}", f"{net}.{base + 2}")
    subprocess.run(["ip", "netns", "add", lan.ns], check=True)
    try:
        subprocess.run(["ip", "link", "add", lan.host_if, "type", "veth", "peer", "name", "eth0", "netns", lan.ns],
                       check=True)
        subprocess.run(["ip", "addr", "add", f"{lan.host_ip}/30", "dev", lan.host_if], check=True)
        subprocess.run(["ip", "link", "set", lan.host_if, "up"], check=True)
        for cmd in (["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"],
                    ["ip", "addr", "add", f"{lan.ip}/30", "dev", "eth0"], ["ip", "link", "set", "eth0", "up"],
                    ["sysctl", "-qw", "net.ipv4.conf.eth0.rp_filter=0", "net.ipv4.conf.eth0.route_localnet=1"],
                    ["ip", "route", "add", f"{net_cli.prefix}.0/24", "via", lan.host_ip],
                    ["ip", "route", "add", f"{net_cli.pool_prefix}.0.0/16", "via", lan.host_ip],
                    ["ip", "route", "add", "127.0.0.1/32", "via", lan.host_ip, "src", lan.ip]):
            lan.run(*cmd)
        yield lan
    finally:
        subprocess.run(["ip", "link", "del", lan.host_if], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", lan.ns], check=True)


class Counters:
    """A test-owned nftables table counting packets in prerouting before the engine's chains see them."""

    def __init__(self, rules: dict[str, str]) -> None:
        self.table = f"pcobs_{secrets.token_hex(3)}"
        body = "\n".join(f"{rule} counter comment \"{name}\"" for name, rule in rules.items())
        script = (f"table ip {self.table} {{\n chain pre {{\n type filter hook prerouting priority -400; "
                  f"policy accept;\n{body}\n }}\n}}\n")
        subprocess.run(["nft", "-f", "-"], input=script, text=True, check=True)

    def packets(self, name: str) -> int:
        out = subprocess.run(["nft", "-j", "list", "table", "ip", self.table], capture_output=True, text=True,
                             check=True).stdout
        for item in json.loads(out)["nftables"]:
            rule = item.get("rule")
            if rule and rule.get("comment") == name:
                return next(e["counter"]["packets"] for e in rule["expr"] if "counter" in e)
        raise AssertionError(f"no counter {name}")

    def close(self) -> None:
        subprocess.run(["nft", "delete", "table", "ip", self.table], check=False)


@contextlib.contextmanager
def counters(**rules: str) -> Iterator[Counters]:
    c = Counters(rules)
    try:
        yield c
    finally:
        c.close()


def nc_from(cli: NetCli, container: str, host: str, port: int) -> str:
    """What a TCP connection from inside ``container`` gets back (GET /hostname); "" when none is made."""
    script = f"printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | timeout {NC_WAIT + 2} nc -w {NC_WAIT} {host} {port}"
    out = cli("exec", container, "sh", "-c", script).stdout
    return re.split(r"\r?\n\r?\n", out, maxsplit=1)[-1].strip()


def lan_curl(lan: Lan, url: str) -> str:
    """curl from the LAN host; "" when it gets no answer."""
    proc = lan.run("curl", "-sS", "--max-time", str(NC_WAIT + 1), "--noproxy", "*", url, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def httpd_on(cli: NetCli, name: str, *args: str) -> str:
    """A container serving its /etc on port 80 (/hostname names it); returns its short ID."""
    cid = cli.start("--name", name, *args, cli.image, *HTTPD)
    return cid[:12]


# --- (a) ports published on 127.0.0.1 stay on the host -----------------------------------------------------

def test_lan_cannot_reach_a_port_published_on_loopback(net_cli: NetCli, lan: Lan):
    local_port, public_port = free_port(), free_port()
    short = httpd_on(net_cli, "web", "-p", f"127.0.0.1:{local_port}:80", "-p", f"{public_port}:80")
    # The host itself reaches it on 127.0.0.1, the LAN reaches the port published on every address.
    assert answers(f"http://127.0.0.1:{local_port}/hostname").strip() == short
    assert lan_curl(lan, f"http://{lan.host_ip}:{public_port}/hostname") == short
    with counters(attack=f'iifname "{lan.host_if}" ip daddr 127.0.0.1 tcp dport {local_port}') as seen:
        # The neighbour routes 127.0.0.1 to this host: the SYN arrives, and must go nowhere.
        assert lan_curl(lan, f"http://127.0.0.1:{local_port}/hostname") == ""
        assert seen.packets("attack") > 0


# --- (b) a container cannot reach the host's 127.0.0.1-only services ---------------------------------------

def test_container_cannot_reach_a_host_service_on_loopback(net_cli: NetCli):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        net_cli.start("--name", "attacker", "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW", net_cli.image,
                      "sleep", "120")
        gateway = f"{net_cli.prefix}.1"
        # The attacker sends 127.0.0.1 to its gateway instead of its own loopback (whose address goes, with
        # its local routes, so that replies from 127.0.0.1 are not its own).
        net_cli("exec", "attacker", "sh", "-c", f"ip addr del 127.0.0.1/8 dev lo && ip route add 127.0.0.1/32 via "
                f"{gateway}", check=True)
        route = net_cli("exec", "attacker", "ip", "route", "get", "127.0.0.1", check=True).stdout
        assert f"via {gateway} dev eth0" in route
        # Replies come from 127.0.0.1: let its namespace accept them (/proc/sys is read-only inside; a NET_RAW
        # attacker would read them from a raw socket instead).
        pid = net_cli.pid_of("attacker")
        subprocess.run(["nsenter", "-t", str(pid), "-n", "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0",
                        "net.ipv4.conf.eth0.rp_filter=0", "net.ipv4.conf.eth0.route_localnet=1"], check=True)
        with counters(attack=f'iifname "{net_cli.bridge}" ip daddr 127.0.0.1 tcp dport {port}') as seen:
            sent = net_cli("exec", "attacker", "sh", "-c",
                           f"echo pwned | timeout {NC_WAIT + 2} nc -w {NC_WAIT} 127.0.0.1 {port}")
            assert seen.packets("attack") > 0
        # Whatever got through is in the accept queue by now: nc has finished.
        try:
            conn, peer = listener.accept()
        except BlockingIOError:
            conn = None
        if conn is not None:
            conn.close()
            pytest.fail(f"a container reached 127.0.0.1:{port} on the host from {peer} (nc: {sent.returncode})")


# --- (c) unpublished container ports stay out of the LAN's reach -------------------------------------------

def test_lan_reaches_published_ports_only(net_cli: NetCli, lan: Lan):
    port = free_port()
    script = "httpd -p 80 -h /etc; httpd -p 81 -h /etc; sleep 120"
    cid = net_cli.start("--name", "web", "-p", f"{port}:80", net_cli.image, "sh", "-c", script)
    short, ip = cid[:12], net_cli.ip_of("web")
    assert answers(f"http://{ip}:81/hostname").strip() == short  # the host itself reaches every port
    assert lan_curl(lan, f"http://{lan.host_ip}:{port}/hostname") == short
    with counters(attack=f'iifname "{lan.host_if}" ip daddr {ip} tcp dport 81') as seen:
        assert lan_curl(lan, f"http://{ip}:81/hostname") == ""
        assert seen.packets("attack") > 0


# --- (d) networks are isolated from each other -------------------------------------------------------------

def test_networks_do_not_reach_each_other(net_cli: NetCli):
    net_cli("network", "create", "neta", check=True)
    net_cli("network", "create", "netb", check=True)
    port = free_port()
    a2 = httpd_on(net_cli, "a2", "--network", "neta")
    b1 = httpd_on(net_cli, "b1", "--network", "netb", "-p", f"{port}:80")
    d1 = httpd_on(net_cli, "d1")
    net_cli.start("--name", "a1", "--network", "neta", net_cli.image, "sleep", "120")
    ips = {name: net_cli.ip_of(name, net) for name, net in (("a2", "neta"), ("b1", "netb"), ("d1", "bridge"))}
    for ip, short in ((ips["b1"], b1), (ips["d1"], d1)):
        assert answers(f"http://{ip}:80/hostname").strip() == short  # up, and reachable from the host
    assert nc_from(net_cli, "a1", ips["a2"], 80) == a2  # same network
    gateway_a = net_cli.inspect("a1")["NetworkSettings"]["Networks"]["neta"]["Gateway"]
    assert nc_from(net_cli, "a1", gateway_a, port) == b1  # a published port, through the host
    assert nc_from(net_cli, "a1", ips["b1"], 80) == ""
    assert nc_from(net_cli, "a1", ips["d1"], 80) == ""
    assert nc_from(net_cli, "d1", ips["a2"], 80) == ""
    assert nc_from(net_cli, "b1", ips["a2"], 80) == ""


# --- (e) internal networks -------------------------------------------------------------------------------

LAN_SERVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(8)
print("ready", flush=True)
while True:
    c, peer = s.accept()
    c.recv(4096)
    c.sendall(b"HTTP/1.0 200 OK\\r\\n\\r\\nlan\\n")
    c.close()
"""


def test_internal_network_reaches_its_members_only(net_cli: NetCli, lan: Lan):
    net_cli("network", "create", "--internal", "inner", check=True)
    net_cli("network", "create", "outer", check=True)
    i1 = httpd_on(net_cli, "i1", "--network", "inner")
    n1 = httpd_on(net_cli, "n1", "--network", "outer")
    # NET_ADMIN: the attacker adds the route out that an internal network does not give.
    net_cli.start("--name", "i2", "--network", "inner", "--cap-add", "NET_ADMIN", net_cli.image, "sleep", "120")
    i1_ip, n1_ip = net_cli.ip_of("i1", "inner"), net_cli.ip_of("n1", "outer")
    i2_ip = net_cli.ip_of("i2", "inner")
    gateway = net_cli.inspect("i2")["NetworkSettings"]["Networks"]["inner"]["Gateway"]
    assert answers(f"http://{n1_ip}:80/hostname").strip() == n1
    port = free_port()
    server = subprocess.Popen(["ip", "netns", "exec", lan.ns, sys.executable, "-c", LAN_SERVER, lan.ip, str(port)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        assert curl(f"http://{lan.ip}:{port}/").strip() == "lan"  # the host reaches the LAN host
        assert nc_from(net_cli, "i2", i1_ip, 80) == i1  # same network
        routes = net_cli("exec", "i2", "ip", "route", check=True).stdout
        assert "default" not in routes, routes
        net_cli("exec", "i2", "ip", "route", "replace", "default", "via", gateway, check=True)
        with counters(lan=f"ip saddr {i2_ip} ip daddr {lan.ip} tcp dport {port}",
                      outer=f"ip saddr {i2_ip} ip daddr {n1_ip} tcp dport 80") as seen:
            assert nc_from(net_cli, "i2", lan.ip, port) == ""
            assert nc_from(net_cli, "i2", n1_ip, 80) == ""
            assert seen.packets("lan") > 0 and seen.packets("outer") > 0
        assert nc_from(net_cli, "n1", i1_ip, 80) == ""
    finally:
        server.kill()
        server.wait()


def test_connect_to_a_routed_network_brings_the_default_route(net_cli: NetCli):
    net_cli("network", "create", "--internal", "inner", check=True)
    net_cli("network", "create", "outer", check=True)
    net_cli.start("--name", "multi", "--network", "inner", net_cli.image, "sleep", "120")
    assert "default" not in net_cli("exec", "multi", "ip", "route", check=True).stdout
    net_cli("network", "connect", "outer", "multi", check=True)
    gateway = net_cli.json("network", "inspect", "outer")[0]["IPAM"]["Config"][0]["Gateway"]
    assert f"default via {gateway} dev eth1" in net_cli("exec", "multi", "ip", "route", check=True).stdout
