"""Ports published on IPv6 host addresses (``[::1]:P:80``, ``[::]:P:80``, ``[::1]::80``): served by the monitor's
userland relay to the IPv4-only container; from loopback and from another "host" over an IPv6 veth link; UDP;
conflicts refused with nothing left; listeners gone after stop and rm, back after start."""

from __future__ import annotations

import contextlib
import secrets
import socket
import subprocess
import sys

import pytest

from tests.integration import test_network
from tests.integration.test_network import NetCli, bridge_ports, links, nft_table_exists, nft_table_text, wait_for
from tests.integration.test_ports import HTTPD, UDP_ECHO

net_cli = test_network.net_cli  # the fixture: own bridge, subnets and nftables table per test

pytestmark = pytest.mark.integration


def free_port6(kind: int = socket.SOCK_STREAM) -> int:
    while True:
        port = 20000 + secrets.randbelow(10000)
        ok = True
        for family, addr in ((socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")):
            with socket.socket(family, kind) as s:
                try:
                    s.bind((addr, port))
                except OSError:
                    ok = False
        if ok:
            return port


def curl6(url: str, netns: str | None = None, timeout: float = 3) -> str:
    cmd = ["curl", "-gsS", "--max-time", str(timeout), "--noproxy", "*", url]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 5, check=False)
    assert proc.returncode == 0, f"{url}: {proc.stderr}"
    return proc.stdout


def answers6(url: str, netns: str | None = None) -> str:
    def attempt() -> str:
        with contextlib.suppress(AssertionError):
            return curl6(url, netns)
        return ""
    return wait_for(attempt, timeout=10, what=f"{url} to answer")


def listening(port: int, udp: bool = False) -> bool:
    out = subprocess.run(["ss", "-Hn6", "-ul" if udp else "-tl", f"sport = :{port}"], capture_output=True,
                         text=True, check=False).stdout
    return bool(out.strip())


@pytest.fixture
def remote_host6():
    """Another "machine": a network namespace reaching this host only over a veth link with IPv6 addresses."""
    tag = secrets.token_hex(3)
    ns, host_if = f"pcr6{tag}", f"pcr6h{tag}"
    net = f"fd{secrets.token_hex(1)}:{secrets.token_hex(2)}::"
    host_ip, remote_ip = f"{net}1", f"{net}2"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns], check=True)
        subprocess.run(["ip", "addr", "add", f"{host_ip}/64", "dev", host_if, "nodad"], check=True)
        subprocess.run(["ip", "link", "set", host_if, "up"], check=True)
        for cmd in (["ip", "addr", "add", f"{remote_ip}/64", "dev", "eth0", "nodad"],
                    ["ip", "link", "set", "eth0", "up"], ["ip", "link", "set", "lo", "up"]):
            subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True)
        yield ns, host_ip
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def test_ipv6_host_addresses_answer_through_the_relay(net_cli: NetCli, remote_host6):
    p1, p2 = free_port6(), free_port6()
    cid = net_cli.start("--name", "web", "-p", f"[::1]:{p1}:80", "-p", f"[::]:{p2}:80", "-p", "[::1]::80",
                        net_cli.image, *HTTPD)
    short = cid[:12]
    assert answers6(f"http://[::1]:{p1}/hostname").strip() == short
    assert answers6(f"http://[::1]:{p2}/hostname").strip() == short
    ns, link_ip = remote_host6
    assert answers6(f"http://[{link_ip}]:{p2}/hostname", netns=ns).strip() == short  # [::]: every address
    # [::1] only on loopback; [::] is IPv6 only (IPv4 is not published for that mapping).
    with pytest.raises(AssertionError):
        curl6(f"http://[{link_ip}]:{p1}/hostname", netns=ns, timeout=1)
    with pytest.raises(AssertionError):
        curl6(f"http://127.0.0.1:{p2}/hostname", timeout=1)
    lines = net_cli("port", "web", check=True).stdout.splitlines()
    rnd = [ln for ln in lines if ln.startswith("80/tcp -> [::1]:") and ln != f"80/tcp -> [::1]:{p1}"]
    assert f"80/tcp -> [::1]:{p1}" in lines and f"80/tcp -> [::]:{p2}" in lines and len(rnd) == 1
    p3 = int(rnd[0].rsplit(":", 1)[1])
    assert answers6(f"http://[::1]:{p3}/hostname").strip() == short
    ps = net_cli("ps", "--format", "{{.Ports}}", check=True).stdout
    assert f"[::1]:{p1}->80/tcp" in ps and f"[::]:{p2}->80/tcp" in ps
    ports = net_cli.inspect("web")["NetworkSettings"]["Ports"]["80/tcp"]
    assert {"HostIp": "::1", "HostPort": str(p1)} in ports
    # No nftables rule for them: IPv6 to ::1 cannot be DNATed to the bridge.
    assert f"dport {p1}" not in nft_table_text(net_cli.table)
    # Several connections at once, each relayed in full.
    outs = [subprocess.Popen(["curl", "-gsS", "--max-time", "5", f"http://[::1]:{p1}/passwd"], stdout=subprocess.PIPE)
            for _i in range(5)]
    bodies = [o.communicate()[0] for o in outs]
    assert len(set(bodies)) == 1 and b"root:" in bodies[0]
    # Stop: listeners gone; start: back; rm: gone.
    net_cli("stop", "-t", "0", "web", check=True)
    assert not any(listening(p) for p in (p1, p2, p3))
    net_cli("start", "web", check=True)
    assert answers6(f"http://[::1]:{p1}/hostname").strip() == short
    net_cli("rm", "-f", "web", check=True)
    assert not any(listening(p) for p in (p1, p2))
    wait_for(lambda: net_cli.bridge not in links() and not nft_table_exists(net_cli.table), what="cleanup")


def test_udp_on_ipv6_loopback(net_cli: NetCli):
    port = free_port6(socket.SOCK_DGRAM)
    net_cli.start("--name", "udp", "-p", f"[::1]:{port}:9999/udp", net_cli.image, "sleep", "120")
    pid = net_cli.pid_of("udp")
    server = subprocess.Popen(["nsenter", "-t", str(pid), "-n", sys.executable, "-c", UDP_ECHO],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.settimeout(1)
            for payload in (b"one", b"two"):
                for _i in range(10):
                    s.sendto(payload, ("::1", port))
                    with contextlib.suppress(TimeoutError):
                        assert s.recvfrom(2048)[0] == b"echo:" + payload
                        break
                else:
                    raise AssertionError("no UDP answer over [::1]")
    finally:
        server.kill()
        server.wait()
    net_cli("rm", "-f", "udp", check=True)
    assert not listening(port, udp=True)


def test_ipv6_conflicts_are_refused_with_nothing_left(net_cli: NetCli):
    port = free_port6()
    net_cli.start("--name", "first", "-p", f"[::1]:{port}:80", net_cli.image, *HTTPD)
    rules_before = nft_table_text(net_cli.table)
    veths_before = bridge_ports(net_cli.bridge)
    for spec in (f"[::1]:{port}:80", f"[::]:{port}:80", f"{port}:80"):
        clash = net_cli("run", "-d", "--name", "second", "-p", spec, net_cli.image, *HTTPD)
        assert clash.returncode == 125, spec
        assert "port is already allocated" in clash.stderr
    # A host process on [::1]: refused by the real bind, nothing left.
    with socket.socket(socket.AF_INET6) as holder:
        holder.bind(("::1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        clash = net_cli("run", "-d", "--name", "third", "-p", f"[::1]:{taken}:80", net_cli.image, *HTTPD)
        assert clash.returncode == 125
        assert "address already in use" in clash.stderr and "tcp6" in clash.stderr
    assert net_cli("ps", "-a", "--format", "{{.Names}}", check=True).stdout.split() == ["first"]
    assert nft_table_text(net_cli.table) == rules_before
    assert bridge_ports(net_cli.bridge) == veths_before
    # sctp has no relay: refused.
    proc = net_cli("run", "--rm", "-p", f"[::1]:{port + 1}:80/sctp", net_cli.image, "true")
    assert proc.returncode == 125 and "IPv6" in proc.stderr
    net_cli("rm", "-f", "first", check=True)
    assert not listening(port)


def test_killed_monitor_takes_its_listeners_and_the_port_comes_back(net_cli: NetCli):
    import os
    import signal

    port = free_port6()
    net_cli.start("--name", "kk", "-p", f"[::1]:{port}:80", net_cli.image, *HTTPD)
    assert answers6(f"http://[::1]:{port}/hostname")
    pid = net_cli.pid_of("kk")
    with open(f"/proc/{pid}/stat") as f:
        monitor = int(f.read().rsplit(")", 1)[1].split()[1])  # the container's parent
    os.kill(monitor, signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{pid}") and not listening(port), what="container and relay to go")
    net_cli("ps", "-a", check=True)  # reconciles
    wait_for(lambda: not nft_table_exists(net_cli.table) and net_cli.bridge not in links(), what="cleanup")
    net_cli.start("--name", "kk2", "-p", f"[::1]:{port}:80", net_cli.image, *HTTPD)
    assert answers6(f"http://[::1]:{port}/hostname")
