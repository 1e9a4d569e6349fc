"""Layers, functions and losses at their edges, against PyTorch in float64 (values and gradients):
p = inf / -inf / 0 distances, zero vectors, small norms under cosine's eps, tied maxima in pooling,
subgradients at the kinks of the hard activations, every target ignored, repeated labels,
Stirling's term's target gradient, nearest sampling's grid gradient, Conv3d's padding modes and
the transposed convolutions' ``output_size``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import nn

torch = pytest.importorskip("torch")
TF = torch.nn.functional

INF = float("inf")
NAN = float("nan")


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- distances and norms
@pytest.mark.parametrize("p", [INF, -INF, 0.5, 1.0, 2.0, 3.0])  # p=0: below
def test_pairwise_distance_matches_torch_for_every_p(check_op: Any, p: float) -> None:
    a = _rng().standard_normal((4, 5))
    b = a.copy()
    b[0, 2] += 1.0  # rows that differ in one element: p=0 counts, p=+-inf picks
    b[1] = _rng(1).standard_normal(5)
    check_op(lambda x, y: F.pairwise_distance(x, y, p), lambda x, y: TF.pairwise_distance(x, y, p), [a, b])
    check_op(lambda x, y: nn.PairwiseDistance(p)(x, y), lambda x, y: torch.nn.PairwiseDistance(p)(x, y), [a, b])


def test_pairwise_distance_p0_counts_and_passes_no_gradient() -> None:
    a = np.array([[3.0, -1.0, 0.5]])
    x = ds.tensor(a, dtype=ds.float64, requires_grad=True)
    d = F.pairwise_distance(x, ds.tensor(np.zeros((1, 3)), dtype=ds.float64), p=0)  # used to divide by zero
    np.testing.assert_array_equal(
        d.detach().numpy(), TF.pairwise_distance(torch.tensor(a), torch.zeros(1, 3), p=0).detach().numpy()
    )
    d.sum().backward()
    assert x.grad is None  # torch: a count passes no gradient


@pytest.mark.parametrize("p", [INF, 1.0, 3.0])
def test_triplet_margin_loss_with_p_matches_torch(check_op: Any, p: float) -> None:
    a, pos, neg = (_rng(i).standard_normal((4, 3)) for i in range(3))
    check_op(
        lambda x, y, z: nn.TripletMarginLoss(margin=2.0, p=p)(x, y, z),
        lambda x, y, z: torch.nn.TripletMarginLoss(margin=2.0, p=p)(x, y, z),
        [a, pos, neg],
    )


@pytest.mark.parametrize("p", [INF, 1.0, 2.0, 0.5])
def test_normalize_matches_torch_with_a_zero_row(check_op: Any, p: float) -> None:
    x = _rng().standard_normal((3, 4))
    x[1] = 0.0  # a zero row: torch's gradient there is finite (1/eps), not NaN
    x[2, 1] = x[2, 3] = 5.0  # tied maxima for p = inf
    check_op(lambda t: F.normalize(t, p=p), lambda t: TF.normalize(t, p=p), [x])


@pytest.mark.parametrize("eps", [1e-8, 0.5])
def test_cosine_similarity_matches_torch_below_eps_and_at_zero(check_op: Any, eps: float) -> None:
    x = np.array([[0.1, 0.2, 0.0], [0.0, 0.0, 0.0], [1.0, -2.0, 0.5]])  # |x| < 0.5, zero, plain
    y = np.array([[1.0, 0.5, 2.0], [0.3, 0.1, 0.0], [0.0, 0.0, 0.0]])
    check_op(
        lambda a, b: F.cosine_similarity(a, b, eps=eps),
        lambda a, b: TF.cosine_similarity(a, b, eps=eps),
        [x, y],
    )
    check_op(
        lambda a, b: nn.CosineSimilarity(dim=0, eps=eps)(a, b),
        lambda a, b: torch.nn.CosineSimilarity(dim=0, eps=eps)(a, b),
        [x, y],
    )


# ---------------------------------------------------------------- max pooling ties
def _tied(shape: tuple[int, ...], seed: int = 0, nan: bool = False) -> np.ndarray:
    x = _rng(seed).integers(0, 3, shape).astype(np.float64)  # many ties
    if nan:
        flat = x.reshape(-1)
        flat[[3, 4, 17]] = NAN
    return x


@pytest.mark.parametrize("nan", [False, True])
@pytest.mark.parametrize(
    ("kernel", "stride", "padding"), [(2, None, 0), (2, 1, 1), ((3, 2, 2), (2, 1, 2), 0), ((1, 2, 3), 1, (0, 1, 1))]
)
def test_max_pool3d_gives_a_tie_to_its_first_element(
    check_op: Any, nan: bool, kernel: Any, stride: Any, padding: Any
) -> None:
    x = _tied((2, 2, 4, 5, 6), nan=nan)
    check_op(
        lambda t: nn.MaxPool3d(kernel, stride, padding)(t),
        lambda t: torch.nn.MaxPool3d(kernel, stride, padding)(t),
        [x],
    )


def test_max_pool3d_tie_on_the_strict_device(check_op: Any) -> None:
    check_op(
        lambda t: nn.MaxPool3d(2)(t), lambda t: torch.nn.MaxPool3d(2)(t), [_tied((1, 2, 4, 4, 4))], device="strict"
    )


@pytest.mark.parametrize("nan", [False, True])
@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
def test_adaptive_max_pool1d_gives_a_tie_to_its_first_element(check_op: Any, nan: bool, size: int) -> None:
    check_op(
        lambda t: nn.AdaptiveMaxPool1d(size)(t),
        lambda t: torch.nn.AdaptiveMaxPool1d(size)(t),
        [_tied((2, 3, 7), nan=nan)],
    )


def test_adaptive_max_pool1d_example_from_the_audit() -> None:
    x = ds.tensor([[[1.0, 1.0, 0.0, 2.0]]], dtype=ds.float64, requires_grad=True)
    nn.AdaptiveMaxPool1d(2)(x).sum().backward()
    np.testing.assert_array_equal(x.grad.detach().numpy().ravel(), [1.0, 0.0, 0.0, 1.0])  # torch's; was [.5, .5, 0, 1]


@pytest.mark.parametrize("nan", [False, True])
@pytest.mark.parametrize("size", [1, (2, 3), (3, 4), (5, 6), (4, None)])
def test_adaptive_max_pool2d_gives_a_tie_to_its_first_element(check_op: Any, nan: bool, size: Any) -> None:
    check_op(
        lambda t: nn.AdaptiveMaxPool2d(size)(t),
        lambda t: torch.nn.AdaptiveMaxPool2d(size)(t),
        [_tied((2, 2, 5, 6), nan=nan)],
    )


def test_adaptive_max_pool2d_on_the_strict_device(check_op: Any) -> None:
    check_op(
        lambda t: nn.AdaptiveMaxPool2d((2, 3))(t),
        lambda t: torch.nn.AdaptiveMaxPool2d((2, 3))(t),
        [_tied((1, 2, 5, 6))],
        device="strict",
    )


# ---------------------------------------------------------------- kinks of the hard activations
KINKS = np.array([-INF, -6.0, -3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 6.0, 7.0, INF, NAN])


def _compare_at(ours: Any, ref: Any, a: np.ndarray, device: str | None = None) -> None:
    """Values and gradients of the sum to 1e-7 relative: torch's hardsigmoid backward multiplies by
    a float32 1/6 even in float64 (a 3e-8 difference that check_op's 1e-10 would flag)."""
    x = ds.tensor(a, dtype=ds.float64, device=device, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    y, u = ours(x), ref(t)
    np.testing.assert_allclose(y.cpu().detach().numpy(), u.detach().numpy(), rtol=1e-7, atol=0)
    y.sum().backward()
    u.sum().backward()
    assert str(x.grad.device) == str(x.device)
    np.testing.assert_allclose(x.grad.cpu().detach().numpy(), t.grad.detach().numpy(), rtol=1e-7, atol=0)


@pytest.mark.parametrize(
    ("ours", "ref"),
    [
        (lambda: nn.Hardtanh(), lambda: torch.nn.Hardtanh()),
        (lambda: nn.Hardtanh(-0.5, 3.0), lambda: torch.nn.Hardtanh(-0.5, 3.0)),
        (lambda: nn.ReLU6(), lambda: torch.nn.ReLU6()),
        (lambda: nn.Hardsigmoid(), lambda: torch.nn.Hardsigmoid()),
        (lambda: nn.Hardswish(), lambda: torch.nn.Hardswish()),
        (lambda: nn.RReLU(0.1, 0.3).eval(), lambda: torch.nn.RReLU(0.1, 0.3).eval()),
        (lambda: nn.RReLU().eval(), lambda: torch.nn.RReLU().eval()),
    ],
)
def test_hard_activations_match_torch_at_their_kinks(ours: Any, ref: Any) -> None:
    # the kinks themselves (+-1, 0, 6, +-3), +-inf and NaN: torch's subgradients, e.g. 0 at hardtanh's
    # bounds (clamp's would be 1), hardswish 0 at -3 and 1 at 3, rrelu's slope at 0
    _compare_at(ours(), ref(), KINKS)


@pytest.mark.parametrize("fn", ["hardtanh", "relu6", "hardsigmoid", "hardswish"])
def test_hard_activations_on_the_strict_device(fn: str) -> None:
    _compare_at(getattr(F, fn), getattr(TF, fn), KINKS[1:-2], device="strict")


def test_hardswish_double_backward_matches_torch() -> None:
    a = np.array([-4.0, -3.0, -1.0, 0.5, 2.0, 3.0, 4.0])
    x = ds.tensor(a, dtype=ds.float64, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    (gx,) = ds.autograd.grad(F.hardswish(x).sum(), x, create_graph=True)
    (gt,) = torch.autograd.grad(TF.hardswish(t).sum(), t, create_graph=True)
    np.testing.assert_array_equal(gx.detach().numpy(), gt.detach().numpy())
    (gx * gx).sum().backward()
    (gt * gt).sum().backward()
    np.testing.assert_allclose(x.grad.detach().numpy(), t.grad.detach().numpy(), rtol=1e-12)


def test_rrelu_in_training_gives_zero_its_slope() -> None:
    x = ds.tensor(np.zeros(50), dtype=ds.float64, requires_grad=True)
    F.rrelu(x, 0.1, 0.3, training=True).sum().backward()
    assert np.all((x.grad.detach().numpy() >= 0.1) & (x.grad.detach().numpy() <= 0.3))  # torch: the drawn slope, not 1


# ---------------------------------------------------------------- losses
@pytest.mark.parametrize(
    "options",
    [{}, {"label_smoothing": 0.2}, {"weight": [1.0, 2.0, 3.0, 4.0]}, {"reduction": "sum"}, {"reduction": "none"}],
)
def test_cross_entropy_with_every_target_ignored_has_a_zero_gradient(options: dict) -> None:
    x = _rng().standard_normal((3, 4))
    ours_kw = {k: ds.tensor(v, dtype=ds.float64) if k == "weight" else v for k, v in options.items()}
    torch_kw = {k: torch.tensor(v, dtype=torch.float64) if k == "weight" else v for k, v in options.items()}
    d = ds.tensor(x, dtype=ds.float64, requires_grad=True)
    t = torch.tensor(x, requires_grad=True)
    ld = F.cross_entropy(d, ds.tensor([1, 1, 1]), ignore_index=1, **ours_kw)
    lt = TF.cross_entropy(t, torch.tensor([1, 1, 1]), ignore_index=1, **torch_kw)
    np.testing.assert_array_equal(ld.detach().numpy(), lt.detach().numpy())  # NaN for 'mean', in both
    ld.sum().backward()
    lt.sum().backward()
    np.testing.assert_array_equal(d.grad.detach().numpy(), t.grad.detach().numpy())  # zeros, not NaN


def test_cross_entropy_with_some_targets_ignored_matches_torch(check_op: Any) -> None:
    x = _rng().standard_normal((5, 4))
    target = np.array([1, 0, 1, 3, 1])
    check_op(
        lambda a: F.cross_entropy(a, ds.tensor(target), ignore_index=1, label_smoothing=0.1),
        lambda a: TF.cross_entropy(a, torch.tensor(target), ignore_index=1, label_smoothing=0.1),
        [x],
    )


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_multilabel_margin_loss_counts_a_repeated_label_twice(check_op: Any, reduction: str) -> None:
    x = _rng().standard_normal((4, 5))
    target = np.array([[2, 2, -1, 0, 1], [0, 1, 1, 1, -1], [4, 3, 2, 1, 0], [-1, 2, 2, 2, 2]])
    check_op(
        lambda a: F.multilabel_margin_loss(a, ds.tensor(target), reduction=reduction),
        lambda a: TF.multilabel_margin_loss(a, torch.tensor(target), reduction=reduction),
        [x],
    )
    audit = F.multilabel_margin_loss(ds.tensor([[0.1, 0.2, 0.4, 0.8]], dtype=ds.float64), ds.tensor([[2, 2, -1, 0]]))
    assert audit.item() == pytest.approx(1.45, rel=1e-12)  # torch's; was 0.725


@pytest.mark.parametrize("log_input", [True, False])
def test_poisson_nll_full_gradient_reaches_the_target(check_op: Any, log_input: bool) -> None:
    x = np.array([0.5, 1.0, 0.2, 0.3, 0.7])
    y = np.array([0.5, 1.0, 1.5, 3.0, 5.0])  # both sides of Stirling's y > 1 mask
    check_op(
        lambda a, b: F.poisson_nll_loss(a, b, log_input=log_input, full=True, reduction="sum"),
        lambda a, b: TF.poisson_nll_loss(a, b, log_input=log_input, full=True, reduction="sum"),
        [x, y],
    )


# ---------------------------------------------------------------- sampling and convolutions
@pytest.mark.parametrize("padding_mode", ["zeros", "border"])
def test_grid_sample_nearest_gives_the_grid_zeros(check_op: Any, padding_mode: str) -> None:
    image = _rng().standard_normal((2, 3, 4, 5))
    grid = _rng(1).uniform(-1.2, 1.2, (2, 3, 4, 2))
    out = check_op(
        lambda a, g: F.grid_sample(a, g, mode="nearest", padding_mode=padding_mode, align_corners=False),
        lambda a, g: TF.grid_sample(a, g, mode="nearest", padding_mode=padding_mode, align_corners=False),
        [image, grid],
    )
    assert out.requires_grad


@pytest.mark.filterwarnings("ignore:Using padding='same'")  # torch's note on even kernels
@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding", [1, (1, 2, 0), "valid", "same"])
@pytest.mark.parametrize(("kernel", "dilation"), [((3, 2, 3), 1), ((2, 3, 2), (2, 1, 1))])
def test_conv3d_padding_modes_and_strings_match_torch(
    check_op: Any, padding_mode: str, padding: Any, kernel: Any, dilation: Any
) -> None:
    torch.manual_seed(0)
    ref = torch.nn.Conv3d(2, 3, kernel, padding=padding, padding_mode=padding_mode, dilation=dilation).double()
    ours = nn.Conv3d(2, 3, kernel, padding=padding, padding_mode=padding_mode, dilation=dilation).double()
    x = _rng().standard_normal((2, 2, 5, 6, 7))
    # the parameters are passed in, so that their gradients are compared too
    check_op(
        lambda a, w, b: ds.nn.utils.stateless.functional_call(ours, {"weight": w, "bias": b}, (a,)),
        lambda a, w, b: torch.func.functional_call(ref, {"weight": w, "bias": b}, (a,)),
        [x, ref.weight.detach().numpy(), ref.bias.detach().numpy()],
    )


def test_conv3d_refuses_an_unknown_padding_mode_and_same_with_stride() -> None:
    with pytest.raises(ds.errors.ArgumentError, match="padding_mode"):
        nn.Conv3d(1, 1, 3, padding_mode="mirror")
    with pytest.raises(ds.errors.ArgumentError, match="stride 1"):
        nn.Conv3d(1, 1, 3, stride=2, padding="same")


@pytest.mark.parametrize(
    ("spatial", "kernel", "stride", "padding", "dilation"), [(1, 3, 2, 1, 1), (2, 3, 3, 1, 2), (3, 2, 2, 0, 1)]
)
def test_conv_transpose_output_size_matches_torch(
    check_op: Any, spatial: int, kernel: int, stride: int, padding: int, dilation: int
) -> None:
    name = f"ConvTranspose{spatial}d"
    torch.manual_seed(0)
    ref = getattr(torch.nn, name)(2, 3, kernel, stride=stride, padding=padding, dilation=dilation).double()
    ours = getattr(nn, name)(2, 3, kernel, stride=stride, padding=padding, dilation=dilation).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    x = _rng().standard_normal((2, 2) + (4,) * spatial)
    smallest = (4 - 1) * stride - 2 * padding + dilation * (kernel - 1) + 1
    for extra in range(stride):
        size = [smallest + extra] * spatial
        out = check_op(lambda a, s=size: ours(a, output_size=s), lambda a, s=size: ref(a, output_size=s), [x])
        assert out.shape[2:] == tuple(size)
    full = (2, 3) + (smallest,) * spatial  # the batch and channel sizes may lead, as in torch
    assert ours(ds.tensor(x, dtype=ds.float64), output_size=full).shape == full
    with pytest.raises(ds.errors.ArgumentError, match="valid sizes range"):
        ours(ds.tensor(x, dtype=ds.float64), output_size=[smallest + stride] * spatial)
