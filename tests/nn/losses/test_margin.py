"""Margin losses against PyTorch exactly at their hinges (torch's clamp_min passes the gradient at 0,
its multi-class margins count only z > 0), HingeEmbeddingLoss's masks for labels other than +-1, and
the broadcasts PyTorch makes between a pairwise loss's operands (one anchor against N positives)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ShapeError

torch = pytest.importorskip("torch")


def _run(lib: Any, loss: Callable[..., Any], arrays: list[np.ndarray], grad: tuple[int, ...]) -> tuple[Any, list[Any]]:
    """The loss of ``arrays`` (float64 tensors of ``lib``) and the gradients of the operands in ``grad``."""
    ts = [lib.tensor(a, dtype=lib.float64, requires_grad=i in grad) for i, a in enumerate(arrays)]
    out = loss(lib, *ts)
    out.backward()
    return float(out.detach().sum()), [
        ts[i].grad.detach().numpy() if lib is torch else ts[i].grad.numpy() for i in grad
    ]


def _same(loss: Callable[..., Any], arrays: list[np.ndarray], grad: tuple[int, ...]) -> None:
    ours, ours_grads = _run(ds, loss, arrays, grad)
    ref, ref_grads = _run(torch, loss, arrays, grad)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(ours_grads, ref_grads):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


A = np.array
# Each case sits exactly on its hinge: the clamped value is 0 there.
KINKS: dict[str, tuple[Callable[..., Any], list[np.ndarray], tuple[int, ...]]] = {
    "margin_ranking_tied": (
        lambda lib, a, b, y: lib.nn.MarginRankingLoss()(a, b, y),
        [A([0.3, -1.0]), A([0.3, -1.0]), A([1.0, -1.0])],
        (0, 1),
    ),
    "margin_ranking_at_margin": (
        lambda lib, a, b, y: lib.nn.MarginRankingLoss(margin=0.5)(a, b, y),
        [A([1.5, 0.0]), A([1.0, 0.5]), A([1.0, -1.0])],
        (0, 1),
    ),
    "cosine_embedding_cos_eq_margin": (
        lambda lib, a, b, y: lib.nn.CosineEmbeddingLoss()(a, b, y),
        [A([[1.0, 0.0], [0.0, 2.0]]), A([[0.0, 1.0], [3.0, 0.0]]), A([-1.0, -1.0])],
        (0, 1),
    ),
    "hinge_embedding_x_eq_margin": (
        lambda lib, x, y: lib.nn.HingeEmbeddingLoss(margin=1.0)(x, y),
        [A([1.0, 0.5, 2.0]), A([-1.0, -1.0, -1.0])],
        (0,),
    ),
    "triplet": (
        lambda lib, a, p, n: lib.nn.TripletMarginLoss(margin=1.0, eps=0.0)(a, p, n),
        [A([[0.0, 0.0]]), A([[1.0, 0.0]]), A([[2.0, 0.0]])],
        (0, 1, 2),
    ),
    "triplet_swap": (
        lambda lib, a, p, n: lib.nn.TripletMarginLoss(margin=1.0, eps=0.0, swap=True)(a, p, n),
        [A([[0.0, 0.0]]), A([[1.0, 0.0]]), A([[0.0, 2.0]])],
        (0, 1, 2),
    ),
    "triplet_with_distance": (
        lambda lib, a, p, n: lib.nn.TripletMarginWithDistanceLoss(
            distance_function=lambda u, v: (u - v).abs().sum(-1), margin=0.5
        )(a, p, n),
        [A([[0.0, 0.0]]), A([[1.0, 0.5]]), A([[2.0, 0.0]])],
        (0, 1, 2),
    ),
    "triplet_with_distance_default": (
        lambda lib, a, p, n: lib.nn.TripletMarginWithDistanceLoss(margin=1.0)(a, p, n),
        [A([[0.0, 0.0]]), A([[1.0, 0.0]]), A([[2.0, 0.0]])],
        (0, 1, 2),
    ),
    # torch counts these only where z > 0 (strictly): no gradient at the hinge
    "multi_margin": (
        lambda lib, x, t: lib.nn.MultiMarginLoss()(x, t.long()),
        [A([[0.0, 1.0, 0.5]]), A([1])],
        (0,),
    ),
    "multi_margin_p2": (
        lambda lib, x, t: lib.nn.MultiMarginLoss(p=2)(x, t.long()),
        [A([[0.0, 1.0, 0.5]]), A([1])],
        (0,),
    ),
    "multilabel_margin": (
        lambda lib, x, t: lib.nn.MultiLabelMarginLoss()(x, t.long()),
        [A([[0.0, 1.0, 0.5]]), A([[1, -1, 0]])],
        (0,),
    ),
    "soft_margin": (
        lambda lib, x, y: lib.nn.SoftMarginLoss()(x, y),
        [A([0.0, 1.0]), A([1.0, -1.0])],
        (0,),
    ),
}


@pytest.mark.parametrize("case", sorted(KINKS))
def test_margin_losses_at_the_hinge_match_torch(case: str) -> None:
    loss, arrays, grad = KINKS[case]
    _same(loss, arrays, grad)


def test_zero_initialised_ranker_trains_as_in_torch() -> None:
    # tied scores at the start (margin 0): torch's clamp_min passes the gradient, so the scorer moves
    a = np.random.RandomState(0).randn(32, 8).astype(np.float32)
    b = np.random.RandomState(1).randn(32, 8).astype(np.float32)
    weights = []
    for lib in (torch, ds):
        net = lib.nn.Linear(8, 1)
        lib.nn.init.zeros_(net.weight)
        lib.nn.init.zeros_(net.bias)
        opt = lib.optim.SGD(net.parameters(), lr=0.1)
        for _ in range(5):
            loss = lib.nn.MarginRankingLoss()(
                net(lib.tensor(a)).squeeze(1), net(lib.tensor(b)).squeeze(1), lib.ones(32)
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
        weights.append(net.weight.detach().numpy())
    assert np.abs(weights[0]).sum() > 0
    np.testing.assert_allclose(weights[1], weights[0], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_hinge_embedding_labels_other_than_plus_minus_one_match_torch(reduction: str) -> None:
    # torch adds the x term where y != -1 and the hinge term where y != 1: a 0 label gets both
    x, y = A([0.3, 0.8, 2.0, 0.5, 1.5]), A([1.0, 0.0, 0.0, 2.0, -1.0])
    _same(lambda lib, x, y: lib.nn.HingeEmbeddingLoss(margin=1.0, reduction=reduction)(x, y).sum(), [x, y], (0,))


SHAPES = [
    ((1, 3), (4, 3), (4, 3)),
    ((4, 3), (1, 3), (4, 3)),
    ((4, 3), (4, 3), (1, 3)),
    ((4, 1, 3), (1, 5, 3), (1, 5, 3)),
]


@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize("swap", [False, True])
def test_triplet_broadcasts_as_torch(shapes: tuple[tuple[int, ...], ...], swap: bool) -> None:
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in shapes]
    _same(lambda lib, a, p, n: lib.nn.TripletMarginLoss(swap=swap)(a, p, n), arrays, (0, 1, 2))
    _same(lambda lib, a, p, n: lib.nn.TripletMarginWithDistanceLoss(swap=swap)(a, p, n), arrays, (0, 1, 2))
    _same(lambda lib, a, p, n: lib.nn.TripletMarginLoss(reduction="none")(a, p, n).sum(), arrays, (0, 1, 2))


def test_single_anchor_triplet_value() -> None:
    a, p, n = np.ones((1, 3), np.float32), np.zeros((4, 3), np.float32), np.full((4, 3), 0.5, np.float32)
    ours = ds.nn.TripletMarginLoss()(ds.tensor(a), ds.tensor(p), ds.tensor(n)).item()
    ref = torch.nn.TripletMarginLoss()(torch.tensor(a), torch.tensor(p), torch.tensor(n)).item()
    assert ours == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize(
    "loss",
    [
        lambda a, p, n: ds.nn.TripletMarginLoss()(a, p, n),
        lambda a, p, n: ds.nn.TripletMarginWithDistanceLoss()(a, p, n),
    ],
)
def test_triplet_refuses_what_torch_refuses(loss: Callable[..., Any]) -> None:
    with pytest.raises(ShapeError, match="same number of dimensions"):
        loss(ds.ones(3), ds.zeros(4, 3), ds.zeros(4, 3))  # torch: RuntimeError, 1-D anchor with 2-D others
    with pytest.raises(ShapeError, match="broadcast"):
        loss(ds.ones(3, 3), ds.zeros(4, 3), ds.zeros(4, 3))


def test_pair_losses_broadcast_as_torch() -> None:
    rng = np.random.default_rng(1)
    one, many = rng.standard_normal((1, 3)), rng.standard_normal((4, 3))
    y = A([1.0, -1.0, 1.0, -1.0])
    _same(lambda lib, a, b, y: lib.nn.CosineEmbeddingLoss(margin=0.1)(a, b, y), [one, many, y], (0, 1))
    _same(lambda lib, a, b, y: lib.nn.MarginRankingLoss(margin=0.2)(a, b, y), [one[0, :1], many[:, 0], y], (0, 1))
    with pytest.raises(ShapeError, match="same number of dimensions"):
        ds.nn.MarginRankingLoss()(ds.ones(4, 1), ds.ones(4), ds.ones(4))
