"""Channel dropout on inputs of other ranks than its own, as torch runs them: dropout2d on an (N, C)
input (pytorch/examples' mnist_rnn applies nn.Dropout2d to an LSTM's (N, 64) output) warns and drops
single elements; a 3-D input is (N, C, L); dropout3d reads an unexpected rank as unbatched."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
import torch

import downslope as ds
import downslope.nn.functional as F


def _run(lib: Any, fn: str, shape: tuple[int, ...], p: float, **kwargs: Any) -> tuple[np.ndarray, list[str]]:
    """The output of ``fn`` on ones of ``shape`` and the warnings it gave (their texts, in order)."""
    x = lib.ones(*shape, dtype=lib.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = getattr(lib.nn.functional, fn)(x, p, **kwargs)
    return y.detach().numpy(), [str(w.message) for w in caught]


def _dropped_together(y: np.ndarray) -> int:
    """How many leading dims one draw covers: the mask is constant over the dims after them."""
    for lead in range(y.ndim + 1):
        blocks = y.reshape(y.shape[:lead] + (-1,))
        if (blocks == blocks[..., :1]).all():
            return lead
    return y.ndim  # pragma: no cover


@pytest.mark.parametrize(
    ("fn", "shape"),
    [("dropout2d", (64, 96)), ("dropout2d", (32, 48, 5)), ("dropout2d", (8, 40, 2, 3, 2)),
     ("dropout3d", (64, 3, 4)), ("dropout3d", (96,)), ("dropout3d", (40, 3, 2, 2, 2, 2))],
)  # fmt: skip
def test_unexpected_ranks_warn_and_drop_as_torch(fn: str, shape: tuple[int, ...]) -> None:
    p = 0.5
    ours, our_warnings = _run(ds, fn, shape, p)
    theirs, their_warnings = _run(torch, fn, shape, p)
    assert our_warnings == their_warnings
    # the random streams differ: the kept values' scale and which dims one draw covers are compared
    assert set(np.unique(ours)) == set(np.unique(theirs)) == {0.0, 1 / (1 - p)}
    assert _dropped_together(ours) == _dropped_together(theirs)
    draws = int(np.prod(shape[: _dropped_together(ours)]))
    # the dropped fraction within 5 standard deviations of p (each draw zeroes its block with probability p)
    assert abs((ours == 0).mean() - p) < 5 * np.sqrt(p * (1 - p) / draws)


@pytest.mark.parametrize("fn", ["dropout2d", "dropout3d"])
@pytest.mark.parametrize("p", [0.0, 0.3])
def test_eval_and_p_zero_return_the_input_and_still_warn(fn: str, p: float) -> None:
    for training in (False, True) if p == 0 else (False,):
        ours, our_warnings = _run(ds, fn, (4, 6), p, training=training)
        theirs, their_warnings = _run(torch, fn, (4, 6), p, training=training)
        np.testing.assert_array_equal(ours, theirs)
        assert our_warnings == their_warnings and our_warnings


def test_dropout2d_on_one_dim_draws_nothing_it_cannot_as_torch() -> None:
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        torch.nn.functional.dropout2d(torch.ones(5), 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match="at least 2 dimensions"):
            F.dropout2d(ds.ones(5), 0.5)
        for p in (0.0, 1.0):  # nothing to draw: torch returns the input or zeros
            expected = torch.nn.functional.dropout2d(torch.ones(5), p).numpy()
            np.testing.assert_array_equal(F.dropout2d(ds.ones(5), p).numpy(), expected)


def test_dropout1d_refuses_other_ranks_as_torch() -> None:
    for shape in ((5,), (2, 3, 4, 5)):
        with pytest.raises(RuntimeError):
            torch.nn.functional.dropout1d(torch.ones(shape), 0.5)
        with pytest.raises(RuntimeError, match="dropout1d"):
            F.dropout1d(ds.ones(*shape), 0.5)


def test_dropout2d_module_on_an_lstm_output_trains() -> None:
    # mnist_rnn: LSTM -> last step (N, 64) -> Dropout2d(0.25); the gradient is the mask's scale
    ds.manual_seed(0)
    lstm, drop = ds.nn.LSTM(5, 64, batch_first=True), ds.nn.Dropout2d(0.25)
    x = ds.randn(16, 7, 5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out, _ = lstm(x)
        h = out[:, -1]
        h.retain_grad()
        dropped = drop(h)
        dropped.sum().backward()
    assert any("Received a 2-D input to dropout2d" in str(w.message) for w in caught)
    scale = dropped.detach().numpy() / h.detach().numpy()
    assert set(np.unique(np.round(scale, 5))) == {0.0, np.float32(1 / 0.75).round(5)}
    assert _dropped_together(scale) == 2  # single elements, not whole rows
    # d(sum(dropped))/dh = the scale: 0 where dropped, 1/(1-p) where kept
    np.testing.assert_allclose(h.grad.numpy(), scale, rtol=1e-6)
    drop.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(drop(h).detach().numpy(), h.detach().numpy())


def test_dropout2d_in_place_on_two_dims() -> None:
    x = ds.ones(32, 40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = F.dropout2d(x, 0.5, inplace=True)
    assert y is x
    assert set(np.unique(x.numpy())) == {0.0, 2.0}
    assert _dropped_together(x.numpy()) == 2
