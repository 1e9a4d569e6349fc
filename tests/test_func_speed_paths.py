"""The per-element paths of torch.func's loops: functional_call resolves the module's tensors in one walk
(not through named_parameters' and named_buffers' generators) and vmap indexes a constant argument
element by element (not through unbind); the results stay torch's."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import nn

torch = pytest.importorskip("torch")


def _net(lib: Any) -> Any:
    lib.manual_seed(0)
    block = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.BatchNorm1d(4), lib.nn.Tanh())
    return lib.nn.Sequential(block, lib.nn.Linear(4, 3), block)  # a shared submodule: listed under two paths


def _state(lib: Any, model: Any) -> dict[str, Any]:
    gen = np.random.default_rng(1)
    named = dict(model.named_parameters(remove_duplicate=False)) | dict(model.named_buffers(remove_duplicate=False))
    out = {}
    for k, v in named.items():
        if k.startswith("2."):
            continue  # given under one path only: tie_weights gives it under the other
        arr = gen.standard_normal(tuple(v.shape)) if v.dtype != lib.int64 else np.array(0)
        if k.endswith("running_var"):
            arr = np.abs(arr) + 0.5  # a variance
        out[k] = lib.tensor(arr, dtype=v.dtype)
    return out


def _per_sample_grads(lib: Any) -> list[np.ndarray]:
    model = _net(lib).eval()
    state = _state(lib, model)
    params = {k: v for k, v in state.items() if "running" not in k and "num_batches" not in k}
    buffers = {k: v for k, v in state.items() if k not in params}
    x = lib.tensor(np.random.default_rng(2).standard_normal((5, 3)))
    x = x.to(lib.float32)

    def loss(p: Any, xi: Any) -> Any:
        return (lib.func.functional_call(model, (p, buffers), (xi[None],)) ** 2).sum()

    grads = lib.func.vmap(lib.func.grad(loss), in_dims=(None, 0))(params, x)
    return [grads[k].detach().numpy() for k in sorted(grads)]


def test_vmap_grad_functional_call_with_shared_modules_and_buffers_matches_torch() -> None:
    ours, theirs = _per_sample_grads(ds), _per_sample_grads(torch)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert np.isfinite(a).all()
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_functional_call_walks_the_module_tree_once(monkeypatch: pytest.MonkeyPatch) -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    params = {k: v.detach() * 2 for k, v in model.named_parameters()}
    expected = ds.func.functional_call(model, params, (ds.ones(2, 3),))
    walks = []
    original = nn.Module.named_modules

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        walks.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(nn.Module, "named_modules", counted)
    model(ds.ones(2, 3))
    plain = len(walks)  # the module's own call (none, unless a test plugin walks it)
    walks.clear()
    out = ds.func.functional_call(model, params, (ds.ones(2, 3),))
    assert len(walks) == plain  # was two more per call (named_parameters, then named_buffers)
    np.testing.assert_array_equal(out.numpy(), expected.numpy())
    np.testing.assert_array_equal(model[0].weight.detach().numpy(), (params["0.weight"] / 2).numpy())  # restored


def test_functional_call_uses_an_overridden_named_parameters() -> None:
    class Renamed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = nn.Linear(2, 1)

        def named_parameters(self, *args: Any, **kwargs: Any) -> Any:
            return iter([("inner.weight", self.inner.weight)])  # the bias left out on purpose

        def forward(self, x: Any) -> Any:
            return self.inner(x)

    model = Renamed()
    with pytest.warns(UserWarning, match="has no parameters or buffers"):
        ds.func.functional_call(model, {"inner.weight": ds.ones(1, 2), "inner.bias": ds.zeros(1)}, (ds.ones(1, 2),))


def test_functional_call_tied_weights_under_many_names_as_torch() -> None:
    results = []
    for lib in (ds, torch):
        lib.manual_seed(0)
        layers = [lib.nn.Linear(3, 3, bias=False) for _ in range(4)]
        for layer in layers[1:]:
            layer.weight = layers[0].weight  # one tensor under four names
        model = lib.nn.Sequential(*layers)
        w = lib.tensor(np.arange(9.0).reshape(3, 3) / 10, dtype=lib.float32)
        out = lib.func.functional_call(model, {"2.weight": w}, (lib.ones(1, 3),))
        results.append(out.detach().numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6)


def test_vmap_over_a_constant_indexes_each_element_instead_of_unbinding(monkeypatch: pytest.MonkeyPatch) -> None:
    x = ds.tensor(np.arange(24.0).reshape(4, 3, 2))
    calls = []
    original = ds.Tensor.unbind

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ds.Tensor, "unbind", counted)
    monkeypatch.setattr(ds.func, "BATCHING", False)  # the per-element loop (vmap's fallback) is what is checked
    for dim in (0, 1, 2):
        out = ds.vmap(lambda e: e * 2, in_dims=dim, out_dims=dim)(x)
        np.testing.assert_array_equal(out.numpy(), x.numpy() * 2)
    assert calls == []
    w = ds.tensor(np.ones((4, 3)), requires_grad=True)  # recorded: still one multi-output view, as torch's
    ds.vmap(lambda e: e.sum())(w).sum().backward()
    assert len(calls) == 1
    np.testing.assert_array_equal(w.grad.numpy(), np.ones((4, 3)))


def test_vmap_slices_of_a_constant_match_torch() -> None:
    arr = np.random.default_rng(0).standard_normal((3, 4, 5))
    for dim in (0, 1, -1):
        ours = ds.vmap(lambda e: e.cumsum(0) * e[0], in_dims=dim)(ds.tensor(arr, dtype=ds.float64))
        theirs = torch.vmap(lambda e: e.cumsum(0) * e[0], in_dims=dim)(torch.tensor(arr))
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)


def test_the_one_walk_lists_what_named_parameters_and_named_buffers_list_in_their_order() -> None:
    from downslope import func

    shared = nn.Linear(2, 2, bias=False)  # a None bias entry
    model = nn.Sequential(
        nn.Sequential(shared, nn.BatchNorm1d(2)),
        nn.ModuleDict({"b": nn.Linear(2, 3), "a": shared}),
        nn.LSTM(3, 2),
    )
    model.register_buffer("scale", ds.ones(1))
    known, owners = func._named_tensors(model)
    expected = dict(model.named_parameters(remove_duplicate=False)) | dict(model.named_buffers(remove_duplicate=False))
    assert list(known) == list(expected)
    assert all(known[k] is expected[k] for k in expected)
    assert all(owners[k.rpartition(".")[0]] is model.get_submodule(k.rpartition(".")[0]) for k in expected)
