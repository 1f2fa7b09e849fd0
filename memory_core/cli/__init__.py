"""The ``convmem`` command line."""

from memory_core.cli.app import app, main

__all__ = ["app", "main"]
