"""pow with the number exponents torch's kernel multiplies out (2, 3, -1, -2 and 0.5, a square root): its
values (also at 0, negative bases, inf and NaN), its gradients and double backward."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

_SPECIAL = [-0.0, 0.0, -1.0, -2.5, 3.0, 1e-30, 1e30, float("inf"), -float("inf"), float("nan")]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("exponent", [2, 3, -1, -2, 2.0, 3.0, -1.0, 0.5])
def test_number_exponents_give_torchs_values_and_gradients(dtype: str, exponent: float) -> None:
    rng = np.random.default_rng(0)
    a = np.concatenate([_SPECIAL, rng.standard_normal(4000) * 3]).astype(dtype)
    w = rng.standard_normal(a.shape).astype(dtype)
    x = ds.tensor(a, dtype=getattr(ds, dtype), requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    with np.errstate(invalid="ignore", over="ignore"):
        y = x.pow(exponent)
        (y * ds.tensor(w, dtype=getattr(ds, dtype))).sum().backward()
    ty = t.pow(exponent)
    (ty * torch.tensor(w)).sum().backward()
    if exponent == 0.5:
        # torch's vectorised square root is not correctly rounded (1 ulp off NumPy's in some places)
        torch.testing.assert_close(torch.from_numpy(y.detach().numpy()), ty.detach(), equal_nan=True)
        torch.testing.assert_close(torch.from_numpy(x.grad.numpy()), t.grad, equal_nan=True)
    else:  # torch's x*x, x*x*x, 1/x, 1/(x*x) and its gradient g * (b * x^(b-1)): the same values exactly
        np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
        if exponent == -2:  # x^-3 from the power functions of NumPy and of torch: within an ulp
            torch.testing.assert_close(torch.from_numpy(x.grad.numpy()), t.grad, equal_nan=True)
        else:
            np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())
    # the signs of zeros and infinities too (assert_array_equal counts -0.0 equal to 0.0; a NaN's sign means nothing)
    ours, theirs = y.detach().numpy()[:10], ty.detach().numpy()[:10]
    kept = ~np.isnan(theirs)
    np.testing.assert_array_equal(np.signbit(ours[kept]), np.signbit(theirs[kept]))


@pytest.mark.parametrize("exponent", [2, 3, -1, -2, 0.5])
def test_number_exponents_differentiate_twice_as_torch(exponent: float) -> None:
    a = np.abs(np.random.default_rng(1).standard_normal(7)) + 0.1
    x = ds.tensor(a, dtype=ds.float64, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    (g,) = ds.autograd.grad(x.pow(exponent).sum(), x, create_graph=True)
    (tg,) = torch.autograd.grad(t.pow(exponent).sum(), t, create_graph=True)
    (h,) = ds.autograd.grad((g * g * g).sum(), x)
    (th,) = torch.autograd.grad((tg * tg * tg).sum(), t)
    np.testing.assert_allclose(g.detach().numpy(), tg.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(h.numpy(), th.numpy(), rtol=1e-13)


def test_a_tensor_exponent_keeps_numpys_power() -> None:
    # only number exponents are multiplied out; a 0-d tensor exponent takes the general rule
    a = np.array([-2.0, 0.5, 3.0])
    x = ds.tensor(a, dtype=ds.float64, requires_grad=True)
    e = ds.tensor(3.0, dtype=ds.float64, requires_grad=True)
    t, te = torch.tensor(a, requires_grad=True), torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    with np.errstate(invalid="ignore"):
        x.pow(e).sum().backward()
    t.pow(te).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-13)
    np.testing.assert_allclose(e.grad.numpy(), te.grad.numpy(), rtol=1e-13, equal_nan=True)


@pytest.mark.parametrize("exponent", [2, 3, -1, 2.0, 3.0])
def test_multiplied_out_exponents_keep_every_higher_derivative_as_torch(exponent: float) -> None:
    """Under create_graph the gradient stays a recorded power: the third derivative of x**2 (0) and the
    fourth of x**3 can be taken, and x**-1's second derivative at 0, -0 and inf is torch's (not NaN)."""
    a = np.array([-0.0, 0.0, float("inf"), -2.1, 0.2, 1.3], dtype=np.float64)
    x, t = ds.tensor(a, dtype=ds.float64, requires_grad=True), torch.tensor(a, requires_grad=True)
    ours, theirs = x.pow(exponent), t.pow(exponent)
    orders = {2: 3, 3: 4, -1: 2}[int(exponent)]  # as far as torch's derivatives keep a graph
    for _ in range(orders):
        (ours,) = ds.autograd.grad(ours.sum(), x, create_graph=True)
        (theirs,) = torch.autograd.grad(theirs.sum(), t, create_graph=True)
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-14)  # infs equal
