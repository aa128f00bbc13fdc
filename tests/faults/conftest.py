"""The fault suite: every test runs under the integration leak check, on its own root, bridge and nft table.

At the end of the session a table of the faults tried and their outcomes is printed (``fault_row``).
"""

from __future__ import annotations

import secrets

import pytest

from tests.faults.helpers import FaultCli, remove_everything
from tests.integration.conftest import no_leaks  # noqa: F401  # pylint: disable=unused-import
from tests.integration.helpers import free_second_octets, write_engine_config

_ROWS: list[tuple[str, tuple[str, str, str]]] = []   # (test node id, (fault, step, next command))
_OUTCOMES: dict[str, str] = {}


def pytest_collection_modifyitems(items):
    for item in items:
        if "/faults/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def fcli(engine_root, registry, busybox_image, tmp_path):
    """The CLI on a fresh root with its own bridge, /24 and nftables table: a simulated reboot may delete them
    without touching another engine's (other roots on the host share the defaults)."""
    tag = secrets.token_hex(3)
    prefix = f"10.{free_second_octets(180, 240, span=1)}.{secrets.randbelow(250)}"
    config = write_engine_config(str(tmp_path / "engine.json"), registry.host, bridge_name=f"pcf{tag}",
                                 bridge_subnet=f"{prefix}.0/24", network_pool=f"10.{prefix.split('.')[1]}.0.0/16",
                                 nft_table=f"pcf_{tag}")
    cli = FaultCli(root=engine_root, config=config, image=busybox_image, bridge=f"pcf{tag}", table=f"pcf_{tag}",
                   prefix=prefix, flag=str(tmp_path / "fault-fired"))
    cli("pull", "-q", busybox_image, check=True)
    try:
        yield cli
    finally:
        remove_everything(cli)


@pytest.fixture
def fault_row(request):
    """``fault_row(fault, step, next_command)``: a row of the summary table; the outcome is the test's."""
    def add(fault: str, step: str, next_command: str) -> None:
        _ROWS.append((request.node.nodeid, (fault, step, next_command)))
    return add


def pytest_runtest_logreport(report):
    if report.failed and _OUTCOMES.get(report.nodeid, "ok") == "ok":
        _OUTCOMES[report.nodeid] = "FAILED" if report.when == "call" else f"ERROR ({report.when})"
    elif report.when == "call" and report.skipped:
        _OUTCOMES[report.nodeid] = "skipped"
    elif report.when == "call":
        _OUTCOMES.setdefault(report.nodeid, "ok")


def pytest_terminal_summary(terminalreporter):
    if not _ROWS:
        return
    header = ("fault", "step", "next command", "outcome")
    rows = [(*row, _OUTCOMES.get(nodeid, "not run")) for nodeid, row in _ROWS]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    terminalreporter.section("faults tried")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        terminalreporter.write_line(" | ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)))
