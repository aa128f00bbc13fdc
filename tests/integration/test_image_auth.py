"""Registry authentication against the real docker-registry: Basic auth (htpasswd) with login/logout, and
Bearer tokens from a token server; credentials stay out of errors, events and module output."""

from __future__ import annotations

import json
import os
import stat

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.config import EngineConfig
from ansible_collections.pycontainer.engine.plugins.module_utils.engine import Engine
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import RegistryError

from tests.fixtures.images import File, build_oci_layout, push
from tests.fixtures.registry import REGISTRY_PASSWORD as PASSWORD
from tests.fixtures.registry import REGISTRY_USER as USER
from tests.fixtures.registry import Registry, RegistryOptions, free_port
from tests.fixtures.tokenserver import ISSUER, SERVICE, TokenServer
from tests.integration.helpers import Cli

pytestmark = pytest.mark.integration


@pytest.fixture
def token_registry(tmp_path):
    os.makedirs(tmp_path / "reg")
    tokens = TokenServer(str(tmp_path), {USER: PASSWORD}, anonymous_actions=("pull",))
    reg = Registry(str(tmp_path / "reg"), free_port(), options=RegistryOptions(
        auth="token", token_realm=tokens.realm, token_service=SERVICE, token_issuer=ISSUER,
        token_rootcert=tokens.rootcert))
    reg.start()
    try:
        yield reg, tokens
    finally:
        reg.stop()
        tokens.stop()


def seed(host: str, repo: str, tmp_path, creds: str | None) -> str:
    layout = build_oci_layout(str(tmp_path / f"layout-{repo.replace('/', '-')}"), [[File("hello", "world")]], {})
    ref = f"{host}/{repo}:v1"
    if creds:
        import subprocess

        from tests.fixtures.images import _skopeo_policy_args

        subprocess.run(["skopeo", *_skopeo_policy_args(), "copy", "--quiet", "--dest-tls-verify=false",
                        "--dest-creds", creds, f"oci:{layout.path}:latest", f"docker://{ref}"], check=True)
    else:
        push(layout.path, ref)
    return ref


def test_basic_auth_login_pull_logout(htpasswd_registry, engine_root, tmp_path):
    ref = seed(htpasswd_registry.host, "private/img", tmp_path, f"{USER}:{PASSWORD}")
    config_path = tmp_path / "engine.json"
    config_path.write_text(json.dumps({"blocked_registries": ["docker.io"]}))
    cli = Cli(engine_root, str(config_path))
    engine = Engine(EngineConfig(root=engine_root))

    proc = cli("pull", ref)
    assert proc.returncode == 125 and "authentication required" in proc.stderr

    proc = cli("login", "-u", USER, "--password-stdin", htpasswd_registry.host, input="wrong-password\n")
    assert proc.returncode == 125 and "incorrect username or password" in proc.stderr
    assert "wrong-password" not in proc.stderr + proc.stdout
    assert not os.path.exists(os.path.join(engine_root, "auth.json"))

    proc = cli("login", "-u", USER, "--password-stdin", f"http://{htpasswd_registry.host}/", input=PASSWORD + "\n")
    assert proc.returncode == 0 and proc.stdout == "Login Succeeded\n", proc.stderr
    auth_file = os.path.join(engine_root, "auth.json")
    assert stat.S_IMODE(os.stat(auth_file).st_mode) == 0o600
    with open(auth_file) as f:
        data = json.load(f)
    import base64

    assert base64.b64decode(data["auths"][htpasswd_registry.host]["auth"]).decode() == f"{USER}:{PASSWORD}"

    assert cli("pull", ref).returncode == 0
    assert engine.images.inspect(ref).repo_tags == [ref]
    # Push with the stored credentials too.
    cli("tag", ref, f"{htpasswd_registry.host}/private/copy:v1", check=True)
    assert cli("push", f"{htpasswd_registry.host}/private/copy:v1").returncode == 0

    with open(engine.events.path) as f:
        assert PASSWORD not in f.read()
    assert cli("logout", htpasswd_registry.host).stdout == f"Removing login credentials for {htpasswd_registry.host}\n"
    assert cli("logout", htpasswd_registry.host).stdout == f"Not logged in to {htpasswd_registry.host}\n"
    with open(auth_file) as f:
        assert json.load(f) == {"auths": {}}
    assert cli("pull", ref).returncode == 125


def test_token_auth_anonymous_pull_authenticated_push(token_registry, engine_root, tmp_path):
    reg, tokens = token_registry
    ref = seed(reg.host, "tok/img", tmp_path, f"{USER}:{PASSWORD}")
    engine = Engine(EngineConfig(root=engine_root, blocked_registries=["docker.io"]))
    # Anonymous pull: the token server grants pull.
    record = engine.images.pull(ref)
    assert record.repo_tags == [ref]
    assert {"scopes": ["repository:tok/img:pull"], "user": None} in tokens.requests
    # Push needs credentials.
    target = f"{reg.host}/tok/pushed:v1"
    engine.images.tag(ref, target)
    with pytest.raises(RegistryError, match="denied"):
        engine.images.push(target)
    engine.images.login(reg.host, USER, PASSWORD)
    tokens.requests.clear()
    lines: list[str] = []
    engine.images.push(target, progress=lines.append)
    assert any("Mounted from tok/img" in line for line in lines), lines
    # The mount asked for pull on the source repository in the same token request.
    assert any(set(r["scopes"]) == {"repository:tok/pushed:pull,push", "repository:tok/img:pull"}
               and r["user"] == USER for r in tokens.requests)
    # Wrong password: login fails at the token server; nothing stored.
    engine.images.logout(reg.host)
    with pytest.raises(RegistryError) as info:
        engine.images.login(reg.host, USER, "not-it")
    assert "not-it" not in str(info.value)
