"""The error classes for what torch raises as RuntimeError stay catchable both ways: as RuntimeError
(ported torch code) and as the built-in downslope code has caught so far."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import downslope as ds
from downslope import errors

torch = pytest.importorskip("torch")


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


# Call sites where torch raises RuntimeError: each of ours is a RuntimeError too (ported
# `except RuntimeError:` code catches it), and still the built-in it was before (ValueError for
# values and shapes, TypeError for dtypes), so older `except` clauses keep working.
def _runtime_cases(lib: Any) -> dict[str, tuple[Callable[[], Any], type]]:
    nn, F, t = lib.nn, lib.nn.functional, lib
    x = t.zeros(4, 10, 3)
    f64 = t.zeros(2, 4, dtype=t.float64)
    return {
        "LSTM h0 shape": (lambda: nn.LSTM(3, 8, batch_first=True)(x, (t.zeros(1, 3, 8), t.zeros(1, 3, 8))), ValueError),
        "LSTM c0 shape": (lambda: nn.LSTM(3, 8)(x, (t.zeros(1, 10, 8), t.zeros(2, 10, 8))), ValueError),
        "GRU h0 shape": (lambda: nn.GRU(3, 8)(x, t.zeros(1, 10, 7)), ValueError),
        "GRU input_size": (lambda: nn.GRU(5, 8)(x), ValueError),
        "RNN empty sequence": (lambda: nn.RNN(3, 8)(t.zeros(0, 2, 3)), ValueError),
        "packed input_size": (
            lambda: nn.GRU(5, 8)(nn.utils.rnn.pack_padded_sequence(t.zeros(4, 2, 3), [4, 3])),
            ValueError,
        ),
        "GRUCell input_size": (lambda: nn.GRUCell(3, 8)(t.zeros(4, 5)), ValueError),
        "GRUCell hidden shape": (lambda: nn.GRUCell(3, 8)(t.zeros(4, 3), t.zeros(5, 8)), ValueError),
        "LSTMCell float64 input": (lambda: nn.LSTMCell(4, 8)(f64), TypeError),
        "reflect pad too large": (lambda: F.pad(x, (12, 0), mode="reflect"), ValueError),
        "circular pad too large": (lambda: F.pad(x, (5, 0), mode="circular"), ValueError),
        "odd number of pads": (lambda: F.pad(x, (1, 2, 3)), ValueError),
        "Linear float64 input": (lambda: nn.Linear(4, 3)(f64), TypeError),
        "linear bias dtype": (lambda: F.linear(t.zeros(2, 4), t.zeros(3, 4), t.zeros(3, dtype=t.float64)), TypeError),
        "linear in_features": (lambda: F.linear(t.zeros(2, 5), t.zeros(3, 4)), ValueError),
        "Conv2d float64 input": (lambda: nn.Conv2d(4, 3, 3)(t.zeros(1, 4, 5, 5, dtype=t.float64)), TypeError),
        "Conv1d float64 input": (lambda: nn.Conv1d(4, 3, 3)(t.zeros(1, 4, 5, dtype=t.float64)), TypeError),
        "conv2d bias dtype": (
            lambda: F.conv2d(t.zeros(1, 4, 5, 5), t.zeros(3, 4, 3, 3), t.zeros(3, dtype=t.float64)),
            TypeError,
        ),
        "conv2d groups": (lambda: F.conv2d(t.zeros(1, 4, 5, 5), t.zeros(3, 2, 3, 3), groups=2), ValueError),
        "multinomial negative": (lambda: t.multinomial(t.tensor([0.5, -0.1, 0.6]), 1), ValueError),
        "multinomial nan": (lambda: t.multinomial(t.tensor([0.5, float("nan")]), 1), ValueError),
        "multinomial inf": (lambda: t.multinomial(t.tensor([[0.5, float("inf")]]), 1), ValueError),
        "multinomial zero sum": (lambda: t.multinomial(t.tensor([0.0, 0.0]), 1), ValueError),
        "unfold step 0": (lambda: x.unfold(1, 2, 0), ValueError),
        "split_size negative": (lambda: x.split(-1), ValueError),
        "chunk 0": (lambda: x.chunk(0), ValueError),
        "repeat too few": (lambda: x.repeat(2, 2), ValueError),
        "rot90 one dim": (lambda: x.rot90(1, (0,)), ValueError),
        "combinations r < 0": (lambda: t.combinations(t.zeros(3), -1), ValueError),
        "cartesian_prod dtypes": (
            lambda: t.cartesian_prod(t.zeros(2), t.zeros(2, dtype=t.int64)),
            TypeError,
        ),
        "quantile q > 1": (lambda: t.quantile(t.zeros(5), 1.5), ValueError),
        "quantile interpolation": (lambda: t.quantile(t.zeros(5), 0.5, interpolation="foo"), ValueError),
        "quantile integer input": (lambda: t.quantile(t.zeros(5, dtype=t.int64), 0.5), TypeError),
        "searchsorted side": (lambda: t.searchsorted(t.zeros(3), t.zeros(2), side="foo"), ValueError),
    }


@pytest.mark.parametrize("case", list(_runtime_cases(torch)))
def test_call_sites_raise_runtime_errors_where_torch_does(case: str) -> None:
    torch_call, _ = _runtime_cases(torch)[case]
    with pytest.raises(RuntimeError):  # the reference: torch raises RuntimeError here
        torch_call()
    call, builtin = _runtime_cases(ds)[case]
    with pytest.raises(RuntimeError) as info:
        call()
    assert isinstance(info.value, errors.DownslopeError) and isinstance(info.value, builtin), type(info.value).__mro__
    assert str(info.value)
