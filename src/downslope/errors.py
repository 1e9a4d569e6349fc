"""The library's own exception types. Each also derives from the built-in one users would catch."""

from __future__ import annotations


class DownslopeError(Exception):
    """Base class of every error downslope raises on purpose."""


class ShapeError(DownslopeError, ValueError):
    """Shapes that do not fit together; the message names the module and both shapes."""


class CheckpointError(DownslopeError, ValueError):
    """A checkpoint that cannot be written or read (missing, truncated, corrupted, wrong format)."""


class DataError(DownslopeError, ValueError):
    """Bad input data: NaN/inf, wrong columns, malformed files; the message says where."""


class ConfigError(DownslopeError, ValueError):
    """A bad option, flag or config value; the message lists the valid choices."""


class DivergenceError(DownslopeError, FloatingPointError):
    """Training diverged (non-finite or exploding loss)."""
