"""Anomaly mode as torch 2.13's: entering it warns, a backward error warns "Error detected in <Node>.
Traceback of forward call that caused the error" naming the user's forward line (the stack is kept only
while the mode is on), and the error itself is torch's."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

import downslope as ds

torch = pytest.importorskip("torch")
LIBS = (ds, torch)


def _nan_backward(lib: Any) -> tuple[str, list[str]]:
    x = lib.tensor([-1.0, 1.0], requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RuntimeError) as info, lib.autograd.detect_anomaly():
            y = x.sqrt()  # the forward line
            lib.where(x > 0, y, lib.zeros_like(y)).sum().backward()
    return str(info.value), [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_nan_error_points_at_the_forward_line(lib: Any) -> None:
    message, warned = _nan_backward(lib)
    assert message.startswith("Function 'SqrtBackward0' returned nan values in its 0th output.")
    assert any(w.startswith("Anomaly Detection has been enabled.") for w in warned)
    traced = [w for w in warned if w.startswith("Error detected in SqrtBackward0. Traceback of forward call")]
    assert len(traced) == 1 and "y = x.sqrt()  # the forward line" in traced[0]


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_inplace_error_points_at_the_forward_line_in_anomaly_mode(lib: Any) -> None:
    x = lib.ones(3, requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with lib.autograd.detect_anomaly():
            y = x.sigmoid()  # saves its output
            y.mul_(2)
            with pytest.raises(RuntimeError, match="modified by an inplace operation"):
                y.sum().backward()
    traced = [str(w.message) for w in caught if "Traceback of forward call" in str(w.message)]
    assert len(traced) == 1 and "y = x.sigmoid()  # saves its output" in traced[0]


def test_no_stack_kept_outside_anomaly_mode() -> None:
    x = ds.ones(2, requires_grad=True)
    assert getattr(x * 2, "_forward_stack", None) is None
    with ds.autograd.detect_anomaly():
        assert getattr(x * 2, "_forward_stack", None) is not None
    assert getattr(x * 2, "_forward_stack", None) is None
