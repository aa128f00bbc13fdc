"""Every integration test runs under the leak check: it must leave the host as it found it."""

from __future__ import annotations

import os

import pytest

from tests.integration.helpers import Cli, write_engine_config
from tests.leakcheck import HostState, leaks_after


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def no_leaks(request, registry):
    """Fail the test if it leaves mounts, processes, netns, links, nft tables or cgroups behind.

    Depends on ``registry`` so the session's registry is up before the first snapshot.
    """
    if os.geteuid() != 0:
        pytest.fail("integration tests need root")
    before = HostState.capture()
    yield
    leaks = leaks_after(before)
    if leaks:
        pytest.fail(f"test left host state behind: {leaks}")


@pytest.fixture
def cli(engine_root, registry, busybox_image, tmp_path) -> Cli:
    """The real CLI on this test's engine root; docker.io mirrored by the session registry (busybox seeded)."""
    return Cli(root=str(engine_root), config=write_engine_config(str(tmp_path / "engine.json"), registry.host))
