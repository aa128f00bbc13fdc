"""Several engine roots on one host: each gets its own default bridge, subnet and nftables table, subnets are
claimed host-wide (/run/pycontainer/subnets.json), and a configured name or subnet that another root uses is
refused at create with nothing left behind.

The roots here use default network settings (that is the point), so their bridges and tables are the derived
``pyc-<digest>`` / ``pycontainer_<digest>`` of their own temporary paths: nothing another engine on the host
uses, and gone at the end (checked).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import urllib.request

import pytest

from tests.integration.helpers import write_engine_config
from tests.integration.test_network import NetCli, links, nft_table_exists, nft_table_text, wait_for
from tests.integration.test_ports import HTTPD

pytestmark = pytest.mark.integration

CLAIMS = "/run/pycontainer/subnets.json"


def _fetch(port: int) -> str:
    # 127.0.0.1 only, without any proxy from the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/hostname", timeout=5) as response:
        return response.read().decode()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bridge_doc(cli: NetCli) -> dict:
    return cli.json("network", "inspect", "bridge")[0]


def _claims() -> dict:
    try:
        with open(CLAIMS) as f:
            return json.load(f).get("roots", {})
    except FileNotFoundError:
        return {}


class Roots:
    """Engine roots with default network settings; every container, network and root goes at the end."""

    def __init__(self, registry, image: str, workdir: str) -> None:
        self.registry, self.image, self.workdir = registry, image, workdir
        self.clis: list[NetCli] = []

    def new(self, **settings: object) -> NetCli:
        root = tempfile.mkdtemp(prefix="pycontainer-root-")
        config = write_engine_config(os.path.join(self.workdir, f"engine{len(self.clis)}.json"),
                                     self.registry.host, **settings)
        cli = NetCli(root=root, config=config, image=self.image)
        self.clis.append(cli)
        cli("pull", "-q", self.image, check=True)
        return cli

    def names(self, cli: NetCli) -> tuple[str, str]:
        """(bridge, table) the root derives: read from its network record and the claims file."""
        claim = _claims().get(os.path.realpath(cli.root), {})
        return claim.get("bridge", ""), claim.get("table", "")

    def cleanup(self) -> None:
        for cli in self.clis:
            bridge, table = self.names(cli)
            ids = cli("ps", "-aq", "--no-trunc").stdout.split()
            if ids:
                cli("rm", "-f", *ids)
            cli("network", "prune", "-f")
            if bridge:
                wait_for(lambda b=bridge, t=table: b not in links() and not nft_table_exists(t), timeout=5,
                         what="bridge and table to go")
            shutil.rmtree(cli.root, ignore_errors=True)


@pytest.fixture
def roots(registry, busybox_image, tmp_path):
    made = Roots(registry, busybox_image, str(tmp_path))
    try:
        yield made
    finally:
        made.cleanup()


def test_two_roots_with_default_configs_run_published_containers_side_by_side(roots: Roots):
    first, second = roots.new(), roots.new()
    port1, port2 = _free_port(), _free_port()
    first.start("--name", "web", "--hostname", "first", "-p", f"127.0.0.1:{port1}:80", first.image, *HTTPD)
    second.start("--name", "web", "--hostname", "second", "-p", f"127.0.0.1:{port2}:80", second.image, *HTTPD)
    doc1, doc2 = _bridge_doc(first), _bridge_doc(second)
    bridge1 = doc1["Options"]["com.docker.network.bridge.name"]
    bridge2 = doc2["Options"]["com.docker.network.bridge.name"]
    subnet1, subnet2 = doc1["IPAM"]["Config"][0]["Subnet"], doc2["IPAM"]["Config"][0]["Subnet"]
    assert bridge1 != bridge2 and "pycontainer0" not in (bridge1, bridge2)
    assert subnet1 != subnet2 and "10.99.0.0/16" not in (subnet1, subnet2)
    assert bridge1 in links() and bridge2 in links()
    table1, table2 = roots.names(first)[1], roots.names(second)[1]
    assert table1 != table2 and "pycontainer" not in (table1, table2)
    assert f"dport {port1}" in nft_table_text(table1) and f"dport {port2}" not in nft_table_text(table1)
    assert f"dport {port2}" in nft_table_text(table2)
    assert first.ip_of("web") != second.ip_of("web")
    # Both answer, each with its own container.
    assert _fetch(port1).strip() == "first"
    assert _fetch(port2).strip() == "second"
    # Removing the first root's containers leaves the second's bridge, rules and service alone.
    first("rm", "-f", "web", check=True)
    wait_for(lambda: bridge1 not in links() and not nft_table_exists(table1), what="first root's cleanup")
    assert bridge2 in links() and bridge_ports_of(bridge2)
    assert f"dport {port2}" in nft_table_text(table2)
    assert _fetch(port2).strip() == "second"


def bridge_ports_of(bridge: str) -> list[str]:
    return os.listdir(f"/sys/class/net/{bridge}/brif")


def _owner_holding(roots: Roots, setting: str) -> tuple[NetCli, dict, str]:
    """A root with a running container, its default network's record, and the value of ``setting`` it claims."""
    owner = roots.new()
    owner.start("--name", "holder", owner.image, "sleep", "60")
    doc = _bridge_doc(owner)
    used = {"bridge_subnet": doc["IPAM"]["Config"][0]["Subnet"],
            "bridge_name": doc["Options"]["com.docker.network.bridge.name"],
            "nft_table": roots.names(owner)[1]}[setting]
    return owner, doc, used


@pytest.mark.parametrize("setting", ["bridge_subnet", "bridge_name", "nft_table"])
def test_configured_name_or_subnet_of_another_root_is_refused_at_create(roots: Roots, setting: str):
    owner, doc, used = _owner_holding(roots, setting)
    links_before = links()
    thief = roots.new(**{setting: used})
    proc = thief("create", "--name", "stolen", thief.image, "true")
    assert proc.returncode == 125, proc.stdout + proc.stderr
    owner_root = os.path.realpath(owner.root)
    assert f"{setting} {used} is used by engine root {owner_root}" in proc.stderr
    assert f"choose another in {thief.config}" in proc.stderr
    if setting != "bridge_name":
        assert f"(bridge {doc['Options']['com.docker.network.bridge.name']})" in proc.stderr
    # Nothing left behind: no record, no claim, no new bridge; the owner is untouched.
    assert thief("ps", "-aq").stdout.split() == []
    assert os.path.realpath(thief.root) not in _claims()
    digest = hashlib.sha256(os.path.realpath(thief.root).encode()).hexdigest()[:8]  # the root's derived names
    assert not [n for n in links() - links_before if n.startswith(("pyc-", "br-"))]
    assert f"pyc-{digest}" not in links() and not nft_table_exists(f"pycontainer_{digest}")
    assert owner.inspect("holder")["State"]["Running"]
    # `run` too: refused before anything starts.
    assert thief("run", "--rm", thief.image, "true").returncode == 125
    assert thief("ps", "-aq").stdout.split() == []


@pytest.mark.parametrize("setting", ["bridge_subnet", "bridge_name", "nft_table"])
def test_config_module_refuses_another_roots_name_or_subnet_when_the_config_is_written(
        roots: Roots, setting: str, tmp_path):
    """The conflict is a clear error at config time: pycontainer_config fails, names the owner, and leaves the
    file as it was; a free value is written."""
    from tests.integration.test_ansible import adhoc

    owner, _doc, used = _owner_holding(roots, setting)
    config = tmp_path / "team.json"
    config.write_text('{"log_level": "info"}\n')
    root = tmp_path / "team-root"
    settings = json.dumps({setting: used})
    rc, result = adhoc("pycontainer.engine.pycontainer_config",
                       f"config={config} root={root} settings='{settings}'")
    assert rc != 0 and not result["changed"], result
    assert f"{setting} {used} is used by engine root {os.path.realpath(owner.root)}" in result["msg"], result
    assert config.read_text() == '{"log_level": "info"}\n'
    free = {"bridge_subnet": "10.254.77.0/24", "bridge_name": "pyc-team", "nft_table": "pycontainer_team"}[setting]
    rc, result = adhoc("pycontainer.engine.pycontainer_config",
                       f"config={config} root={root} settings='{json.dumps({setting: free})}'")
    assert rc == 0 and result["changed"], result
    assert json.loads(config.read_text())[setting] == free


def test_user_networks_of_two_roots_get_different_subnets(roots: Roots):
    first, second = roots.new(), roots.new()
    net1 = first.json("network", "inspect", first("network", "create", "apps", check=True).stdout.strip())[0]
    net2 = second.json("network", "inspect", second("network", "create", "apps", check=True).stdout.strip())[0]
    subnet1, subnet2 = net1["IPAM"]["Config"][0]["Subnet"], net2["IPAM"]["Config"][0]["Subnet"]
    assert subnet1 != subnet2
    # An explicit subnet another root holds is refused, naming it.
    proc = second("network", "create", "--subnet", subnet1, "copy")
    assert proc.returncode != 0 and f"engine root {os.path.realpath(first.root)}" in proc.stderr
    # Containers on them get addresses of their own root's network.
    first.start("--name", "app", "--network", "apps", first.image, "sleep", "60")
    second.start("--name", "app", "--network", "apps", second.image, "sleep", "60")
    assert first.ip_of("app", "apps").rsplit(".", 1)[0] == subnet1.rsplit(".", 1)[0]
    assert second.ip_of("app", "apps").rsplit(".", 1)[0] == subnet2.rsplit(".", 1)[0]


def test_claims_of_a_removed_root_are_reclaimed(roots: Roots):
    gone = roots.new()
    created = gone("network", "create", "old", check=True).stdout.strip()
    subnet = gone.json("network", "inspect", created)[0]["IPAM"]["Config"][0]["Subnet"]
    assert os.path.realpath(gone.root) in _claims()
    gone("network", "rm", "old", check=True)
    gone_created = gone("network", "create", "old2", "--subnet", subnet, check=True).stdout.strip()
    assert gone_created
    shutil.rmtree(gone.root)  # the root is gone (its claims still in the file)
    heir = roots.new()
    out = heir("network", "create", "--subnet", subnet, "new")
    assert out.returncode == 0, out.stderr
    assert os.path.realpath(gone.root) not in _claims()


def _forget_claims_of(root: str) -> None:
    """What a reboot does to /run: this root's claims are gone (its state still names its subnets)."""
    import fcntl

    with open("/run/pycontainer/subnets.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(CLAIMS) as f:
            data = json.load(f)
        data["roots"].pop(os.path.realpath(root), None)
        with open(CLAIMS + ".test-tmp", "w") as f:
            json.dump(data, f)
        os.rename(CLAIMS + ".test-tmp", CLAIMS)


def test_a_subnet_taken_while_unclaimed_refuses_the_start_but_never_the_removal(roots: Roots):
    first = roots.new()
    created = first("network", "create", "apps", check=True).stdout.strip()
    subnet = first.json("network", "inspect", created)[0]["IPAM"]["Config"][0]["Subnet"]
    first("create", "--name", "app", "--network", "apps", first.image, "sleep", "60", check=True)
    _forget_claims_of(first.root)
    second = roots.new()
    second("network", "create", "--subnet", subnet, "mine", check=True)  # free as far as the host knows
    proc = first("start", "app")
    assert proc.returncode != 0
    assert f"subnet {subnet} of network apps is used by engine root {os.path.realpath(second.root)}" in proc.stderr
    # The record stays removable, and so does the network.
    first("rm", "-f", "app", check=True)
    assert first("ps", "-aq").stdout.split() == []
    first("network", "rm", "apps", check=True)
