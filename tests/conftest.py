"""Session fixtures shared by every suite: the real registry, fixture images, per-test engine roots."""

import ipaddress
import os
import socket
import uuid

# The fixtures are found by name: a wildcard import is how this conftest registers them.
from tests.fixtures.pytest_plugin import *  # noqa: F403  # pylint: disable=wildcard-import,unused-wildcard-import
from tests.leakcheck import RUN_MARKER

# Marks every process this run starts, so the leak check can tell them from the rest of the machine.
os.environ.setdefault(RUN_MARKER, uuid.uuid4().hex)
# The CLI's warm server (cli/server.py) serves every `pycontainer` command tests run, and leaves 1 s after its
# last one, so that each test's leak check sees it gone.
os.environ.setdefault("PYCONTAINER_CLI_LINGER", "1")

# Tests talk only to loopback (and to network namespaces they make, which they reach from inside them).
# Any other name or address asked for in this process is a bug in a test or in the engine: refuse it.
_real_getaddrinfo = socket.getaddrinfo


def _loopback_only_getaddrinfo(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if name not in (None, "localhost", "ip6-localhost"):
        try:
            allowed = ipaddress.ip_address(name.split("%")[0]).is_loopback
        except ValueError:
            allowed = False
        if not allowed:
            raise OSError(f"test network guard: refusing to resolve or reach {name!r} (loopback only)")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _loopback_only_getaddrinfo
