"""Every loss against PyTorch (values and gradients of input and target), its reductions and options,
the shape-mismatch errors, and double backward through the fused cross-entropy."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import downslope as ds
import downslope.nn.functional as F
from downslope import nn

torch = pytest.importorskip("torch")
TF = torch.nn.functional

REDUCTIONS = ["mean", "sum", "none"]


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def compare(
    assert_close: Any,
    ours_fn: Any,
    ref_fn: Any,
    inputs: list[np.ndarray],
    grad_of: tuple[int, ...] = (0,),
    const: tuple[Any, ...] = (),
) -> None:
    """Same inputs to both; compare loss values and the gradients of ``grad_of`` inputs."""
    ours = [ds.tensor(a, dtype=a.dtype, requires_grad=i in grad_of) for i, a in enumerate(inputs)]
    theirs = [torch.tensor(a, requires_grad=i in grad_of) for i, a in enumerate(inputs)]
    out = ours_fn(*ours, *const)
    ref = ref_fn(*theirs, *const)
    assert out.shape == tuple(ref.shape)
    assert out.dtype == inputs[0].dtype
    assert_close(out.detach().numpy(), ref.detach().numpy(), out.dtype, "loss value")
    proj = rng(9).standard_normal(out.shape).astype(out.dtype)
    (out * ds.tensor(proj, dtype=out.dtype)).sum().backward()
    (ref * torch.tensor(proj)).sum().backward()
    for i in grad_of:
        assert ours[i].grad is not None, f"input {i} got no gradient"
        assert ours[i].grad.dtype == inputs[i].dtype, f"input {i}: gradient dtype {ours[i].grad.dtype}"
        assert_close(ours[i].grad.numpy(), theirs[i].grad.numpy(), inputs[i].dtype, f"gradient of input {i}")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    ("ours", "ref"),
    [
        (lambda a, b, r: F.mse_loss(a, b, reduction=r), lambda a, b, r: TF.mse_loss(a, b, reduction=r)),
        (lambda a, b, r: F.l1_loss(a, b, reduction=r), lambda a, b, r: TF.l1_loss(a, b, reduction=r)),
        (lambda a, b, r: F.huber_loss(a, b, r, delta=0.7), lambda a, b, r: TF.huber_loss(a, b, reduction=r, delta=0.7)),
        (
            lambda a, b, r: F.smooth_l1_loss(a, b, reduction=r, beta=0.5),
            lambda a, b, r: TF.smooth_l1_loss(a, b, reduction=r, beta=0.5),
        ),
        (
            lambda a, b, r: F.smooth_l1_loss(a, b, reduction=r, beta=0.0),
            lambda a, b, r: TF.smooth_l1_loss(a, b, reduction=r, beta=0.0),
        ),
    ],
    ids=["mse", "l1", "huber", "smooth_l1", "smooth_l1_beta0"],
)
def test_regression_losses_match_torch(assert_close: Any, ours: Any, ref: Any, reduction: str) -> None:
    x = rng(1).standard_normal((7, 5)).astype(np.float32) * 2
    y = rng(2).standard_normal((7, 5)).astype(np.float32)
    compare(assert_close, ours, ref, [x, y], grad_of=(0, 1), const=(reduction,))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_matches_torch_including_weight(assert_close: Any, reduction: str) -> None:
    p = rng(3).uniform(0.02, 0.98, (6, 4)).astype(np.float32)
    t = rng(4).uniform(0, 1, (6, 4)).astype(np.float32)
    w = rng(5).uniform(0.5, 2, (4,)).astype(np.float32)
    compare(
        assert_close,
        lambda a, b: F.binary_cross_entropy(a, b, reduction=reduction),
        lambda a, b: TF.binary_cross_entropy(a, b, reduction=reduction),
        [p, t],
        grad_of=(0, 1),
    )
    compare(
        assert_close,
        lambda a, b: F.binary_cross_entropy(a, b, ds.tensor(w), reduction=reduction),
        lambda a, b: TF.binary_cross_entropy(a, b, torch.tensor(w), reduction=reduction),
        [p, t],
        grad_of=(0,),
    )


def test_bce_is_finite_at_probabilities_zero_and_one(assert_close: Any) -> None:
    p = np.array([0.0, 1.0, 0.0, 1.0], dtype=np.float32)
    t = np.array([0.0, 1.0, 1.0, 0.0], dtype=np.float32)
    compare(assert_close, F.binary_cross_entropy, TF.binary_cross_entropy, [p, t], grad_of=(0,))


@pytest.mark.host_only  # the range check reads the values: host arrays only
def test_bce_refuses_values_outside_zero_one() -> None:
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\].*with_logits"):
        F.binary_cross_entropy(ds.tensor([1.5]), ds.tensor([1.0]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_matches_torch_with_pos_weight_and_weight(assert_close: Any, reduction: str) -> None:
    x = (rng(6).standard_normal((5, 3)) * 30).astype(np.float32)  # large logits: stability matters
    t = (rng(7).uniform(0, 1, (5, 3)) > 0.5).astype(np.float32)
    pw = np.array([0.5, 2.0, 3.0], dtype=np.float32)
    w = rng(8).uniform(0.5, 2, (5, 1)).astype(np.float32)
    compare(
        assert_close,
        lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction=reduction),
        lambda a, b: TF.binary_cross_entropy_with_logits(a, b, reduction=reduction),
        [x, t],
        grad_of=(0, 1),
    )
    compare(
        assert_close,
        lambda a, b: nn.BCEWithLogitsLoss(weight=ds.tensor(w), reduction=reduction, pos_weight=ds.tensor(pw))(a, b),
        lambda a, b: torch.nn.BCEWithLogitsLoss(torch.tensor(w), reduction=reduction, pos_weight=torch.tensor(pw))(
            a, b
        ),
        [x, t],
        grad_of=(0, 1),
    )


def test_bce_with_logits_extreme_logits_are_exact() -> None:
    x = ds.tensor([1000.0, -1000.0, 1000.0, -1000.0], requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(x, ds.tensor([1.0, 0.0, 0.0, 1.0]), reduction="none")
    np.testing.assert_array_equal(loss.detach().numpy(), [0.0, 0.0, 1000.0, 1000.0])
    loss.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 1.0, -1.0])  # type: ignore[union-attr]


CE_CASES = [
    dict(),
    dict(label_smoothing=0.2),
    dict(weight=True),
    dict(weight=True, label_smoothing=0.15),
    dict(ignore_index=1),
    dict(ignore_index=1, weight=True, label_smoothing=0.1),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", CE_CASES, ids=lambda c: "-".join(c) or "plain")
@pytest.mark.parametrize("shape", [(8, 5), (4, 5, 3), (2, 5, 3, 2), (5,)], ids=["NC", "NCd", "NCdd", "C"])
def test_cross_entropy_with_indices_matches_torch(assert_close: Any, shape: tuple, case: dict, reduction: str) -> None:
    x = (rng(10).standard_normal(shape) * 3).astype(np.float32)
    n_classes = shape[0] if len(shape) == 1 else shape[1]
    t_shape = () if len(shape) == 1 else shape[:1] + shape[2:]
    t = rng(11).integers(0, n_classes, t_shape)
    if len(shape) > 1 and "ignore_index" in case:
        t.flat[0] = case["ignore_index"]  # at least one ignored target
    w = rng(12).uniform(0.2, 3, n_classes).astype(np.float32)
    kwargs = {k: v for k, v in case.items() if k != "weight"}
    ours = nn.CrossEntropyLoss(weight=ds.tensor(w) if "weight" in case else None, reduction=reduction, **kwargs)
    ref = torch.nn.CrossEntropyLoss(weight=torch.tensor(w) if "weight" in case else None, reduction=reduction, **kwargs)
    compare(assert_close, lambda a: ours(a, ds.tensor(t)), lambda a: ref(a, torch.tensor(t)), [x])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 5)])
def test_cross_entropy_with_probabilities_matches_torch(
    assert_close: Any, shape: tuple, smoothing: float, reduction: str
) -> None:
    x = rng(13).standard_normal(shape).astype(np.float32)
    p = rng(14).uniform(0, 1, shape).astype(np.float32)
    p /= p.sum(axis=1, keepdims=True)
    w = rng(15).uniform(0.5, 2, shape[1]).astype(np.float32)
    compare(
        assert_close,
        lambda a, b: F.cross_entropy(a, b, ds.tensor(w), reduction=reduction, label_smoothing=smoothing),
        lambda a, b: TF.cross_entropy(a, b, torch.tensor(w), reduction=reduction, label_smoothing=smoothing),
        [x, p],
        grad_of=(0, 1),
    )


def test_cross_entropy_is_stable_for_huge_logits() -> None:
    x = ds.tensor([[1e4, 0.0, -1e4], [0.0, 1e4, 0.0]], requires_grad=True)
    loss = F.cross_entropy(x, ds.tensor([2, 1]), reduction="none")
    np.testing.assert_allclose(loss.detach().numpy(), [2e4, 0.0])
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[1, 0, -1], [0, 0, 0]], atol=1e-6)  # type: ignore[union-attr]


def test_cross_entropy_all_targets_ignored_gives_nan_like_torch() -> None:
    out = F.cross_entropy(ds.randn(2, 3), ds.tensor([-100, -100]))
    ref = TF.cross_entropy(torch.randn(2, 3), torch.tensor([-100, -100]))
    assert np.isnan(out.item()) and torch.isnan(ref)


def test_cross_entropy_double_backward_matches_torch(assert_close: Any) -> None:
    """Gradient-norm penalty: d/dx of |d loss/dx|^2 needs the fused op's second derivative."""
    x = rng(16).standard_normal((4, 3)).astype(np.float64)
    t = np.array([0, 2, 1, 2])
    w = np.array([1.0, 2.0, 0.5])
    ours = ds.tensor(x, dtype="float64", requires_grad=True)
    (g,) = ds.autograd.grad(
        F.cross_entropy(ours, ds.tensor(t), ds.tensor(w, dtype="float64"), label_smoothing=0.1),
        [ours],
        create_graph=True,
    )
    (g * g).sum().backward()
    theirs = torch.tensor(x, requires_grad=True)
    (tg,) = torch.autograd.grad(
        TF.cross_entropy(theirs, torch.tensor(t), torch.tensor(w), label_smoothing=0.1), [theirs], create_graph=True
    )
    (tg * tg).sum().backward()
    assert_close(g.detach().numpy(), tg.detach().numpy(), np.float64, "first derivative")
    assert_close(ours.grad.numpy(), theirs.grad.numpy(), np.float64, "second derivative")  # type: ignore[union-attr]


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_fused_common_case_matches_torch_to_second_order(assert_close: Any, reduction: str) -> None:
    """(N, C) logits, class indices, no weights/smoothing/ignored targets: the fused fast path."""
    x = rng(17).standard_normal((6, 4)) * 3
    t = np.array([0, 3, 1, 2, 3, 0])
    ours = ds.tensor(x, dtype="float64", requires_grad=True)
    (g,) = ds.autograd.grad(F.cross_entropy(ours, ds.tensor(t), reduction=reduction), [ours], create_graph=True)
    (g * g).sum().backward()
    theirs = torch.tensor(x, requires_grad=True)
    (tg,) = torch.autograd.grad(
        TF.cross_entropy(theirs, torch.tensor(t), reduction=reduction), [theirs], create_graph=True
    )
    (tg * tg).sum().backward()
    assert_close(g.detach().numpy(), tg.detach().numpy(), np.float64, "first derivative")
    assert_close(ours.grad.numpy(), theirs.grad.numpy(), np.float64, "second derivative")  # type: ignore[union-attr]
    ds.gradcheck(lambda a: F.cross_entropy(a, ds.tensor(t), reduction=reduction), [ds.randn(6, 4)])


def test_cross_entropy_fused_common_case_is_stable_and_float32() -> None:
    x = ds.tensor([[1e4, 0.0, -1e4], [0.0, 1e4, 0.0]], requires_grad=True)
    loss = F.cross_entropy(x, ds.tensor([2, 1]))
    assert loss.dtype == np.float32
    np.testing.assert_allclose(loss.item(), 1e4)
    loss.backward()
    assert x.grad is not None and x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), [[0.5, 0, -0.5], [0, 0, 0]], atol=1e-6)


def test_cross_entropy_ignore_index_inside_class_range_still_ignores() -> None:
    """ignore_index=0 is a valid class number: those targets must be skipped, not scored."""
    x = rng(18).standard_normal((4, 3)).astype(np.float32)
    t = np.array([0, 1, 2, 0])
    ours = F.cross_entropy(ds.tensor(x), ds.tensor(t), ignore_index=0).item()
    ref = TF.cross_entropy(torch.tensor(x), torch.tensor(t), ignore_index=0).item()
    np.testing.assert_allclose(ours, ref, rtol=1e-6)


def test_cross_entropy_gradcheck_float64() -> None:
    t = ds.tensor([[0, 1], [2, 2]])
    ds.gradcheck(lambda x: F.cross_entropy(x, t, label_smoothing=0.2), [ds.randn(2, 3, 2)])


@pytest.mark.host_only  # the range check reads the targets: host arrays only
def test_cross_entropy_refuses_a_target_class_out_of_range() -> None:
    with pytest.raises(IndexError, match="target class 3 is out of range for 3 classes"):
        F.cross_entropy(ds.randn(2, 3), ds.tensor([0, 3]))


def test_cross_entropy_target_errors() -> None:
    with pytest.raises(
        ValueError, match=r"input of shape \(4, 3\).*targets of shape \(4,\).*got target shape \(4, 1\)"
    ):
        F.cross_entropy(ds.randn(4, 3), ds.tensor([[0], [1], [2], [0]]))
    with pytest.raises(ValueError, match=r"floating-point target is read as class probabilities.*target.long\(\)"):
        F.cross_entropy(ds.randn(4, 3), ds.tensor([0.0, 1.0, 2.0, 0.0]))
    probabilities = ds.softmax(ds.randn(2, 3), 1)
    with pytest.raises(RuntimeError, match="ignore_index is not supported for floating point target"):
        TF.cross_entropy(torch.randn(2, 3), torch.tensor(probabilities.numpy()), ignore_index=1)
    with pytest.raises(ValueError, match="ignore_index=1 applies to class-index targets"):
        F.cross_entropy(ds.randn(2, 3), probabilities, ignore_index=1)
    with pytest.raises(ValueError, match="ignore_index=0 applies to class-index targets"):
        nn.CrossEntropyLoss(ignore_index=0)(ds.randn(2, 3), probabilities)
    with pytest.raises(ValueError, match="weight must have one entry per class"):
        F.cross_entropy(ds.randn(2, 3), ds.tensor([0, 1]), weight=ds.ones(2))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_matches_torch(assert_close: Any, reduction: str) -> None:
    x = rng(17).standard_normal((6, 4, 2)).astype(np.float32)
    t = rng(18).integers(0, 4, (6, 2))
    t[0, 0] = 3
    w = rng(19).uniform(0.5, 2, 4).astype(np.float32)
    compare(
        assert_close,
        lambda a: nn.NLLLoss(ds.tensor(w), ignore_index=3, reduction=reduction)(a, ds.tensor(t)),
        lambda a: torch.nn.NLLLoss(torch.tensor(w), ignore_index=3, reduction=reduction)(a, torch.tensor(t)),
        [x],
    )


def test_nll_loss_refuses_float_targets_and_wrong_shapes() -> None:
    with pytest.raises(RuntimeError):
        TF.nll_loss(torch.randn(3, 3), torch.tensor([0.5, 1.0, 2.0]))
    with pytest.raises(TypeError, match="nll_loss: target must hold integer class indices, got dtype float32"):
        F.nll_loss(ds.randn(3, 3), ds.tensor([0.5, 1.0, 2.0]))  # 0.5 used to be read as class 0
    with pytest.raises(ValueError, match=r"targets of shape \(3,\) got target shape \(3, 3\)$"):
        F.nll_loss(ds.randn(3, 3), ds.tensor(np.zeros((3, 3), np.int64)))  # no mention of probabilities


def test_cross_entropy_equals_nll_of_log_softmax() -> None:
    x = ds.randn(5, 4)
    t = ds.tensor([0, 3, 1, 1, 2])
    np.testing.assert_allclose(F.cross_entropy(x, t).item(), F.nll_loss(x.log_softmax(1), t).item(), rtol=1e-6)


@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
@pytest.mark.filterwarnings("ignore:reduction. .mean. divides:UserWarning")
def test_kl_div_matches_torch(assert_close: Any, reduction: str, log_target: bool) -> None:
    x = np.log(rng(20).dirichlet(np.ones(4), 5)).astype(np.float32)
    p = rng(21).dirichlet(np.ones(4), 5).astype(np.float32)
    p[0, 1] = 0.0  # zero probabilities contribute 0 (xlogy), not nan
    t = np.log(p + 1e-3).astype(np.float32) if log_target else p
    compare(
        assert_close,
        lambda a, b: nn.KLDivLoss(reduction=reduction, log_target=log_target)(a, b),
        lambda a, b: torch.nn.KLDivLoss(reduction=reduction, log_target=log_target)(a, b),
        [x, t],
        grad_of=(0, 1) if log_target else (0,),
    )


@pytest.mark.parametrize(
    "loss",
    [
        nn.MSELoss(),
        nn.L1Loss(),
        nn.HuberLoss(),
        nn.SmoothL1Loss(),
        nn.BCELoss(),
        nn.BCEWithLogitsLoss(),
        nn.KLDivLoss(),
    ],
    ids=lambda m: type(m).__name__,
)
def test_mismatched_shapes_raise_instead_of_broadcasting(loss: nn.Module) -> None:
    """PyTorch broadcasts (N, 1) against (N,) to (N, N) with a warning; we refuse (complaint 6)."""
    with pytest.raises(ValueError, match=r"input shape \(4, 1\) and target shape \(4,\) differ"):
        loss(ds.rand(4, 1), ds.rand(4))


@settings(max_examples=25, deadline=None)
@given(
    a=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    b=st.lists(st.integers(1, 4), min_size=0, max_size=3),
)
def test_any_shape_mismatch_raises_and_equal_shapes_work(a: list[int], b: list[int]) -> None:
    """Equal shapes work; of the mismatches, only the elementwise ones pass (one-element target,
    size-1 dims that add no elements), the rest raise (tests/nn/test_losses_broadcast.py has the detail)."""
    x, y = ds.randn(*a), ds.randn(*b)
    n = int(np.prod(np.broadcast_shapes(tuple(a), tuple(b)))) if _broadcastable(a, b) else -1
    elementwise = int(np.prod(b)) == 1 or n == int(np.prod(a)) == int(np.prod(b))
    if tuple(a) == tuple(b):
        assert F.mse_loss(x, y, reduction="none").shape == tuple(a)
    elif n > 0 and elementwise:
        with pytest.warns(UserWarning, match="different to the input size"):
            assert F.mse_loss(x, y, reduction="none").shape == np.broadcast_shapes(tuple(a), tuple(b))
    else:
        with pytest.raises(ValueError, match="differ"):
            F.mse_loss(x, y)


def _broadcastable(a: list[int], b: list[int]) -> bool:
    try:
        np.broadcast_shapes(tuple(a), tuple(b))
    except ValueError:
        return False
    return True


def test_bad_reduction_is_refused() -> None:
    with pytest.raises(ValueError, match="reduction must be one of"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.cross_entropy(ds.randn(2, 3), ds.tensor([0, 1]), reduction="batchmean")


def test_float64_target_promotes_a_float32_loss_as_torch() -> None:
    x, t = np.array([1.0001, 2.0, 3.5], np.float32), np.array([1.0, 2.25, 3.0])
    out = F.mse_loss(ds.tensor(x, requires_grad=True), ds.tensor(t, dtype="float64"))
    ref = torch.nn.functional.mse_loss(torch.tensor(x), torch.tensor(t))
    assert out.dtype == np.float64 and ref.dtype == torch.float64
    np.testing.assert_allclose(out.item(), ref.item(), rtol=1e-12)


def test_mse_second_derivative_through_fused_rule() -> None:
    x = ds.tensor([1.0, 2.0, 4.0], requires_grad=True)
    (g,) = ds.autograd.grad(F.mse_loss(x, ds.zeros(3)), [x], create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), 2 * x.detach().numpy() / 3, rtol=1e-6)
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 2 / 3), rtol=1e-6)  # type: ignore[union-attr]


def test_loss_modules_have_weight_buffers_in_state_dict() -> None:
    loss = nn.CrossEntropyLoss(weight=[1.0, 2.0])
    assert list(loss.state_dict()) == ["weight"] and loss.weight.dtype == np.float32  # type: ignore[union-attr]
    assert repr(loss) == "CrossEntropyLoss()"  # PyTorch's losses print no arguments


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 5),
    c=st.integers(1, 6),
    extra=st.lists(st.integers(1, 3), min_size=0, max_size=2),
    smoothing=st.sampled_from([0.0, 0.25]),
    weighted=st.booleans(),
    reduction=st.sampled_from(REDUCTIONS),
    seed=st.integers(0, 2**16),
)
def test_cross_entropy_property_against_torch(
    assert_close: Any, n: int, c: int, extra: list[int], smoothing: float, weighted: bool, reduction: str, seed: int
) -> None:
    gen = rng(seed)
    x = (gen.standard_normal((n, c, *extra)) * 4).astype(np.float32)
    t = gen.integers(0, c, (n, *extra))
    w = gen.uniform(0.1, 2, c).astype(np.float32) if weighted else None
    compare(
        assert_close,
        lambda a: F.cross_entropy(
            a, ds.tensor(t), None if w is None else ds.tensor(w), reduction=reduction, label_smoothing=smoothing
        ),
        lambda a: TF.cross_entropy(
            a, torch.tensor(t), None if w is None else torch.tensor(w), reduction=reduction, label_smoothing=smoothing
        ),
        [x],
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    ("ours", "ref"),
    [
        (F.mse_loss, TF.mse_loss),
        (F.l1_loss, TF.l1_loss),
        (F.huber_loss, TF.huber_loss),
        (F.smooth_l1_loss, TF.smooth_l1_loss),
        (F.binary_cross_entropy, TF.binary_cross_entropy),
        (F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits),
        (F.kl_div, TF.kl_div),
        (F.cross_entropy, TF.cross_entropy),
    ],
    ids=["mse", "l1", "huber", "smooth_l1", "bce", "bce_logits", "kl_div", "cross_entropy_probabilities"],
)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_empty_batch_gives_what_torch_gives(ours: Any, ref: Any, reduction: str) -> None:
    """'mean' of nothing is NaN, 'sum' is 0, 'none' is empty; no ZeroDivisionError from inside a loss."""
    x, t = np.zeros((0, 3), np.float32), np.full((0, 3), 0.5, np.float32)
    xo = ds.tensor(x, requires_grad=True)
    out = ours(xo, ds.tensor(t), reduction=reduction)
    expected = ref(torch.tensor(x), torch.tensor(t), reduction=reduction).numpy()
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out.detach().numpy(), expected)  # NaN equals NaN here
    out.sum().backward()
    assert xo.grad is not None and xo.grad.shape == (0, 3)


@pytest.mark.parametrize("fn", [F.cross_entropy, F.nll_loss])
def test_class_index_losses_refuse_boolean_targets_like_torch(fn: Any) -> None:
    with pytest.raises(TypeError, match=r"integer class indices, got dtype bool.*target.long\(\)"):
        fn(ds.randn(2, 3), ds.tensor([True, False]))
    with pytest.raises(RuntimeError):  # torch: "expected target dtype to be Long or Byte, but got Bool"
        getattr(TF, fn.__name__)(torch.randn(2, 3), torch.tensor([True, False]))


def _arr(shape: tuple, seed: int, scale: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


_SIGNS = np.where(np.random.default_rng(9).random(6) > 0.5, 1.0, -1.0).astype(np.float32)
_MORE_LOSSES = [
    ("margin_ranking", lambda a, b: F.margin_ranking_loss(a, b, ds.tensor(_SIGNS), 0.3),
     lambda a, b: TF.margin_ranking_loss(a, b, torch.tensor(_SIGNS), 0.3), [(6,), (6,)]),
    ("hinge_embedding", lambda a: F.hinge_embedding_loss(a, ds.tensor(_SIGNS), 0.8, reduction="sum"),
     lambda a: TF.hinge_embedding_loss(a, torch.tensor(_SIGNS), 0.8, reduction="sum"), [(6,)]),
    ("soft_margin", lambda a: F.soft_margin_loss(a, ds.tensor(_SIGNS)),
     lambda a: TF.soft_margin_loss(a, torch.tensor(_SIGNS)), [(6,)]),
    ("multilabel_soft_margin", lambda a, y: F.multilabel_soft_margin_loss(a, y),
     lambda a, y: TF.multilabel_soft_margin_loss(a, y), [(4, 6), (4, 6)]),
    ("cosine_embedding", lambda a, b: F.cosine_embedding_loss(a, b, ds.tensor(_SIGNS), 0.1),
     lambda a, b: TF.cosine_embedding_loss(a, b, torch.tensor(_SIGNS), 0.1), [(6, 5), (6, 5)]),
    ("triplet", lambda a, p, n: F.triplet_margin_loss(a, p, n), lambda a, p, n: TF.triplet_margin_loss(a, p, n),
     [(6, 5), (6, 5), (6, 5)]),
    ("triplet_p1_swap", lambda a, p, n: F.triplet_margin_loss(a, p, n, 0.5, 1.0, swap=True),
     lambda a, p, n: TF.triplet_margin_loss(a, p, n, 0.5, 1.0, swap=True), [(6, 5), (6, 5), (6, 5)]),
    ("poisson_log", lambda a, y: F.poisson_nll_loss(a, y), lambda a, y: TF.poisson_nll_loss(a, y), [(4, 6), (4, 6)]),
    ("gaussian", lambda a, y, v: F.gaussian_nll_loss(a, y, v * v, full=True),
     lambda a, y, v: TF.gaussian_nll_loss(a, y, v * v, full=True), [(4, 6), (4, 6), (4, 6)]),
    ("gaussian_var_per_row", lambda a, y, v: F.gaussian_nll_loss(a, y, v * v),
     lambda a, y, v: TF.gaussian_nll_loss(a, y, v * v), [(4, 6), (4, 6), (4,)]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "ours", "ref", "shapes"), _MORE_LOSSES, ids=[c[0] for c in _MORE_LOSSES])
def test_margin_embedding_and_likelihood_losses_match_torch(check_op: Any, name, ours, ref, shapes) -> None:
    arrays = [_arr(s, i) for i, s in enumerate(shapes)]
    if name.startswith("multilabel"):
        arrays[1] = (arrays[1] > 0).astype(np.float32)
    if name.startswith("poisson"):
        arrays[1] = np.abs(np.round(arrays[1] * 3))
    check_op(ours, ref, arrays)


def test_poisson_full_and_linear_input_match_torch() -> None:
    x = np.abs(_arr((3, 4), 1)) + 0.1
    y = np.round(np.abs(_arr((3, 4), 2)) * 4).astype(np.float32)
    ours = F.poisson_nll_loss(ds.tensor(x), ds.tensor(y), log_input=False, full=True)
    ref = TF.poisson_nll_loss(torch.tensor(x), torch.tensor(y), log_input=False, full=True)
    np.testing.assert_allclose(ours.item(), ref.item(), rtol=1e-5)


def test_loss_modules_wrap_the_functions() -> None:
    a, b = _arr((6, 5), 1), _arr((6, 5), 2)
    pairs = [
        (nn.CosineEmbeddingLoss(0.2), torch.nn.CosineEmbeddingLoss(0.2), (a, b, _SIGNS)),
        (nn.MarginRankingLoss(0.1), torch.nn.MarginRankingLoss(0.1), (a[:, 0], b[:, 0], _SIGNS)),
        (nn.TripletMarginLoss(swap=True), torch.nn.TripletMarginLoss(swap=True), (a, b, a[::-1].copy())),
        (nn.SoftMarginLoss(), torch.nn.SoftMarginLoss(), (a[:, 0], _SIGNS)),
        (nn.HingeEmbeddingLoss(), torch.nn.HingeEmbeddingLoss(), (a[:, 0], _SIGNS)),
        (nn.MultiLabelSoftMarginLoss(), torch.nn.MultiLabelSoftMarginLoss(), (a, (b > 0).astype(np.float32))),
        (nn.PoissonNLLLoss(), torch.nn.PoissonNLLLoss(), (a, np.abs(b))),
        (nn.GaussianNLLLoss(), torch.nn.GaussianNLLLoss(), (a, b, np.abs(a) + 0.5)),
    ]
    for ours, ref, args in pairs:
        got = ours(*[ds.tensor(x) for x in args]).item()
        np.testing.assert_allclose(got, ref(*[torch.tensor(x) for x in args]).item(), rtol=1e-5, err_msg=repr(ours))


@pytest.mark.parametrize(
    "flags",
    [{"size_average": False}, {"reduce": False}, {"size_average": True}, {"size_average": False, "reduce": True}],
)
def test_legacy_size_average_and_reduce_flags_match_torch(flags: dict) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.random((4, 3)).astype(np.float32), rng.random((4, 3)).astype(np.float32)
    cases = [("binary_cross_entropy", "BCELoss"), ("mse_loss", "MSELoss"), ("l1_loss", "L1Loss")]
    for fn, cls in cases:
        got = getattr(F, fn)(ds.tensor(x), ds.tensor(y), **flags).numpy()
        want = getattr(TF, fn)(torch.tensor(x), torch.tensor(y), **flags).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=fn)
        assert getattr(nn, cls)(**flags).reduction == getattr(torch.nn, cls)(**flags).reduction
    labels = np.array([0, 2, 1, 2])
    got = F.cross_entropy(ds.tensor(x), ds.tensor(labels), **flags).numpy()
    np.testing.assert_allclose(got, TF.cross_entropy(torch.tensor(x), torch.tensor(labels), **flags).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="not both"):
        F.mse_loss(ds.tensor(x), ds.tensor(y), reduction="sum", **flags)


def test_multilabel_margin_loss_matches_torch(check_op: Any) -> None:
    x = _arr((3, 5), 7)
    y = np.array([[3, 0, -1, 1, 2], [1, 2, 3, 4, 0], [-1, 0, 0, 0, 0]])
    for reduction in ("mean", "sum", "none"):
        check_op(
            lambda x, r=reduction: F.multilabel_margin_loss(x, ds.tensor(y), reduction=r),
            lambda x, r=reduction: TF.multilabel_margin_loss(x, torch.tensor(y), reduction=r),
            [x],
        )
    assert nn.MultiLabelMarginLoss()(ds.tensor(x), ds.tensor(y)).item() == pytest.approx(
        torch.nn.MultiLabelMarginLoss()(torch.tensor(x), torch.tensor(y)).item(), rel=1e-6
    )
    logp = np.log(np.full((2, 3, 2, 2), 1 / 3, np.float32))
    target = np.zeros((2, 2, 2), np.int64)
    np.testing.assert_allclose(nn.NLLLoss2d()(ds.tensor(logp), ds.tensor(target)).item(), np.log(3), rtol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("flat_targets", [False, True])
def test_ctc_loss_matches_torch(reduction: str, flat_targets: bool) -> None:
    rng = np.random.default_rng(11)
    steps, batch, classes = 12, 4, 5
    x = rng.standard_normal((steps, batch, classes)).astype(np.float32)
    targets = np.array([[1, 1, 2, 0], [3, 4, 3, 4], [2, 0, 0, 0], [1, 2, 3, 4]])  # repeated labels need a blank between
    target_lengths = np.array([3, 4, 1, 4])
    input_lengths = np.array([12, 10, 5, 12])
    tg = np.concatenate([targets[i, : target_lengths[i]] for i in range(batch)]) if flat_targets else targets
    tx = torch.tensor(x, requires_grad=True)
    want = TF.ctc_loss(tx.log_softmax(2), torch.tensor(tg), torch.tensor(input_lengths), torch.tensor(target_lengths),
                       reduction=reduction)  # fmt: skip
    dx = ds.tensor(x, requires_grad=True)
    got = F.ctc_loss(dx.log_softmax(2), ds.tensor(tg), ds.tensor(input_lengths), ds.tensor(target_lengths),
                     reduction=reduction)  # fmt: skip
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-5)
    (want.sum() if reduction == "none" else want).backward()
    (got.sum() if reduction == "none" else got).backward()
    np.testing.assert_allclose(dx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_ctc_loss_on_log_probs_directly_and_impossible_alignments_match_torch() -> None:
    rng = np.random.default_rng(12)
    lp = np.log(rng.dirichlet(np.ones(4), size=(6, 2))).astype(np.float32)
    targets, in_len, tg_len = np.array([[1, 1, 1], [2, 3, 0]]), np.array([4, 6]), np.array([3, 2])
    for zero_infinity in (False, True):
        t_lp, d_lp = torch.tensor(lp, requires_grad=True), ds.tensor(lp, requires_grad=True)
        want = TF.ctc_loss(t_lp, torch.tensor(targets), torch.tensor(in_len), torch.tensor(tg_len), reduction="none",
                           zero_infinity=zero_infinity)  # fmt: skip
        got = nn.CTCLoss(reduction="none", zero_infinity=zero_infinity)(d_lp, targets, in_len, tg_len)
        np.testing.assert_allclose(
            got.detach().numpy(), want.detach().numpy(), rtol=1e-5
        )  # inf where 4 steps cannot hold 1_1_1
        if zero_infinity:
            want.sum().backward()
            got.sum().backward()
            np.testing.assert_allclose(d_lp.grad.numpy(), t_lp.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_adaptive_log_softmax_matches_torch() -> None:
    torch.manual_seed(0)
    theirs = torch.nn.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs=[4, 7], div_value=2.0, head_bias=True)
    ours = nn.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs=[4, 7], div_value=2.0, head_bias=True)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = _arr((6, 8), 3)
    y = np.array([0, 3, 5, 8, 9, 6])
    got, want = ours(ds.tensor(x), ds.tensor(y)), theirs(torch.tensor(x), torch.tensor(y))
    np.testing.assert_allclose(got.output.detach().numpy(), want.output.detach().numpy(), rtol=1e-5, atol=1e-6)
    got.loss.backward()
    want.loss.backward()
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(ours.log_prob(ds.tensor(x)).detach().numpy(), theirs.log_prob(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    assert ours.predict(ds.tensor(x)).tolist() == theirs.predict(torch.tensor(x)).tolist()
    with pytest.raises(ValueError, match="cutoffs"):
        nn.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs=[7, 4])


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"reduction": "sum"}, {"label_smoothing": 0.1}, {"weight": [1.0, 2.0, 0.5]}, {"ignore_index": 1},
     {"reduction": "none", "weight": [1.0, 2.0, 0.5], "label_smoothing": 0.2}],
)  # fmt: skip
def test_cross_entropy_on_a_device_gives_the_cpus_values_and_gradients(kwargs: Any) -> None:
    # On a device the targets are not read on the host: every target is masked (no fast path), the
    # class weights (a host list here) join the logits' device, and the mean stays a 0-d array.
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((5, 3)).astype(np.float32)
    target = np.array([0, 2, 1, -100 if "ignore_index" not in kwargs else 2, 1])  # -100: ignored by default
    out = {}
    for device in ("cpu", "strict"):
        x = ds.tensor(logits, device=device, requires_grad=True)
        loss = F.cross_entropy(x, ds.tensor(target, device=device), **kwargs)
        assert str(loss.device) == device
        loss.sum().backward()
        out[device] = (loss.detach().cpu().numpy(), x.grad.cpu().numpy())  # type: ignore[union-attr]
    np.testing.assert_allclose(out["strict"][0], out["cpu"][0], rtol=1e-6)
    np.testing.assert_allclose(out["strict"][1], out["cpu"][1], rtol=1e-6, atol=1e-7)


def test_nll_loss_of_all_ignored_targets_is_nan_with_zero_gradients_as_in_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((3, 4))
    mine = ds.tensor(x, dtype=ds.float64, requires_grad=True)
    loss = ds.nn.functional.nll_loss(mine.log_softmax(-1), ds.tensor([-100, -100, -100]))
    loss.backward()
    theirs = torch.tensor(x, requires_grad=True)
    ref = torch.nn.functional.nll_loss(theirs.log_softmax(-1), torch.tensor([-100, -100, -100]))
    ref.backward()
    assert np.isnan(loss.item()) and np.isnan(ref.item())
    np.testing.assert_array_equal(mine.grad.numpy(), theirs.grad.numpy())  # zeros, not NaN


def test_ctc_loss_with_an_empty_target_matches_torch():
    torch = pytest.importorskip("torch")
    lp = np.random.default_rng(1).standard_normal((5, 2, 4))
    mine, theirs = ds.tensor(lp, dtype=ds.float64, requires_grad=True), torch.tensor(lp, requires_grad=True)
    args = ([[1, 2], [0, 0]], [5, 5], [2, 0])
    loss = ds.nn.functional.ctc_loss(mine.log_softmax(-1), *(ds.tensor(a) for a in args))
    ref = torch.nn.functional.ctc_loss(theirs.log_softmax(-1), *(torch.tensor(a) for a in args))
    loss.backward()
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_pair_and_triplet_losses_refuse_mismatched_shapes() -> None:
    """Losses do not broadcast (README); torch raises for these, or broadcasts to a wrong loss."""
    y = ds.tensor([1.0, -1.0, 1.0, -1.0])
    with pytest.raises(RuntimeError):
        torch.nn.functional.margin_ranking_loss(torch.randn(4, 1), torch.randn(4), torch.tensor(y.numpy()))
    with pytest.raises(ds.errors.ShapeError, match=r"margin_ranking_loss: .*input1 \(4, 1\), input2 \(4,\)"):
        F.margin_ranking_loss(ds.randn(4, 1), ds.randn(4), y)  # was a (4, 4) broadcast
    with pytest.raises(ds.errors.ShapeError, match="margin_ranking_loss"):
        F.margin_ranking_loss(ds.randn(4), ds.randn(4), ds.ones(3))
    with pytest.raises(TypeError):
        torch.nn.functional.hinge_embedding_loss(torch.randn(4), None)
    with pytest.raises(
        ds.errors.ArgumentTypeError, match="hinge_embedding_loss: expected the target to be a Tensor, got NoneType"
    ):
        F.hinge_embedding_loss(ds.randn(4), None)  # was a loss of 0
    with pytest.raises(ds.errors.ShapeError, match="hinge_embedding_loss"):
        F.hinge_embedding_loss(ds.randn(4, 1), y, reduction="none")  # torch: a (4, 4) broadcast
    with pytest.raises(RuntimeError):
        torch.nn.functional.triplet_margin_loss(torch.randn(4, 3), torch.randn(4, 3), torch.randn(3))
    with pytest.raises(ds.errors.ShapeError, match=r"triplet_margin_loss: .*negative \(3,\)"):
        F.triplet_margin_loss(ds.randn(4, 3), ds.randn(4, 3), ds.randn(3))
    with pytest.raises(RuntimeError):
        torch.nn.functional.cosine_embedding_loss(torch.randn(4, 3), torch.randn(4, 3), torch.ones(5))
    with pytest.raises(ds.errors.ShapeError, match=r"cosine_embedding_loss: expected a target of shape \(4,\)"):
        F.cosine_embedding_loss(ds.randn(4, 3), ds.randn(4, 3), ds.ones(5))
    with pytest.raises(ds.errors.ShapeError, match="cosine_embedding_loss"):
        F.cosine_embedding_loss(ds.randn(4, 3), ds.randn(4, 3), ds.ones(4, 1))
    with pytest.raises(ds.errors.ShapeError, match="cosine_embedding_loss"):
        F.cosine_embedding_loss(ds.randn(4, 3), ds.randn(4, 2), ds.ones(4))
    # the shapes torch documents still work, with torch's values
    rng = np.random.RandomState(0)
    a, b, c = (rng.randn(4, 3).astype(np.float32) for _ in range(3))
    t = np.array([1.0, -1.0, 1.0, -1.0], np.float32)
    T = torch.tensor
    pairs = [
        (F.margin_ranking_loss(ds.tensor(a[:, 0]), ds.tensor(b[:, 0]), ds.tensor(t)),
         torch.nn.functional.margin_ranking_loss(T(a[:, 0]), T(b[:, 0]), T(t))),
        (F.hinge_embedding_loss(ds.tensor(a[:, 0]), ds.tensor(t)), torch.nn.functional.hinge_embedding_loss(T(a[:, 0]), T(t))),
        (F.triplet_margin_loss(ds.tensor(a), ds.tensor(b), ds.tensor(c)), torch.nn.functional.triplet_margin_loss(T(a), T(b), T(c))),
        (F.cosine_embedding_loss(ds.tensor(a), ds.tensor(b), ds.tensor(t)), torch.nn.functional.cosine_embedding_loss(T(a), T(b), T(t))),
        (F.cosine_embedding_loss(ds.tensor(a[0]), ds.tensor(b[0]), ds.tensor(1.0)),
         torch.nn.functional.cosine_embedding_loss(T(a[0]), T(b[0]), T(1.0))),
    ]  # fmt: skip
    for got, want in pairs:
        np.testing.assert_allclose(got.item(), want.item(), rtol=1e-5, atol=1e-6)
