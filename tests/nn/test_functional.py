"""nn.functional: the stateless forms against torch.nn.functional, and its re-exports."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import nn
from downslope.ops import pointwise

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def x_array(shape: tuple = (4, 6), seed: int = 0) -> np.ndarray:
    x = (np.random.default_rng(seed).standard_normal(shape) * 3).astype(np.float32)
    x[np.abs(x) < 1e-3] = 0.5
    return x


@pytest.mark.parametrize(
    ("ours", "ref"),
    [
        (F.relu, TF.relu),
        (lambda x: F.leaky_relu(x, 0.1), lambda x: TF.leaky_relu(x, 0.1)),
        (lambda x: F.elu(x, 2.0), lambda x: TF.elu(x, 2.0)),
        (F.gelu, TF.gelu),
        (lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh")),
        (F.sigmoid, torch.sigmoid),
        (F.tanh, torch.tanh),
        (lambda x: F.softmax(x, 0), lambda x: TF.softmax(x, 0)),
        (lambda x: F.log_softmax(x, -1), lambda x: TF.log_softmax(x, -1)),
        (lambda x: F.softplus(x, 0.5, 3.0), lambda x: TF.softplus(x, 0.5, 3.0)),
        (F.silu, TF.silu),
        (lambda x: F.dropout(x, 0.5, training=False), lambda x: TF.dropout(x, 0.5, training=False)),
    ],
    ids=["relu", "leaky_relu", "elu", "gelu", "gelu_tanh", "sigmoid", "tanh", "softmax", "log_softmax", "softplus",
         "silu", "dropout_eval"],
)  # fmt: skip
def test_elementwise_functions_match_torch(check_op: Any, ours: Any, ref: Any) -> None:
    check_op(ours, ref, [x_array()])


@pytest.mark.parametrize("shape", [(5, 3), (2, 4, 3)])
def test_linear_matches_torch(check_op: Any, shape: tuple, gemm_path: str) -> None:
    w = x_array((4, 3), 1)
    b = x_array((4,), 2)
    check_op(F.linear, TF.linear, [x_array(shape), w, b])
    check_op(F.linear, TF.linear, [x_array(shape), w])


def test_linear_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"input of shape \(2, 5\) does not fit weight of shape \(4, 3\)"):
        F.linear(ds.randn(2, 5), ds.randn(4, 3))
    with pytest.raises(ValueError, match=r"bias of shape \(3,\) does not broadcast to the output shape \(2, 4\)"):
        F.linear(ds.randn(2, 3), ds.randn(4, 3), ds.randn(3))


def test_embedding_matches_torch(check_op: Any) -> None:
    idx = np.array([[1, 0, 1], [3, 3, 2]])
    check_op(lambda w, i: F.embedding(i, w), lambda w, i: TF.embedding(i, w), [x_array((4, 5)), idx])


def test_one_hot_matches_torch() -> None:
    idx = np.array([[0, 3], [2, 1]])
    np.testing.assert_array_equal(F.one_hot(ds.tensor(idx), 5).numpy(), TF.one_hot(torch.tensor(idx), 5).numpy())
    np.testing.assert_array_equal(F.one_hot(ds.tensor(idx)).numpy(), TF.one_hot(torch.tensor(idx)).numpy())


@pytest.mark.host_only  # the range check reads the indices: host arrays only
def test_one_hot_refuses_an_index_out_of_range() -> None:
    with pytest.raises(ValueError, match="class index 3 is out of range for num_classes=3"):
        F.one_hot(ds.tensor([3]), 3)


def test_batch_norm_eval_with_affine_matches_torch(check_op: Any) -> None:
    rm = x_array((3,), 3)
    rv = np.abs(x_array((3,), 4)) + 0.1
    check_op(
        lambda x, w, b: F.batch_norm(x, ds.tensor(rm), ds.tensor(rv), w, b, training=False),
        lambda x, w, b: TF.batch_norm(x, torch.tensor(rm), torch.tensor(rv), w, b, training=False),
        [x_array((4, 3, 2)), x_array((3,), 5), x_array((3,), 6)],
    )


def test_layer_norm_matches_torch(check_op: Any) -> None:
    check_op(
        lambda x, w, b: F.layer_norm(x, (3, 2), w, b),
        lambda x, w, b: TF.layer_norm(x, (3, 2), w, b),
        [x_array((4, 3, 2)), x_array((3, 2), 7), x_array((3, 2), 8)],
    )


def test_losses_are_reexported() -> None:
    for name in ["mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "binary_cross_entropy",
                 "binary_cross_entropy_with_logits", "cross_entropy", "nll_loss", "kl_div"]:  # fmt: skip
        assert callable(getattr(F, name)) and name in F.__all__


def test_functions_refuse_non_tensors() -> None:
    with pytest.raises(TypeError, match="linear: expected a Tensor, got ndarray"):
        F.linear(np.zeros((2, 3)), ds.randn(4, 3))  # type: ignore[arg-type]


def test_fused_float32_gelu_against_the_exact_formula() -> None:
    """x Phi(x) and its derivative Phi(x) + x phi(x), with Phi from math.erfc in float64."""
    import math

    x = np.linspace(-8, 10, 20001).astype(np.float32)
    x64 = x.astype(np.float64)
    cdf = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x64])
    exact = x64 * cdf
    exact_grad = cdf + x64 * np.exp(-x64 * x64 / 2) / math.sqrt(2 * math.pi)
    xt = ds.tensor(x, requires_grad=True)
    y = F.gelu(xt)
    assert y.dtype == np.float32 and y.grad_fn.name() == "GeluBackward0"  # the fused float32 path
    y.sum().backward()
    nonzero = exact != 0
    assert (np.abs(y.detach().numpy() - exact)[nonzero] / np.abs(exact[nonzero])).max() < 1e-5
    np.testing.assert_allclose(xt.grad.numpy(), exact_grad, rtol=1e-5, atol=1e-7)  # type: ignore[union-attr]


def test_gelu_double_backward_uses_the_exact_form(assert_close: Any) -> None:
    x = np.array([-2.0, -0.5, 0.3, 1.7], dtype=np.float32)
    xo = ds.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    (go,) = ds.autograd.grad(F.gelu(xo).sum(), [xo], create_graph=True)
    (gt,) = torch.autograd.grad(TF.gelu(xt).sum(), [xt], create_graph=True)
    go.sum().backward()
    gt.sum().backward()
    assert_close(xo.grad.numpy(), xt.grad.numpy(), np.float32, "second derivative")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("ours", "ref"),
    [
        (F.relu6, TF.relu6),
        (lambda x: F.hardtanh(x, -2.0, 1.5), lambda x: TF.hardtanh(x, -2.0, 1.5)),
        (F.selu, TF.selu),
        (lambda x: F.celu(x, 0.7), lambda x: TF.celu(x, 0.7)),
        (F.logsigmoid, TF.logsigmoid),
        (F.softsign, TF.softsign),
        (F.tanhshrink, TF.tanhshrink),
        (F.mish, TF.mish),
        (F.hardsigmoid, TF.hardsigmoid),
        (F.hardswish, TF.hardswish),
        (lambda x: F.threshold(x, 0.3, -1.0), lambda x: TF.threshold(x, 0.3, -1.0)),
        (lambda x: F.softmin(x, 1), lambda x: TF.softmin(x, 1)),
        (lambda x: F.glu(x, 1), lambda x: TF.glu(x, 1)),
        (lambda x: F.normalize(x, dim=1), lambda x: TF.normalize(x, dim=1)),
        (lambda x: F.normalize(x, p=1, dim=0), lambda x: TF.normalize(x, p=1, dim=0)),
        (lambda x: F.pad(x, (1, 2, 0, 1), value=0.5), lambda x: TF.pad(x, (1, 2, 0, 1), value=0.5)),
        (lambda x: F.pad(x, (2, 1), mode="replicate"), lambda x: TF.pad(x, (2, 1), mode="replicate")),
        (lambda x: F.relu(x, inplace=False), lambda x: TF.relu(x, inplace=False)),
    ],
    ids=["relu6", "hardtanh", "selu", "celu", "logsigmoid", "softsign", "tanhshrink", "mish", "hardsigmoid",
         "hardswish", "threshold", "softmin", "glu", "normalize", "normalize_p1", "pad", "pad_replicate", "relu_kw"],
)  # fmt: skip
def test_more_activations_match_torch(check_op: Any, ours: Any, ref: Any) -> None:
    check_op(ours, ref, [x_array()])


def test_prelu_similarity_and_distance_match_torch(check_op: Any) -> None:
    check_op(F.prelu, TF.prelu, [x_array((3, 4, 2)), x_array((4,), 1)])
    check_op(F.prelu, TF.prelu, [x_array((3, 4)), np.array([0.25], np.float32)])
    check_op(F.cosine_similarity, TF.cosine_similarity, [x_array((4, 6), 1), x_array((4, 6), 2)])
    check_op(
        lambda a, b: F.cosine_similarity(a, b, dim=0), lambda a, b: TF.cosine_similarity(a, b, dim=0),
        [x_array((4, 6), 1), x_array((4, 6), 2)],
    )  # fmt: skip
    check_op(F.pairwise_distance, TF.pairwise_distance, [x_array((4, 6), 1), x_array((4, 6), 2)])


@pytest.mark.parametrize(
    ("s1", "s2", "dim"),
    [
        ((2, 3, 4), (3, 4), 0),
        ((3,), (2, 3), 0),
        ((2, 1, 4), (1, 3, 4), 1),
        ((2, 3, 1), (3, 5), -2),
        ((4, 1), (4, 6), 1),
    ],
)
def test_cosine_similarity_broadcasts_before_taking_the_norms(check_op: Any, s1: tuple, s2: tuple, dim: int) -> None:
    # a norm over ``dim`` of an input later broadcast along ``dim`` is too small: values beyond 1
    a, b = x_array(s1, 1).astype(np.float64), x_array(s2, 2).astype(np.float64)
    out = check_op(
        lambda u, v: F.cosine_similarity(u, v, dim=dim), lambda u, v: TF.cosine_similarity(u, v, dim=dim), [a, b]
    )
    assert float(out.abs().max()) <= 1.0 + 1e-12
    check_op(lambda u, v: ds.cosine_similarity(u, v, dim), lambda u, v: torch.cosine_similarity(u, v, dim), [b, a])


def test_cosine_similarity_broadcast_below_eps_and_bad_inputs(check_op: Any) -> None:
    small = np.array([[1e-9, 0.0], [0.0, 0.0]])
    check_op(
        lambda u, v: F.cosine_similarity(u, v, dim=0, eps=1e-8),
        lambda u, v: TF.cosine_similarity(u, v, dim=0, eps=1e-8),
        [small, np.array([1.0, 2.0])[:, None]],
    )
    mixed = F.cosine_similarity(ds.randn(3, dtype=ds.float64), ds.randn(3), dim=0)
    assert mixed.dtype == np.float64
    with pytest.raises(ValueError, match=r"shapes \(2, 3\) and \(4, 3\) do not broadcast"):
        F.cosine_similarity(ds.randn(2, 3), ds.randn(4, 3))
    with pytest.raises(TypeError, match="expected a floating-point input, got int64 and int64"):
        F.cosine_similarity(ds.tensor([1, 2]), ds.tensor([2, 3]), dim=0)


@pytest.mark.parametrize("p", [0, 0.5, 1, 2, 3, float("inf")])
def test_pdist_matches_torch_for_every_p(check_op: Any, p: float) -> None:
    # repeated rows (zero distances), zero differences and tied largest differences
    x = np.array([[0.0, 0.0, 1.0], [3.0, 1.0, -1.0], [0.0, 0.0, 1.0], [1.0, -2.0, 3.0], [2.5, 0.5, 0.0]])
    check_op(lambda t: F.pdist(t, p), lambda t: TF.pdist(t, p), [x])
    check_op(lambda t: ds.pdist(t, p), lambda t: torch.pdist(t, p), [x_array((5, 3))])


def test_pdist_inf_gives_each_tied_difference_the_whole_gradient() -> None:
    rows = [[0.0, 0.0], [1.0, -1.0], [2.0, 0.5]]
    ours = ds.tensor(rows, dtype=ds.float64, requires_grad=True)
    ref = torch.tensor(rows, dtype=torch.float64, requires_grad=True)
    F.pdist(ours, float("inf")).sum().backward()
    TF.pdist(ref, float("inf")).sum().backward()
    np.testing.assert_array_equal(ours.grad.numpy(), ref.grad.numpy())  # [[-2, 1], [1, -2], [1, 1]]
    # under create_graph the rule is itself differentiable: d/dx of sum(grad^2), grad = 2 y w
    x = ds.tensor(rows, dtype=ds.float64, requires_grad=True)
    (g,) = ds.autograd.grad(F.pdist(x, float("inf")).pow(2).sum(), x, create_graph=True)
    np.testing.assert_array_equal(g.detach().numpy(), [[-6.0, 2.0], [2.0, -5.0], [4.0, 3.0]])
    (gg,) = ds.autograd.grad(g.pow(2).sum(), x)
    np.testing.assert_array_equal(gg.numpy(), [[-100.0, 60.0], [60.0, -92.0], [40.0, 32.0]])


def test_pdist_edge_shapes_and_bad_input() -> None:
    for p in (0, 1, 2, float("inf")):
        for shape in ((1, 3), (0, 3), (3, 0)):
            ours = F.pdist(ds.ones(*shape), p)
            ref = TF.pdist(torch.ones(*shape), p)
            assert ours.shape == tuple(ref.shape)
            np.testing.assert_array_equal(ours.numpy(), ref.numpy())
    for bad in (-1.0, float("-inf"), float("nan")):
        with pytest.raises(ValueError, match="p must be a non-negative number"):
            F.pdist(ds.randn(3, 2), bad)
    with pytest.raises(TypeError, match="expected a floating-point input, got int64"):
        F.pdist(ds.tensor([[1, 2], [3, 4]]))
    with pytest.raises(ValueError, match=r"expected a 2-D \(N, M\) input"):
        F.pdist(ds.randn(3))


@pytest.mark.parametrize(
    ("fn", "shape", "channel_axes"),
    [(F.dropout1d, (3, 5, 7), 2), (F.dropout1d, (5, 7), 1), (F.dropout2d, (3, 5, 4, 4), 2),
     (F.dropout2d, (3, 5, 7), 2), (F.dropout3d, (2, 5, 2, 3, 3), 2), (F.dropout3d, (5, 2, 3, 3), 1)],
)  # fmt: skip
def test_channel_dropout_zeroes_whole_channels_with_torchs_layouts(fn: Any, shape: tuple, channel_axes: int) -> None:
    # Same layout rule as torch: within a channel every element is kept (scaled by 2) or zeroed together.
    ds.manual_seed(0)
    x = ds.ones(*shape, requires_grad=True)
    y = fn(x, 0.5)
    per_channel = y.detach().numpy().reshape(int(np.prod(shape[:channel_axes])), -1)
    assert set(np.unique(per_channel)) <= {0.0, 2.0}
    assert all(len(np.unique(row)) == 1 for row in per_channel)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.detach().numpy())
    with torch.no_grad():
        theirs = getattr(TF, fn.__name__)(torch.ones(shape), 0.5).numpy().reshape(per_channel.shape[0], -1)
    assert all(len(np.unique(row)) == 1 for row in theirs)
    np.testing.assert_array_equal(fn(x, 0.5, training=False).detach().numpy(), np.ones(shape, np.float32))


def test_channel_dropout_is_seeded_and_checks_rank() -> None:
    ds.manual_seed(3)
    a = F.dropout2d(ds.ones(8, 16, 2, 2), 0.3).numpy()
    ds.manual_seed(3)
    b = F.dropout2d(ds.ones(8, 16, 2, 2), 0.3).numpy()
    np.testing.assert_array_equal(a, b)
    assert 0.5 < (a != 0).mean() < 0.9
    with pytest.raises(ValueError, match=r"dropout1d: expected a 2-D \(C, ...\) or 3-D"):
        F.dropout1d(ds.ones(2, 3, 4, 5))


def test_alpha_dropout_keeps_selu_statistics_and_is_seeded() -> None:
    ds.manual_seed(0)
    x = ds.randn(200_000)
    for fn, p in ((F.alpha_dropout, 0.2), (F.alpha_dropout, 0.5)):
        y = fn(x, p, training=True).numpy()
        assert abs(y.mean()) < 0.02 and abs(y.std() - 1) < 0.02
        values, counts = np.unique(y, return_counts=True)
        assert abs(counts.max() / y.size - p) < 0.01  # every dropped unit takes one and the same value
        np.testing.assert_array_equal(fn(x, p, training=False).numpy(), x.numpy())
    # torch's value for dropped units with p=0.5: a * (-alpha') + b
    torch.manual_seed(0)
    t = TF.alpha_dropout(torch.zeros(1000), 0.5, training=True)
    ours = F.alpha_dropout(ds.zeros(1000), 0.5, training=True).numpy()
    np.testing.assert_allclose(sorted(set(np.round(ours, 5))), sorted(set(np.round(t.numpy(), 5))), rtol=1e-5)
    channels = F.feature_alpha_dropout(ds.zeros(4, 8, 3), 0.5, training=True).numpy()
    assert all(len(np.unique(row)) == 1 for row in channels.reshape(32, 3))


def test_rrelu_matches_torch_in_eval_and_stays_in_bounds_in_training(check_op: Any) -> None:
    x = x_array()
    check_op(lambda x: F.rrelu(x, 0.1, 0.3), lambda x: TF.rrelu(x, 0.1, 0.3), [x])
    check_op(nn.RReLU(0.2, 0.25).eval(), torch.nn.RReLU(0.2, 0.25).eval(), [x])
    y = F.rrelu(ds.tensor(x), 0.1, 0.3, training=True).numpy()
    neg = x < 0
    np.testing.assert_array_equal(y[~neg], x[~neg])
    slopes = y[neg] / x[neg]
    assert slopes.min() >= 0.1 - 1e-6 and slopes.max() <= 0.3 + 1e-6 and slopes.std() > 0.03


@pytest.mark.parametrize("p", [1, 2])
def test_multi_margin_loss_matches_torch(check_op: Any, p: int) -> None:
    x = x_array((5, 4))
    y = np.array([0, 3, 1, 1, 2])
    w = np.array([0.5, 1.0, 2.0, 1.5], np.float32)
    check_op(lambda x: F.multi_margin_loss(x, ds.tensor(y), p=p, margin=0.7),
             lambda x: TF.multi_margin_loss(x, torch.tensor(y), p=p, margin=0.7), [x])  # fmt: skip
    check_op(lambda x: F.multi_margin_loss(x, ds.tensor(y), weight=ds.tensor(w), reduction="sum"),
             lambda x: TF.multi_margin_loss(x, torch.tensor(y), weight=torch.tensor(w), reduction="sum"), [x])  # fmt: skip
    got = nn.MultiMarginLoss(reduction="none")(ds.tensor(x[0]), ds.tensor(3)).numpy()
    np.testing.assert_allclose(got, torch.nn.MultiMarginLoss(reduction="none")(torch.tensor(x[0]), torch.tensor(3)))


def test_local_response_norm_pdist_and_old_names_match_torch(check_op: Any) -> None:
    x = x_array((2, 5, 3, 3))
    for size in (1, 2, 3, 4):
        check_op(
            lambda x, size=size: F.local_response_norm(x, size, 1e-2, 0.75, 2.0),
            lambda x, size=size: TF.local_response_norm(x, size, 1e-2, 0.75, 2.0),
            [x],
        )
    check_op(nn.LocalResponseNorm(3), torch.nn.LocalResponseNorm(3), [x[:, :, 0]])
    check_op(F.pdist, TF.pdist, [x_array((5, 3))])
    check_op(lambda x: F.pdist(x, 1.0), lambda x: TF.pdist(x, 1.0), [x_array((4, 3))])
    check_op(lambda x: F.upsample_nearest(x, scale_factor=2), lambda x: TF.upsample_nearest(x, scale_factor=2), [x])
    check_op(lambda x: F.upsample_bilinear(x, size=(4, 5)), lambda x: TF.upsample_bilinear(x, size=(4, 5)), [x])
    out, idx = F.max_pool2d_with_indices(ds.tensor(x), 2)
    tout, tidx = TF.max_pool2d_with_indices(torch.tensor(x), 2)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


def test_gumbel_softmax_samples_the_categorical_distribution() -> None:
    ds.manual_seed(1)
    logits = ds.tensor(np.log(np.array([[0.2, 0.5, 0.3]] * 4000, np.float32)), requires_grad=True)
    hard = F.gumbel_softmax(logits, tau=0.5, hard=True)
    assert set(np.unique(hard.detach().numpy())) == {0.0, 1.0} and np.all(hard.detach().numpy().sum(-1) == 1)
    np.testing.assert_allclose(hard.detach().numpy().mean(0), [0.2, 0.5, 0.3], atol=0.03)
    (hard * ds.tensor([1.0, 2.0, 3.0])).sum().backward()  # straight through: the soft sample's gradient
    assert np.abs(logits.grad.numpy()).sum() > 0
    soft = F.gumbel_softmax(ds.zeros(3, 4), tau=2.0)
    np.testing.assert_allclose(soft.numpy().sum(-1), 1.0, rtol=1e-6)


def test_triplet_margin_with_distance_loss_matches_torch(check_op: Any) -> None:
    a, p, n = x_array((4, 5), 1), x_array((4, 5), 2), x_array((4, 5), 3)
    check_op(F.triplet_margin_with_distance_loss, TF.triplet_margin_with_distance_loss, [a, p, n])
    check_op(
        lambda a, p, n: F.triplet_margin_with_distance_loss(
            a, p, n, distance_function=lambda u, v: 1.0 - F.cosine_similarity(u, v), margin=0.5, swap=True
        ),
        lambda a, p, n: TF.triplet_margin_with_distance_loss(
            a, p, n, distance_function=lambda u, v: 1.0 - TF.cosine_similarity(u, v), margin=0.5, swap=True
        ),
        [a, p, n],
    )


@pytest.mark.parametrize(
    ("name", "args"),
    [("relu_", ()), ("leaky_relu_", (0.2,)), ("elu_", (0.5,)), ("celu_", (0.7,)), ("selu_", ()),
     ("hardtanh_", (-0.5, 2.0)), ("threshold_", (0.1, -3.0))],
)  # fmt: skip
def test_in_place_activations_match_torch(name: str, args: tuple) -> None:
    x0 = x_array()
    x = ds.tensor(x0, requires_grad=True)
    tx = torch.tensor(x0, requires_grad=True)
    y, ty = x * 2, tx * 2
    out, tout = getattr(F, name)(y, *args), getattr(TF, name)(ty, *args)
    assert out is y and tout is ty
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-6)
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    want = tx.grad.numpy()
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-5, atol=1e-6 * np.abs(want).max())
    with pytest.raises(RuntimeError, match="leaf"):
        getattr(F, name)(ds.tensor(x0, requires_grad=True), *args)  # as torch: in place on a leaf that requires grad


def test_a_large_relu_in_pooled_memory_matches_torch_and_the_op_it_stands_for() -> None:
    # F.relu writes outputs and gradients of large host arrays into pooled memory; values, gradients,
    # the NaN and signed-zero cases and double backward must be those of ds.relu (and torch's values).
    import torch

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 8, 48, 48)).astype(np.float32)
    assert x.size >= pointwise.POOLED_ACTIVATION_SIZE
    x.flat[:4] = [0.0, -0.0, np.nan, 3.0]
    g = rng.standard_normal(x.shape).astype(np.float32)
    pooled, plain = ds.tensor(x, requires_grad=True), ds.tensor(x, requires_grad=True)
    y_pooled, y_plain = F.relu(pooled), ds.relu(plain)
    y_pooled.backward(ds.tensor(g))
    y_plain.backward(ds.tensor(g))
    np.testing.assert_array_equal(y_pooled.detach().numpy(), y_plain.detach().numpy())
    np.testing.assert_array_equal(pooled.grad.numpy(), plain.grad.numpy())
    np.testing.assert_array_equal(y_pooled.detach().numpy(), torch.relu(torch.from_numpy(x)).numpy())
    # Gradients as torch's, NaN included (its rule passes the gradient where the output is NaN),
    # for the large (pooled) array and a small one.
    for size in (x.size, 8):
        xt = torch.from_numpy(x.reshape(-1)[:size].copy()).requires_grad_()
        torch.relu(xt).backward(torch.from_numpy(g.reshape(-1)[:size].copy()))
        ours = ds.tensor(x.reshape(-1)[:size].copy(), requires_grad=True)
        ds.relu(ours).backward(ds.tensor(g.reshape(-1)[:size].copy()))
        np.testing.assert_array_equal(ours.grad.numpy(), xt.grad.numpy())
        assert ours.grad.numpy()[2] == g.reshape(-1)[2] != 0  # the NaN's gradient passes
    z = rng.standard_normal(x.shape).astype(np.float32)  # double backward: the rule under create_graph
    twice = ds.tensor(z, requires_grad=True)
    (gx,) = ds.autograd.grad((F.relu(twice) ** 2).sum(), twice, create_graph=True)
    (ggx,) = ds.autograd.grad(gx.sum(), twice)
    np.testing.assert_array_equal(ggx.numpy(), np.where(z > 0, 2.0, 0.0).astype(np.float32))


def test_a_large_relu_on_a_device_stays_on_the_device() -> None:
    x = np.random.default_rng(1).standard_normal((4, 8, 48, 48)).astype(np.float32)
    t = ds.tensor(x, device="strict", requires_grad=True)
    y = F.relu(t)
    y.sum().backward()
    assert y.device == ds.device("strict") and t.grad is not None and t.grad.device == ds.device("strict")
    assert type(y.array) is not np.ndarray  # not pooled host memory
    np.testing.assert_array_equal(y.detach().cpu().numpy(), np.maximum(x, 0))


def test_softmax_dim_none_is_torchs_implicit_choice_with_its_warning() -> None:
    torch = pytest.importorskip("torch")
    import warnings

    x = np.random.RandomState(0).randn(2, 3, 4).astype(np.float32)
    for fn in ("softmax", "log_softmax", "softmin"):
        for shape in ((4,), (2, 3), (2, 3, 4), (2, 3, 2, 2)):
            a = x.ravel()[: int(np.prod(shape))].reshape(shape)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                got = getattr(F, fn)(ds.tensor(a), dim=None).numpy()
            assert any("Implicit dimension choice" in str(w.message) for w in caught)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                want = getattr(torch.nn.functional, fn)(torch.tensor(a), dim=None).numpy()
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # leaving dim out is dim=None, as in torch: a ported call without dim computes what torch computes
    for fn, layer in (("softmax", nn.Softmax), ("log_softmax", nn.LogSoftmax), ("softmin", nn.Softmin)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = getattr(torch.nn.functional, fn)(torch.tensor(x)).numpy()
        with pytest.warns(UserWarning, match="Implicit dimension choice"):
            np.testing.assert_allclose(getattr(F, fn)(ds.tensor(x)).numpy(), want, rtol=1e-5, atol=1e-6)
        with pytest.warns(UserWarning, match="Implicit dimension choice"):
            np.testing.assert_allclose(layer()(ds.tensor(x)).numpy(), want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ds.errors.ArgumentTypeError, match="softmax: dim must be an int, got str"):
        F.softmax(ds.tensor(x), "abc")


def test_pad_copying_modes_refuse_what_torch_refuses() -> None:
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    bad = [
        ((1, 1, 3), (3, 3), "reflect"),  # reflect padding must be smaller than the dim
        ((1, 1, 3), (0, 3), "reflect"),
        ((1, 1, 3, 3), (0, 0, 3, 0), "reflect"),
        ((1, 1, 3), (4, 4), "circular"),  # circular wraps at most once
        ((1, 1, 0), (1, 1), "replicate"),  # nothing to replicate
        ((2, 3, 4), (1, 1, 1, 1, 1, 1), "reflect"),  # would pad the batch dim
        ((2, 3, 4, 5), (1, 1), "reflect"),  # 1 padded dim needs 2-d or 3-d input
        ((4,), (1, 1), "circular"),
    ]
    for shape, pads, mode in bad:
        with pytest.raises((RuntimeError, NotImplementedError)):
            TF.pad(torch.zeros(shape), pads, mode)
        with pytest.raises(ds.DownslopeError, match="pad"):
            F.pad(ds.zeros(*shape), pads, mode)
    good = [((1, 1, 3), (2, 2), "reflect"), ((1, 1, 3), (3, 3), "circular"), ((2, 3, 4), (1, 1, 1, 1), "replicate"),
            ((0, 1, 3), (1, 1), "reflect"), ((1, 3), (2, 1), "circular")]  # fmt: skip
    for shape, pads, mode in good:
        a = np.random.RandomState(1).randn(*shape).astype(np.float32)
        np.testing.assert_allclose(F.pad(ds.tensor(a), pads, mode).numpy(), TF.pad(torch.tensor(a), pads, mode).numpy())


# ---------------------------------------------------------------------- signatures
# torch.nn.functional's parameters that downslope's functions leave out on purpose: none (the exact
# signatures, order and defaults included, are checked in test_forward_signatures.py).
_RENAMED_OR_LEGACY: set[str] = set()
# Parameters downslope's functions do not have yet.
_NOT_YET: dict[str, set[str]] = {}


def test_functional_signatures_take_torchs_keyword_arguments():
    import inspect

    gaps = {}
    for name in sorted(dir(TF)):
        ours, theirs = getattr(F, name, None), getattr(TF, name)
        if name.startswith("_") or ours is None or not inspect.isfunction(theirs) or not callable(ours):
            continue
        try:
            params = inspect.signature(ours).parameters
        except (TypeError, ValueError):
            continue
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            continue
        wanted = {
            p.name
            for p in inspect.signature(theirs).parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }
        missing = wanted - set(params) - _RENAMED_OR_LEGACY
        if missing:
            gaps[name] = missing
    assert gaps == _NOT_YET


# name: positional arguments after the input, for each function torch gives inplace=
_INPLACE_ACTIVATIONS = {
    "relu": (), "relu6": (), "elu": (0.7,), "selu": (), "celu": (1.3,), "leaky_relu": (0.2,), "silu": (),
    "mish": (), "hardswish": (), "hardsigmoid": (), "hardtanh": (-0.5, 0.5), "threshold": (0.3, -2.0),
    "rrelu": (0.1, 0.3, False), "dropout": (0.5, False), "alpha_dropout": (0.5, False),
    "feature_alpha_dropout": (0.5, False), "dropout1d": (0.5, False), "dropout2d": (0.5, False),
    "dropout3d": (0.5, False),
}  # fmt: skip


def test_every_function_with_torchs_inplace_is_listed():
    import inspect

    have = {
        n
        for n in dir(TF)
        if inspect.isfunction(getattr(TF, n)) and "inplace" in inspect.signature(getattr(TF, n)).parameters
    }
    assert {n for n in have if hasattr(F, n)} == set(_INPLACE_ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(_INPLACE_ACTIVATIONS))
def test_inplace_writes_into_the_input_as_torch(name):
    shape = (2, 3, 4, 5) if name == "dropout3d" else (2, 3, 4)
    a = x_array((int(np.prod(shape)),)).reshape(shape)
    args = _INPLACE_ACTIVATIONS[name]
    x, tx = ds.tensor(a), torch.tensor(a)
    ours = getattr(F, name)(x, *args, inplace=True)
    ref = getattr(TF, name)(tx, *args, inplace=True)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(x.numpy(), tx.numpy(), rtol=1e-6, atol=1e-6)  # the input holds the result
    assert (ours is x) == (ref is tx) == True  # noqa: E712


def test_silu_takes_inplace_as_torch():
    a = x_array()
    ours = F.silu(ds.tensor(a), inplace=False)
    np.testing.assert_allclose(ours.numpy(), TF.silu(torch.tensor(a), inplace=False).numpy(), rtol=1e-6)


def test_hardtanh_module_takes_torchs_deprecated_min_value_and_max_value():
    with pytest.warns(FutureWarning, match="min_value"):
        m = nn.Hardtanh(min_value=-2.0, max_value=0.5)
    assert (m.min_val, m.max_val) == (-2.0, 0.5)
    with pytest.warns(FutureWarning):
        t = torch.nn.Hardtanh(min_value=-2.0, max_value=0.5)
    a = x_array()
    np.testing.assert_array_equal(m(ds.tensor(a)).numpy(), t(torch.tensor(a)).numpy())


def test_prelu_module_takes_dtype():
    m = nn.PReLU(3, dtype=ds.float64)
    assert m.weight.dtype == ds.float64
    assert torch.nn.PReLU(3, dtype=torch.float64).weight.dtype == torch.float64


@pytest.mark.parametrize("with_bias", [True, False])
def test_float16_linear_rounds_once_as_torch(with_bias: bool) -> None:
    """torch's float16 addmm sums the products and adds the bias in float32, then rounds once; rounding
    the product before adding the bias made the error against float64 larger than torch's."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 128)).astype(np.float16)
    w = (rng.standard_normal((96, 128)) / 11).astype(np.float16)
    b = rng.standard_normal(96).astype(np.float16) if with_bias else None
    exact = x.astype(np.float64) @ w.astype(np.float64).T + (0.0 if b is None else b.astype(np.float64))
    theirs = TF.linear(torch.tensor(x), torch.tensor(w), None if b is None else torch.tensor(b)).numpy()
    ours = F.linear(ds.from_numpy(x), ds.from_numpy(w), None if b is None else ds.from_numpy(b))
    assert ours.dtype == ds.float16
    error, torch_error = np.abs(ours.numpy() - exact), np.abs(theirs - exact)
    assert error.max() <= torch_error.max() * 1.001
    # one float16 rounding of the same float32 sum: at most one unit in the last place from torch's
    np.testing.assert_array_less(
        np.abs(ours.numpy().astype(np.float64) - theirs), np.spacing(np.abs(theirs)) * 1.01 + 1e-7
    )
