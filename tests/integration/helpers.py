"""Running the real CLI and the real Ansible from tests."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from dataclasses import dataclass

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.dirname(sys.executable)
PYCONTAINER = os.path.join(VENV_BIN, "pycontainer")


@dataclass
class Cli:
    """The `pycontainer` console script bound to one engine root and config file."""

    root: str
    config: str

    def argv(self) -> list[str]:
        """The command line prefix, for tests that drive the process themselves."""
        return [PYCONTAINER, "--root", self.root, "--config", self.config]

    def __call__(self, *args: str, check: bool = False, input: str | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [PYCONTAINER, "--root", self.root, "--config", self.config, *args],
            capture_output=True, text=True, input=input, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"pycontainer {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc


def write_engine_config(path: str, registry_host: str, **settings: object) -> str:
    """An engine config for one test: the fixture registry as docker.io mirror, the engine log beside it."""
    config = {
        "registry_mirrors": [f"http://{registry_host}"],
        # docker.io itself is blocked: tests never leave the machine, even when the mirror lacks an image.
        "blocked_registries": ["docker.io"],
        "log_file": os.path.join(os.path.dirname(path), "engine.log"),
        **settings,
    }
    with open(path, "w") as f:
        json.dump(config, f)
    return path


def ansible_env() -> dict[str, str]:
    env = dict(os.environ)
    env["ANSIBLE_CONFIG"] = os.path.join(REPO, "ansible.cfg")
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_LOCAL_TEMP"] = env.get("ANSIBLE_LOCAL_TEMP", "/tmp/ansible-local")
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    return env


def run_module_examples(module: str, cli: Cli, tmp_path, replace: dict[str, str] | None = None,
                        *extra: str) -> subprocess.CompletedProcess:
    """The module's EXAMPLES as one play on localhost, the engine options set through the action group
    (``replace``: placeholders of the examples, such as a registry name, by what the test has)."""
    with open(os.path.join(REPO, "plugins", "modules", f"{module}.py")) as f:
        tree = ast.parse(f.read())
    examples = next(node.value.value for node in tree.body if isinstance(node, ast.Assign)
                    and getattr(node.targets[0], "id", None) == "EXAMPLES")
    for placeholder, value in (replace or {}).items():
        examples = examples.replace(placeholder, value)
    play = [{"hosts": "localhost", "gather_facts": False,
             "module_defaults": {"group/pycontainer.engine.pycontainer": {"root": cli.root, "config": cli.config}},
             "tasks": yaml.safe_load(examples)}]
    playbook = tmp_path / f"{module}_examples.yml"
    playbook.write_text(yaml.safe_dump(play))
    return subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), str(playbook), *extra], cwd=REPO,
                          env=ansible_env(), capture_output=True, text=True, timeout=300, check=False)


def free_second_octets(low: int, high: int, span: int = 2) -> int:
    """A random ``s`` in [low, high) such that 10.s.0.0/16 … 10.(s+span-1).0.0/16 overlap nothing another engine
    root on this host claims (the demo's default root holds 10.99.0.0/16 while its `web` runs; the molecule
    scenario's root keeps its claim while its directory exists): a test's own subnets never collide with them."""
    import ipaddress
    import secrets

    try:
        with open("/run/pycontainer/subnets.json") as f:
            roots = json.load(f).get("roots", {})
    except (OSError, ValueError):
        roots = {}
    claimed = [ipaddress.ip_network(cidr, strict=False) for claim in roots.values() if isinstance(claim, dict)
               for cidr in (claim.get("subnets") or {})]
    claimed.append(ipaddress.ip_network("10.99.0.0/16"))  # the default root's, claimed or not yet
    free = [s for s in range(low, high)
            if not any(ipaddress.ip_network(f"10.{s + i}.0.0/16").overlaps(c) for i in range(span) for c in claimed)]
    return secrets.choice(free)
