"""cli/client.py's decisions and wire format, without a server (with one: tests/integration/test_cli_server.py)."""

from __future__ import annotations

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.cli import client


@pytest.fixture
def as_root(monkeypatch):
    monkeypatch.setattr(client.os, "geteuid", lambda: 0)
    for name in (client.DISABLE_ENV, client.LINGER_ENV, "PYCONTAINER_FAULT"):
        monkeypatch.delenv(name, raising=False)


def test_root_with_nothing_set_asks_a_server(as_root):
    assert client._wanted()


@pytest.mark.parametrize("setting", [
    {"euid": 1000},
    {client.DISABLE_ENV: "0"},
    {client.LINGER_ENV: "0"},
    {"PYCONTAINER_FAULT": "rm.after_kill=exit"},
])
def test_these_run_the_command_in_its_own_process(as_root, monkeypatch, setting):
    for name, value in setting.items():
        if name == "euid":
            monkeypatch.setattr(client.os, "geteuid", lambda uid=value: uid)
        else:
            monkeypatch.setenv(name, value)
    assert not client._wanted()


def test_not_root_never_reaches_for_the_server_even_when_required(monkeypatch):
    monkeypatch.setattr(client.os, "geteuid", lambda: 1000)
    monkeypatch.setenv(client.DISABLE_ENV, "require")
    ran = []
    monkeypatch.setattr(client, "_through_server", lambda argv: pytest.fail("asked the server"))
    monkeypatch.setattr(client, "_run_locally", lambda argv: ran.append(argv) or 0)
    assert client.main(["ps"]) == 0 and ran == [["ps"]]


def test_requests_round_trip_and_malformed_ones_are_refused():
    argv = ["run", "-e", "A=b=c", "--name", "x", "busybox", "sh", "-c", "echo é"]
    env = {"PATH": "/bin", "EMPTY": "", "WITH_EQ": "a=b"}
    data = client.encode_request("/pkg", "/usr/bin/python3", 0o027, argv, env)
    assert client.decode_request(data) == ("/pkg", "/usr/bin/python3", 0o027, argv, env)
    for bad in (b"", data[:-1], b"XXXX" + data[4:], data[:8] + b"\0" + data[9:]):
        with pytest.raises(ValueError):
            client.decode_request(bad)


def test_the_socket_path_is_per_context_and_can_be_overridden(monkeypatch):
    monkeypatch.delenv(client.SOCKET_ENV, raising=False)
    one = client.socket_path("/pkg", "/usr/bin/python3")
    assert one.startswith(client.RUN_DIR + "/cli-") and one == client.socket_path("/pkg", "/usr/bin/python3")
    assert one != client.socket_path("/other", "/usr/bin/python3")
    monkeypatch.setattr(client, "context", lambda pid="self": [("another net namespace", "net:[1]")])
    assert client.socket_path("/pkg", "/usr/bin/python3") != one
    monkeypatch.setenv(client.SOCKET_ENV, "/tmp/x.sock")
    assert client.socket_path("/pkg", "/usr/bin/python3") == "/tmp/x.sock"
