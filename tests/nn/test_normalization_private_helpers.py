"""``_BatchNorm._check_input_dim``: torch's errors for the wrong number of dims, and subclasses that
override it (spiking networks' BatchNorm2d over time steps) or call it, against torch."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

import downslope as ds


@pytest.mark.parametrize(("name", "ndims"), [("BatchNorm1d", (1, 4)), ("BatchNorm2d", (3, 5)), ("BatchNorm3d", (4, 2))])
def test_wrong_number_of_dims_raises_a_value_error_as_torch(name: str, ndims: tuple[int, ...]) -> None:
    for ndim in ndims:
        shape = (2, 3) + (2,) * (ndim - 2) if ndim >= 2 else (3,)
        with pytest.raises(ValueError):
            getattr(torch.nn, name)(3)._check_input_dim(torch.ones(shape))
        with pytest.raises(ds.errors.ArgumentError, match=f"got shape .* \\({ndim}-D input\\)"):
            getattr(ds.nn, name)(3)._check_input_dim(ds.ones(shape))
        with pytest.raises(ds.errors.ArgumentError, match=f"\\({ndim}-D input\\)"):
            getattr(ds.nn, name)(3)(ds.ones(shape))  # forward runs the same check


def _time_batched_bn(lib: types.ModuleType) -> type:
    class TimeBatchNorm2d(lib.nn.BatchNorm2d):  # (T, N, C, H, W): statistics over time steps too
        def _check_input_dim(self, input):
            if input.dim() != 5:
                raise ValueError(f"expected 5D input (got {input.dim()}D input)")

        def forward(self, x):
            self._check_input_dim(x)
            t, n = x.shape[:2]
            y = super().forward(x.reshape(t * n, *x.shape[2:]).transpose(0, 1).unsqueeze(0))
            return y.squeeze(0).transpose(0, 1).reshape(x.shape)

    return TimeBatchNorm2d


def test_a_subclass_overriding_check_input_dim_matches_torch() -> None:
    x = np.random.default_rng(0).standard_normal((3, 2, 4, 5, 5)).astype(np.float32)
    outs = []
    for lib in (torch, ds):
        bn = _time_batched_bn(lib)(4)
        outs.append((bn(lib.tensor(x)).detach().numpy(), bn.running_mean.numpy(), bn.running_var.numpy()))
        with pytest.raises(ValueError, match="expected 5D input"):
            bn(lib.ones(2, 4, 5, 5))
    for e, g in zip(*outs):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)


def test_overriding_check_input_dim_lets_forward_take_other_dims_as_torch() -> None:
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 4, 4)).astype(np.float32)
    outs = []
    for lib in (torch, ds):

        class Lenient(lib.nn.BatchNorm2d):
            def _check_input_dim(self, input):
                pass

        outs.append(Lenient(3)(lib.tensor(x)).detach().numpy())
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-5, atol=1e-6)
