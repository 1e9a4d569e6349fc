"""``reset_parameters`` (and ``_reset_parameters``) against PyTorch, for every torch.nn module class that has
one: the k-fold idiom ``for layer in model.children(): if hasattr(layer, 'reset_parameters'):
layer.reset_parameters()`` must reset each layer as in PyTorch (running statistics, norm weights, PReLU
slopes included) and keep the Parameter objects, so an optimizer built before still updates them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import nn
from downslope.devices import to_host

torch = pytest.importorskip("torch")

# torch.nn classes downslope does not have at all (nothing to reset there).
_ABSENT: set[str] = set()


def _torch_classes_with(method: str) -> list[str]:
    return sorted(
        name
        for name in dir(torch.nn)
        if isinstance(getattr(torch.nn, name), type)
        and issubclass(getattr(torch.nn, name), torch.nn.Module)
        and hasattr(getattr(torch.nn, name), method)
    )


# name -> (constructor args, constructor kwargs, an input that materializes a lazy module or None)
_SPECS: dict[str, tuple[tuple, dict, Any]] = {
    "AdaptiveLogSoftmaxWithLoss": ((16, 10, [4, 7]), {}, None),
    "BatchNorm1d": ((4,), {}, None),
    "BatchNorm2d": ((4,), {}, None),
    "BatchNorm3d": ((4,), {}, None),
    "SyncBatchNorm": ((4,), {}, None),
    "Bilinear": ((3, 4, 5), {}, None),
    "Conv1d": ((3, 4, 3), {}, None),
    "Conv2d": ((3, 4, 3), {"groups": 1}, None),
    "Conv3d": ((2, 4, 3), {}, None),
    "ConvTranspose1d": ((3, 4, 3), {}, None),
    "ConvTranspose2d": ((4, 6, 3), {"groups": 2}, None),
    "ConvTranspose3d": ((2, 4, 3), {}, None),
    "Embedding": ((10, 4), {"padding_idx": 1}, None),
    "EmbeddingBag": ((10, 4), {"padding_idx": 2}, None),
    "GRU": ((4, 5), {"num_layers": 2}, None),
    "GRUCell": ((4, 5), {}, None),
    "GroupNorm": ((2, 4), {}, None),
    "InstanceNorm1d": ((4,), {"affine": True, "track_running_stats": True}, None),
    "InstanceNorm2d": ((4,), {"affine": True, "track_running_stats": True}, None),
    "InstanceNorm3d": ((4,), {"affine": True, "track_running_stats": True}, None),
    "LSTM": ((4, 5), {"proj_size": 3}, None),
    "LSTMCell": ((4, 5), {}, None),
    "LayerNorm": (((3, 4),), {}, None),
    "LazyBatchNorm1d": ((), {}, (2, 4)),
    "LazyBatchNorm2d": ((), {}, (2, 4, 3, 3)),
    "LazyBatchNorm3d": ((), {}, (2, 4, 2, 2, 2)),
    "LazyConv1d": ((4, 3), {}, (1, 3, 6)),
    "LazyConv2d": ((4, 3), {}, (1, 3, 6, 6)),
    "LazyConv3d": ((4, 3), {}, (1, 2, 4, 4, 4)),
    "LazyConvTranspose1d": ((4, 3), {}, (1, 3, 6)),
    "LazyConvTranspose2d": ((4, 3), {}, (1, 3, 4, 4)),
    "LazyConvTranspose3d": ((4, 3), {}, (1, 2, 3, 3, 3)),
    "LazyInstanceNorm1d": ((), {}, (2, 4, 5)),
    "LazyInstanceNorm2d": ((), {}, (2, 4, 3, 3)),
    "LazyInstanceNorm3d": ((), {}, (2, 4, 2, 2, 2)),
    "LazyLinear": ((3,), {}, (2, 5)),
    "Linear": ((5, 3), {}, None),
    "MultiheadAttention": ((8, 2), {"kdim": 4, "vdim": 4}, None),
    "PReLU": ((3,), {"init": 0.1}, None),
    "RMSNorm": (((3, 4),), {}, None),
    "RNN": ((4, 5), {"bidirectional": True}, None),
    "RNNBase": (("LSTM", 4, 5), {}, None),
    "RNNCell": ((4, 5), {}, None),
    "RNNCellBase": ((4, 5, True, 3), {}, None),
    "Transformer": (
        (),
        {"d_model": 8, "nhead": 2, "num_encoder_layers": 1, "num_decoder_layers": 1, "dim_feedforward": 12},
        None,
    ),
}
# the method PyTorch's class resets with (Transformer and MultiheadAttention have only the private one)
_METHOD = {"Transformer": "_reset_parameters", "MultiheadAttention": "_reset_parameters"}


def test_every_torch_module_with_reset_parameters_has_one_here() -> None:
    for method in ("reset_parameters", "_reset_parameters"):
        names = _torch_classes_with(method)
        assert names, method
        missing = [n for n in names if n not in _ABSENT and not hasattr(getattr(nn, n, None), method)]
        assert missing == [], f"downslope.nn classes without {method}: {missing}"
        assert {n for n in names if not hasattr(nn, n)} <= _ABSENT
        # and this file checks each of them
        assert {n for n in names if n not in _ABSENT} <= set(_SPECS), method


def _build(lib: Any, name: str) -> Any:
    args, kwargs, lazy_input = _SPECS[name]
    module = getattr(lib.nn, name)(*args, **kwargs)
    if lazy_input is not None:
        module(lib.ones(*lazy_input))
        assert type(module).__name__ == name.removeprefix("Lazy"), type(module)
    return module


def _state(lib: Any, module: Any) -> dict[str, Any]:
    return {**dict(module.named_parameters()), **dict(module.named_buffers())}


def _values(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy().copy() if isinstance(t, torch.Tensor) else to_host(t.detach().array).copy()


def _perturb(lib: Any, module: Any) -> None:
    """What a fold of training leaves: every weight, bias and running statistic away from its start."""
    with lib.no_grad():
        for key, t in sorted(_state(lib, module).items()):
            t.fill_(5 if key.endswith("num_batches_tracked") else 7.0)


def _reset(module: Any, name: str) -> None:
    getattr(module, _METHOD.get(name, "reset_parameters"))()


def _torch_resets(name: str, seeds: range) -> list[dict[str, np.ndarray]]:
    out = []
    for seed in seeds:
        torch.manual_seed(seed)
        ref = _build(torch, name)
        _perturb(torch, ref)
        _reset(ref, name)
        out.append({k: _values(v) for k, v in _state(torch, ref).items()})
    return out


def _same_distribution(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    """Two-sample Kolmogorov-Smirnov test (alpha = 1e-4), and for a bounded distribution (a uniform
    one: PyTorch's values never beyond a bound) the same bound within the sampling error."""
    ours, theirs = np.sort(ours.ravel()), np.sort(theirs.ravel())
    grid = np.concatenate([ours, theirs])
    gap = np.abs(
        np.searchsorted(ours, grid, side="right") / ours.size
        - np.searchsorted(theirs, grid, side="right") / theirs.size
    ).max()
    critical = math.sqrt(-math.log(1e-4 / 2) / 2) * math.sqrt((ours.size + theirs.size) / (ours.size * theirs.size))
    assert gap < critical, f"{what}: KS distance {gap:.4f} >= {critical:.4f} (not PyTorch's distribution)"
    reach, theirs_reach = np.abs(ours).max(), np.abs(theirs).max()
    if abs(theirs.std() * math.sqrt(3) / theirs_reach - 1) < 0.05:  # U(-b, b): std b / sqrt(3)
        assert reach <= theirs_reach * 1.01, f"{what}: values up to {reach}, PyTorch's bound {theirs_reach}"
        assert reach >= theirs_reach * 0.99, f"{what}: values only up to {reach}, PyTorch's bound {theirs_reach}"


@pytest.mark.parametrize("name", sorted(_SPECS))
def test_reset_matches_torch_and_keeps_the_parameters(name: str) -> None:
    ds.manual_seed(0)
    module = _build(ds, name)
    state = _state(ds, module)
    assert set(state) == set(_torch_resets(name, range(1))[0]), "names as in PyTorch"
    before = {k: id(v) for k, v in state.items()}
    params = list(module.parameters())
    optimizer = ds.optim.SGD(params, lr=1.0)  # built before the reset, as in a k-fold loop
    _perturb(ds, module)
    assert all((_values(v) != 0).all() for v in state.values()), "perturbed"

    # enough draws of each random tensor for a distribution test (PyTorch's: as many); where PyTorch's
    # reset draws nothing at random (ones, zeros, a step count: the same values on every seed), there is
    # no distribution to sample and two draws make the same comparison as thousands
    reference = _torch_resets(name, range(2))
    if any(not np.array_equal(value, reference[1][key]) for key, value in reference[0].items()):
        numel = min((int(np.prod(v.shape)) or 1) for v in state.values())
        reference += _torch_resets(name, range(2, max(2, math.ceil(3000 / numel))))
    draws = len(reference)
    samples: dict[str, list[np.ndarray]] = {k: [] for k in state}
    for _ in range(draws):
        _perturb(ds, module)
        _reset(module, name)
        for k, v in _state(ds, module).items():
            samples[k].append(_values(v))
    assert {k: id(v) for k, v in _state(ds, module).items()} == before, "the same Parameter and buffer objects"

    for key, drawn in samples.items():
        theirs = np.stack([r[key] for r in reference])
        ours = np.stack(drawn)
        assert ours.dtype == theirs.dtype, key
        fixed = (theirs == theirs[0]).all(axis=0)  # what PyTorch's reset sets to the same value each time
        np.testing.assert_array_equal(ours[:, fixed], theirs[:, fixed], err_msg=f"{name}.{key}")
        if not fixed.all():
            _same_distribution(ours[:, ~fixed], theirs[:, ~fixed], f"{name}.{key}")

    # the optimizer built before still steps the reset Parameters
    reset = {id(p): _values(p) for p in params}
    for p in params:
        p.grad = ds.ones_like(p).to(p.device)  # where p lives (conv parameters are made on the host)
    optimizer.step()
    for p in params:
        np.testing.assert_allclose(_values(p), reset[id(p)] - 1.0, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "name", ["BatchNorm2d", "LayerNorm", "GroupNorm", "RMSNorm", "PReLU", "Bilinear", "EmbeddingBag"]
)
def test_the_constructor_calls_a_subclass_reset_parameters(name: str) -> None:
    """As in PyTorch, the constructor ends with ``self.reset_parameters()``: a subclass that overrides it
    (a zero-initialized norm weight) gets its own start."""
    made = {}
    for lib in (torch, ds):
        base, zeros_ = getattr(lib.nn, name), lib.nn.init.zeros_

        class Zeroed(base):  # type: ignore[misc, valid-type]
            def reset_parameters(self, zeros_: Any = zeros_) -> None:
                super().reset_parameters()
                zeros_(self.weight)

        made[lib.__name__] = _values(Zeroed(*_SPECS[name][0], **_SPECS[name][1]).weight)
    np.testing.assert_array_equal(made["downslope"], made["torch"])
    assert not made["downslope"].any()


def test_kfold_idiom_resets_a_model_as_torch_does() -> None:
    """The reported loop: after a fold of training, every layer back at PyTorch's start values."""
    results = {}
    for lib in (torch, ds):
        lib.manual_seed(0)
        m = lib.nn.Sequential(
            lib.nn.Linear(3, 3), lib.nn.BatchNorm1d(3), lib.nn.LayerNorm(3), lib.nn.PReLU(), lib.nn.GroupNorm(1, 3)
        )
        m(lib.randn(8, 3) * 5 + 3)  # a training step moves the running statistics
        with lib.no_grad():
            m[2].weight.fill_(7.0)
            m[3].weight.fill_(0.9)
            m[4].bias.fill_(2.0)
        for layer in m.children():
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
        results[lib.__name__] = {k: _values(v) for k, v in m.state_dict().items() if not k.startswith("0.")}
    assert results["downslope"].keys() == results["torch"].keys()
    for key, expected in results["torch"].items():
        np.testing.assert_array_equal(results["downslope"][key], expected, err_msg=key)


def test_reset_on_a_device_keeps_the_data_there() -> None:
    """The statistics and weights are reset where they live (the strict stand-in for a GPU)."""
    for layer in (nn.BatchNorm2d(3), nn.PReLU(2), nn.EmbeddingBag(5, 2, padding_idx=0), nn.GroupNorm(1, 2)):
        layer.to("strict")
        _perturb(ds, layer)
        layer.reset_parameters()
        for key, t in _state(ds, layer).items():
            assert t.device == ds.device("strict"), key
        fresh = {k: _values(v) for k, v in _state(ds, type(layer)(*_args_of(layer))).items()}
        for key, t in _state(ds, layer).items():
            if key != "weight" or not isinstance(layer, nn.EmbeddingBag):
                np.testing.assert_array_equal(_values(t), fresh[key], err_msg=key)
        if isinstance(layer, nn.EmbeddingBag):
            assert not _values(layer.weight)[0].any() and _values(layer.weight)[1:].all()


def _args_of(layer: Any) -> tuple:
    if isinstance(layer, nn.BatchNorm2d):
        return (layer.num_features,)
    if isinstance(layer, nn.PReLU):
        return (layer.num_slopes,)
    if isinstance(layer, nn.EmbeddingBag):
        return (layer.num_embeddings, layer.embedding_dim)
    return (layer.num_groups, layer.num_channels)
