"""The error classes for what torch raises as RuntimeError stay catchable both ways: as RuntimeError
(ported torch code) and as the built-in downslope code has caught so far."""

from __future__ import annotations

import pytest

from downslope import errors


@pytest.mark.parametrize(
    ("cls", "builtin", "parent"),
    [
        (errors.DTypeError, TypeError, errors.ArgumentTypeError),
        (errors.InvalidValueError, ValueError, errors.ArgumentError),
        (errors.UninitializedError, ValueError, errors.StateError),  # torch: RuntimeError or ValueError by use
    ],
)
def test_runtime_error_classes_keep_their_older_bases(cls, builtin, parent) -> None:  # type: ignore[no-untyped-def]
    for catch in (RuntimeError, builtin, parent, errors.DownslopeError):
        with pytest.raises(catch, match="the message"):
            raise cls("the message")
    assert str(cls("the message")) == "the message"
