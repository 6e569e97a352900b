"""The ``databus`` command: a thin layer over the same API a Python user calls."""

from databus.cli.main import main

__all__ = ["main"]
