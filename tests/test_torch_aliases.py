"""torch's top-level spellings of the nn functions (``torch.conv2d``, ``torch.dropout(x, p, train)``,
``torch.batch_norm(input, weight, bias, running_mean, ...)``...): each call below is written once and
run on ``downslope`` and on ``torch`` alike, so the signatures are torch's top-level ones; values and
gradients are compared in float64."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ArgumentError, ArgumentTypeError, ShapeError

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)


def _f(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape)


def _pos(*shape: int) -> np.ndarray:
    return RNG.uniform(0.2, 2.0, shape)


def _ints(high: int, *shape: int, low: int = 0) -> np.ndarray:
    return RNG.integers(low, high, shape)


def _sign(*shape: int) -> np.ndarray:
    return np.where(RNG.random(shape) < 0.5, -1.0, 1.0)


# name: (the call, written once for both libraries as m.<fn>(...), its array arguments)
CASES: dict[str, tuple[Callable[..., Any], list[np.ndarray]]] = {
    "adaptive_avg_pool1d": (lambda m, x: m.adaptive_avg_pool1d(x, 3), [_f(2, 3, 8)]),
    "avg_pool1d": (lambda m, x: m.avg_pool1d(x, 3, 2, 1, True, False), [_f(2, 3, 9)]),
    "avg_pool1d_default_stride": (lambda m, x: m.avg_pool1d(x, 2), [_f(2, 3, 8)]),
    "bilinear": (lambda m, a, b, w, c: m.bilinear(a, b, w, c), [_f(4, 3), _f(4, 5), _f(2, 3, 5), _f(2)]),
    "celu": (lambda m, x: m.celu(x, 0.5), [_f(3, 4)]),
    "selu": (lambda m, x: m.selu(x), [_f(3, 4)]),
    "hardshrink": (lambda m, x: m.hardshrink(x, 0.3), [_f(3, 4)]),
    "threshold": (lambda m, x: m.threshold(x, 0.1, 2.0), [_f(3, 4)]),
    "prelu": (lambda m, x, w: m.prelu(x, w), [_f(2, 3, 4), _f(3)]),
    "rrelu_eval": (lambda m, x: m.rrelu(x, 0.1, 0.3), [_f(3, 4)]),
    "conv1d": (lambda m, x, w, b: m.conv1d(x, w, b, 2, 1, 2, 1), [_f(2, 3, 11), _f(4, 3, 3), _f(4)]),
    "conv2d": (lambda m, x, w, b: m.conv2d(x, w, b, 1, 1, 1, 2), [_f(2, 4, 6, 5), _f(6, 2, 3, 3), _f(6)]),
    "conv2d_same": (lambda m, x, w: m.conv2d(x, w, None, 1, "same"), [_f(1, 2, 5, 5), _f(3, 2, 3, 3)]),
    "conv3d": (lambda m, x, w, b: m.conv3d(x, w, b, 1, 1), [_f(1, 2, 4, 4, 4), _f(3, 2, 2, 2, 2), _f(3)]),
    "conv_transpose1d": (lambda m, x, w, b: m.conv_transpose1d(x, w, b, 2, 1, 1), [_f(2, 3, 5), _f(3, 4, 3), _f(4)]),
    "conv_transpose2d": (lambda m, x, w: m.conv_transpose2d(x, w, None, 2, 0, 1, 2), [_f(1, 4, 3, 3), _f(4, 1, 2, 2)]),
    "conv_transpose3d": (lambda m, x, w: m.conv_transpose3d(x, w, None, 2), [_f(1, 2, 2, 2, 2), _f(2, 3, 2, 2, 2)]),
    "convolution": (
        lambda m, x, w, b: m.convolution(x, w, b, [2, 1], [1, 0], [1, 1], False, [0, 0], 1),
        [_f(2, 3, 6, 5), _f(4, 3, 3, 2), _f(4)],
    ),
    "convolution_transposed": (
        lambda m, x, w: m.convolution(x, w, None, [2], [1], [1], True, [1], 1),
        [_f(2, 3, 5), _f(3, 2, 3)],
    ),
    "cosine_similarity": (lambda m, a, b: m.cosine_similarity(a, b, 1, 1e-8), [_f(4, 5), _f(4, 5)]),
    "pairwise_distance": (lambda m, a, b: m.pairwise_distance(a, b, 3.0, 1e-6, True), [_f(4, 5), _f(4, 5)]),
    "pdist": (lambda m, x: m.pdist(x, 2.0), [_f(5, 3)]),
    "rms_norm": (lambda m, x, w: m.rms_norm(x, [4], w, 1e-6), [_f(3, 4), _f(4)]),
    "layer_norm": (lambda m, x, w, b: m.layer_norm(x, [3, 4], w, b, 1e-5, False), [_f(2, 3, 4), _f(3, 4), _f(3, 4)]),
    "layer_norm_defaults": (lambda m, x: m.layer_norm(x, [4]), [_f(2, 3, 4)]),
    "group_norm": (lambda m, x, w, b: m.group_norm(x, 2, w, b, 1e-5, False), [_f(2, 4, 5), _f(4), _f(4)]),
    "instance_norm": (
        lambda m, x, w, b: m.instance_norm(x, w, b, None, None, True, 0.1, 1e-5, False),
        [_f(2, 3, 6), _f(3), _f(3)],
    ),
    "batch_norm_batch_stats": (
        lambda m, x, w, b: m.batch_norm(x, w, b, None, None, True, 0.1, 1e-5, False),
        [_f(5, 3, 4), _f(3), _f(3)],
    ),
    "batch_norm_eval": (
        lambda m, x, w, b, rm, rv: m.batch_norm(x, w, b, rm.detach(), rv.detach(), False, 0.1, 1e-5, True),
        [_f(5, 3), _f(3), _f(3), _f(3), _pos(3)],
    ),
    "max_pool1d": (lambda m, x: m.max_pool1d(x, 3, 2, 1, 2, True), [_f(2, 3, 10)]),
    "max_pool1d_empty_stride": (lambda m, x: m.max_pool1d(x, [2], []), [_f(2, 3, 8)]),
    "max_pool1d_with_indices": (lambda m, x: m.max_pool1d_with_indices(x, 3, 2, 1), [_f(2, 3, 9)]),
    "max_pool2d": (lambda m, x: m.max_pool2d(x, 2), [_f(2, 3, 6, 4)]),
    "max_pool2d_args": (lambda m, x: m.max_pool2d(x, 3, 2, 1, 1, True), [_f(1, 2, 7, 6)]),
    "max_pool3d": (lambda m, x: m.max_pool3d(x, 2, 1), [_f(1, 2, 4, 3, 4)]),
    "pixel_shuffle": (lambda m, x: m.pixel_shuffle(x, 2), [_f(2, 8, 3, 3)]),
    "pixel_unshuffle": (lambda m, x: m.pixel_unshuffle(x, 2), [_f(2, 2, 4, 6)]),
    "channel_shuffle": (lambda m, x: m.channel_shuffle(x, 2), [_f(2, 6, 3)]),
    "native_channel_shuffle": (
        lambda m, x: m.native_channel_shuffle(x.detach(), 3),
        [_f(2, 6, 3)],
    ),  # torch: no gradient
    "constant_pad_nd": (lambda m, x: m.constant_pad_nd(x, [1, -1, 2, 0], 3.0), [_f(2, 3, 4)]),
    "constant_pad_nd_default": (lambda m, x: m.constant_pad_nd(x, [2, 1]), [_f(3, 4)]),
    "embedding": (lambda m, w, i: m.embedding(w, i), [_f(6, 3), _ints(6, 2, 4)]),
    "embedding_padding": (lambda m, w, i: m.embedding(w, i, 1), [_f(6, 3), np.array([0, 1, 1, 5, 1])]),
    "embedding_negative_padding_is_none": (lambda m, w, i: m.embedding(w, i, -2), [_f(6, 3), np.array([0, 4, 4])]),
    "embedding_scale_grad_by_freq": (lambda m, w, i: m.embedding(w, i, -1, True), [_f(6, 3), np.array([0, 2, 2, 2])]),
    "bce_with_logits_default_none": (
        lambda m, x, t: m.binary_cross_entropy_with_logits(x, t),
        [_f(3, 4), RNG.random((3, 4))],
    ),
    "bce_with_logits_weights": (
        lambda m, x, t, w, pw: m.binary_cross_entropy_with_logits(x, t, w.detach(), pw.detach(), 1),
        [_f(3, 4), RNG.random((3, 4)), _pos(4), _pos(4)],
    ),
    "kl_div": (lambda m, x, t: m.kl_div(x, t), [_f(3, 4), _pos(3, 4)]),
    "kl_div_mean_log_target": (lambda m, x, t: m.kl_div(x, t, 1, log_target=True), [_f(3, 4), _f(3, 4)]),
    "hinge_embedding_loss": (lambda m, x, t: m.hinge_embedding_loss(x, t, 0.5, 2), [_f(3, 4), _sign(3, 4)]),
    "hinge_embedding_loss_default": (lambda m, x, t: m.hinge_embedding_loss(x, t), [_f(5), _sign(5)]),
    "margin_ranking_loss": (lambda m, a, b, t: m.margin_ranking_loss(a, b, t, 0.3, 1), [_f(6), _f(6), _sign(6)]),
    "margin_ranking_loss_default": (lambda m, a, b, t: m.margin_ranking_loss(a, b, t), [_f(6), _f(6), _sign(6)]),
    "cosine_embedding_loss": (
        lambda m, a, b, t: m.cosine_embedding_loss(a, b, t, 0.2, 1),
        [_f(4, 5), _f(4, 5), _sign(4)],
    ),
    "cosine_embedding_loss_default": (
        lambda m, a, b, t: m.cosine_embedding_loss(a, b, t),
        [_f(4, 5), _f(4, 5), _sign(4)],
    ),
    "triplet_margin_loss": (
        lambda m, a, p, n: m.triplet_margin_loss(a, p, n, 1.0, 2.0, 1e-6, True, 1),
        [_f(4, 5), _f(4, 5), _f(4, 5)],
    ),
    "triplet_margin_loss_default": (lambda m, a, p, n: m.triplet_margin_loss(a, p, n), [_f(4, 5), _f(4, 5), _f(4, 5)]),
    "poisson_nll_loss": (lambda m, x, t: m.poisson_nll_loss(x, t, True, False, 1e-8, 1), [_f(3, 4), _pos(3, 4)]),
    "poisson_nll_loss_full": (lambda m, x, t: m.poisson_nll_loss(x, t, False, True, 1e-8, 0), [_pos(3, 4), _pos(3, 4)]),
    "ctc_loss": (
        lambda m, lp, tg: m.ctc_loss(lp.log_softmax(2), tg, [7, 6], [3, 2], 0, 1),
        [_f(7, 2, 5), _ints(5, 2, 3, low=1)],
    ),
    "ctc_loss_default": (
        lambda m, lp, tg: m.ctc_loss(lp.log_softmax(2), tg, [7, 6], [3, 2]),
        [_f(7, 2, 5), _ints(5, 2, 3, low=1)],
    ),
    "lstm_cell": (
        lambda m, x, h, c, wi, wh, bi, bh: m.lstm_cell(x, [h, c], wi, wh, bi, bh),
        [_f(4, 3), _f(4, 2), _f(4, 2), _f(8, 3), _f(8, 2), _f(8), _f(8)],
    ),
    "lstm_cell_tuple_no_bias": (
        lambda m, x, h, c, wi, wh: m.lstm_cell(x, (h, c), wi, wh),
        [_f(4, 3), _f(4, 2), _f(4, 2), _f(8, 3), _f(8, 2)],
    ),
    "gru_cell": (
        lambda m, x, h, wi, wh, bi, bh: m.gru_cell(x, h, wi, wh, bi, bh),
        [_f(4, 3), _f(4, 2), _f(6, 3), _f(6, 2), _f(6), _f(6)],
    ),
    "rnn_tanh_cell": (
        lambda m, x, h, wi, wh, bi, bh: m.rnn_tanh_cell(x, h, wi, wh, bi, bh),
        [_f(4, 3), _f(4, 2), _f(2, 3), _f(2, 2), _f(2), _f(2)],
    ),
    "rnn_relu_cell": (
        lambda m, x, h, wi, wh: m.rnn_relu_cell(x, h, wi, wh),
        [_f(4, 3), _f(4, 2), _f(2, 3), _f(2, 2)],
    ),
    "grid_sampler": (
        lambda m, x, g: m.grid_sampler(x, g, 0, 0, False),
        [_f(2, 3, 4, 5), RNG.uniform(-1.1, 1.1, (2, 3, 2, 2))],
    ),
    "grid_sampler_2d_nearest_border": (
        lambda m, x, g: m.grid_sampler_2d(x, g, 1, 1, True),
        [_f(1, 2, 4, 5), RNG.uniform(-1.2, 1.2, (1, 3, 3, 2))],
    ),
    "grid_sampler_bicubic_reflection": (
        lambda m, x, g: m.grid_sampler(x, g, 2, 2, False),
        [_f(2, 3, 4, 5), RNG.uniform(-1.2, 1.2, (2, 3, 2, 2))],
    ),
    "grid_sampler_3d": (
        lambda m, x, g: m.grid_sampler_3d(x, g, 0, 1, False),
        [_f(2, 2, 3, 4, 5), RNG.uniform(-1.2, 1.2, (2, 2, 3, 2, 3))],
    ),
    "affine_grid_generator": (lambda m, t: m.affine_grid_generator(t, [2, 3, 4, 5], False), [_f(2, 2, 3)]),
    "dropout_eval": (lambda m, x: m.dropout(x, 0.5, False), [_f(3, 4)]),
    "alpha_dropout_eval": (lambda m, x: m.alpha_dropout(x, 0.5, False), [_f(3, 4)]),
    "feature_dropout_p0": (lambda m, x: m.feature_dropout(x, 0.0, True), [_f(2, 3, 4)]),
    "feature_alpha_dropout_eval": (lambda m, x: m.feature_alpha_dropout(x, 0.3, False), [_f(2, 3, 4)]),
    # in-place forms: written into a non-leaf copy, the gradient flows back to the leaf
    "relu_": (lambda m, x: m.relu_(x * 1.0), [_f(3, 4)]),
    "selu_": (lambda m, x: m.selu_(x * 1.0), [_f(3, 4)]),
    "celu_": (lambda m, x: m.celu_(x * 1.0, 0.5), [_f(3, 4)]),
    "threshold_": (lambda m, x: m.threshold_(x * 1.0, 0.2, -1.0), [_f(3, 4)]),
    "rrelu_eval_": (lambda m, x: m.rrelu_(x * 1.0, 0.2, 0.4), [_f(3, 4)]),
    "dropout_eval_": (lambda m, x: m.dropout_(x * 1.0, 0.4, False), [_f(3, 4)]),
    "alpha_dropout_eval_": (lambda m, x: m.alpha_dropout_(x * 1.0, 0.4, False), [_f(3, 4)]),
    "feature_dropout_eval_": (lambda m, x: m.feature_dropout_(x * 1.0, 0.4, False), [_f(3, 4)]),
    "feature_alpha_dropout_eval_": (lambda m, x: m.feature_alpha_dropout_(x * 1.0, 0.4, False), [_f(3, 4)]),
}


def _inputs(arrays: list[np.ndarray], lib: Any) -> list[Any]:
    out = []
    for a in arrays:
        floating = a.dtype.kind == "f"
        if lib is ds:
            out.append(ds.tensor(a, dtype=ds.float64 if floating else ds.int64, requires_grad=floating))
        else:
            out.append(torch.tensor(a, dtype=torch.float64 if floating else torch.int64, requires_grad=floating))
    return out


def _outputs(y: Any) -> list[Any]:
    return list(y) if isinstance(y, (tuple, list)) else [y]


@pytest.mark.parametrize("case", sorted(CASES))
def test_alias_matches_torch_top_level_values_and_gradients(case: str) -> None:
    call, arrays = CASES[case]
    ours, theirs = _inputs(arrays, ds), _inputs(arrays, torch)
    ys, tys = _outputs(call(ds, *ours)), _outputs(call(torch, *theirs))
    assert len(ys) == len(tys)
    loss, tloss = 0, 0
    for k, (y, ty) in enumerate(zip(ys, tys)):
        assert y.shape == tuple(ty.shape), (case, k)
        np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-9, atol=1e-10, err_msg=case)
        if ty.dtype.is_floating_point and ty.requires_grad:
            weights = np.random.default_rng(k).standard_normal(y.shape)
            loss = loss + (y * ds.tensor(weights, dtype=ds.float64)).sum()
            tloss = tloss + (ty * torch.tensor(weights)).sum()
    if isinstance(tloss, int):
        return
    loss.backward()
    tloss.backward()
    for a, ta in zip(ours, theirs):
        if ta.requires_grad:
            expected = ta.grad.numpy() if ta.grad is not None else np.zeros(ta.shape)
            got = a.grad.numpy() if a.grad is not None else np.zeros(a.shape)
            np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10, err_msg=case)


def test_every_alias_is_exported_lazily_and_named_in_all() -> None:
    from downslope.nn import _torch_aliases

    assert set(_torch_aliases.__all__) == set(ds._TORCH_ALIASES)
    for name in _torch_aliases.__all__:
        assert getattr(ds, name) is getattr(_torch_aliases, name), name
        assert name in ds.__all__ and hasattr(torch, name), name


def test_aliases_that_agree_with_nn_functional_are_the_same_function() -> None:
    import downslope.nn.functional as F

    for name in ("conv2d", "conv_transpose2d", "celu", "selu_", "cosine_similarity", "pdist", "prelu", "bilinear"):
        assert getattr(ds, name) is getattr(F, name)


def test_import_downslope_does_not_load_nn() -> None:
    code = "import sys, downslope; assert 'downslope.nn' not in sys.modules; downslope.conv2d; assert 'downslope.nn' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_batch_norm_training_updates_the_running_statistics_as_torch() -> None:
    x, w, b = _f(6, 3, 2), _f(3), _f(3)
    rm, rv = np.zeros(3), np.ones(3)
    ours = [ds.tensor(a, dtype=ds.float64) for a in (x, w, b, rm, rv)]
    theirs = [torch.tensor(a) for a in (x, w, b, rm, rv)]
    y = ds.batch_norm(*ours, True, 0.3, 1e-5, False)
    ty = torch.batch_norm(*theirs, True, 0.3, 1e-5, False)
    np.testing.assert_allclose(y.numpy(), ty.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours[3].numpy(), theirs[3].numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours[4].numpy(), theirs[4].numpy(), rtol=1e-12)


def test_in_place_forms_write_into_their_argument() -> None:
    for fn, args in ((ds.relu_, ()), (ds.selu_, ()), (ds.dropout_, (0.5, True)), (ds.feature_dropout_, (0.5, True))):
        x = ds.tensor(_f(2, 3))
        assert fn(x, *args) is x


@pytest.mark.parametrize("p", [0.25, 0.6])
def test_dropout_draws_keep_or_scale_and_the_gradient_is_the_mask(p: float) -> None:
    x = ds.tensor(_pos(200, 50), dtype=ds.float64, requires_grad=True)
    y = ds.dropout(x, p, True)
    ratio = y.detach().numpy() / x.detach().numpy()
    assert set(np.unique(np.round(ratio, 12))) <= {0.0, round(1 / (1 - p), 12)}
    assert abs((ratio == 0).mean() - p) < 0.02
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), ratio)


def test_feature_dropout_drops_whole_channels_and_2d_input_element_wise() -> None:
    y = ds.feature_dropout(ds.ones(40, 30, 5), 0.5, True).numpy()
    assert (y.min(axis=2) == y.max(axis=2)).all() and set(np.unique(y)) == {0.0, 2.0}
    y2 = ds.feature_dropout(ds.ones(100, 100), 0.5, True).numpy()
    assert 0.4 < (y2 == 0).mean() < 0.6
    ya = ds.feature_alpha_dropout(ds.ones(40, 30, 5), 0.5, True).numpy()
    assert (ya.min(axis=2) == ya.max(axis=2)).all() and len(np.unique(ya)) == 2
    za = ds.alpha_dropout(ds.tensor(_f(300, 300)), 0.3, True).numpy()
    assert abs(za.mean()) < 0.05 and abs(za.std() - 1) < 0.05  # keeps zero mean, unit variance


def _torch_raises(fn: Callable[[], Any]) -> bool:
    try:
        fn()
    except (RuntimeError, TypeError, ValueError, IndexError):
        return True
    return False


BAD = {
    "dropout_without_train": (lambda m: m.dropout(m.ones(3), 0.5), TypeError),
    "feature_dropout_1d": (lambda m: m.feature_dropout(m.ones(3), 0.5, True), ShapeError),
    "feature_alpha_dropout_1d": (lambda m: m.feature_alpha_dropout(m.ones(3), 0.5, True), ShapeError),
    "batch_norm_eval_without_stats": (
        lambda m: m.batch_norm(m.ones(3, 2), None, None, None, None, False, 0.1, 1e-5, False),
        ArgumentError,
    ),
    "threshold_without_value": (lambda m: m.threshold(m.ones(3), 0.1), TypeError),
    "lstm_cell_1d_input": (
        lambda m: m.lstm_cell(m.ones(3), [m.ones(2), m.ones(2)], m.ones(8, 3), m.ones(8, 2)),
        ShapeError,
    ),
    "gru_cell_wrong_hidden": (lambda m: m.gru_cell(m.ones(4, 3), m.ones(4, 3), m.ones(6, 3), m.ones(6, 2)), ShapeError),
    "rnn_tanh_cell_wrong_weight": (
        lambda m: m.rnn_tanh_cell(m.ones(4, 3), m.ones(4, 2), m.ones(2, 4), m.ones(2, 2)),
        ShapeError,
    ),
    "constant_pad_nd_too_many": (lambda m: m.constant_pad_nd(m.ones(3), [1, 1, 1, 1]), ArgumentError),
    "constant_pad_nd_odd": (lambda m: m.constant_pad_nd(m.ones(3), [1]), ArgumentError),
    "constant_pad_nd_negative_size": (lambda m: m.constant_pad_nd(m.ones(3), [-2, -2]), ShapeError),
    "convolution_2d_weight": (
        lambda m: m.convolution(m.ones(2, 3), m.ones(2, 3), None, [1], [0], [1], False, [0], 1),
        ShapeError,
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_arguments_are_refused_where_torch_refuses_them(case: str) -> None:
    call, error = BAD[case]
    assert _torch_raises(lambda: call(torch)), f"torch accepts {case}"
    with pytest.raises(error):
        call(ds)


def test_reduction_must_be_torchs_enum_int() -> None:
    with pytest.raises(ArgumentError, match="0 \\(none\\), 1 \\(mean\\) or 2 \\(sum\\)"):
        ds.margin_ranking_loss(ds.ones(2), ds.ones(2), ds.ones(2), 0.0, "mean")  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError):
        ds.dropout(ds.ones(2), 0.5, "yes")  # type: ignore[arg-type]
    with pytest.raises(ArgumentError):  # torch returns -1s for an enum value that does not exist
        ds.kl_div(ds.ones(3), ds.ones(3), 5)


def test_grad_scaler_and_out_of_memory_error() -> None:
    assert ds.GradScaler is ds.amp.GradScaler
    scaler = ds.GradScaler("cpu", init_scale=4.0)
    assert scaler.get_scale() == torch.GradScaler("cpu", init_scale=4.0).get_scale()
    assert issubclass(ds.OutOfMemoryError, MemoryError)
    with pytest.raises(ds.OutOfMemoryError):
        raise MemoryError("allocation failed")
