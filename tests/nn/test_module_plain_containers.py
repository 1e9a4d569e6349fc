"""A plain list, tuple or dict of layers on a Module: the warning that their parameters are not registered
waits for the first parameters() or state_dict(), so fast.ai's pattern (assign the list, then register
each layer with add_module) stays quiet, as in torch, while a list whose layers are never registered
still warns."""

from __future__ import annotations

import warnings

import pytest

import downslope as ds
from downslope import nn

torch = pytest.importorskip("torch")


def _fastai_model(lib: object, register: bool) -> object:
    class Model(lib.nn.Module):  # type: ignore[attr-defined,name-defined,misc]
        def __init__(self, layers: list[object]) -> None:
            super().__init__()
            self.layers = layers
            if register:
                for i, layer in enumerate(self.layers):
                    self.add_module(f"layer_{i}", layer)

        def forward(self, x: object) -> object:
            for layer in self.layers:
                x = layer(x)
            return x

    return Model([lib.nn.Linear(2, 3), lib.nn.ReLU(), lib.nn.Linear(3, 1)])  # type: ignore[attr-defined]


def test_layers_registered_with_add_module_after_the_list_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = _fastai_model(ds, register=True)
        names = [name for name, _ in model.named_parameters()]  # type: ignore[attr-defined]
        state = model.state_dict()  # type: ignore[attr-defined]
        ds.optim.SGD(model.parameters(), lr=0.1)  # type: ignore[attr-defined]
        model(ds.ones(4, 2))  # type: ignore[operator]
    torch_model = _fastai_model(torch, register=True)
    assert names == [name for name, _ in torch_model.named_parameters()]  # type: ignore[attr-defined]
    assert list(state) == list(torch_model.state_dict())  # type: ignore[attr-defined]


def test_layers_never_registered_warn_at_the_first_parameters_call_once() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = _fastai_model(ds, register=False)  # nothing yet: add_module may still come
    with pytest.warns(UserWarning, match=r"Model.layers is a plain list of layers.*nn.ModuleList") as record:
        params = list(model.parameters())  # type: ignore[attr-defined]
    assert params == [] == list(_fastai_model(torch, register=False).parameters())  # type: ignore[attr-defined]
    assert record[0].filename == __file__  # the warning points at the caller, not at downslope
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(model.parameters())  # type: ignore[attr-defined]  # once


def test_state_dict_and_an_optimizer_trigger_the_warning_too() -> None:
    with pytest.warns(UserWarning, match="plain list of layers") as record:
        _fastai_model(ds, register=False).state_dict()  # type: ignore[attr-defined]
    assert record[0].filename == __file__

    class Heads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.heads = {"cls": nn.Linear(2, 3), "reg": nn.Linear(2, 1)}
            self.bias = nn.Parameter(ds.zeros(1))

    with pytest.warns(UserWarning, match=r"Heads.heads is a plain dict of layers.*nn.ModuleDict") as record:
        ds.optim.SGD(Heads().parameters(), lr=0.1)
    assert record[0].filename == __file__


def test_only_the_layers_left_unregistered_count() -> None:
    class Partly(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = [nn.Linear(2, 2), nn.Linear(2, 2)]
            self.first = self.layers[0]  # one of the two registered

    with pytest.warns(UserWarning, match="Partly.layers"):
        Partly().num_parameters()

    class Replaced(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = [nn.Linear(2, 2)]
            self.layers = nn.ModuleList(self.layers)  # wrapped after all

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Replaced().num_parameters() == 6


def test_a_pending_list_elsewhere_is_not_judged_by_another_modules_parameters() -> None:
    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = [nn.Linear(2, 2)]
            helper = nn.Linear(2, 2)
            list(helper.parameters())  # another module's parameters, before add_module
            self.add_module("layer_0", self.layers[0])

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Model().num_parameters() == 6
