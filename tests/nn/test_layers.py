"""Linear, Dropout and Embedding against PyTorch (weights copied across), default init
distributions, dropout's mask semantics and statistics, errors, and double backward."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import downslope as ds
import downslope.nn.functional as F
from downslope import nn
from downslope.devices import to_host

torch = pytest.importorskip("torch")


def run_both(assert_close: Any, ours: nn.Module, ref: Any, x: np.ndarray, seed: int = 0, x_grad: bool = True) -> None:
    ref.load_state_dict({k: torch.tensor(to_host(v)) for k, v in ours.state_dict().items()})
    xo = ds.tensor(x, dtype=x.dtype, requires_grad=x_grad)
    xt = torch.tensor(x, requires_grad=x_grad)
    out, ref_out = ours(xo), ref(xt)
    assert out.shape == tuple(ref_out.shape) and out.dtype == x.dtype
    assert_close(out.detach().numpy(), ref_out.detach().numpy(), x.dtype, "output")
    proj = np.random.default_rng(seed).standard_normal(out.shape).astype(x.dtype)
    (out * ds.tensor(proj, dtype=x.dtype)).sum().backward()
    (ref_out * torch.tensor(proj)).sum().backward()
    if x_grad:
        assert_close(xo.grad.detach().numpy(), xt.grad.detach().numpy(), x.dtype, "input gradient")  # type: ignore[union-attr]
    ref_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        assert p.grad is not None and p.grad.dtype == p.dtype, name
        assert_close(p.grad.detach().numpy(), ref_params[name].grad.detach().numpy(), x.dtype, f"gradient of {name}")


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(7, 5), (5,), (2, 3, 5), (2, 1, 4, 5)], ids=["2d", "1d", "3d", "4d"])
def test_linear_matches_torch(assert_close: Any, shape: tuple, bias: bool, gemm_path: str) -> None:
    layer = nn.Linear(5, 3, bias=bias)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    run_both(assert_close, layer, torch.nn.Linear(5, 3, bias=bias), x)


@settings(max_examples=25, deadline=None)
@given(
    lead=st.lists(st.integers(1, 4), min_size=0, max_size=3),
    n_in=st.integers(1, 6),
    n_out=st.integers(1, 6),
)
def test_linear_any_leading_shape_matches_torch(
    assert_close: Any, lead: list[int], n_in: int, n_out: int, gemm_path: str
) -> None:
    x = np.random.default_rng(len(lead)).standard_normal((*lead, n_in)).astype(np.float32)
    run_both(assert_close, nn.Linear(n_in, n_out), torch.nn.Linear(n_in, n_out), x)


def test_linear_float64_gradcheck_and_double_backward(assert_close: Any) -> None:
    gen = np.random.default_rng(1)
    x, w, b = gen.standard_normal((4, 3)), gen.standard_normal((2, 3)), gen.standard_normal(2)
    ds.gradcheck(F.linear, [x, w, b])
    ds.gradcheck(lambda x, w: F.linear(x, w), [gen.standard_normal((2, 3, 3)), w])
    # Hessian-vector product through the fused op (tanh makes the second derivative non-zero).
    xo, wo = ds.tensor(x, dtype="float64", requires_grad=True), ds.tensor(w, dtype="float64", requires_grad=True)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    go = ds.autograd.grad(F.linear(xo, wo, ds.tensor(b, dtype="float64")).tanh().sum(), [xo, wo], create_graph=True)
    gt = torch.autograd.grad(
        torch.nn.functional.linear(xt, wt, torch.tensor(b)).tanh().sum(), [xt, wt], create_graph=True
    )
    ((go[0] ** 2).sum() + (go[1] ** 2).sum()).backward()
    ((gt[0] ** 2).sum() + (gt[1] ** 2).sum()).backward()
    assert_close(xo.grad.detach().numpy(), xt.grad.detach().numpy(), np.float64, "d2/dx")  # type: ignore[union-attr]
    assert_close(wo.grad.detach().numpy(), wt.grad.detach().numpy(), np.float64, "d2/dw")  # type: ignore[union-attr]


def test_linear_default_init_matches_torch_distribution() -> None:
    """U(-1/sqrt(in), 1/sqrt(in)) for weight and bias: exact bound, and the uniform's mean and std."""
    ds.manual_seed(0)
    n_in = 400
    layer = nn.Linear(n_in, 500)
    bound = 1 / math.sqrt(n_in)
    w = layer.weight.detach().numpy()
    assert w.dtype == np.float32 and np.abs(w).max() <= bound and np.abs(w).max() > 0.999 * bound
    assert abs(w.mean()) < 0.01 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound / math.sqrt(3)
    b = layer.bias.detach().numpy()  # type: ignore[union-attr]
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.9 * bound
    ref = torch.nn.Linear(n_in, 500).weight.detach().numpy()  # same distribution in torch
    assert abs(ref.std() - w.std()) < 0.01 * w.std()


def test_linear_seeded_init_is_reproducible() -> None:
    ds.manual_seed(3)
    a = nn.Linear(4, 4).weight.detach().numpy().copy()
    ds.manual_seed(3)
    np.testing.assert_array_equal(a, nn.Linear(4, 4).weight.detach().numpy())


def test_linear_errors_name_the_layer_and_shapes() -> None:
    with pytest.raises(
        ValueError,
        match=r"Linear\(in_features=4, out_features=2\): expected input of shape \(\.\.\., 4\), got \(3, 5\)",
    ):
        nn.Linear(4, 2)(ds.randn(3, 5))
    with pytest.raises(TypeError, match="input dtype float64 differs from weight dtype float32"):
        nn.Linear(4, 2)(ds.randn(3, 4, dtype="float64"))
    with pytest.raises(ValueError, match="in_features must be a non-negative integer"):
        nn.Linear(-1, 2)  # 0 is taken, as torch takes it (an empty weight)


def test_linear_output_is_float32_and_one_node() -> None:
    x = ds.randn(8, 4, requires_grad=True)
    y = nn.Linear(4, 3)(x)
    assert y.dtype == np.float32
    assert y.grad_fn.name() == "AddmmBackward0" and len(y._parents) == 3


def test_dropout_eval_is_identity_and_train_scales_kept_values() -> None:
    drop = nn.Dropout(0.3)
    x = ds.randn(200, 50, requires_grad=True)
    drop.eval()
    assert drop(x) is x
    drop.train()
    y = drop(x)
    kept = y.detach().numpy() != 0
    np.testing.assert_allclose(y.detach().numpy()[kept], x.detach().numpy()[kept] / 0.7, rtol=1e-6)
    # The gradient uses the same mask as the forward: 1/(1-p) where kept, 0 where dropped.
    y.sum().backward()
    np.testing.assert_allclose(x.grad.detach().numpy(), kept / 0.7, rtol=1e-6)  # type: ignore[union-attr]
    assert y.dtype == np.float32


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics(p: float) -> None:
    """Drop fraction ~ p (binomial: within 5 standard errors) and the mean is preserved."""
    ds.manual_seed(1)
    n = 200_000
    y = F.dropout(ds.ones(n), p, training=True).detach().numpy()
    frac = (y == 0).mean()
    assert abs(frac - p) < 5 * math.sqrt(p * (1 - p) / n)
    assert abs(y.mean() - 1.0) < 5 * math.sqrt(p / (1 - p) / n)


def test_dropout_edge_probabilities_and_errors() -> None:
    x = ds.randn(10, requires_grad=True)
    assert F.dropout(x, 0.0) is x
    y = F.dropout(x, 1.0)
    assert not y.detach().numpy().any()
    y.sum().backward()
    assert not x.grad.detach().numpy().any()  # type: ignore[union-attr]
    with pytest.raises(ValueError, match=r"probability p must be a number in \[0, 1\], got 1.5"):
        nn.Dropout(1.5)


def test_dropout_masks_follow_the_library_seed() -> None:
    ds.manual_seed(7)
    a = F.dropout(ds.ones(100), 0.5).detach().numpy()
    ds.manual_seed(7)
    np.testing.assert_array_equal(a, F.dropout(ds.ones(100), 0.5).detach().numpy())


def test_dropout_with_the_same_mask_matches_torch(assert_close: Any) -> None:
    """Recover our mask, apply it in torch as x * mask / (1 - p): values and gradients agree."""
    x = np.random.default_rng(2).standard_normal((6, 5)).astype(np.float32)
    xo = ds.tensor(x, requires_grad=True)
    y = F.dropout(xo, 0.4)
    mask = torch.tensor((y.detach().numpy() != 0).astype(np.float32))
    xt = torch.tensor(x, requires_grad=True)
    yt = xt * mask / (1 - 0.4)
    assert_close(y.detach().numpy(), yt.detach().numpy(), np.float32, "output")
    (y * y).sum().backward()
    (yt * yt).sum().backward()
    assert_close(xo.grad.detach().numpy(), xt.grad.detach().numpy(), np.float32, "gradient")  # type: ignore[union-attr]


@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding_matches_torch_with_repeated_indices(assert_close: Any, padding_idx: int | None) -> None:
    ours = nn.Embedding(6, 4, padding_idx=padding_idx)
    ref = torch.nn.Embedding(6, 4, padding_idx=padding_idx)
    idx = np.array([[0, 2, 2], [5, 1, 2]])  # repeats: gradients must add up
    ref.load_state_dict({k: torch.tensor(to_host(v)) for k, v in ours.state_dict().items()})
    out, ref_out = ours(ds.tensor(idx)), ref(torch.tensor(idx))
    assert_close(out.detach().numpy(), ref_out.detach().numpy(), np.float32, "output")
    proj = np.random.default_rng(0).standard_normal(out.shape).astype(np.float32)
    (out * ds.tensor(proj)).sum().backward()
    (ref_out * torch.tensor(proj)).sum().backward()
    assert_close(ours.weight.grad.detach().numpy(), ref.weight.grad.detach().numpy(), np.float32, "weight gradient")  # type: ignore[union-attr]


def test_embedding_init_and_errors() -> None:
    ds.manual_seed(0)
    emb = nn.Embedding(1000, 64, padding_idx=3)
    w = emb.weight.detach().numpy()
    assert not w[3].any()
    assert abs(w.std() - 1.0) < 0.01 and abs(w.mean()) < 0.01  # N(0, 1)
    with pytest.raises(TypeError, match="integer indices"):
        emb(ds.tensor([1.0]))


@pytest.mark.host_only  # the range check reads the indices: host arrays only
def test_embedding_refuses_an_index_out_of_range() -> None:
    emb = nn.Embedding(1000, 64, padding_idx=3)
    with pytest.raises(IndexError, match="index 1000 is out of range for a table of 1000 rows"):
        emb(ds.tensor([1000]))


def test_bilinear_matches_torch(check_op: Any) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal((5, 3)).astype(np.float32), rng.standard_normal((5, 4)).astype(np.float32)
    w, b = rng.standard_normal((2, 3, 4)).astype(np.float32), rng.standard_normal(2).astype(np.float32)
    check_op(F.bilinear, torch.nn.functional.bilinear, [x1, x2, w, b])
    check_op(F.bilinear, torch.nn.functional.bilinear, [x1[None], x2[None], w])
    layer = nn.Bilinear(3, 4, 2)
    assert layer.weight.shape == (2, 3, 4) and np.abs(layer.weight.detach().numpy()).max() <= 1 / np.sqrt(3)


@pytest.mark.parametrize("shape", [(2, 8, 3, 2), (12, 2, 3)])
def test_pixel_and_channel_shuffles_match_torch(check_op: Any, shape: tuple) -> None:
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    check_op(lambda x: F.pixel_shuffle(x, 2), lambda x: torch.nn.functional.pixel_shuffle(x, 2), [x])
    check_op(lambda x: F.pixel_unshuffle(x, 1), lambda x: torch.nn.functional.pixel_unshuffle(x, 1), [x])
    y = np.random.default_rng(2).standard_normal((2, 3, 4, 6)).astype(np.float32)
    check_op(nn.PixelUnshuffle(2), torch.nn.PixelUnshuffle(2), [y])
    check_op(nn.PixelShuffle(2), torch.nn.PixelShuffle(2), [x])
    check_op(nn.ChannelShuffle(2), torch.nn.ChannelShuffle(2), [np.ascontiguousarray(y[:, :2])])


def test_embedding_from_pretrained_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    ours = nn.Embedding.from_pretrained(ds.tensor(table), padding_idx=1)
    theirs = torch.nn.Embedding.from_pretrained(torch.tensor(table), padding_idx=1)
    idx = np.array([[1, 3], [0, 1]])
    np.testing.assert_array_equal(ours(ds.tensor(idx)).detach().numpy(), theirs(torch.tensor(idx)).detach().numpy())
    assert not ours.weight.requires_grad and ours.padding_idx == theirs.padding_idx
    assert nn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad
    table = ds.ones(2, 2)  # F.embedding renormalizes the looked-up rows in place, as torch's does
    torch_table = torch.ones(2, 2)
    np.testing.assert_allclose(
        F.embedding(ds.tensor([0]), table, max_norm=1.0).detach().numpy(),
        torch.nn.functional.embedding(torch.tensor([0]), torch_table, max_norm=1.0).detach().numpy(),
        rtol=1e-6,
    )
    np.testing.assert_allclose(table.detach().numpy(), torch_table.detach().numpy(), rtol=1e-6)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_matches_torch(check_op: Any, mode: str) -> None:
    torch = pytest.importorskip("torch")
    table = np.random.default_rng(5).standard_normal((10, 4)).astype(np.float32)
    flat, offsets = np.array([1, 2, 4, 5, 4, 3, 2, 9]), np.array([0, 3, 3, 5])  # bag 1 is empty
    check_op(
        lambda w: F.embedding_bag(ds.tensor(flat), w, ds.tensor(offsets), mode=mode),
        lambda w: torch.nn.functional.embedding_bag(torch.tensor(flat), w, torch.tensor(offsets), mode=mode),
        [table],
    )
    rows = np.array([[1, 2, 0], [4, 4, 9]])
    check_op(
        lambda w: F.embedding_bag(ds.tensor(rows), w, mode=mode, padding_idx=0),
        lambda w: torch.nn.functional.embedding_bag(torch.tensor(rows), w, mode=mode, padding_idx=0),
        [table],
    )
    if mode == "sum":
        psw = np.random.default_rng(6).standard_normal(flat.size).astype(np.float32)
        check_op(
            lambda w, s: F.embedding_bag(ds.tensor(flat), w, ds.tensor(offsets), mode="sum", per_sample_weights=s),
            lambda w, s: torch.nn.functional.embedding_bag(
                torch.tensor(flat), w, torch.tensor(offsets), mode="sum", per_sample_weights=s
            ),
            [table, psw],
        )


def test_embedding_bag_module_is_the_text_classification_tutorials_layer() -> None:
    torch = pytest.importorskip("torch")
    ours, theirs = nn.EmbeddingBag(10, 4, mode="mean"), torch.nn.EmbeddingBag(10, 4, mode="mean")
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    text, offsets = np.array([1, 2, 4, 5, 4, 3, 2, 9]), np.array([0, 2, 6])
    got = ours(ds.tensor(text), ds.tensor(offsets)).detach().numpy()
    np.testing.assert_allclose(got, theirs(torch.tensor(text), torch.tensor(offsets)).detach().numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="needs offsets"):
        ours(ds.tensor(text))


@pytest.mark.parametrize("options", [{"max_norm": 1.0}, {"max_norm": 0.5, "norm_type": 1.0}, {"scale_grad_by_freq": True},
                                     {"padding_idx": 0, "scale_grad_by_freq": True, "max_norm": 2.0}])  # fmt: skip
def test_embedding_options_match_torch(options):
    rng = np.random.default_rng(0)
    table = (rng.standard_normal((6, 3)) * 2).astype(np.float32)
    idx = np.array([[1, 2, 1], [0, 5, 1]])
    ours = ds.nn.Embedding(6, 3, _weight=ds.tensor(table), **options)
    theirs = torch.nn.Embedding(6, 3, _weight=torch.tensor(table), **options)
    out, ref = ours(ds.tensor(idx)), theirs(torch.tensor(idx))
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), rtol=1e-6, atol=1e-6)
    projection = rng.standard_normal(out.shape).astype(np.float32)
    (out * ds.tensor(projection)).sum().backward()
    (ref * torch.tensor(projection)).sum().backward()
    np.testing.assert_allclose(
        ours.weight.grad.detach().numpy(), theirs.weight.grad.detach().numpy(), rtol=1e-6, atol=1e-6
    )


def test_embedding_accepts_sparse_and_a_frozen_given_table():
    emb = ds.nn.Embedding(3, 2, sparse=True, _weight=ds.ones(3, 2), _freeze=True)
    assert not emb.weight.requires_grad and emb(ds.tensor([2])).tolist() == [[1.0, 1.0]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_embedding_gradient_of_many_tokens_is_the_same_on_the_compiled_path(dtype: Any) -> None:
    """A batch of thousands of tokens with repeats (where np.add.at was slow): the compiled
    scatter-add gives torch's gradient, and exactly what np.add.at gives."""
    import torch

    from downslope.nn import _jit

    rng = np.random.default_rng(0)
    idx, weights = rng.integers(-50, 50, size=(64, 32)) % 50, rng.standard_normal((64, 32, 8))
    table = rng.standard_normal((50, 8))
    grads = []
    for disabled in (False, True):
        emb = nn.Embedding.from_pretrained(ds.tensor(table, dtype=dtype), freeze=False)
        with _jit.disabled() if disabled else __import__("contextlib").nullcontext():
            (emb(ds.tensor(idx)) * ds.tensor(weights, dtype=dtype)).sum().backward()
        grads.append(emb.weight.grad.detach().numpy())
    np.testing.assert_array_equal(grads[0], grads[1])
    theirs = torch.nn.Embedding.from_pretrained(torch.tensor(table), freeze=False)
    (theirs(torch.tensor(idx)) * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(
        grads[0], theirs.weight.grad.detach().numpy(), rtol=1e-5 if dtype == np.float32 else 1e-12
    )


def test_embedding_from_pretrained_keeps_a_tensors_dtype() -> None:
    table = np.ones((3, 2))
    assert nn.Embedding.from_pretrained(ds.tensor(table, dtype=ds.float64)).weight.dtype == np.float64  # as torch
    assert nn.Embedding.from_pretrained(ds.tensor(table)).weight.dtype == np.float32
    assert nn.Embedding.from_pretrained(table).weight.dtype == np.float32  # an array: float32, as ds.tensor


def test_embedding_bag_from_pretrained_and_weight_match_torch() -> None:
    import torch

    table = np.random.default_rng(0).standard_normal((10, 4))
    idx, offsets = [1, 2, 4, 5, 4, 3, 2, 9], [0, 2, 5]
    for mode in ("mean", "sum", "max"):
        ours = nn.EmbeddingBag.from_pretrained(ds.tensor(table, dtype=ds.float64), mode=mode, freeze=False)
        theirs = torch.nn.EmbeddingBag.from_pretrained(torch.tensor(table), mode=mode, freeze=False)
        out, ref = ours(ds.tensor(idx), ds.tensor(offsets)), theirs(torch.tensor(idx), torch.tensor(offsets))
        out.sum().backward()
        ref.sum().backward()
        np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(ours.weight.grad.detach().numpy(), theirs.weight.grad.detach().numpy(), rtol=1e-12)
    assert not nn.EmbeddingBag.from_pretrained(ds.tensor(table)).weight.requires_grad  # frozen by default
    given = nn.EmbeddingBag(10, 4, _weight=ds.tensor(table))  # _weight was once ignored
    np.testing.assert_array_equal(given.weight.detach().numpy(), table.astype(np.float32))


def test_unflatten_and_flatten_bad_dims_raise_like_torch() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(IndexError):
        torch.nn.Unflatten(3, (2, 3))(torch.zeros(2, 6))
    with pytest.raises(ds.errors.OutOfRangeError, match="Unflatten: dimension 3"):
        nn.Unflatten(3, (2, 3))(ds.zeros(2, 6))  # was silently dim 3 % 2 = 1
    assert nn.Unflatten(-1, (2, 3))(ds.zeros(2, 6)).shape == tuple(
        torch.nn.Unflatten(-1, (2, 3))(torch.zeros(2, 6)).shape
    )
    with pytest.raises(RuntimeError):
        torch.nn.Flatten(2, 1)(torch.zeros(2, 3, 4))
    with pytest.raises(ds.errors.ArgumentError, match="start_dim 2 comes after end_dim 1"):
        nn.Flatten(2, 1)(ds.zeros(2, 3, 4))  # was a (2, 3, 1, 4) tensor
    with pytest.raises(ds.errors.ArgumentError, match="flatten: start_dim"):
        ds.flatten(ds.zeros(2, 3, 4), -1, 0)
    assert ds.flatten(ds.zeros(2, 3, 4), 1, -2).shape == tuple(torch.flatten(torch.zeros(2, 3, 4), 1, -2).shape)
    assert ds.flatten(ds.zeros(()), 0, -1).shape == (1,)


def test_shuffles_refuse_non_positive_factors_and_low_rank_input_as_torch() -> None:
    torch = pytest.importorskip("torch")
    for mine, theirs, shape in [
        (nn.PixelShuffle(0), torch.nn.PixelShuffle(0), (1, 4, 2, 2)),
        (nn.PixelShuffle(-1), torch.nn.PixelShuffle(-1), (1, 4, 2, 2)),
        (nn.PixelUnshuffle(0), torch.nn.PixelUnshuffle(0), (1, 4, 2, 2)),
        (nn.ChannelShuffle(0), torch.nn.ChannelShuffle(0), (1, 4, 2, 2)),
        (nn.PixelShuffle(2), torch.nn.PixelShuffle(2), (4, 4)),
        (nn.ChannelShuffle(2), torch.nn.ChannelShuffle(2), (4,)),
    ]:
        with pytest.raises(RuntimeError):
            theirs(torch.zeros(shape))
        with pytest.raises(ds.DownslopeError, match="shuffle"):
            mine(ds.zeros(*shape))  # was a ZeroDivisionError or an unpacking ValueError
    a = np.arange(16, dtype=np.float32).reshape(1, 4, 2, 2)
    np.testing.assert_array_equal(
        nn.PixelShuffle(2)(ds.tensor(a)).detach().numpy(), torch.nn.PixelShuffle(2)(torch.tensor(a)).detach().numpy()
    )
