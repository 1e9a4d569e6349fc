"""The containers' list and dict operations (slicing, +, +=, *, update, item assignment) against PyTorch."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _params(lib: Any) -> list[Any]:
    return [lib.nn.Parameter(lib.ones(n)) for n in (1, 2, 3)]


@pytest.mark.parametrize("index", [slice(1, None), slice(None, None, -1), slice(0, 3, 2), slice(5, 9)])
def test_parameter_list_slices_as_torch(index: slice) -> None:
    seen = []
    for lib in (torch, ds):
        ps = _params(lib)
        pl = lib.nn.ParameterList(ps)
        part = pl[index]
        ids = [next(i for i, p in enumerate(ps) if p is q) for q in part]  # the same Parameter objects
        seen.append((type(part).__name__, ids, [n for n, _ in part.named_parameters()]))
    assert seen[0] == seen[1]


def test_parameter_list_plus_equals_extends_as_torch() -> None:
    seen = []
    for lib in (torch, ds):
        pl = lib.nn.ParameterList([lib.nn.Parameter(lib.ones(1))])
        before = pl
        pl += [lib.nn.Parameter(lib.zeros(2)), lib.zeros(3)]
        seen.append((pl is before, type(pl).__name__, [(n, tuple(p.shape)) for n, p in pl.named_parameters()]))
        with pytest.raises(TypeError):
            pl.extend(lib.ones(2))  # a tensor is not unpacked into rows
        seen.append(len(pl))
    assert seen[:2] == seen[2:]


def _structure(seq: Any, originals: list[Any]) -> tuple[Any, ...]:
    return (
        type(seq).__name__,
        len(seq),
        [next(i for i, m in enumerate(originals) if m is layer) for layer in seq],  # the same layer objects
        [n for n, _ in seq.named_children()],
        len(list(seq.parameters())),
    )


def test_sequential_multiplication_repeats_the_same_layers_as_torch() -> None:
    seen = []
    for lib in (torch, ds):
        lib.manual_seed(0)
        layers = [lib.nn.Linear(2, 2), lib.nn.Tanh()]
        seq = lib.nn.Sequential(*layers)
        row = [_structure(seq * 2, layers), _structure(3 * seq, layers)]
        same = seq
        seq *= 2
        row.append((seq is same, _structure(seq, layers)))
        x = lib.tensor([[0.5, -1.0]])
        twice = layers[1](layers[0](layers[1](layers[0](x))))
        row.append(bool((seq(x) == twice).all()))
        for bad, error in ((0, ValueError), (-1, ValueError), (1.5, TypeError)):
            with pytest.raises(error):
                seq * bad
        with pytest.raises(ValueError):
            seq + [lib.nn.ReLU()]
        with pytest.raises(ValueError):
            seq += [lib.nn.ReLU()]
        seen.append(row)
    assert seen[0] == seen[1]


def test_sequential_item_assignment_keeps_the_layer_names_as_torch() -> None:
    seen = []
    for lib in (torch, ds):
        seq = lib.nn.Sequential(OrderedDict(conv=lib.nn.ReLU(), act=lib.nn.ReLU(), out=lib.nn.ReLU()))
        seq[1] = lib.nn.Tanh()
        seq[-1] = lib.nn.Sigmoid()
        seen.append(([n for n, _ in seq.named_children()], [type(m).__name__ for m in seq], type(seq.act).__name__))
    assert seen[0] == seen[1]


def test_module_dict_updates_from_another_module_dict_as_torch() -> None:
    seen = []
    for lib in (torch, ds):
        md = lib.nn.ModuleDict({"b": lib.nn.ReLU()})
        md.update(lib.nn.ModuleDict({"z": lib.nn.Tanh(), "a": lib.nn.ReLU()}))
        md.update(OrderedDict(y=lib.nn.ReLU()))
        md.update([("c", lib.nn.ReLU())])
        seen.append([(k, type(m).__name__) for k, m in md.items()])
    assert seen[0] == seen[1]


def test_module_list_edits_as_torch() -> None:
    seen = []
    for lib in (torch, ds):
        names = ["ReLU", "Tanh", "Sigmoid", "ReLU6", "ELU"]
        ml = lib.nn.ModuleList([getattr(lib.nn, n)() for n in names])
        row: list[Any] = [[type(m).__name__ for m in ml[1:4:2]], type(ml[1:]).__name__]
        row.append([type(m).__name__ for m in ml + [lib.nn.GELU()]])
        ml += [lib.nn.GELU()]
        ml.insert(1, lib.nn.SiLU())
        del ml[::3]
        taken = ml.pop(0)
        row.append((type(taken).__name__, [type(m).__name__ for m in ml], [n for n, _ in ml.named_children()]))
        seen.append(row)
    assert seen[0] == seen[1]


def test_sequential_runs_a_layer_replaced_by_a_hook_during_the_pass_as_torch() -> None:
    outs = []
    for lib in (torch, ds):
        seq = lib.nn.Sequential(lib.nn.Identity(), lib.nn.ReLU(), lib.nn.Identity())

        def swap(module: Any, args: Any, out: Any, seq: Any = seq, lib: Any = lib) -> None:
            seq[1] = lib.nn.Tanh()  # replaces the next layer while the Sequential runs

        seq[0].register_forward_hook(swap)
        outs.append(seq(lib.tensor([[-1.0, 2.0]])).tolist()[0])
    assert outs[1] == pytest.approx(outs[0])


def test_global_forward_hooks_see_the_layers_of_a_fused_pair_as_torch() -> None:
    # Sequential runs ReLU then MaxPool2d as one fused op: not while a global hook must see each layer
    seen: dict[str, list[str]] = {}
    outs = []
    for lib in (torch, ds):
        calls: list[str] = seen.setdefault(lib.__name__, [])
        lib.manual_seed(0)
        seq = lib.nn.Sequential(lib.nn.Conv2d(1, 1, 1), lib.nn.ReLU(), lib.nn.MaxPool2d(2))
        handle = lib.nn.modules.module.register_module_forward_hook(
            lambda m, i, o, calls=calls: calls.append(type(m).__name__)
        )
        try:
            outs.append(seq(lib.arange(16.0).reshape(1, 1, 4, 4) - 8).shape)
        finally:
            handle.remove()
    assert seen["downslope"] == seen["torch"] == ["Conv2d", "ReLU", "MaxPool2d", "Sequential"]
    assert tuple(outs[0]) == tuple(outs[1])
