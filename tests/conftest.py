"""Session fixtures shared by every suite: the real registry, fixture images, per-test engine roots."""

import os
import uuid

from tests.fixtures.pytest_plugin import *  # noqa: F403
from tests.leakcheck import RUN_MARKER

# Marks every process this run starts, so the leak check can tell them from the rest of the machine.
os.environ.setdefault(RUN_MARKER, uuid.uuid4().hex)
