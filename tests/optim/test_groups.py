"""weight_decay_groups: decay on weights, none on biases and normalization layers."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim
from downslope.devices import to_host

torch = pytest.importorskip("torch")


def _model() -> nn.Module:
    ds.manual_seed(0)
    return nn.Sequential(
        nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 6), nn.LayerNorm(6), nn.Linear(6, 2)
    )


def _names(groups):  # type: ignore[no-untyped-def]
    return [[name for name, _ in g["params"]] for g in groups]


def test_weights_decay_biases_and_norm_parameters_do_not():
    groups = optim.weight_decay_groups(_model(), 0.1)
    assert _names(groups) == [
        ["0.weight", "3.weight", "5.weight"],
        ["0.bias", "1.weight", "1.bias", "3.bias", "4.weight", "4.bias", "5.bias"],
    ]
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]


def test_no_decay_names_frozen_parameters_and_the_ndim_rule():
    model = _model()
    model[5].weight.requires_grad = False  # frozen: left out
    groups = optim.weight_decay_groups(model, 0.1, no_decay=("3.weight",))
    assert _names(groups) == [
        ["0.weight"],
        ["0.bias", "1.weight", "1.bias", "3.weight", "3.bias", "4.weight", "4.bias", "5.bias"],
    ]
    everything = optim.weight_decay_groups(_model(), 0.1, max_ndim_without_decay=-1)
    assert len(everything) == 1 and len(everything[0]["params"]) == 10
    pairs = [("a", ds.zeros(2, 2, requires_grad=True)), ("b", ds.zeros(2, requires_grad=True))]
    assert _names(optim.weight_decay_groups(pairs, 0.0)) == [["a"], ["b"]]


def test_adamw_with_the_groups_matches_torch_with_hand_built_groups():
    model = _model()
    groups = optim.weight_decay_groups(model, 0.1)
    opt = optim.AdamW(groups, lr=1e-2)
    assert opt.state_dict()["param_groups"][1]["param_names"][0] == "0.bias"
    ours = [p for _, p in groups[0]["params"]] + [p for _, p in groups[1]["params"]]
    theirs = [torch.tensor(p.detach().numpy(), requires_grad=True) for p in ours]
    n = len(groups[0]["params"])
    topt = torch.optim.AdamW(
        [{"params": theirs[:n], "weight_decay": 0.1}, {"params": theirs[n:], "weight_decay": 0.0}], lr=1e-2
    )
    rng = np.random.default_rng(0)
    for _ in range(30):
        grads = [rng.normal(size=p.shape).astype(np.float32) for p in ours]
        for p, t, g in zip(ours, theirs, grads):
            p.grad, t.grad = ds.tensor(g), torch.tensor(g)
        opt.step()
        topt.step()
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.detach().numpy(), t.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_with_zero_gradients_only_the_decayed_group_shrinks():
    model = _model()
    before = {k: to_host(v).copy() for k, v in model.state_dict().items()}
    opt = optim.AdamW(optim.weight_decay_groups(model, 0.5), lr=0.1)
    for p in model.parameters():
        p.grad = ds.zeros(*p.shape)
    opt.step()
    after = {k: to_host(v) for k, v in model.state_dict().items()}
    for key in ("0.weight", "3.weight", "5.weight"):
        np.testing.assert_allclose(after[key], before[key] * (1 - 0.1 * 0.5), rtol=1e-6)
    for key in ("0.bias", "1.weight", "1.bias", "4.weight", "4.bias", "5.bias"):
        np.testing.assert_array_equal(after[key], before[key])


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((-0.1,), {}, ValueError, r"weight_decay=-0\.1"),
        ((float("nan"),), {}, ValueError, "weight_decay=nan"),
        (("0.1",), {}, TypeError, "weight_decay must be a number"),
        ((0.1,), {"no_decay": "bias"}, TypeError, "collection of names"),
        ((0.1,), {"max_ndim_without_decay": 1.5}, TypeError, "max_ndim_without_decay"),
    ],
)
def test_bad_arguments_are_explained(args, kwargs, error, match):  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=match):
        optim.weight_decay_groups(_model(), *args, **kwargs)


def test_bad_parameter_collections_are_explained():
    with pytest.raises(TypeError, match=r"item 0 is ndarray"):
        optim.weight_decay_groups([np.zeros(2)], 0.1)
    with pytest.raises(TypeError, match="'w' is a ndarray, not a Tensor"):
        optim.weight_decay_groups([("w", np.zeros(2))], 0.1)
    with pytest.raises(ValueError, match="no trainable parameters"):
        optim.weight_decay_groups([("w", ds.zeros(2))], 0.1)
