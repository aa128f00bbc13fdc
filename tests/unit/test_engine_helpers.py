import json
import os

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.config import load_config
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import InvalidArgument
from ansible_collections.pycontainer.engine.plugins.module_utils.network.etcfiles import resolv_conf_content
from ansible_collections.pycontainer.engine.plugins.module_utils.runtime.lifecycle import (
    merge_env,
)
from ansible_collections.pycontainer.engine.plugins.module_utils.runtime.userdb import resolve_user


def test_merge_env_overrides_by_key_and_adds_path():
    assert merge_env(["A=1", "B=2"], ["B=3", "C=4"]) == [
        "A=1", "B=3", "C=4", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    assert merge_env(["PATH=/x"], []) == ["PATH=/x"]
    with pytest.raises(InvalidArgument):
        merge_env([], ["=x"])


def test_resolv_conf_drops_loopback_nameservers():
    text = "search lan\nnameserver 127.0.0.53\nnameserver 10.0.0.1\n"
    assert resolv_conf_content(text, [], [], []) == "search lan\nnameserver 10.0.0.1\n"
    assert resolv_conf_content("nameserver 127.0.0.1\n", [], [], []) == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"


def test_config_precedence_and_validation(tmp_path, monkeypatch):
    path = tmp_path / "engine.json"
    path.write_text(json.dumps({"registry-mirrors": ["http://127.0.0.1:5000"], "root": str(tmp_path / "r")}))
    monkeypatch.delenv("PYCONTAINER_ROOT", raising=False)
    config = load_config(str(path))
    assert config.registry_mirrors == ["http://127.0.0.1:5000"] and config.root == str(tmp_path / "r")
    monkeypatch.setenv("PYCONTAINER_ROOT", str(tmp_path / "env"))
    assert load_config(str(path)).root == str(tmp_path / "env")
    assert load_config(str(path), root=str(tmp_path / "arg")).root == str(tmp_path / "arg")
    path.write_text('{"bogus": 1}')
    with pytest.raises(InvalidArgument, match="unknown keys bogus"):
        load_config(str(path))
    with pytest.raises(InvalidArgument, match="does not exist"):
        load_config(str(tmp_path / "missing.json"))


def test_resolve_user_from_image_files(tmp_path):
    layer = tmp_path / "layer"
    (layer / "etc").mkdir(parents=True)
    (layer / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\n")
    (layer / "etc/group").write_text("root:x:0:\nwww:x:33:\nadm:x:4:www\n")
    dirs = [str(layer)]
    assert resolve_user(dirs, "") .uid == 0
    www = resolve_user(dirs, "www")
    assert (www.uid, www.gid, www.home, www.additional_gids) == (33, 33, "/var/www", [4])
    assert (resolve_user(dirs, "www:adm").gid, resolve_user(dirs, "1000:1000").uid) == (4, 1000)
    with pytest.raises(InvalidArgument, match="unable to find user nobody"):
        resolve_user(dirs, "nobody")


def test_resolve_user_never_follows_a_symlinked_passwd(tmp_path):
    layer = tmp_path / "layer"
    (layer / "etc").mkdir(parents=True)
    os.symlink("/etc/passwd", layer / "etc/passwd")
    with pytest.raises(InvalidArgument):
        resolve_user([str(layer)], "root-on-host-only-name")


def test_config_types_are_checked_from_the_dataclass(tmp_path):
    path = tmp_path / "engine.json"
    for bad in ({"registry_mirrors": "http://x"}, {"registry_mirrors": [1]}, {"root": 5}):
        path.write_text(json.dumps(bad))
        with pytest.raises(InvalidArgument, match="must be of type"):
            load_config(str(path))


def test_one_version_everywhere():
    import tomllib

    import yaml
    from ansible_collections.pycontainer.engine.plugins.module_utils.version import ENGINE_VERSION

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(repo, "pyproject.toml"), "rb") as f:
        assert tomllib.load(f)["project"]["version"] == ENGINE_VERSION
    with open(os.path.join(repo, "galaxy.yml")) as f:
        assert yaml.safe_load(f)["version"] == ENGINE_VERSION
