"""load_state_dict against torch on old checkpoints and on checkpoints with several problems: a 0-d
buffer or parameter stored in 1-d with one element (old checkpoints' ``num_batches_tracked``) loads, and
missing keys, unexpected keys and size mismatches found in one load are reported in one message; with and
without load hooks (which take the module-by-module walk)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ShapeError, StateDictError

torch = pytest.importorskip("torch")

_HOOKED = [False, True]


def _hook(module: Any, hooked: bool) -> Any:
    if hooked:  # any load hook makes the load walk module by module, as torch's always does
        module.register_load_state_dict_post_hook(lambda m, keys: None)
    return module


class _Scalar:
    """A module with a 0-d parameter and a 0-d buffer (a learned temperature, a step count)."""

    @staticmethod
    def make(lib: Any) -> Any:
        class Scalar(lib.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.temperature = lib.nn.Parameter(lib.tensor(1.0, dtype=lib.float64))
                self.register_buffer("steps", lib.tensor(0))

        return Scalar()


@pytest.mark.parametrize("hooked", _HOOKED)
@pytest.mark.parametrize("assign", [False, True])
def test_a_one_element_1d_value_loads_into_a_0d_buffer_as_torch(hooked: bool, assign: bool) -> None:
    seen = []
    for lib in (torch, ds):
        bn = _hook(lib.nn.BatchNorm1d(2), hooked)
        sd = bn.state_dict()
        sd["num_batches_tracked"] = lib.tensor([3])
        bn.load_state_dict(sd, assign=assign)
        nbt = bn.num_batches_tracked
        seen.append((tuple(nbt.shape), nbt.item(), str(nbt.dtype).replace("torch.", "")))
    assert seen[1] == seen[0]


@pytest.mark.parametrize("hooked", _HOOKED)
@pytest.mark.parametrize("assign", [False, True])
def test_a_one_element_1d_value_loads_into_a_0d_parameter_as_torch(hooked: bool, assign: bool) -> None:
    seen = []
    for lib in (torch, ds):
        m = _hook(_Scalar.make(lib), hooked)
        m.load_state_dict(
            {"temperature": lib.tensor([0.25], dtype=lib.float64), "steps": lib.tensor([7])}, assign=assign
        )
        seen.append(
            (tuple(m.temperature.shape), m.temperature.item(), isinstance(m.temperature, lib.nn.Parameter),
             tuple(m.steps.shape), m.steps.item())
        )  # fmt: skip
    assert seen[1] == seen[0]


@pytest.mark.parametrize("hooked", _HOOKED)
def test_a_longer_1d_value_for_a_0d_entry_is_a_size_mismatch(hooked: bool) -> None:
    # torch silently takes the first of several elements; here only a one-element value is taken as the 0-d one
    m = _hook(_Scalar.make(ds), hooked)
    with pytest.raises(ShapeError, match=r"size mismatch for 'steps': the checkpoint has shape \(3,\)"):
        m.load_state_dict({"temperature": ds.tensor(0.5, dtype=ds.float64), "steps": ds.tensor([1, 2, 3])})
    assert m.steps.item() == 0


def _problems(message: str) -> dict[str, list[str]]:
    """The keys a load error names, by kind (torch's and downslope's wordings)."""
    found = {}
    for kind in ("Missing", "Unexpected"):
        match = re.search(kind + r' key\(s\) in state_dict: ((?:"[\w.]+"(?:, )?)+)', message)
        found[kind.lower()] = re.findall(r'"([\w.]+)"', match.group(1)) if match else []
    found["size"] = re.findall(r"size mismatch for '?([\w.]+)'?", message)
    return found


@pytest.mark.parametrize("hooked", _HOOKED)
def test_missing_unexpected_and_mismatched_keys_are_reported_together_as_torch(hooked: bool) -> None:
    found = []
    for lib in (torch, ds):
        m = _hook(lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.Linear(2, 3), lib.nn.Linear(3, 1)), hooked)
        sd = {
            "0.weight": lib.ones(2, 2), "0.bias": lib.ones(2), "1.weight": lib.ones(4, 2), "2.weight": lib.ones(1, 3),
            "2.bias": lib.ones(2), "zzz": lib.ones(1),
        }  # fmt: skip
        with pytest.raises(RuntimeError) as caught:
            m.load_state_dict(sd)
        if lib is ds:
            assert isinstance(caught.value, StateDictError)  # the class of a load with missing keys
        found.append(_problems(str(caught.value)))
    assert found[1] == found[0]
    assert found[0] == {"missing": ["1.bias"], "unexpected": ["zzz"], "size": ["1.weight", "2.bias"]}


@pytest.mark.parametrize("hooked", _HOOKED)
def test_size_mismatches_alone_keep_their_class(hooked: bool) -> None:
    m = _hook(ds.nn.Sequential(ds.nn.Linear(2, 2), ds.nn.Linear(2, 3)), hooked)
    sd = {k: ds.zeros(*v.shape) for k, v in m.state_dict().items()}
    sd["1.weight"], sd["0.bias"] = ds.ones(4, 2), ds.ones(3)
    with pytest.raises(ShapeError) as caught:
        m.load_state_dict(sd)
    assert _problems(str(caught.value))["size"] == ["0.bias", "1.weight"]


def test_a_hooked_load_with_a_mismatch_loads_the_other_modules_as_torch() -> None:
    values = []
    for lib in (torch, ds):
        lib.manual_seed(0)
        m = _hook(lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.Linear(2, 3)), True)
        before = m[0].weight.detach().numpy().copy()
        sd = {"0.weight": lib.ones(2, 2), "0.bias": lib.ones(5), "1.weight": lib.ones(3, 2), "1.bias": lib.ones(3)}
        with pytest.raises(RuntimeError, match="size mismatch"):
            m.load_state_dict(sd)
        values.append((m[1].weight.detach().numpy().copy(), m[1].bias.detach().numpy().copy()))
        if lib is ds:  # downslope writes none of a module's values when one of them does not fit
            np.testing.assert_array_equal(m[0].weight.detach().numpy(), before)
    np.testing.assert_array_equal(values[1][0], values[0][0])
    np.testing.assert_array_equal(values[1][1], values[0][1])
