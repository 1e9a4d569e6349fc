"""The window functions against torch: values (periodic and symmetric), dtypes, keywords, errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

NAMES = ["bartlett_window", "blackman_window", "hamming_window", "hann_window", "kaiser_window"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("length", [0, 1, 2, 3, 8, 51])
@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matches_torch(name: str, length: int, periodic: bool, dtype: str) -> None:
    ours = getattr(ds, name)(length, periodic, dtype=getattr(ds, dtype))
    theirs = getattr(torch, name)(length, periodic, dtype=getattr(torch, dtype))
    assert ours.shape == tuple(theirs.shape) and ours.dtype == np.dtype(dtype)
    tol = 1e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", NAMES)
def test_default_is_periodic_float32_without_grad(name: str) -> None:
    ours = getattr(ds, name)(6)
    np.testing.assert_allclose(ours.numpy(), getattr(torch, name)(6).numpy(), rtol=1e-6, atol=1e-7)
    assert ours.dtype == ds.float32 and not ours.requires_grad
    assert getattr(ds, name)(6, requires_grad=True).requires_grad


@pytest.mark.parametrize(
    ("name", "args"), [("hamming_window", (9, True, 0.5, 0.5)), ("hamming_window", (9, False, 0.6, 0.3)),
                       ("kaiser_window", (9, False, 3.0)), ("kaiser_window", (10, True, 0.0))]
)  # fmt: skip
def test_shape_parameters_match_torch(name: str, args: Any) -> None:
    np.testing.assert_allclose(
        getattr(ds, name)(*args, dtype=ds.float64).numpy(),
        getattr(torch, name)(*args, dtype=torch.float64).numpy(),
        rtol=1e-12,
        atol=1e-14,
    )


def test_keywords_by_name_and_torch_no_op_keywords() -> None:
    ours = ds.hamming_window(7, periodic=False, alpha=0.5, beta=0.5, layout=None)
    np.testing.assert_allclose(ours.numpy(), torch.hann_window(7, periodic=False).numpy(), atol=1e-7)
    np.testing.assert_allclose(
        ds.kaiser_window(7, beta=5.0).numpy(), torch.kaiser_window(7, True, 5.0).numpy(), rtol=1e-6
    )


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [((-1,), {}, ds.errors.ArgumentError), ((2.0,), {}, TypeError), ((4,), {"dtype": "int64"}, TypeError),
     ((4,), {"dtype": "bool"}, TypeError), ((4, "yes"), {}, TypeError), ((4,), {"colour": 1}, TypeError)],
)  # fmt: skip
def test_bad_arguments(name: str, args: Any, kwargs: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        getattr(ds, name)(*args, **kwargs)
    torch_kwargs = {k: getattr(torch, v) if k == "dtype" else v for k, v in kwargs.items()}
    with pytest.raises((RuntimeError, TypeError)):
        getattr(torch, name)(*args, **torch_kwargs)
