"""Module.load_state_dict refuses values no model should take: complex numbers (casting would drop
the imaginary part) and NaN/inf (unless asked for), naming the key, and leaves the module as it was."""

from __future__ import annotations

import re

import numpy as np
import pytest

import downslope as ds
from downslope import nn
from downslope.devices import to_host


def _pair():
    ds.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    return model, {k: to_host(v).copy() for k, v in model.state_dict().items()}  # as read from a checkpoint


@pytest.mark.parametrize(
    "key, value, fragment",
    [
        ("0.weight", np.ones((2, 3), np.complex64), "'0.weight' has dtype complex64"),
        ("0.bias", np.array(["a", "b"]), "'0.bias' has dtype <U1"),
        ("0.bias", np.array([1.0, None], dtype=object), "'0.bias' has dtype object"),
        ("0.weight", np.full((2, 3), np.nan, np.float32), "'0.weight' holds 6 NaN/infinite value(s) of 6"),
        ("0.bias", np.array([1.0, np.inf]), "'0.bias' holds 1 NaN/infinite value(s)"),
        ("1.running_var", np.array([1.0, np.nan], np.float32), "'1.running_var' holds 1 NaN value(s)"),
    ],
)
def test_refused_values_name_the_key_and_change_nothing(key, value, fragment):
    model, state = _pair()
    bad = dict(state, **{key: value})
    with pytest.raises(ds.CheckpointError) as info:
        model.load_state_dict(bad)
    assert fragment in str(info.value)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(to_host(v), state[k])


def test_nonfinite_values_load_when_asked_for():
    model, state = _pair()
    state["0.weight"][0, 0] = np.nan
    model.load_state_dict(state, allow_nonfinite=True)
    assert np.isnan(to_host(model[0].weight.array)[0, 0])


def test_complex_values_are_refused_even_when_nonfinite_values_are_allowed():
    model, state = _pair()
    state["0.bias"] = state["0.bias"].astype(np.complex128)
    with pytest.raises(ds.CheckpointError, match="complex128"):
        model.load_state_dict(state, allow_nonfinite=True)


def test_integer_and_bool_values_still_cast():
    model, state = _pair()
    state["0.bias"] = np.array([1, 2], dtype=np.int64)
    model.load_state_dict(state)
    np.testing.assert_array_equal(to_host(model[0].bias.array), np.array([1.0, 2.0], np.float32))


def test_a_buffer_may_hold_infinities_as_an_attention_mask_does():
    class Causal(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(3, 3)
            self.register_buffer("mask", ds.full((3, 3), float("-inf")).triu(1))

    source, target = Causal(), Causal()
    target.load_state_dict(source.state_dict())  # PyTorch loads it too
    assert np.isneginf(to_host(target.mask.array)[0, 1])


def test_a_shape_mismatch_is_a_runtime_error_as_in_torch():
    model, state = _pair()
    state["0.weight"] = np.zeros((3, 3), np.float32)
    with pytest.raises(RuntimeError, match="size mismatch for '0.weight'"):
        model.load_state_dict(state)


def test_every_shape_mismatch_is_listed_as_torch_lists_them():
    torch = pytest.importorskip("torch")
    names = {}
    for lib in (torch, ds):
        model = lib.nn.Sequential(lib.nn.Linear(4, 3), lib.nn.ReLU(), lib.nn.Linear(3, 2))
        state = {k: lib.zeros(*v.shape) for k, v in model.state_dict().items()}
        state["0.weight"], state["0.bias"], state["2.weight"] = lib.zeros(5, 4), lib.zeros(5), lib.zeros(2, 5)
        with pytest.raises(RuntimeError) as caught:
            model.load_state_dict(state)
        names[lib] = re.findall(r"size mismatch for '?([\w.]+)'?", str(caught.value))
    assert names[ds] == names[torch] == ["0.weight", "0.bias", "2.weight"]
