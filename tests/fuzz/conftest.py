"""The fuzz modules' in-process head (``tests.fuzz.checks.head``), one per module."""

from tests.fuzz.checks import head

__all__ = ["head"]
