"""Session fixtures shared by every suite: the real registry, fixture images, per-test engine roots."""

from tests.fixtures.pytest_plugin import *  # noqa: F403
