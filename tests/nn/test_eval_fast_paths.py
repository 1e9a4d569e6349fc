"""What batch-1 inference reuses between calls (batch norm's folded scale and shift, the Winograd
weight's comparison, the layers' parsed arguments) is never stale and matches torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds
from downslope.errors import ArgumentError, ArgumentTypeError, InvalidValueError
from downslope.nn import _conv_args, _conv_kernels, normalization


def _pair(channels=4, seed=0):
    torch.manual_seed(seed)
    theirs = torch.nn.BatchNorm2d(channels).eval()
    with torch.no_grad():
        theirs.running_mean.uniform_(-1, 1)
        theirs.running_var.uniform_(0.5, 2)
        theirs.weight.uniform_(-2, 2)
        theirs.bias.uniform_(-1, 1)
    ours = ds.nn.BatchNorm2d(channels).eval()
    ours.load_state_dict({k: ds.tensor(v.numpy().copy()) for k, v in theirs.state_dict().items()})
    return ours, theirs


def _check(ours, theirs, x):
    with ds.no_grad(), torch.no_grad():
        np.testing.assert_allclose(ours(ds.tensor(x)).numpy(), theirs(torch.tensor(x)).numpy(), rtol=1e-6, atol=1e-6)


def test_eval_batch_norm_reuses_its_scale_and_shift_and_never_a_stale_one():
    ours, theirs = _pair()
    x = np.random.default_rng(0).standard_normal((1, 4, 5, 5)).astype(np.float32)
    _check(ours, theirs, x)
    args = (ours.running_mean, ours.running_var, ours.weight, ours.bias, ours.eps, np.dtype(np.float32))
    first = normalization._eval_affine(*args)
    again = normalization._eval_affine(*args)
    if type(ours.running_var.array) is np.ndarray:  # host arrays only: a device's bytes are not read
        assert again[0] is first[0] and again[1] is first[1]  # reused, not recomputed
    # every way the statistics or the affine can change, each seen on the next call
    writes = [
        (lambda: ours.running_mean.array.__setitem__(1, 0.25), lambda: theirs.running_mean.__setitem__(1, 0.25)),
        (lambda: ours.running_var.data.mul_(1.5), lambda: theirs.running_var.mul_(1.5)),
        (lambda: ours.weight.data.fill_(0.75), lambda: theirs.weight.fill_(0.75)),
        (lambda: ours.bias.array.__setitem__(slice(None), -0.5), lambda: theirs.bias.fill_(-0.5)),
    ]
    for ours_write, theirs_write in writes:
        with ds.no_grad(), torch.no_grad():
            ours_write()
            theirs_write()
        _check(ours, theirs, x)
    state = {k: v * 2 if v.dtype.is_floating_point else v for k, v in theirs.state_dict().items()}
    theirs.load_state_dict(state)
    ours.load_state_dict({k: ds.tensor(v.numpy().copy()) for k, v in state.items()})
    _check(ours, theirs, x)
    # a training step updates the running statistics in place
    y = np.random.default_rng(1).standard_normal((8, 4, 5, 5)).astype(np.float32)
    ours.train()(ds.tensor(y))
    theirs.train()(torch.tensor(y))
    ours.eval(), theirs.eval()
    _check(ours, theirs, x)


def test_eval_batch_norm_without_affine_and_after_its_arrays_are_replaced():
    ours, theirs = ds.nn.BatchNorm2d(3, affine=False).eval(), torch.nn.BatchNorm2d(3, affine=False).eval()
    x = np.random.default_rng(2).standard_normal((1, 3, 4, 4)).astype(np.float32)
    _check(ours, theirs, x)
    var = np.linspace(0.5, 3, 3).astype(np.float32)
    ours.running_var.array = var.copy()  # a new array object (its id may even be reused)
    theirs.running_var.copy_(torch.tensor(var))
    _check(ours, theirs, x)


def test_the_weight_comparison_is_bytewise_for_small_and_large_weights():
    for shape in ((16, 16, 3, 3), (64, 64, 3, 3)):
        w = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
        assert _conv_kernels._same_bytes(w, w.copy())
        changed = w.copy()
        changed.reshape(-1)[-1] += 1e-6  # one value off, where no sample looks
        assert not _conv_kernels._same_bytes(w, changed)
        signed = w.copy()
        signed.reshape(-1)[5], w.reshape(-1)[5] = -0.0, 0.0  # -0 is another weight's bytes
        assert not _conv_kernels._same_bytes(w, signed)
        w.reshape(-1)[7] = np.nan
        assert _conv_kernels._same_bytes(w, w.copy())  # NaN is the same bytes as itself
        assert not _conv_kernels._same_bytes(w, w.astype(np.float64))
        assert not _conv_kernels._same_bytes(w, w.reshape(shape[0], -1))


@pytest.mark.parametrize(
    "value, n, minimum, expected",
    [(3, 2, 1, (3, 3)), ((1, 2), 2, 1, (1, 2)), (0, 2, 0, (0, 0)), ([2, 3], 2, 1, (2, 3)), (np.int64(2), 1, 1, (2,))],
)
def test_conv_arguments_are_read_as_before(value, n, minimum, expected):
    out = _conv_args._tuple(value, n, "stride", "Conv2d", minimum)
    assert out == expected and all(type(v) is int for v in out)


@pytest.mark.parametrize(
    "value, error",
    [
        (0, ArgumentError),
        ((1, 0), ArgumentError),
        (True, ArgumentTypeError),
        (
            (1, 2, 3),
            InvalidValueError,
        ),  # one element stands for every dim, as in torch; three do not (its RuntimeError)
        ("2", ArgumentTypeError),
    ],
)
def test_bad_conv_arguments_are_still_refused(value, error):
    with pytest.raises(error) as info:
        _conv_args._tuple(value, 2, "stride", "Conv2d")
    assert "Conv2d: stride" in str(info.value)
