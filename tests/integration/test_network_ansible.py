"""The networking modules through real `ansible` runs: pycontainer_network (idempotent, check mode) and the
pycontainer module's networking options (published ports, user networks with aliases, dns, etc_hosts)."""

from __future__ import annotations

import json

import pytest

from tests.integration import test_network
from tests.integration.test_ansible import adhoc
from tests.integration.test_network import NetCli, curl, nft_table_exists
from tests.integration.test_ports import free_port

pytestmark = pytest.mark.integration

net_cli = test_network.net_cli  # the fixture: own bridge, subnets and nftables table per test


def _args(cli: NetCli, **params) -> str:
    return json.dumps({"root": cli.root, "config": cli.config, **params})


def test_network_module_is_idempotent_with_check_mode(net_cli: NetCli):
    subnet = f"{net_cli.pool_prefix}.40.0/24"
    rc, result = adhoc("pycontainer_network", _args(net_cli, name="modnet", subnet=subnet), "--check")
    assert rc == 0 and result["changed"] is True
    assert "modnet" not in net_cli("network", "ls", "--format", "{{.Name}}", check=True).stdout.split()
    rc, result = adhoc("pycontainer_network", _args(net_cli, name="modnet", subnet=subnet, labels={"a": "b"}))
    assert rc == 0 and result["changed"] is True, result
    assert result["network"]["IPAM"]["Config"][0]["Subnet"] == subnet
    rc, again = adhoc("pycontainer_network", _args(net_cli, name="modnet", subnet=subnet, labels={"a": "b"}))
    assert rc == 0 and again["changed"] is False and again["network"]["Id"] == result["network"]["Id"]
    # Another subnet: recreated.
    other = f"{net_cli.pool_prefix}.41.0/24"
    rc, changed = adhoc("pycontainer_network", _args(net_cli, name="modnet", subnet=other))
    assert rc == 0 and changed["changed"] is True and changed["network"]["IPAM"]["Config"][0]["Subnet"] == other
    rc, gone = adhoc("pycontainer_network", _args(net_cli, name="modnet", state="absent"), "--check")
    assert rc == 0 and gone["changed"] is True
    assert "modnet" in net_cli("network", "ls", "--format", "{{.Name}}", check=True).stdout.split()
    rc, gone = adhoc("pycontainer_network", _args(net_cli, name="modnet", state="absent"))
    assert rc == 0 and gone["changed"] is True
    rc, gone = adhoc("pycontainer_network", _args(net_cli, name="modnet", state="absent"))
    assert rc == 0 and gone["changed"] is False


def test_container_module_networking_options(net_cli: NetCli):
    port = free_port()
    rc, _output = adhoc("pycontainer_network", _args(net_cli, name="appnet"))
    assert rc == 0
    db = _args(net_cli, name="moddb", image=net_cli.image, command="sleep 120",
               networks=[{"name": "appnet", "aliases": ["database"]}])
    rc, result = adhoc("pycontainer", db)
    assert rc == 0 and result["changed"] is True, result
    web = _args(net_cli, name="modweb", image=net_cli.image, command="httpd -f -p 80 -h /etc",
                networks=[{"name": "appnet"}], published_ports=[f"127.0.0.1:{port}:80"],
                dns_servers=["192.0.2.53"], etc_hosts={"legacy": "192.0.2.10"})
    rc, result = adhoc("pycontainer", web)
    assert rc == 0 and result["changed"] is True, result
    settings = result["container"]["NetworkSettings"]
    assert settings["Ports"]["80/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
    assert "appnet" in settings["Networks"]
    assert curl(f"http://127.0.0.1:{port}/hostname").strip() == result["container"]["Id"][:12]
    files = net_cli("exec", "modweb", "cat", "/etc/hosts", "/etc/resolv.conf", check=True).stdout.splitlines()
    assert "192.0.2.10\tlegacy" in files and "nameserver 192.0.2.53" in files
    assert any(ln.split()[1:2] == ["moddb"] and "database" in ln.split() for ln in files)
    rc, again = adhoc("pycontainer", web)
    assert rc == 0 and again["changed"] is False, again
    for name in ("modweb", "moddb"):
        rc, _output = adhoc("pycontainer", _args(net_cli, name=name, state="absent"))
        assert rc == 0
    rc, _output = adhoc("pycontainer_network", _args(net_cli, name="appnet", state="absent"))
    assert rc == 0
    test_network.wait_for(lambda: not nft_table_exists(net_cli.table), timeout=5, what="the table to go")


def test_container_module_network_mode_container_is_idempotent(net_cli: NetCli):
    target = net_cli.start("--name", "modtarget", net_cli.image, "sleep", "120")
    side = _args(net_cli, name="modside", image=net_cli.image, command="sleep 120", network_mode="container:modtarget")
    rc, result = adhoc("pycontainer", side)
    assert rc == 0 and result["changed"] is True, result
    assert result["container"]["HostConfig"]["NetworkMode"] == f"container:{target}"
    rc, again = adhoc("pycontainer", side)
    assert rc == 0 and again["changed"] is False, again
    rc, refused = adhoc("pycontainer", _args(net_cli, name="modbad", image=net_cli.image, command="true",
                                             network_mode="container:modtarget", published_ports=["8080:80"]))
    assert rc != 0 and "port publishing and the container type network mode" in refused["msg"], refused
    assert "Traceback" not in json.dumps(refused)
