"""ds.func.jvp / jacfwd where PyTorch's eager forward mode and a double vjp over the tape could differ:
a custom Function's jvp runs when it is applied; a view read after its base was written in place."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _t(lib, a):
    return torch.tensor(a) if lib is torch else ds.tensor(a, dtype="float64")


def _rand(seed, shape):
    return np.random.default_rng(seed).standard_normal(shape)


def test_jvp_of_a_custom_function_reads_ctx_as_forward_left_it(assert_close):
    x, v = _rand(0, (3,)), _rand(1, (3,))
    results = []
    for lib in (ds, torch):

        class Sq(lib.autograd.Function):
            @staticmethod
            def forward(a):
                return a * a

            @staticmethod
            def setup_context(ctx, inputs, output):
                ctx.a = inputs[0]

            @staticmethod
            def backward(ctx, g):
                raise AssertionError("forward mode must not call backward")

            @staticmethod
            def jvp(ctx, t):
                return 2 * ctx.a * t

        def f(a):
            h = a * 1
            y = Sq.apply(h)
            h.mul_(10)  # after apply: the jvp has already run
            return y + h

        results.append(lib.func.jvp(f, (_t(lib, x),), (_t(lib, v),))[1].numpy())
    assert_close(results[0], results[1], np.float64, "func.jvp")


def _stale_view(lib):
    def f(a):
        y = a * 1
        row, col = y[0], y[:, 1]
        y.mul_(y.detach() + 2)
        return row, col  # the views themselves: an op reading them would see their new history already

    return f


def test_jvp_and_jacfwd_of_a_view_whose_base_was_written_after_it(assert_close):
    x, v = _rand(2, (2, 3)), _rand(3, (2, 3))
    ours = ds.func.jvp(_stale_view(ds), (_t(ds, x),), (_t(ds, v),))[1]
    theirs = torch.func.jvp(_stale_view(torch), (_t(torch, x),), (_t(torch, v),))[1]
    for i in range(2):
        assert_close(ours[i].numpy(), theirs[i].numpy(), np.float64, f"func.jvp {i}")
    theirs = torch.func.jacfwd(_stale_view(torch))(_t(torch, x))
    for transform in (ds.func.jacfwd, ds.func.jacrev):
        ours = transform(_stale_view(ds))(_t(ds, x))
        for i in range(2):
            assert_close(ours[i].numpy(), theirs[i].numpy(), np.float64, f"{transform.__name__} {i}")
