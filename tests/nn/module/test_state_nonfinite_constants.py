"""load_state_dict takes back non-finite values a module holds on purpose (a pointer network's
``Parameter(tensor([-inf]), requires_grad=False)``, as torch loads it) and still refuses a diverged
weight: non-finite entries load only where the module already holds the same value."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import nn


class PointerNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self._inf = nn.Parameter(ds.FloatTensor([float("-inf")]), requires_grad=False)
        self.register_buffer("sentinel", ds.tensor([1.0, float("nan")]))
        self.l = nn.Linear(2, 2)


def test_a_module_loads_its_own_state_dict_with_an_infinite_constant():
    torch = pytest.importorskip("torch")

    class TorchPointerNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self._inf = torch.nn.Parameter(torch.FloatTensor([float("-inf")]), requires_grad=False)
            self.l = torch.nn.Linear(2, 2)

    assert str(TorchPointerNet().load_state_dict(TorchPointerNet().state_dict())) == "<All keys matched successfully>"
    model = PointerNet()
    state = PointerNet().state_dict()
    assert str(model.load_state_dict(state)) == "<All keys matched successfully>"
    np.testing.assert_array_equal(model.l.weight.detach().numpy(), state["l.weight"].numpy())
    assert float(model._inf) == float("-inf")


def test_a_diverged_weight_is_still_refused():
    model = PointerNet()
    state = {k: v.numpy().copy() for k, v in PointerNet().state_dict().items()}
    state["l.weight"][0, 0] = np.nan
    with pytest.raises(ds.CheckpointError, match="'l.weight' holds 1 NaN/infinite value"):
        model.load_state_dict(state)
    assert model.load_state_dict(state, allow_nonfinite=True) is not None


@pytest.mark.parametrize(
    "key, value",
    [
        ("_inf", np.array([np.inf], np.float32)),  # another infinity than the module holds
        ("_inf", np.array([np.nan], np.float32)),
        ("sentinel", np.array([np.nan, np.nan], np.float32)),  # a NaN where the module holds 1.0
    ],
)
def test_only_the_same_value_at_the_same_place_loads(key, value):
    model = PointerNet()
    state = dict(PointerNet().state_dict(), **{key: value})
    with pytest.raises(ds.CheckpointError, match=f"'{key}' holds 1 NaN"):
        model.load_state_dict(state)


def test_the_same_nan_at_the_same_place_loads():
    model = PointerNet()
    state = dict(PointerNet().state_dict(), sentinel=np.array([2.0, np.nan], np.float32))
    model.load_state_dict(state)
    np.testing.assert_array_equal(model.sentinel.numpy(), [2.0, np.nan])
