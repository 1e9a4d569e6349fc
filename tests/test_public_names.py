"""One name, one meaning: a top-level name and its PyTorch-path twin compute the same numbers."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F

torch = pytest.importorskip("torch")

# Wide enough for both tails: far left GELU is a tiny negative number, where a float32 formula
# through 1 + erf(x / sqrt 2) cancels (PyTorch's does) and one through erfc does not.
X = np.concatenate([np.linspace(-12, 12, 4001), np.random.default_rng(0).standard_normal(4000) * 3])


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ds_gelu_is_nn_functional_gelu(approximate: str, dtype: str) -> None:
    a = ds.tensor(X, dtype=dtype, requires_grad=True)
    b = ds.tensor(X, dtype=dtype, requires_grad=True)
    ya, yb = ds.gelu(a, approximate), F.gelu(b, approximate)
    assert ya.dtype == yb.dtype
    np.testing.assert_array_equal(ya.detach().numpy(), yb.detach().numpy())
    ya.sum().backward()
    yb.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())


def test_ds_gelu_takes_numbers_and_arrays_like_the_other_top_level_functions() -> None:
    np.testing.assert_array_equal(ds.gelu([1.0, -1.0]).numpy(), F.gelu(ds.tensor([1.0, -1.0])).numpy())
    assert ds.gelu(np.ones(2)).dtype == ds.float32  # the dtype policy: float64 arrays arrive as float32


def test_float32_gelu_is_within_float32_rounding_of_torch() -> None:
    """The fused float32 GELU against torch's exact one: each differs from the true value by a few
    rounding errors of the terms x and x * Phi(x), so they agree to a few units of |x| * eps (and
    to a few ulps where GELU is not small); the gradients agree to float32 precision."""
    x32 = X.astype(np.float32)
    ours = ds.tensor(x32, requires_grad=True)
    theirs = torch.tensor(x32, requires_grad=True)
    y, ty = ds.gelu(ours), torch.nn.functional.gelu(theirs)
    y.sum().backward()
    ty.sum().backward()
    eps = np.finfo(np.float32).eps
    diff = np.abs(y.detach().numpy().astype(np.float64) - ty.detach().numpy())
    assert (diff <= 4 * eps * np.maximum(np.abs(x32), 1e-30)).all()
    big = ty.detach().numpy() > 0.01
    ulps = diff[big] / np.spacing(ty.detach().numpy()[big])
    assert ulps.max() <= 8
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=0, atol=4 * eps)


def test_finfo_of_bfloat16_gives_torchs_numbers_and_numpy_dtypes_keep_numpy_finfo() -> None:
    ours, theirs = ds.finfo(ds.bfloat16), torch.finfo(torch.bfloat16)
    for name in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert repr(ours) == repr(theirs)
    assert ds.finfo("bfloat16").eps == theirs.eps
    assert ds.finfo(ds.float32).eps == np.finfo(np.float32).eps and ds.finfo(ds.float64).bits == 64
    assert ds.finfo().eps == np.finfo(np.float32).eps  # the default dtype's, as torch.finfo()
    assert repr(ds.bfloat16) == "downslope.bfloat16"  # a name: no tensor holds it
    with pytest.raises(TypeError, match="bfloat16"):
        ds.zeros(1, dtype=ds.bfloat16)
