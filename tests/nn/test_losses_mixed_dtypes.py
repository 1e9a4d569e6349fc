"""Losses of a floating input and a floating target of another dtype, against torch: the losses
whose torch kernels promote (mse, l1, smooth L1, the NLLs, KL, probability cross-entropy, the
margin losses that do) return the promoted dtype and its values; the others keep the input's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

Loss = Callable[[Any, Any, Any], Any]

# (name, loss(F, input, target)); inputs in (0.1, 0.9) suit every loss here
PROMOTING: list[tuple[str, Loss]] = [
    ("mse_loss", lambda F, x, t: F.mse_loss(x, t)),
    ("mse_loss_none", lambda F, x, t: F.mse_loss(x, t, reduction="none")),
    ("l1_loss", lambda F, x, t: F.l1_loss(x, t)),
    ("l1_loss_sum", lambda F, x, t: F.l1_loss(x, t, reduction="sum")),
    ("smooth_l1_loss", lambda F, x, t: F.smooth_l1_loss(x, t)),
    ("poisson_nll_loss", lambda F, x, t: F.poisson_nll_loss(x, t)),
    ("gaussian_nll_loss", lambda F, x, t: F.gaussian_nll_loss(x, t, x.detach() * 0 + 0.5)),
    ("kl_div", lambda F, x, t: F.kl_div(x, t, reduction="batchmean")),
    ("cross_entropy_probabilities", lambda F, x, t: F.cross_entropy(x, t)),
    ("multilabel_soft_margin_loss", lambda F, x, t: F.multilabel_soft_margin_loss(x, t)),
    ("margin_ranking_loss", lambda F, x, t: F.margin_ranking_loss(x, t, (t > 0.5) * 2.0 - 1.0)),
]
KEEPING: list[tuple[str, Loss]] = [
    ("huber_loss", lambda F, x, t: F.huber_loss(x, t)),
    ("soft_margin_loss", lambda F, x, t: F.soft_margin_loss(x, t)),
    ("hinge_embedding_loss", lambda F, x, t: F.hinge_embedding_loss(x, t)),
]
PAIRS = [("float32", "float64"), ("float16", "float32"), ("float32", "float16")]


def _operands(x_dtype: str, t_dtype: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.uniform(0.1, 0.9, (4, 3)).astype(x_dtype), rng.uniform(0.1, 0.9, (4, 3)).astype(t_dtype)


def _both(loss: Loss, x_dtype: str, t_dtype: str) -> tuple[Any, Any, Any]:
    x0, t0 = _operands(x_dtype, t_dtype)
    x = ds.tensor(x0, dtype=x_dtype, requires_grad=True)
    out = loss(ds.nn.functional, x, ds.tensor(t0, dtype=t_dtype))
    ref = loss(torch.nn.functional, torch.tensor(x0), torch.tensor(t0))
    return out, ref, x


@pytest.mark.parametrize(("x_dtype", "t_dtype"), PAIRS)
@pytest.mark.parametrize(("name", "loss"), PROMOTING, ids=[n for n, _ in PROMOTING])
def test_a_promoting_loss_returns_torch_dtype_and_values(name: str, loss: Loss, x_dtype: str, t_dtype: str) -> None:
    out, ref, x = _both(loss, x_dtype, t_dtype)
    assert str(out.dtype) == str(ref.dtype).removeprefix("torch.")
    # the values: torch's loss of both operands cast to the promoted dtype first (torch's own mixed call
    # takes some logarithms and exponentials of a float16 input in float16 before promoting)
    wide = ref.dtype
    x0, t0 = _operands(x_dtype, t_dtype)
    exact = loss(torch.nn.functional, torch.tensor(x0).to(wide), torch.tensor(t0).to(wide))
    if name != "gaussian_nll_loss":  # its var (made from the input) keeps the input's dtype in both
        np.testing.assert_allclose(out.detach().numpy(), exact.numpy(), rtol=1e-6)
    if name.startswith(("mse", "l1", "smooth_l1", "gaussian")):  # torch's mixed call computes the same numbers
        np.testing.assert_allclose(out.detach().numpy(), ref.numpy(), rtol=1e-6)
    out.sum().backward()
    assert x.grad is not None and x.grad.dtype == x.dtype  # the gradient comes back in the input's dtype


@pytest.mark.parametrize(("x_dtype", "t_dtype"), PAIRS)
@pytest.mark.parametrize(("name", "loss"), KEEPING, ids=[n for n, _ in KEEPING])
def test_the_other_losses_keep_the_input_dtype_as_torch(name: str, loss: Loss, x_dtype: str, t_dtype: str) -> None:
    out, ref, _ = _both(loss, x_dtype, t_dtype)
    assert str(out.dtype) == str(ref.dtype).removeprefix("torch.") == x_dtype


def test_float16_l1_against_a_float32_target_is_computed_in_float32() -> None:
    # the report's case: float16 1000 against float32 1000.4 differ by 0.4, invisible in float16
    h = np.array([1000.0, 2.0], np.float16)
    f = np.array([1000.4, 0.0], np.float32)
    out = ds.nn.functional.l1_loss(ds.tensor(h), ds.tensor(f))
    ref = torch.nn.functional.l1_loss(torch.tensor(h), torch.tensor(f))
    assert out.dtype == np.float32
    assert out.item() == ref.item()


@pytest.mark.filterwarnings("ignore:Using a target size", "ignore:reduction")
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "smooth_l1_loss", "poisson_nll_loss", "kl_div", "huber_loss"])
def test_a_zero_dim_target_widens_the_loss_where_torch_does(name: str) -> None:
    # torch's fused mse/l1/smooth L1 promote the types whatever the dims; its composed losses follow
    # result_type, where a 0-d operand beside a dimensioned one of the same kind keeps the other's dtype
    x0 = np.array([0.5, 1.5, 2.0], np.float32)
    out = getattr(ds.nn.functional, name)(ds.tensor(x0), ds.tensor(0.75, dtype="float64"))
    ref = getattr(torch.nn.functional, name)(torch.tensor(x0), torch.tensor(0.75, dtype=torch.float64))
    assert str(out.dtype) == str(ref.dtype).removeprefix("torch.")
    np.testing.assert_allclose(out.item(), ref.item(), rtol=1e-6)
