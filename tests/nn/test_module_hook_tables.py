"""Module's hook tables (src/downslope/nn/module/base.py): ``_forward_pre_hooks``, ``_forward_hooks``,
``_backward_hooks`` and ``_backward_pre_hooks`` hold hook id -> hook in call order, as torch's do."""

from __future__ import annotations

from collections import OrderedDict

import pytest

import downslope as ds
from downslope import nn

torch = pytest.importorskip("torch")


def _tables(module):
    return [module._forward_pre_hooks, module._forward_hooks, module._backward_hooks, module._backward_pre_hooks]


@pytest.mark.parametrize("lib", [ds, torch], ids=["downslope", "torch"])
def test_register_fills_the_tables_in_order_and_remove_empties_them(lib):
    layer = lib.nn.Linear(2, 2)
    assert all(isinstance(t, OrderedDict) and not t for t in _tables(layer))

    def pre(m, args):
        return None

    def pre_first(m, args):
        return None

    def fwd(m, args, out):
        return None

    def bwd(m, gi, go):
        return None

    def bwd_pre(m, go):
        return None

    handles = [
        layer.register_forward_pre_hook(pre),
        layer.register_forward_pre_hook(pre_first, prepend=True),
        layer.register_forward_hook(fwd),
        layer.register_full_backward_hook(bwd),
        layer.register_full_backward_pre_hook(bwd_pre),
    ]
    assert list(layer._forward_pre_hooks.values()) == [pre_first, pre]
    assert list(layer._forward_pre_hooks) == [handles[1].id, handles[0].id]
    assert list(layer._forward_hooks.values()) == [fwd]
    assert list(layer._backward_hooks.values()) == [bwd]
    assert list(layer._backward_pre_hooks.values()) == [bwd_pre]
    for h in handles:
        h.remove()
    assert not any(_tables(layer))


def test_a_hook_put_into_the_table_runs_and_deleting_it_stops_it():
    calls = []
    layer = nn.Linear(2, 2)
    layer._forward_pre_hooks[12345] = lambda m, args: calls.append("pre")
    layer(ds.ones(1, 2))
    del layer._forward_pre_hooks[12345]
    layer(ds.ones(1, 2))
    assert calls == ["pre"]


def test_reading_a_table_does_not_change_the_result_of_a_call():
    layer = nn.Linear(2, 2)
    model = nn.Sequential(layer, nn.ReLU())
    before = model(ds.ones(1, 2)).detach().numpy()
    assert not layer._forward_hooks
    assert (model(ds.ones(1, 2)).detach().numpy() == before).all()
