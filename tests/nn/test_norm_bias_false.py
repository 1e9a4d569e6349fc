"""PyTorch's keyword-only ``bias=`` on the batch, instance, group and layer norms: ``bias=False`` keeps
the affine weight and drops the bias parameter (no state_dict entry), so a PyTorch checkpoint of such a
layer loads strictly, and the outputs and gradients are PyTorch's."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

# name, constructor args, keyword args, input shape
CASES: list[tuple[str, tuple[Any, ...], dict[str, Any], tuple[int, ...]]] = [
    ("BatchNorm1d", (4,), {}, (5, 4)),
    ("BatchNorm1d", (4,), {}, (3, 4, 6)),
    ("BatchNorm2d", (4,), {}, (3, 4, 5, 2)),
    ("BatchNorm3d", (4,), {}, (2, 4, 3, 2, 3)),
    ("BatchNorm2d", (4,), {"track_running_stats": False}, (3, 4, 5, 2)),
    ("InstanceNorm1d", (4,), {"affine": True}, (3, 4, 6)),
    ("InstanceNorm2d", (4,), {"affine": True}, (3, 4, 5, 3)),
    ("InstanceNorm3d", (4,), {"affine": True}, (2, 4, 3, 2, 3)),
    ("InstanceNorm2d", (4,), {"affine": True, "track_running_stats": True}, (3, 4, 5, 3)),
    ("GroupNorm", (2, 4), {}, (3, 4, 5)),
    ("GroupNorm", (4, 4), {}, (3, 4, 2, 3)),
    ("LayerNorm", ((5,),), {}, (3, 4, 5)),
    ("LayerNorm", ((4, 5),), {}, (3, 4, 5)),
]


def _ids(case: tuple[Any, ...]) -> str:
    name, _, kw, shape = case
    return f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items())}-{'x'.join(map(str, shape))}"


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_bias_false_state_dict_values_and_gradients_match_torch(case: tuple[Any, ...]) -> None:
    name, args, kw, shape = case
    theirs = getattr(torch.nn, name)(*args, **kw, bias=False).double()
    ours = getattr(ds.nn, name)(*args, **kw, bias=False).to(ds.float64)
    assert ours.bias is None and theirs.bias is None
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == ["weight"]
    assert repr(ours) == repr(theirs)
    # a PyTorch checkpoint (with a non-trivial weight) loads strictly
    with torch.no_grad():
        theirs.weight.copy_(
            torch.linspace(0.5, 1.5, theirs.weight.numel(), dtype=torch.float64).reshape(theirs.weight.shape)
        )
    ours.load_state_dict({k: ds.from_numpy(v.detach().numpy().copy()) for k, v in theirs.state_dict().items()})
    rng = np.random.default_rng(0)
    for mode in ("train", "eval"):
        theirs.train(mode == "train")
        ours.train(mode == "train")
        x = rng.standard_normal(shape) * 2 + 0.5
        w = rng.standard_normal(shape)
        tx = torch.tensor(x, requires_grad=True)
        dx = ds.tensor(x, dtype=ds.float64, requires_grad=True)
        ty, dy = theirs(tx), ours(dx)
        np.testing.assert_allclose(dy.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=mode)
        (ty * torch.tensor(w)).sum().backward()
        (dy * ds.tensor(w, dtype=ds.float64)).sum().backward()
        np.testing.assert_allclose(dx.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=mode)
        np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-9, atol=1e-11)
        ours.zero_grad()
        theirs.zero_grad()
        for key, buf in theirs.state_dict().items():  # running statistics moved alike
            np.testing.assert_allclose(ours.state_dict()[key].numpy(), buf.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["BatchNorm1d", "BatchNorm2d", "InstanceNorm1d", "GroupNorm"])
def test_bias_defaults_true_and_is_keyword_only(name: str) -> None:
    args = (2, 4) if name == "GroupNorm" else (4,)
    assert getattr(ds.nn, name)(*args, affine=True).bias is not None
    # PyTorch's bias follows device and dtype, so it is keyword-only: a sixth positional is refused
    with pytest.raises(TypeError):
        getattr(ds.nn, name)(*args, 1e-5, 0.1, True, True, False, False)


def test_affine_false_ignores_bias_true_as_torch() -> None:
    for name, args in (("BatchNorm2d", (3,)), ("GroupNorm", (1, 3)), ("InstanceNorm2d", (3,))):
        ours = getattr(ds.nn, name)(*args, affine=False, bias=True)
        theirs = getattr(torch.nn, name)(*args, affine=False, bias=True)
        assert ours.weight is None and ours.bias is None
        assert list(ours.state_dict()) == list(theirs.state_dict()) and repr(ours) == repr(theirs)


@pytest.mark.parametrize("name", ["LazyBatchNorm1d", "LazyBatchNorm2d", "LazyInstanceNorm1d", "LazyInstanceNorm2d"])
def test_lazy_norms_with_bias_false_become_torchs_layer(name: str) -> None:
    shape = (3, 4, 5) if name.endswith("1d") else (3, 4, 5, 2)
    x = np.random.default_rng(1).standard_normal(shape)
    theirs = getattr(torch.nn, name)(bias=False).double()
    ours = getattr(ds.nn, name)(bias=False)
    ty = theirs(torch.tensor(x))
    dy = ours.to(ds.float64)(ds.tensor(x, dtype=ds.float64))
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    np.testing.assert_allclose(dy.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
