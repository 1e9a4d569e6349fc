"""Gradients at the edges of the basic ops, against PyTorch in float64: norms at zero vectors and
with p = inf, -inf, 0 and p < 1; maximum/minimum with NaN; atan2 at the origin; copysign's
gradient for its second operand."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

INF = float("inf")
NAN = float("nan")


def _pair_grads(ds_fn: Any, torch_fn: Any, *arrays: np.ndarray) -> tuple[list[Any], list[Any]]:
    """The (sum of the) output's gradients with respect to every array, ours then torch's."""
    ours = [ds.tensor(a, dtype=ds.float64, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    ds_fn(*ours).sum().backward()
    torch_fn(*theirs).sum().backward()
    return [t.grad for t in ours], [t.grad for t in theirs]


ROWS = np.array([[0.0, 1.0, -2.0], [0.0, 0.0, 0.0], [3.0, -3.0, 1.0], [0.5, -0.5, 0.25]])


@pytest.mark.parametrize("p", [0, 0.5, 1, 1.5, 2, 3, INF, -INF, -1.0, "fro"])
@pytest.mark.parametrize("keepdim", [False, True])
def test_tensor_norm_matches_torch_at_zero_rows_and_ties(check_op: Any, p: Any, keepdim: bool) -> None:
    # a zero row, a zero element and tied extremes (3, -3): torch's norm_backward, not a chain's NaN
    if p == 0:
        pytest.skip("p=0 has no gradient in torch (checked below)")
    check_op(lambda x: x.norm(p=p, dim=1, keepdim=keepdim), lambda x: x.norm(p=p, dim=1, keepdim=keepdim), [ROWS])


@pytest.mark.parametrize("p", [0.5, 2, 3, INF, -INF])
def test_vector_norm_on_the_strict_device(check_op: Any, p: float) -> None:
    check_op(
        lambda x: ds.ops.vector_norm(x, p, 1), lambda x: torch.linalg.vector_norm(x, p, 1), [ROWS], device="strict"
    )


def test_norm_p0_counts_nonzeros_and_backward_runs_as_in_torch() -> None:
    x = ds.tensor(ROWS, dtype=ds.float64, requires_grad=True)
    y = x.norm(p=0, dim=1)
    np.testing.assert_array_equal(y.detach().numpy(), torch.tensor(ROWS).norm(p=0, dim=1).numpy())
    y.sum().backward()  # used to fail: the count had no graph
    assert x.grad is None  # torch: no gradient flows through a count (x.grad stays None)
    (x.norm(p=0) + x.sum()).backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones_like(ROWS))


def test_norm_whole_tensor_and_errors() -> None:
    x = ds.tensor(ROWS, dtype=ds.float64)
    for p in (2, INF, 0.5):
        np.testing.assert_allclose(x.norm(p=p).numpy(), torch.tensor(ROWS).norm(p=p).numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.norm(p="nuc").numpy(), torch.tensor(ROWS).norm(p="nuc").numpy(), rtol=1e-12)
    with pytest.raises(ds.errors.ArgumentError, match="matrix norm"):
        ds.ops.vector_norm(x, "nuc")
    with pytest.raises(ds.errors.ArgumentTypeError, match="ord"):
        ds.ops.vector_norm(x, "two")


@pytest.mark.parametrize("name", ["maximum", "minimum", "fmax", "fmin"])
def test_extremum_gradients_with_nan_and_ties_match_torch(name: str) -> None:
    a = np.array([NAN, 1.0, 2.0, NAN, 3.0, -1.0])
    b = np.array([1.0, NAN, 2.0, NAN, 1.0, 4.0])
    ours, theirs = _pair_grads(getattr(ds, name), getattr(torch, name), a, b)
    for o, t in zip(ours, theirs):
        np.testing.assert_array_equal(o.numpy(), t.numpy())


def test_atan2_gradient_at_the_origin_is_zero_as_in_torch() -> None:
    a = np.array([0.0, -0.0, 1.0, 0.0, -2.0])
    b = np.array([0.0, 0.0, 0.0, 2.0, -1.0])
    ours, theirs = _pair_grads(ds.atan2, torch.atan2, a, b)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.numpy(), t.numpy(), rtol=1e-12, atol=0)


def test_copysign_gives_the_sign_operand_a_zero_gradient() -> None:
    a = np.array([1.0, -2.0, 0.0, -0.0, 3.0])
    b = np.array([-1.0, 2.0, -1.0, 1.0, INF])
    ours, theirs = _pair_grads(ds.copysign, torch.copysign, a, b)
    assert ours[1] is not None  # torch sets other.grad (zeros); it used to stay None
    for o, t in zip(ours, theirs):
        np.testing.assert_array_equal(o.numpy(), t.numpy())
