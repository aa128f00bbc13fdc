"""Port publishing through the real CLI: a published port answers from loopback, the host's address, another
container, the same container, and another "host" (a network namespace wired to this one by a veth pair);
UDP too; random ports, ranges, -P; conflicts refused with nothing left behind."""

from __future__ import annotations

import contextlib
import re
import secrets
import socket
import subprocess
import sys

import pytest

from tests.integration import test_network
from tests.integration.test_network import (
    NetCli,
    bridge_ports,
    curl,
    host_address,
    nft_table_text,
    wait_for,
)

net_cli = test_network.net_cli  # the fixture: own bridge, subnets and nftables table per test

pytestmark = pytest.mark.integration

HTTPD = ["httpd", "-f", "-p", "80", "-h", "/etc"]  # serves the container's /etc: /hostname names it


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    while True:
        port = 20000 + secrets.randbelow(10000)
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
        return port


def http_via_nc(cli: NetCli, container: str, host: str, port: int) -> str:
    """GET /hostname from inside ``container`` with busybox nc (its wget needs NSS, absent from the image)."""
    script = f"printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {host} {port}"
    out = cli("exec", container, "sh", "-c", script, check=True).stdout
    return re.split(r"\r?\n\r?\n", out, maxsplit=1)[-1]


def answers(url: str) -> str:
    return wait_for(lambda: _try_curl(url), timeout=10, what=f"{url} to answer")


def _try_curl(url: str) -> str:
    with contextlib.suppress(AssertionError):
        return curl(url, timeout=2)
    return ""


@pytest.fixture
def remote_host():
    """A separate network namespace standing in for another machine, on a veth link to this host."""
    tag = secrets.token_hex(3)
    ns, host_if = f"pcremote{tag}", f"pcrh{tag}"
    third = secrets.randbelow(250)
    host_ip, remote_ip = f"192.168.{third}.1", f"192.168.{third}.2"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns], check=True)
        subprocess.run(["ip", "addr", "add", f"{host_ip}/30", "dev", host_if], check=True)
        subprocess.run(["ip", "link", "set", host_if, "up"], check=True)
        for cmd in (["ip", "addr", "add", f"{remote_ip}/30", "dev", "eth0"], ["ip", "link", "set", "eth0", "up"],
                    ["ip", "link", "set", "lo", "up"], ["ip", "route", "add", "default", "via", host_ip]):
            subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True)
        yield ns, host_ip
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", ns], check=True)


def test_published_port_answers_from_everywhere(net_cli: NetCli, remote_host):
    port = free_port()
    cid = net_cli.start("--name", "web", "-p", f"{port}:80", net_cli.image, *HTTPD)
    short = cid[:12]
    assert answers(f"http://127.0.0.1:{port}/hostname").strip() == short
    host_ip = host_address()
    assert curl(f"http://{host_ip}:{port}/hostname").strip() == short
    # Another container, through the host's address (hairpin through the host) and through the gateway.
    net_cli.start("--name", "client", net_cli.image, "sleep", "60")
    assert http_via_nc(net_cli, "client", host_ip, port).strip() == short
    assert http_via_nc(net_cli, "client", f"{net_cli.prefix}.1", port).strip() == short
    # The same container, through its own published port.
    assert http_via_nc(net_cli, "web", host_ip, port).strip() == short
    # Another host: a namespace that reaches this host only over its veth link.
    ns, link_ip = remote_host
    assert curl(f"http://{link_ip}:{port}/hostname", netns=ns).strip() == short
    # Directly at the container's address too.
    assert curl(f"http://{net_cli.ip_of('web')}:80/hostname").strip() == short
    ps = net_cli("ps", "--format", "{{.Names}} {{.Ports}}", check=True).stdout.splitlines()
    assert f"web 0.0.0.0:{port}->80/tcp" in ps


UDP_ECHO = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9999))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(b"echo:" + data, peer)
"""


def udp_ask(host: str, port: int, payload: bytes) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1)
        for _i in range(10):
            s.sendto(payload, (host, port))
            with contextlib.suppress(TimeoutError):
                return s.recvfrom(2048)[0]
    raise AssertionError(f"no UDP answer from {host}:{port}")


def test_udp_echo_through_a_published_port(net_cli: NetCli):
    port = free_port(socket.SOCK_DGRAM)
    net_cli.start("--name", "udp", "-p", f"{port}:9999/udp", net_cli.image, "sleep", "120")
    pid = net_cli.pid_of("udp")
    # The echo server runs in the container's network namespace (busybox has no UDP server applet).
    server = subprocess.Popen(["nsenter", "-t", str(pid), "-n", sys.executable, "-c", UDP_ECHO],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        assert udp_ask("127.0.0.1", port, b"one") == b"echo:one"
        assert udp_ask(host_address(), port, b"two") == b"echo:two"
        assert f"udp dport {port} dnat to" in nft_table_text(net_cli.table)
    finally:
        server.kill()
        server.wait()


def test_random_host_port_is_reported_by_port(net_cli: NetCli):
    net_cli.start("--name", "rnd", "-p", "80", "-p", "127.0.0.1::80", net_cli.image, *HTTPD)
    lines = net_cli("port", "rnd", check=True).stdout.splitlines()
    assert len(lines) == 2 and all(ln.startswith("80/tcp -> ") for ln in lines)
    mappings = dict(ln.split(" -> ")[1].rsplit(":", 1) for ln in lines)
    assert set(mappings) == {"0.0.0.0", "127.0.0.1"}
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low, high = (int(x) for x in f.read().split())
    assert all(low <= int(p) <= high for p in mappings.values())
    for host, port in mappings.items():
        target = "127.0.0.1" if host == "0.0.0.0" else host
        assert answers(f"http://{target}:{port}/hostname")
    assert sorted(net_cli("port", "rnd", "80/tcp", check=True).stdout.split()) == sorted(
        f"{h}:{p}" for h, p in mappings.items())
    missing = net_cli("port", "rnd", "81")
    assert missing.returncode != 0 and "No public port" in missing.stderr
    doc = net_cli.inspect("rnd")["NetworkSettings"]
    assert sorted(b["HostPort"] for b in doc["Ports"]["80/tcp"]) == sorted(mappings.values())


def test_port_ranges(net_cli: NetCli):
    base = free_port()
    while any(_bound(base + i) for i in range(3)):
        base = free_port()
    script = "httpd -p 80 -h /etc; httpd -p 81 -h /etc; httpd -p 82 -h /etc; sleep 60"
    net_cli.start("--name", "rng", "-p", f"{base}-{base + 2}:80-82", net_cli.image, "sh", "-c", script)
    lines = net_cli("port", "rng", check=True).stdout.splitlines()
    assert lines == [f"{80 + i}/tcp -> 0.0.0.0:{base + i}" for i in range(3)]
    for i in range(3):
        assert answers(f"http://127.0.0.1:{base + i}/hostname")
    ps = net_cli("ps", "--format", "{{.Ports}}", check=True).stdout.strip()
    assert ps == f"0.0.0.0:{base}-{base + 2}->80-82/tcp"
    # A host range for one container port: one free port of the range.
    net_cli.start("--name", "one", "-p", f"{base}-{base + 5}:80", net_cli.image, *HTTPD)
    chosen = int(net_cli("port", "one", "80", check=True).stdout.strip().rsplit(":", 1)[1])
    assert base + 3 <= chosen <= base + 5


def _bound(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


def test_publish_all_uses_exposed_ports(net_cli: NetCli, oci_builder):
    from tests.fixtures.images import busybox_config, busybox_rootfs

    config = busybox_config()
    config["config"]["ExposedPorts"] = {"80/tcp": {}, "5353/udp": {}}
    ref, _layout = oci_builder.push("exposer:1", layers=[busybox_rootfs()], config=config)
    # The image's EXPOSE plus --expose, each on a random host port.
    net_cli.start("--name", "pall", "-P", "--expose", "8080", ref, *HTTPD)
    lines = sorted(net_cli("port", "pall", check=True).stdout.splitlines())
    assert [ln.split(" -> ")[0] for ln in lines] == ["5353/udp", "80/tcp", "8080/tcp"]
    port = lines[1].rsplit(":", 1)[1]
    assert answers(f"http://127.0.0.1:{port}/hostname")
    # Without -P, exposed ports are listed but not published.
    net_cli.start("--name", "nopub", ref, *HTTPD)
    assert net_cli("port", "nopub", check=True).stdout == ""
    assert net_cli.inspect("nopub")["NetworkSettings"]["Ports"] == {"5353/udp": None, "80/tcp": None}


def test_conflicting_ports_are_refused_with_nothing_left(net_cli: NetCli):
    port = free_port()
    net_cli.start("--name", "first", "-p", f"{port}:80", net_cli.image, *HTTPD)
    rules_before = nft_table_text(net_cli.table)
    veths_before = bridge_ports(net_cli.bridge)
    clash = net_cli("run", "-d", "--name", "second", "-p", f"{port}:80", net_cli.image, *HTTPD)
    assert clash.returncode == 125
    assert "port is already allocated" in clash.stderr
    assert net_cli("ps", "-a", "--format", "{{.Names}}", check=True).stdout.split() == ["first"]
    assert nft_table_text(net_cli.table) == rules_before
    assert bridge_ports(net_cli.bridge) == veths_before
    # A host process holding a port: refused too, and nothing of the new container is left either.
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        clash = net_cli("run", "--rm", "--name", "third", "-p", f"{taken}:80", net_cli.image, "true")
        assert clash.returncode == 125
        assert "address already in use" in clash.stderr
    assert net_cli("ps", "-a", "--format", "{{.Names}}", check=True).stdout.split() == ["first"]
    assert nft_table_text(net_cli.table) == rules_before
    assert bridge_ports(net_cli.bridge) == veths_before
    # Once the first is gone, the port is free, and the table with it.
    net_cli("rm", "-f", "first", check=True)
    test_network.gone(net_cli)
    net_cli.start("--name", "second", "-p", f"{port}:80", net_cli.image, *HTTPD)
    assert answers(f"http://127.0.0.1:{port}/hostname")


def test_bad_publish_specs_are_refused(net_cli: NetCli):
    for spec, message in (("80-82:90-91", "invalid ranges"), ("abc", "invalid container port"),
                          ("80/icmp", "invalid proto"), ("1.2.3:80:80", "invalid IP address")):
        proc = net_cli("run", "--rm", "-p", spec, net_cli.image, "true")
        assert proc.returncode == 125 and message in proc.stderr, (spec, proc.stderr)
    assert net_cli("ps", "-aq", check=True).stdout == ""
