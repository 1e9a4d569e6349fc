"""The order of ParameterDict's and ModuleDict's entries (hence of parameters() and state_dict()) as torch's:
a plain mapping's items sorted in a ParameterDict, an OrderedDict's, a ParameterDict's and pairs' kept."""

from __future__ import annotations

from collections import OrderedDict

import pytest

import downslope as ds

torch = pytest.importorskip("torch")

VALUES = {"user": [1.0], "item": [2.0], "tag": [3.0]}


def _params(lib, make=dict):  # type: ignore[no-untyped-def]
    return make((k, lib.nn.Parameter(lib.tensor(v))) for k, v in VALUES.items())


def _order(pd):  # type: ignore[no-untyped-def]
    return list(pd.keys()), [p.item() for p in pd.parameters()], list(pd.state_dict())


@pytest.mark.parametrize("make", [dict, OrderedDict, list], ids=["dict", "OrderedDict", "pairs"])
def test_parameter_dict_built_from_mapping_or_pairs_orders_as_torch(make) -> None:  # type: ignore[no-untyped-def]
    ours = ds.nn.ParameterDict(_params(ds, make))
    theirs = torch.nn.ParameterDict(_params(torch, make))
    assert _order(ours) == _order(theirs)


@pytest.mark.parametrize("make", [dict, OrderedDict, list], ids=["dict", "OrderedDict", "pairs"])
def test_parameter_dict_update_orders_as_torch(make) -> None:  # type: ignore[no-untyped-def]
    ours = ds.nn.ParameterDict(OrderedDict(z=ds.nn.Parameter(ds.tensor([0.0]))))
    theirs = torch.nn.ParameterDict(OrderedDict(z=torch.nn.Parameter(torch.tensor([0.0]))))
    ours.update(_params(ds, make))
    theirs.update(_params(torch, make))
    assert _order(ours) == _order(theirs)


def test_parameter_dict_copy_fromkeys_and_union_order_as_torch() -> None:
    ours = ds.nn.ParameterDict(_params(ds, OrderedDict))
    theirs = torch.nn.ParameterDict(_params(torch, OrderedDict))
    assert _order(ours.copy()) == _order(theirs.copy())
    assert list(ours.fromkeys(["b", "a"]).keys()) == list(theirs.fromkeys(["b", "a"]).keys())
    extra = {"zeta": [5.0], "alpha": [4.0]}
    merged = ours | {k: ds.nn.Parameter(ds.tensor(v)) for k, v in extra.items()}
    expected = theirs | {k: torch.nn.Parameter(torch.tensor(v)) for k, v in extra.items()}
    assert _order(merged) == _order(expected)
    ours |= ds.nn.ParameterDict(OrderedDict((k, ds.nn.Parameter(ds.tensor(v))) for k, v in extra.items()))
    theirs |= torch.nn.ParameterDict(OrderedDict((k, torch.nn.Parameter(torch.tensor(v))) for k, v in extra.items()))
    assert _order(ours) == _order(theirs)


@pytest.mark.parametrize("make", [dict, OrderedDict, list], ids=["dict", "OrderedDict", "pairs"])
def test_module_dict_keeps_the_order_of_any_mapping_as_torch(make) -> None:  # type: ignore[no-untyped-def]
    names = ["user", "item", "tag"]
    ours = ds.nn.ModuleDict(make((n, ds.nn.Linear(1, 1)) for n in names))
    theirs = torch.nn.ModuleDict(make((n, torch.nn.Linear(1, 1)) for n in names))
    assert list(ours.keys()) == list(theirs.keys())
    assert list(ours.state_dict()) == list(theirs.state_dict())
