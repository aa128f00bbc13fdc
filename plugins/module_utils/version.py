"""The engine's version: one place (galaxy.yml and pyproject.toml must agree; a test checks)."""

ENGINE_VERSION = "0.1.0"
