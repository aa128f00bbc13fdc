"""References, records and secrets through the real CLI.

- A reference shaped like a path (64 characters, absolute or climbing) planted by an unprivileged host user is no
  container: nothing reads, starts or removes the record it points at.
- A record that cannot be started (truncated, from a newer version, image gone, options older code accepted)
  is still listed (with a warning), inspected and removed; prune goes past it.
- Secrets given on the command line or in env files never reach the engine log, the events journal or the
  monitor log.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from tests.fixtures.registry import REGISTRY_PASSWORD, REGISTRY_USER
from tests.integration.helpers import Cli

pytestmark = pytest.mark.integration

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _container_id(cli: Cli, ref: str) -> str:
    return cli("inspect", "--format", "{{.Id}}", ref, check=True).stdout.strip()


def _config_path(cli: Cli, container_id: str) -> str:
    return os.path.join(cli.root, "containers", container_id, "config.json")


def _read_config(cli: Cli, container_id: str) -> dict:
    with open(_config_path(cli, container_id)) as f:
        return json.load(f)


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _plant_as_nobody(directory: str, record: dict) -> None:
    """An unprivileged host user writes a container record of its own making outside the engine root."""
    script = ("import json, os, sys; d = sys.argv[1]; os.makedirs(d); "
              "open(os.path.join(d, 'config.json'), 'w').write(sys.argv[2])")
    subprocess.run([*NOBODY, "/usr/bin/python3", "-c", script, directory, json.dumps(record)], check=True)


def test_a_path_shaped_reference_is_no_container(cli: Cli, busybox_image):
    real = _container_id(cli, cli("create", "--name", "real", busybox_image, "true", check=True).stdout.strip())
    planted_top = tempfile.mkdtemp(prefix="refs-", dir="/tmp")
    os.chmod(planted_top, 0o777)
    try:
        absolute = planted_top + "/" + "a" * (63 - len(planted_top))
        base = os.path.relpath(planted_top, os.path.join(cli.root, "containers")) + "/"
        relative = base + "b" * (64 - len(base))
        for ref in (absolute, relative):
            assert len(ref) == 64
            record = {**_read_config(cli, real), "id": ref, "name": "planted", "labels": {"planted": "by-nobody"},
                      "cmd": ["sh", "-c", "echo planted-ran"]}
            _plant_as_nobody(os.path.normpath(os.path.join(cli.root, "containers", ref)), record)
        for ref in (absolute, relative):
            proc = cli("inspect", ref)
            assert proc.returncode != 0 and "by-nobody" not in proc.stdout, proc.stdout
            assert f"No such object: {ref}" in proc.stderr, proc.stderr
            for verb in (("start",), ("rm", "-f"), ("stop",), ("logs",)):
                proc = cli(*verb, ref)
                assert proc.returncode in (1, 125) and f"No such container: {ref}" in proc.stderr, (verb, proc.stderr)
                assert "internal error" not in proc.stderr
        listing = cli("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}", check=True).stdout
        assert listing.split() == [real, "real"]
        # The planted records are untouched (not renamed away by rm, nothing written by start).
        assert sorted(os.listdir(os.path.join(absolute))) == ["config.json"]
        assert sorted(os.listdir(os.path.join(cli.root, "containers", relative))) == ["config.json"]
    finally:
        shutil.rmtree(planted_top)
        cli("rm", "-f", "real")


def test_names_are_checked_whole(cli: Cli, busybox_image):
    """Docker's name pattern applies to the whole string: a trailing newline is no part of a valid name."""
    proc = cli("create", "--name", "web\n", busybox_image, "true")
    assert proc.returncode == 125 and "Invalid container name" in proc.stderr, proc.stderr
    assert cli("ps", "-a", "-q", check=True).stdout == ""
    cli("create", "--name", "web", busybox_image, "true", check=True)
    try:
        proc = cli("rename", "web", "../web")
        assert proc.returncode == 125 and "Invalid container name" in proc.stderr
        proc = cli("rename", "web", "other\n")
        assert proc.returncode == 125 and "Invalid container name" in proc.stderr
    finally:
        cli("rm", "-f", "web")


def _damage(cli: Cli, busybox_image) -> dict[str, str]:
    """One container per kind of bad record; name -> id."""
    damaged = {}
    for name in ("truncated", "newer", "image-gone", "memory-1m", "user-nosuch", "bad-state", "wrong-types"):
        damaged[name] = cli("create", "--name", name, busybox_image, "true", check=True).stdout.strip()
    for name, cid in damaged.items():
        path = _config_path(cli, cid)
        config = _read_config(cli, cid)
        if name == "truncated":
            text = json.dumps(config)
            _write(path, text[: len(text) // 3])
        elif name == "newer":
            config["added_by_v9"] = {"x": 1}
            config["host_config"]["added_by_v9"] = [1]
            config["host_config"]["restart_policy"]["added_by_v9"] = True
            config["host_config"]["mounts"] = [{"type": "tmpfs", "source": "", "target": "/t", "added_by_v9": 1}]
            _write(path, json.dumps(config))
        elif name == "image-gone":
            _write(path, json.dumps({**config, "image": "sha256:" + "0" * 64}))
        elif name == "memory-1m":
            config["host_config"]["memory"] = 1 << 20
            _write(path, json.dumps(config))
        elif name == "user-nosuch":
            _write(path, json.dumps({**config, "user": "nosuch"}))
        elif name == "bad-state":
            _write(os.path.join(os.path.dirname(path), "state.json"), '{"status": 7, "pid": ')
        else:
            _write(path, json.dumps({**config, "created": 5, "cmd": "not a list"}))
    return damaged


def test_bad_records_are_listed_inspected_and_removed(cli: Cli, busybox_image):
    cli("run", "--network", "none", "--name", "good", busybox_image, "true", check=True)
    damaged = _damage(cli, busybox_image)
    try:
        proc = cli("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.State}}")
        assert proc.returncode == 0, proc.stderr
        rows = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines()}
        assert set(rows) == {*damaged.values(), _container_id(cli, "good")}
        for name in ("truncated", "bad-state", "wrong-types"):
            assert rows[damaged[name]] == [name, "dead"]
            assert f"WARNING: container {damaged[name][:12]} has a damaged record" in proc.stderr
        for name in ("newer", "image-gone", "memory-1m", "user-nosuch"):
            assert rows[damaged[name]] == [name, "created"]  # readable records: not damaged
            assert damaged[name][:12] not in proc.stderr
        assert "internal error" not in proc.stderr
        assert cli("ps", "-a", "-q", check=True).stdout.count("\n") == len(damaged) + 1
        # What else walks every record: sizes, df, info, filters.
        for verb in (("ps", "-a", "-s"), ("system", "df"), ("system", "df", "-v"), ("info",),
                     ("ps", "-a", "--filter", "ancestor=busybox"), ("ps", "-a", "--filter", "volume=/x")):
            proc = cli(*verb)
            assert proc.returncode == 0 and "internal error" not in proc.stderr, (verb, proc.stderr)
        for name, cid in damaged.items():
            proc = cli("inspect", name)
            assert proc.returncode == 0, (name, proc.stderr)
            assert json.loads(proc.stdout)[0]["Id"] == cid
        proc = cli("start", "truncated")
        assert proc.returncode == 1 and "damaged record" in proc.stderr and "internal error" not in proc.stderr
        for name in damaged:
            proc = cli("rm", "-f", name)
            assert proc.returncode == 0 and proc.stdout == f"{name}\n", (name, proc.stderr)
        assert cli("ps", "-a", "-q", check=True).stdout.split() == [_container_id(cli, "good")[:12]]
        assert not any(os.path.exists(os.path.dirname(_config_path(cli, cid))) for cid in damaged.values())
    finally:
        for name in (*damaged, "good"):
            cli("rm", "-f", name)


@pytest.mark.parametrize("verb", [("container", "prune", "-f"), ("system", "prune", "-f")])
def test_prune_goes_past_bad_records(cli: Cli, busybox_image, verb):
    cli("run", "--network", "none", "--name", "done", busybox_image, "true", check=True)
    done = _container_id(cli, "done")
    damaged = _damage(cli, busybox_image)
    # A damaged mounts file too: the record it belongs to is still removed.
    _write(os.path.join(os.path.dirname(_config_path(cli, damaged["newer"])), "mounts.json"), "[{")
    try:
        proc = cli(*verb)
        assert proc.returncode == 0, proc.stderr
        assert "internal error" not in proc.stderr
        deleted = proc.stdout.split("Deleted Containers:\n", 1)[1].split("\n\n", 1)[0].split()
        # Created containers are prunable too (Docker's "stopped containers" are every non-running one).
        assert set(deleted) == {done, *damaged.values()}
        assert cli("ps", "-a", "-q", check=True).stdout == ""
    finally:
        for name in (*damaged, "done"):
            cli("rm", "-f", name)


def test_secrets_stay_out_of_the_logs(cli: Cli, busybox_image, htpasswd_registry, tmp_path):
    secrets = {name: f"s3cr3t-{name}-{os.urandom(6).hex()}" for name in
               ("run-e", "run-env", "env-file", "exec-e", "login-p", "login-stdin", "failed-run")}
    env_file = tmp_path / "app.env"
    env_file.write_text(f"# comment\nDB_PASSWORD={secrets['env-file']}\n")
    debug = ("-l", "debug")
    cli(*debug, "run", "--rm", "--network", "none", "-e", f"PASSWORD={secrets['run-e']}",
        f"--env=API_TOKEN={secrets['run-env']}", "--env-file", str(env_file), busybox_image, "true", check=True)
    cli(*debug, "run", "-d", "--network", "none", "--name", "sec", "-de", f"RUN={secrets['run-e']}", busybox_image,
        "sleep", "60", check=True)
    try:
        proc = cli(*debug, "exec", "-e", f"EXEC_SECRET={secrets['exec-e']}", "sec", "sh", "-c", "echo $EXEC_SECRET")
        assert proc.stdout.strip() == secrets["exec-e"]
        # inspect shows a container's env, as Docker's does: that is not the log.
        assert f"RUN={secrets['run-e']}" in cli("inspect", "sec", check=True).stdout
    finally:
        cli("rm", "-f", "sec")
    proc = cli(*debug, "run", "--network", "none", "-e", f"PASSWORD={secrets['failed-run']}", "no/such:image")
    assert proc.returncode == 125
    host = htpasswd_registry.host
    proc = cli(*debug, "login", "-u", REGISTRY_USER, "-p", secrets["login-p"], host)
    assert proc.returncode == 125 and "incorrect username or password" in proc.stderr
    proc = cli(*debug, "login", "-u", REGISTRY_USER, "--password-stdin", host, input=secrets["login-stdin"] + "\n")
    assert proc.returncode == 125
    proc = cli(*debug, "login", "-u", REGISTRY_USER, f"--password={REGISTRY_PASSWORD}", host)
    assert proc.returncode == 0, proc.stderr
    cli("logout", host, check=True)
    basic = base64.b64encode(f"{REGISTRY_USER}:{REGISTRY_PASSWORD}".encode()).decode()

    log_path = os.path.join(os.path.dirname(cli.config), "engine.log")
    with open(log_path) as f:
        log = f.read()
    # The commands were logged (so this looks at something), with their secret values replaced.
    assert "PASSWORD=*****" in log and "--env-file " + str(env_file) in log and "-p *****" in log
    assert "EXEC_SECRET=*****" in log and f"--password={REGISTRY_PASSWORD}" not in log
    journals = [os.path.join(cli.root, "events", name) for name in os.listdir(os.path.join(cli.root, "events"))]
    texts = {"engine.log": log}
    for path in [*journals, os.path.join(cli.root, "run", "monitor.log")]:
        if os.path.exists(path):
            with open(path, errors="replace") as f:
                texts[path] = f.read()
    assert any("events" in name for name in texts)
    for name, text in texts.items():
        for secret in (*secrets.values(), REGISTRY_PASSWORD, basic):
            assert secret not in text, (name, secret)


def test_modules_treat_path_shaped_names_as_no_container_and_remove_bad_records(cli: Cli, busybox_image):
    from tests.integration.test_ansible import adhoc

    real = cli("create", "--name", "template", busybox_image, "true", check=True).stdout.strip()
    truncated = cli("create", "--name", "truncated", busybox_image, "true", check=True).stdout.strip()
    _write(_config_path(cli, truncated), json.dumps(_read_config(cli, truncated))[:40])
    planted_top = tempfile.mkdtemp(prefix="refs-", dir="/tmp")
    os.chmod(planted_top, 0o777)
    engine = {"root": cli.root, "config": cli.config}
    try:
        ref = planted_top + "/" + "d" * (63 - len(planted_top))
        _plant_as_nobody(ref, {**_read_config(cli, real), "id": ref, "name": "planted"})
        rc, result = adhoc("pycontainer", json.dumps({**engine, "name": ref, "state": "absent"}))
        assert rc == 0 and result["changed"] is False, result
        assert os.listdir(ref) == ["config.json"]
        rc, result = adhoc("pycontainer", json.dumps({**engine, "name": ref, "image": busybox_image,
                                                      "state": "started"}))
        assert rc == 2 and "Invalid container name" in result["msg"] and "exception" not in result, result
        rc, result = adhoc("pycontainer_exec", json.dumps({**engine, "container": ref, "command": "true"}))
        assert rc == 2 and f"No such container: {ref}" in result["msg"], result
        # A record that cannot be read is still removed by the module.
        rc, result = adhoc("pycontainer", json.dumps({**engine, "name": "truncated", "state": "absent"}))
        assert rc == 0 and result["changed"] is True, result
        assert cli("ps", "-a", "--format", "{{.Names}}", check=True).stdout.split() == ["template"]
    finally:
        shutil.rmtree(planted_top)
        cli("rm", "-f", "template")
        cli("rm", "-f", "truncated")
