"""Rules that read what torch saves (a result, a factorization, a mask) rather than an input: an in-place
write into the input after the op does not stop backward, as in torch, and the gradient is the one of the
values the op saw; a write into a factor that the other outputs' rules read gives the right gradient."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

A = np.random.default_rng(3).uniform(0.3, 1.7, (3, 4))


def _grad(lib: Any, f: Callable[[Any, Any], Any], write: str | None) -> np.ndarray | str:
    x = lib.tensor(A, requires_grad=True)
    a = x * 1
    y = f(lib, a)
    if write == "input":
        a.mul_(1.5)
    elif write == "output":
        y.mul_(1.5)
    w = lib.tensor(np.cos(np.arange(y.numel())).reshape(tuple(y.shape)))
    try:
        (y * w).sum().backward()
    except RuntimeError as e:
        assert "inplace" in str(e)
        return "raise"
    return np.asarray(x.grad.numpy())


INPUT_WRITTEN = {
    "cross_entropy": lambda L, a: L.nn.functional.cross_entropy(a, L.tensor([0, 3, 1]), reduction="none"),
    "cross_entropy smoothing": lambda L, a: L.nn.functional.cross_entropy(a, L.tensor([0, 3, 1]), label_smoothing=0.2),
    "cross_entropy ignore": lambda L, a: L.nn.functional.cross_entropy(a, L.tensor([0, -100, 1])),
    "reciprocal": lambda L, a: a.reciprocal(),
    "1 / a": lambda L, a: 1 / a,
    "solve": lambda L, a: L.linalg.solve(a[:, :3] + 3 * L.eye(3, dtype=L.float64), a[:, 3:]),
    "solve_triangular": lambda L, a: L.linalg.solve_triangular(a[:, :3].triu() + L.eye(3), a[:, 3:], upper=True),
    "qr": lambda L, a: L.linalg.qr(a.T)[1],
    "qr wide": lambda L, a: L.linalg.qr(a)[1],
    "svdvals": lambda L, a: L.linalg.svdvals(a),
    "svd U": lambda L, a: L.linalg.svd(a, full_matrices=False)[0].abs(),
    "matrix_norm nuc": lambda L, a: L.linalg.matrix_norm(a, "nuc"),
    "matrix_norm 2": lambda L, a: L.linalg.matrix_norm(a, 2),
}


@pytest.mark.parametrize("name", sorted(INPUT_WRITTEN))
def test_input_written_after_the_op_runs_as_torch(name: str, float64_defaults: None) -> None:
    f = INPUT_WRITTEN[name]
    expected = _grad(torch, f, "input")
    got = _grad(ds, f, "input")
    assert not isinstance(expected, str), "torch refuses: the case is no longer a test of this"
    assert not isinstance(got, str), f"{name}: downslope refuses where torch runs"
    # the gradient of the values the op saw: the unwritten one (torch's too: the write is recorded)
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9)


def test_dropout_in_training_reads_its_mask_only(float64_defaults: None) -> None:
    # F.dropout's rule multiplies by the kept mask: a write into the input after does not stop backward
    x = ds.ones(6, 8, requires_grad=True)
    a = x * 1
    layer = ds.nn.Dropout(0.5)
    y = layer(a)
    a.add_(1.0)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), (y.detach().numpy() != 0) * 2.0)


def test_cross_entropy_fast_rows_after_an_input_write(float64_defaults: None) -> None:
    # (N, C) logits large enough for the compiled row kernels, where the rule keeps the log-softmax
    rng = np.random.default_rng(0)
    logits, target = rng.normal(size=(64, 40)), rng.integers(0, 40, 64)
    grads = []
    for lib in (torch, ds):
        for smoothing in (0.0, 0.1):
            x = lib.tensor(logits, requires_grad=True)
            a = x * 1
            loss = lib.nn.functional.cross_entropy(a, lib.tensor(target), label_smoothing=smoothing)
            a.mul_(3.0)
            loss.backward()
            grads.append(x.grad.numpy())
    for got, expected in zip(grads[2:], grads[:2]):
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


def test_cross_entropy_under_create_graph_still_refuses_a_written_input(float64_defaults: None) -> None:
    # double backward differentiates softmax(logits) again: the logits as they are now would be wrong
    x = ds.tensor(A, requires_grad=True)
    a = x * 1
    loss = ds.nn.functional.cross_entropy(a, ds.tensor([0, 3, 1]))
    a.mul_(2.0)
    with pytest.raises(RuntimeError, match="inplace"):
        ds.autograd.grad(loss, x, create_graph=True)


FACTORS = {
    "svd U": lambda L, a: L.linalg.svd(a, full_matrices=False)[0],
    "svd Vh": lambda L, a: L.linalg.svd(a, full_matrices=False)[2],
    "qr Q": lambda L, a: L.linalg.qr(a.T)[0],
    "qr Q wide": lambda L, a: L.linalg.qr(a)[0],
}


@pytest.mark.parametrize("name", sorted(FACTORS))
def test_a_written_factor_does_not_change_the_gradient(name: str, float64_defaults: None) -> None:
    # torch refuses (it saves U, S, Vh / Q, R); downslope's rules read copies of the factors: the
    # gradient is that of the values the decomposition gave (the write is recorded: times 1.5)
    f = FACTORS[name]
    assert _grad(torch, f, "output") == "raise"
    got = _grad(ds, f, "output")
    reference = _grad(ds, f, None)
    assert not isinstance(got, str) and not isinstance(reference, str)
    np.testing.assert_allclose(got, 1.5 * reference, rtol=1e-7, atol=1e-9)


def test_kron_uses_the_operands_it_multiplied(float64_defaults: None) -> None:
    # torch's kron reshapes its operands by an unsafe view that no version check sees: its gradient reads
    # the written values. downslope's reads the values the product used (a copy of each operand)
    x = ds.tensor(A, requires_grad=True)
    a = x * 1
    y = ds.kron(a[:2], a[1:])
    a.mul_(2.0)
    y.sum().backward()
    x2 = ds.tensor(A, requires_grad=True)
    ds.kron((x2 * 1)[:2], (x2 * 1)[1:]).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), x2.grad.numpy(), rtol=1e-12)
