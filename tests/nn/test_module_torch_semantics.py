"""Module mechanics that follow PyTorch's rules: registration refuses to replace an attribute of
another kind, names are checked, ``_load_from_state_dict`` overrides run, casts keep gradients,
``nn.Parameter`` of integer data, and the repr layout. Each is checked against torch itself."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import nn

torch = pytest.importorskip("torch")


def _outcome(fn: Callable[[Any], Any], lib: Any) -> tuple[str, str]:
    """("ok", repr of the result) or (the builtin exception kind, the message), for comparing libraries."""
    try:
        return "ok", repr(fn(lib))
    except Exception as exc:  # noqa: BLE001 - the kind is what is compared
        message = str(exc.args[0]) if exc.args else str(exc)
        for kind in (KeyError, RuntimeError, TypeError, ValueError, AttributeError):
            if isinstance(exc, kind):
                return kind.__name__, message
        return type(exc).__name__, message


def _linear_with_plain_attr(T: Any) -> Any:
    m = T.nn.Linear(2, 2)
    m.foo = 3
    return m


def _with_buffer(T: Any) -> Any:
    m = T.nn.Linear(2, 2)
    m.register_buffer("b", T.ones(1))
    return m


REFUSED: dict[str, Callable[[Any], Any]] = {
    "buffer_over_parameter": lambda T: T.nn.Linear(2, 2).register_buffer("weight", T.ones(1)),
    "parameter_over_plain_attr": lambda T: _linear_with_plain_attr(T).register_parameter(
        "foo", T.nn.Parameter(T.ones(1))
    ),
    "buffer_over_plain_attr": lambda T: _linear_with_plain_attr(T).register_buffer("foo", T.ones(1)),
    "parameter_over_buffer": lambda T: _with_buffer(T).register_parameter("b", T.nn.Parameter(T.ones(1))),
    "parameter_over_method": lambda T: T.nn.Linear(2, 2).register_parameter("forward", None),
    "module_over_parameter": lambda T: T.nn.Linear(2, 2).add_module("weight", T.nn.ReLU()),
    "module_over_plain_attr": lambda T: _linear_with_plain_attr(T).add_module("foo", T.nn.ReLU()),
    "buffer_over_child": lambda T: T.nn.Sequential(T.nn.ReLU()).register_buffer("0", T.ones(1)),
    "assign_module_to_parameter": lambda T: setattr(T.nn.Linear(2, 2), "weight", T.nn.ReLU()),
    "assign_tensor_to_parameter": lambda T: setattr(T.nn.Linear(2, 2), "weight", T.ones(2)),
    "assign_int_to_parameter": lambda T: setattr(T.nn.Linear(2, 2), "weight", 3),
    "assign_buffer_to_parameter": lambda T: setattr(T.nn.Linear(2, 2), "weight", T.nn.Buffer(T.ones(1))),
    "assign_int_to_buffer": lambda T: setattr(_with_buffer(T), "b", 5),
    "assign_int_to_child": lambda T: setattr(T.nn.Sequential(T.nn.ReLU()), "0", 5),
    "assign_tensor_to_child": lambda T: setattr(T.nn.Sequential(T.nn.ReLU()), "0", T.ones(1)),
    "register_tensor_as_parameter": lambda T: T.nn.Linear(2, 2).register_parameter("x", T.ones(1)),
    "register_int_as_buffer": lambda T: T.nn.Linear(2, 2).register_buffer("x", 3),
    "add_module_int": lambda T: T.nn.Linear(2, 2).add_module("x", 3),
    "parameter_name_int": lambda T: T.nn.Linear(2, 2).register_parameter(3, None),
    "buffer_name_int": lambda T: T.nn.Linear(2, 2).register_buffer(3, None),
    "module_name_int": lambda T: T.nn.Linear(2, 2).add_module(3, None),
}
for _name in ("a.b", ""):
    REFUSED[f"parameter_name_{_name!r}"] = lambda T, n=_name: T.nn.Linear(2, 2).register_parameter(n, None)
    REFUSED[f"buffer_name_{_name!r}"] = lambda T, n=_name: T.nn.Linear(2, 2).register_buffer(n, None)
    REFUSED[f"module_name_{_name!r}"] = lambda T, n=_name: T.nn.Linear(2, 2).add_module(n, None)
    REFUSED[f"register_module_{_name!r}"] = lambda T, n=_name: T.nn.Linear(2, 2).register_module(n, None)
    REFUSED[f"moduledict_key_{_name!r}"] = lambda T, n=_name: T.nn.ModuleDict().__setitem__(n, T.nn.ReLU())
    REFUSED[f"moduledict_init_{_name!r}"] = lambda T, n=_name: T.nn.ModuleDict({n: T.nn.ReLU()})
    REFUSED[f"parameterdict_key_{_name!r}"] = lambda T, n=_name: T.nn.ParameterDict({n: T.nn.Parameter(T.ones(1))})


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_registration_refusals_match_torch(case: str) -> None:
    kind_t, msg_t = _outcome(REFUSED[case], torch)
    kind_d, msg_d = _outcome(REFUSED[case], ds)
    assert kind_t != "ok", "the case is meant to be refused by torch"
    assert kind_d == kind_t, f"torch: {kind_t}: {msg_t}; downslope: {kind_d}: {msg_d}"
    # PyTorch's words, with downslope's names ('nn.Parameter' for 'torch.nn.Parameter' and so on)
    normalized = msg_t.replace("torch.nn.modules.activation.", "downslope.nn.activation.")
    normalized = (
        normalized.replace("torch.nn.", "nn.").replace("torch Tensor", "Tensor").replace("torch.Tensor", "Tensor")
    )
    assert normalized.split(" (")[0] in msg_d


ALLOWED: dict[str, Callable[[Any], Any]] = {
    "reregister_buffer": lambda T: _with_buffer(T).register_buffer("b", T.zeros(1)) or "done",
    "reregister_parameter": lambda T: T.nn.Linear(2, 2).register_parameter("weight", None) or "done",
    "parameter_replaces_child": lambda T: _kinds(_set(T.nn.Sequential(T.nn.ReLU()), "0", T.nn.Parameter(T.ones(1)))),
    "parameter_replaces_buffer": lambda T: _kinds(_set(_with_buffer(T), "b", T.nn.Parameter(T.ones(1)))),
    "module_replaces_buffer": lambda T: _kinds(_set(_with_buffer(T), "b", T.nn.ReLU())),
    "parameter_replaces_plain_attr": lambda T: _kinds(
        _set(_linear_with_plain_attr(T), "foo", T.nn.Parameter(T.ones(1)))
    ),
    "none_over_parameter": lambda T: _kinds(_set(T.nn.Linear(2, 2), "bias", None)),
    "none_over_child": lambda T: _kinds(_set(T.nn.Sequential(T.nn.ReLU()), "0", None)),
    "reassign_parameter_keeps_order": lambda T: _kinds(_set(T.nn.Linear(2, 2), "weight", T.nn.Parameter(T.ones(2, 2)))),
}


def _set(m: Any, name: str, value: Any) -> Any:
    setattr(m, name, value)
    return m


def _kinds(m: Any) -> tuple[list[str], list[str], list[str]]:
    return list(m._parameters), list(m._buffers), list(m._modules)


@pytest.mark.parametrize("case", sorted(ALLOWED))
def test_allowed_reassignments_match_torch(case: str) -> None:
    assert _outcome(ALLOWED[case], ds) == _outcome(ALLOWED[case], torch)


def test_load_from_state_dict_override_migrates_keys_like_torch() -> None:
    def build(T: Any, log: list[Any]) -> Any:
        class Migrating(T.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.w = T.nn.Parameter(T.zeros(2))

            def _load_from_state_dict(self, state_dict: Any, prefix: str, local_metadata: Any, *rest: Any) -> None:
                if prefix + "old_w" in state_dict:
                    state_dict[prefix + "w"] = state_dict.pop(prefix + "old_w")
                log.append((prefix, dict(local_metadata)))
                super()._load_from_state_dict(state_dict, prefix, local_metadata, *rest)

        return T.nn.Sequential(T.nn.Linear(1, 1), Migrating())

    logs: dict[str, list[Any]] = {"torch": [], "ds": []}
    ref, ours = build(torch, logs["torch"]), build(ds, logs["ds"])
    sd = {
        "0.weight": np.ones((1, 1), np.float32),
        "0.bias": np.zeros(1, np.float32),
        "1.old_w": np.full(2, 3.0, np.float32),
    }
    ref.load_state_dict({k: torch.tensor(v) for k, v in sd.items()})
    result = ours.load_state_dict(sd)
    assert (result.missing_keys, result.unexpected_keys) == ([], [])
    np.testing.assert_array_equal(ours[1].w.detach().numpy(), ref[1].w.detach().numpy())
    assert logs["ds"] == logs["torch"] == [("1.", {})]
    # local_metadata comes from state_dict()._metadata, as in torch
    logs["ds"].clear()
    logs["torch"].clear()
    ours.load_state_dict(ours.state_dict())
    ref.load_state_dict(ref.state_dict())
    assert logs["ds"] == logs["torch"] == [("1.", {"version": 1})]


def test_load_from_state_dict_override_that_skips_super_loads_nothing_and_strict_fails() -> None:
    class Ignoring(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(ds.zeros(2))

        def _load_from_state_dict(self, *args: Any) -> None:
            pass

    m = Ignoring()
    out = m.load_state_dict({"w": ds.ones(2)}, strict=False)
    assert m.w.tolist() == [0.0, 0.0] and (out.missing_keys, out.unexpected_keys) == ([], [])


def test_default_load_keeps_the_fast_path_and_base_method_is_torchs() -> None:
    from downslope.nn.module.base import _customized_state

    assert not _customized_state(nn.Sequential(nn.Linear(2, 2)), loading=True)
    lin, missing, unexpected, errors = nn.Linear(1, 1), [], [], []  # type: ignore[var-annotated]
    lin._load_from_state_dict(
        {"p.weight": ds.ones(1, 1), "p.x": ds.ones(1)}, "p.", {}, True, missing, unexpected, errors
    )
    assert (missing, unexpected, errors) == (["p.bias"], ["p.x"], [])
    assert lin.weight.tolist() == [[1.0]]


def test_state_dict_metadata_matches_torch() -> None:
    def meta(T: Any) -> Any:
        m = T.nn.Sequential(T.nn.Linear(2, 2), T.nn.Sequential(T.nn.BatchNorm1d(2)))
        return dict(m.state_dict()._metadata), dict(m.state_dict(prefix="top.")._metadata)

    assert meta(ds) == meta(torch)
    assert not hasattr(nn.Linear(1, 1).state_dict(destination={}), "_metadata")


def test_state_dict_metadata_with_hooks_matches_torch() -> None:
    def meta(T: Any) -> Any:
        m = T.nn.Sequential(T.nn.Linear(2, 2))
        seen: list[Any] = []
        m[0].register_state_dict_post_hook(lambda mod, sd, prefix, local: seen.append((prefix, local)))
        sd = m.state_dict()
        return dict(sd._metadata), seen, seen[0][1] is sd._metadata["0"]

    assert meta(ds) == meta(torch)


@pytest.mark.parametrize("cast", ["double", "half", "float", "to64"])
def test_casting_a_module_casts_its_gradients_like_torch(cast: str) -> None:
    def run(T: Any) -> Any:
        m = T.nn.BatchNorm1d(2)
        m(T.randn(4, 2)).sum().backward()
        m.double() if cast != "double" else None
        grad = m.weight.grad
        getattr(m, cast)() if cast != "to64" else m.to(T.float64)
        return str(m.weight.grad.dtype).split(".")[-1], m.weight.grad is grad, str(m.running_mean.dtype).split(".")[-1]

    assert run(ds) == run(torch)


def test_cast_gradient_values_follow_the_cast() -> None:
    m = nn.Linear(2, 1)
    m(ds.ones(1, 2)).sum().backward()
    before = m.weight.grad.detach().numpy().copy()
    m.double()
    assert m.weight.grad.dtype == np.float64
    np.testing.assert_array_equal(m.weight.grad.numpy(), before.astype(np.float64))


@pytest.mark.parametrize("requires_grad", [True, False])
@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
def test_parameter_of_integer_data_matches_torch(dtype: str, requires_grad: bool) -> None:
    def make(T: Any) -> Any:
        p = T.nn.Parameter(T.ones(2, dtype=getattr(T, dtype)), requires_grad=requires_grad)
        return str(p.dtype).split(".")[-1], p.requires_grad

    assert _outcome(make, ds)[0] == _outcome(make, torch)[0]
    if not requires_grad:
        assert make(ds) == make(torch)
    else:
        with pytest.raises(
            RuntimeError, match="Only Tensors of floating point and complex dtype can require gradients"
        ):
            make(ds)


def test_parameter_shares_an_integer_tensor_without_grad() -> None:
    t = ds.tensor([1, 2])
    p = nn.Parameter(t, requires_grad=False)
    assert p.array is t.array and p.dtype == np.int64


def _reprs(T: Any) -> dict[str, str]:
    class Multi(T.nn.Module):
        def extra_repr(self) -> str:
            return "a=1\nb=2"

    class Parent(T.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = Multi()
            self.k = T.nn.Linear(1, 1)
            self.register_module("gone", None)

        def extra_repr(self) -> str:
            return "top\nsecond"

    return {
        "leaf_multiline": repr(Multi()),
        "nested": repr(Parent()),
        "seq_in_seq": repr(T.nn.Sequential(T.nn.Sequential(T.nn.ReLU(), T.nn.Tanh()), T.nn.Identity())),
        "modulelist_runs": repr(T.nn.ModuleList([T.nn.Linear(2, 2) for _ in range(3)] + [T.nn.ReLU(), T.nn.ReLU()])),
        "modulelist_empty": repr(T.nn.ModuleList()),
        "modulelist_nested": repr(T.nn.ModuleList([T.nn.Sequential(T.nn.ReLU()), T.nn.Sequential(T.nn.ReLU())])),
        "dropouts": repr(T.nn.Sequential(T.nn.Dropout(0.3), T.nn.Dropout2d(), T.nn.AlphaDropout(0.1, inplace=True))),
        "shuffles": repr(T.nn.Sequential(T.nn.PixelShuffle(2), T.nn.PixelUnshuffle(3), T.nn.ChannelShuffle(2))),
        "bilinear": repr(T.nn.Bilinear(2, 3, 4, bias=False)),
        "parameterdict": repr(T.nn.ParameterDict({"a": T.nn.Parameter(T.ones(2, 3)), "b": T.nn.Parameter(T.ones(1))})),
        "parameterlist_one": repr(T.nn.ParameterList([T.nn.Parameter(T.ones(2, 3))])).replace("torch.", ""),
    }


@pytest.mark.parametrize("case", sorted(_reprs(ds)))
def test_repr_matches_torch(case: str) -> None:
    expected = _reprs(torch)[case]
    device = ds.ones(1).device  # a device other than the CPU when the suite runs with tensors on one
    if case.startswith("parameter") and device.type != "cpu":
        # torch names a non-CPU entry's device after its size: "[... of size 2x3 (cuda:0)]"
        expected = re.sub(r"(of size [0-9x]+)\]", rf"\1 ({device})]", expected)
    assert _reprs(ds)[case] == expected


def test_getattr_called_by_name_finds_children_parameters_and_buffers_as_torch():
    # PyTorch code such as kuangliu's DLA looks children up with self.__getattr__("level_%d" % i).
    torch = pytest.importorskip("torch")
    for lib in (ds, torch):
        block = lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.BatchNorm1d(3))
        block.add_module("level_1", lib.nn.ReLU())
        assert block.__getattr__("level_1") is block.level_1
        assert block.__getattr__("0").__getattr__("weight") is block[0].weight
        assert block[1].__getattr__("running_mean") is block[1].running_mean
        with pytest.raises(AttributeError, match="level_2"):
            block.__getattr__("level_2")
