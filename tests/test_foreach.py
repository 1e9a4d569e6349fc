"""torch._foreach_* list ops and the thread settings, against torch 2.13."""

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
SHAPES = [(2, 3), (4,), ()]


def _lists():
    arrays = [RNG.uniform(0.5, 2.0, s) for s in SHAPES]
    return arrays, [ds.tensor(a, dtype=ds.float64) for a in arrays], [torch.tensor(a) for a in arrays]


def _close(ours, theirs):
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.numpy(), t.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("op", ["exp", "sqrt", "neg", "sigmoid", "log", "abs", "reciprocal", "frac", "sign"])
def test_unary_out_of_place_and_in_place(op):
    _, ours, theirs = _lists()
    _close(getattr(ds, f"_foreach_{op}")(ours), getattr(torch, f"_foreach_{op}")(theirs))
    back = getattr(ds, f"_foreach_{op}_")(ours)
    getattr(torch, f"_foreach_{op}_")(theirs)
    assert back is not None and all(b is o for b, o in zip(back, ours))
    _close(ours, theirs)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "minimum", "clamp_max", "clamp_min", "pow"])
@pytest.mark.parametrize("kind", ["number", "numbers", "tensors", "one tensor"])
def test_binary_with_every_kind_of_operand(op, kind):
    arrays, ours, theirs = _lists()
    other = {
        "number": (1.5, 1.5),
        "numbers": ([0.5, 1.5, 2.5], [0.5, 1.5, 2.5]),
        "tensors": ([ds.tensor(a + 0.25, dtype=ds.float64) for a in arrays], [torch.tensor(a + 0.25) for a in arrays]),
        "one tensor": (ds.tensor(1.25, dtype=ds.float64), torch.tensor(1.25, dtype=torch.float64)),
    }[kind]
    _close(getattr(ds, f"_foreach_{op}")(ours, other[0]), getattr(torch, f"_foreach_{op}")(theirs, other[1]))
    getattr(ds, f"_foreach_{op}_")(ours, other[0])
    getattr(torch, f"_foreach_{op}_")(theirs, other[1])
    _close(ours, theirs)


def test_alpha_lerp_addcmul_norms_and_ema_on_parameters():
    arrays, ours, theirs = _lists()
    _close(ds._foreach_add(ours, ours, alpha=2), torch._foreach_add(theirs, theirs, alpha=2))
    _close(
        ds._foreach_lerp(ours, ours[::-1][::-1], [0.5, 0.2, 0.1]), torch._foreach_lerp(theirs, theirs, [0.5, 0.2, 0.1])
    )
    _close(
        ds._foreach_addcmul(ours, ours, ours, [1.0, 2.0, 3.0]),
        torch._foreach_addcmul(theirs, theirs, theirs, [1.0, 2.0, 3.0]),
    )
    _close(ds._foreach_addcdiv(ours, ours, ours, 0.5), torch._foreach_addcdiv(theirs, theirs, theirs, 0.5))
    for ord_ in (2, 1, float("inf")):
        _close(ds._foreach_norm(ours, ord_), torch._foreach_norm(theirs, ord_))
    _close(ds._foreach_max(ours), torch._foreach_max(theirs))
    _close(ds._foreach_powsum(ours, 3), torch._foreach_powsum(theirs, 3))
    _close(ds._foreach_pow(2.0, ours), torch._foreach_pow(2.0, theirs))
    # an EMA of a model's parameters after an optimizer step, as diffusion repositories write it
    model = ds.nn.Linear(3, 2)
    ema = [p.detach().clone() for p in model.parameters()]
    opt = ds.optim.SGD(model.parameters(), lr=0.1)
    model(ds.ones(4, 3)).sum().backward()
    opt.step()
    with ds.no_grad():
        ds._foreach_lerp_(ema, list(model.parameters()), 0.5)
    for e, p in zip(ema, model.parameters()):
        assert not np.allclose(e.numpy(), p.detach().numpy())  # halfway, not equal


def test_mismatched_lists_are_refused():
    _, ours, _ = _lists()
    with pytest.raises(ds.errors.ArgumentError, match="same number"):
        ds._foreach_add(ours, [1.0])
    with pytest.raises(ds.errors.ArgumentTypeError, match="list or tuple of tensors"):
        ds._foreach_add(ours[0], 1.0)


def test_thread_settings():
    before = ds.get_num_threads()
    try:
        ds.set_num_threads(1)
        assert ds.get_num_threads() == 1
    finally:
        ds.set_num_threads(before)
    ds.set_num_interop_threads(2)
    assert ds.get_num_interop_threads() == 2
    with pytest.raises(ds.errors.ArgumentError, match="positive int"):
        ds.set_num_threads(0)
    assert ds.ones(2).is_sparse is False and torch.ones(2).is_sparse is False
