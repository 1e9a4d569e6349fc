"""CTC loss against PyTorch on random batches (both kernels: the batched NumPy recursion and the
compiled one), PyTorch's NaN gradient for an impossible alignment, and the argument checks PyTorch
makes: targets holding fewer labels than ``target_lengths`` ask for, lengths out of range or of the
wrong count, and lengths that are not integers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import jit_gate

torch = pytest.importorskip("torch")
TF = torch.nn.functional


@pytest.fixture(params=["numpy", "jit"])
def kernel(request: Any) -> Any:
    if request.param == "numpy":
        with jit_gate.disabled():
            yield request.param
        return
    if jit_gate.kernels("downslope.nn.losses._jit_ctc", np.zeros(1)) is None:
        pytest.skip("numba is not installed (the jit extra)")
    yield request.param


def _batch(seed: int, blank_last: bool, flat: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Random (T, N, C) logits, targets (repeated labels in half the batches), lengths with zeros
    (empty targets, no input steps) and input lengths shorter than T; some targets too long to fit."""
    rng = np.random.default_rng(seed)
    steps, batch, classes = int(rng.integers(1, 25)), int(rng.integers(1, 6)), int(rng.integers(2, 7))
    blank = classes - 1 if blank_last else 0
    x = rng.standard_normal((steps, batch, classes)) * 3
    in_len = rng.integers(0, steps + 1, batch)
    tg_len = rng.integers(0, 10, batch)
    labels = [c for c in range(classes) if c != blank]
    tg = rng.choice(labels, (batch, 10))
    if seed % 2:
        tg[:, 1::2] = tg[:, ::2]  # every label repeated: a blank must separate the pair
    if flat:
        tg = np.concatenate([tg[i, : tg_len[i]] for i in range(batch)]).astype(np.int64)
    return x, tg, in_len, tg_len, blank


def _both(x: np.ndarray, tg: Any, in_len: Any, tg_len: Any, **kw: Any) -> tuple[tuple[np.ndarray, ...], ...]:
    out = []
    for lib, fn in ((torch, TF.ctc_loss), (ds, F.ctc_loss)):
        logits = lib.tensor(x, dtype=lib.float64, requires_grad=True)
        loss = fn(logits.log_softmax(-1), lib.tensor(tg), lib.tensor(in_len), lib.tensor(tg_len), **kw)
        loss.sum().backward()
        out.append((loss.detach().numpy(), logits.grad.numpy()))
    return tuple(out)


@pytest.mark.parametrize("zero_infinity", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_random_batches_match_torch(kernel: str, reduction: str, zero_infinity: bool) -> None:
    for seed in range(40):
        x, tg, in_len, tg_len, blank = _batch(seed, blank_last=seed % 3 == 0, flat=seed % 4 == 0)
        (want, want_grad), (got, got_grad) = _both(
            x, tg, in_len, tg_len, blank=blank, reduction=reduction, zero_infinity=zero_infinity
        )
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=f"seed {seed}")  # inf where torch's
        np.testing.assert_allclose(got_grad, want_grad, rtol=1e-9, atol=1e-12, err_msg=f"seed {seed}")  # NaN too


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_impossible_alignment_gives_torchs_nan_gradient(kernel: str, reduction: str) -> None:
    """A target longer than its input: loss inf and NaN gradients over that sample's steps (the signal to
    set zero_infinity=True), the other sample's gradient intact."""
    x = np.random.default_rng(0).standard_normal((3, 2, 5))
    args = ([[1, 2, 3], [1, 0, 0]], [2, 3], [3, 1])
    (want, want_grad), (got, got_grad) = _both(x, *args, reduction=reduction)
    assert np.isinf(got).any() and np.isnan(got_grad[:2, 0]).all()
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(got_grad, want_grad, rtol=1e-10, atol=1e-12)  # NaN where torch's (the whole of it
    # under 'mean' and 'sum': log_softmax spreads the NaN; under 'none' only sample 0's first two steps)


def test_no_input_steps_with_an_empty_target_is_a_zero_loss(kernel: str) -> None:
    x = np.random.default_rng(1).standard_normal((4, 3, 3))
    (want, want_grad), (got, got_grad) = _both(x, [[1, 2], [1, 0], [2, 1]], [0, 0, 4], [0, 1, 2], reduction="none")
    assert got.tolist()[:2] == [0.0, np.inf]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(got_grad, want_grad, rtol=1e-10, atol=1e-12)


def test_minus_inf_log_probabilities_get_a_zero_gradient(kernel: str) -> None:
    """A class of probability 0 at a step: its gradient is 0 (exp(lp) - posterior, both 0), where
    PyTorch's formula gives NaN; every other entry matches PyTorch."""
    lp = np.log(np.random.default_rng(2).dirichlet(np.ones(4), size=(5, 2)))
    lp[2, 0, 3] = -np.inf
    grads = []
    for lib, fn in ((torch, TF.ctc_loss), (ds, F.ctc_loss)):
        t = lib.tensor(lp, dtype=lib.float64, requires_grad=True)
        fn(t, lib.tensor([[1, 2], [3, 1]]), lib.tensor([5, 5]), lib.tensor([2, 2]), reduction="sum").backward()
        grads.append(t.grad.numpy())
    want, got = grads
    assert np.isnan(want[2, 0, 3]) and got[2, 0, 3] == 0.0
    keep = ~np.isnan(want)
    np.testing.assert_allclose(got[keep], want[keep], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("targets", "tg_len", "match"),
    [
        ([[1, 2], [3, 1]], [3, 2], r"targets of shape \(2, 2\) hold at most 2 labels per sample, but sample 0 has "
         r"target length 3 \(target_lengths \[3, 2\]\)"),
        ([1, 2, 3], [2, 2], r"1-D \(concatenated\) targets must hold sum\(target_lengths\) = 4 labels, got 3"),
        ([1, 2, 3, 1, 2], [2, 2], r"must hold sum\(target_lengths\) = 4 labels, got 5"),
        ([[1, 2]], [2, 2], r"2-D targets must have one row per sample \(2\), got shape \(1, 2\)"),
        ([[[1, 2], [3, 1]]], [2, 2], r"expected targets of 1 \(concatenated\) or 2 \(padded\) dims"),
    ],
)  # fmt: skip
def test_targets_that_do_not_hold_the_lengths_are_refused(targets: Any, tg_len: Any, match: str) -> None:
    x = np.random.default_rng(0).standard_normal((5, 2, 4))
    with pytest.raises(RuntimeError):
        TF.ctc_loss(torch.tensor(x).log_softmax(-1), torch.tensor(targets), [5, 5], tg_len)
    with pytest.raises(ds.errors.ShapeError, match=match):
        F.ctc_loss(ds.tensor(x).log_softmax(-1), ds.tensor(targets), [5, 5], tg_len)


@pytest.mark.parametrize(
    ("in_len", "tg_len", "match"),
    [
        ([6, 5], [2, 2], r"input_lengths must lie in \[0, 5\] \(the time steps of log_probs\); sample 0 has "
         r"input_length 6"),
        ([5, -1], [2, 2], r"input_lengths must lie in \[0, 5\].*sample 1 has input_length -1"),
        ([5, 5], [2, -1], r"target_lengths must lie in >= 0; sample 1 has target_length -1"),
        ([5, 5, 5], [2, 2], r"expected one input_lengths entry per sample, 2 \(the batch of log_probs\), got 3"),
        ([5, 5], [2], r"expected one target_lengths entry per sample, 2 \(the batch of log_probs\), got 1"),
    ],
)  # fmt: skip
def test_lengths_out_of_range_or_count_are_refused(in_len: Any, tg_len: Any, match: str) -> None:
    x = np.random.default_rng(0).standard_normal((5, 2, 4))
    tg = [[1, 2], [3, 1]]
    with pytest.raises(RuntimeError):
        TF.ctc_loss(torch.tensor(x).log_softmax(-1), torch.tensor(tg), in_len, tg_len)
    with pytest.raises(ds.errors.ShapeError, match=match):
        F.ctc_loss(ds.tensor(x).log_softmax(-1), ds.tensor(tg), in_len, tg_len)


@pytest.mark.parametrize(
    ("in_len", "tg_len", "name", "dtype"),
    [
        (ds.tensor([5.0, 4.0]), ds.tensor([2, 2]), "input_lengths", "float32"),
        (ds.tensor([5, 4]), ds.tensor([2.0, 2.0]), "target_lengths", "float32"),
        ([5.0, 4.0], [2, 2], "input_lengths", "float64"),
        ((5, 4), (2.0, 2.0), "target_lengths", "float64"),
        (ds.tensor([True, True]), ds.tensor([2, 2]), "input_lengths", "bool"),
    ],
)
def test_lengths_that_are_not_integers_are_refused(in_len: Any, tg_len: Any, name: str, dtype: str) -> None:
    x = np.random.default_rng(0).standard_normal((5, 2, 4))
    tg = [[1, 2], [3, 1]]
    theirs = [torch.tensor(v.numpy()) if isinstance(v, ds.Tensor) else v for v in (in_len, tg_len)]
    with pytest.raises((RuntimeError, TypeError)):
        TF.ctc_loss(torch.tensor(x).log_softmax(-1), torch.tensor(tg), *theirs)
    with pytest.raises(ds.errors.DTypeError, match=rf"ctc_loss: {name} must be integral .*got dtype {dtype}"):
        F.ctc_loss(ds.tensor(x).log_softmax(-1), ds.tensor(tg), in_len, tg_len)


def test_integer_lengths_of_any_width_and_shape_are_taken_as_torch() -> None:
    x = np.random.default_rng(3).standard_normal((5, 2, 4))
    want = TF.ctc_loss(torch.tensor(x).log_softmax(-1), torch.tensor([[1, 2], [3, 1]]),
                       torch.tensor([[5, 4]], dtype=torch.int32), torch.tensor([2, 1], dtype=torch.int32))  # fmt: skip
    got = F.ctc_loss(ds.tensor(x, dtype=ds.float64).log_softmax(-1), ds.tensor([[1, 2], [3, 1]]),
                     ds.tensor([[5, 4]], dtype=ds.int32), np.array([2, 1], dtype=np.uint8))  # fmt: skip
    assert got.item() == pytest.approx(want.item(), rel=1e-12)
