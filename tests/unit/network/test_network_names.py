"""Which bridge, subnet and nftables table an engine root uses (config.network_names: no I/O)."""

from __future__ import annotations

import hashlib
import os

from ansible_collections.pycontainer.engine.plugins.module_utils.config import DEFAULT_ROOT, EngineConfig, network_names


def test_the_default_root_keeps_the_historic_names():
    names = network_names(EngineConfig(root=DEFAULT_ROOT))
    assert (names.bridge_name, names.bridge_subnet, names.nft_table) == ("pycontainer0", "10.99.0.0/16", "pycontainer")


def test_another_root_derives_its_own_from_its_real_path(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    digest = hashlib.sha256(os.path.realpath(tmp_path / "real").encode()).hexdigest()[:8]
    for root in (tmp_path / "real", tmp_path / "link"):
        names = network_names(EngineConfig(root=str(root)))
        expected = (f"pyc-{digest}", "", f"pycontainer_{digest}")
        assert (names.bridge_name, names.bridge_subnet, names.nft_table) == expected
        assert len(names.bridge_name) <= 15  # IFNAMSIZ


def test_configured_values_win(tmp_path):
    names = network_names(EngineConfig(root=str(tmp_path), bridge_name="br0x", bridge_subnet="10.5.0.0/24",
                                       nft_table="mine"))
    assert (names.bridge_name, names.bridge_subnet, names.nft_table) == ("br0x", "10.5.0.0/24", "mine")
