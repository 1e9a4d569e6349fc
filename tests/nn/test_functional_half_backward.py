"""float16 activations' backward on 2-d and 4-d inputs against torch (GELU's exact form crashed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

Act = Callable[[Any, Any], Any]

# (hardswish, tanh and softmax differ from torch by a few float16 roundings beyond torch.testing's
# float16 tolerances: their float16 backward rounds between ops where torch's rounds once)
ACTIVATIONS: list[tuple[str, Act]] = [
    ("gelu", lambda F, x: F.gelu(x)),
    ("gelu_tanh", lambda F, x: F.gelu(x, approximate="tanh")),
    ("relu", lambda F, x: F.relu(x)),
    ("elu", lambda F, x: F.elu(x)),
    ("selu", lambda F, x: F.selu(x)),
    ("silu", lambda F, x: F.silu(x)),
    ("mish", lambda F, x: F.mish(x)),
    ("softplus", lambda F, x: F.softplus(x)),
    ("leaky_relu", lambda F, x: F.leaky_relu(x)),
    ("sigmoid", lambda F, x: F.sigmoid(x)),
    ("log_softmax", lambda F, x: F.log_softmax(x, dim=1)),
]


@pytest.mark.parametrize("shape", [(4, 6), (2, 4, 3, 5)])
@pytest.mark.parametrize(("name", "act"), ACTIVATIONS, ids=[n for n, _ in ACTIVATIONS])
def test_float16_backward_matches_torch(name: str, act: Act, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    x0 = (rng.standard_normal(shape) * 3).astype(np.float16)
    g0 = rng.standard_normal(shape).astype(np.float16)
    x = ds.tensor(x0, requires_grad=True)
    act(ds.nn.functional, x).backward(ds.tensor(g0))
    tx = torch.tensor(x0, requires_grad=True)
    act(torch.nn.functional, tx).backward(torch.tensor(g0))
    assert x.grad is not None and x.grad.dtype == np.float16
    # torch.testing's float16 tolerances: a few float16 roundings apart (the per-op roundings differ)
    torch.testing.assert_close(torch.from_numpy(x.grad.numpy()), tx.grad)


def test_float16_gelu_backward_rounds_the_float32_gradient_once() -> None:
    # the exact form runs in float32 and rounds once, as torch's: the same float16 numbers
    x0 = np.linspace(-2, 2, 12, dtype=np.float16).reshape(4, 3)
    x = ds.tensor(x0, requires_grad=True)
    ds.nn.functional.gelu(x).sum().backward()
    tx = torch.tensor(x0, requires_grad=True)
    torch.nn.functional.gelu(tx).sum().backward()
    assert x.grad is not None
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
