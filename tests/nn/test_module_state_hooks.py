"""Module state hooks, extra state, to_empty and call_super_init, against torch's behaviour."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import nn

torch = pytest.importorskip("torch")


def _pair(lib):
    """The same nested model in either library: Sequential(Linear, Sequential(Linear, BatchNorm1d))."""
    m = lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.Sequential(lib.nn.Linear(3, 3), lib.nn.BatchNorm1d(3)))
    return m


def _hook_all(model, log):
    for name, mod in model.named_modules():
        mod.register_state_dict_pre_hook(lambda m, prefix, keep_vars, n=name: log.append(("save_pre", n, prefix)))
        mod.register_state_dict_post_hook(
            lambda m, sd, prefix, meta, n=name: log.append(("save_post", n, prefix, len(sd)))
        )
        mod.register_load_state_dict_pre_hook(
            lambda m, sd, prefix, meta, strict, missing, unexpected, errors, n=name: log.append(
                ("load_pre", n, prefix, sorted(sd), strict, list(missing))
            )
        )
        mod.register_load_state_dict_post_hook(
            lambda m, keys, n=name: log.append(("load_post", n, list(keys.missing_keys), list(keys.unexpected_keys)))
        )


def test_state_dict_hook_order_matches_torch():
    logs = []
    for lib in (torch, ds):
        log: list = []
        model = _pair(lib)
        _hook_all(model, log)
        keys = list(model.state_dict())
        log.append(keys)
        logs.append(log)
    assert logs[0] == logs[1]


def test_load_state_dict_hook_order_and_keys_match_torch():
    logs = []
    for lib in (torch, ds):
        log: list = []
        model = _pair(lib)
        sd = {k: v.clone() for k, v in model.state_dict().items()}
        del sd["1.0.bias"]
        sd["1.extra"] = sd["0.bias"].clone()
        _hook_all(model, log)
        result = model.load_state_dict(sd, strict=False)
        log.append((list(result.missing_keys), list(result.unexpected_keys)))
        logs.append(log)
    assert logs[0] == logs[1]


def test_post_hook_clearing_keys_lets_a_strict_load_pass():
    for lib in (torch, ds):
        lin = lib.nn.Linear(2, 1)
        lin.register_load_state_dict_post_hook(lambda m, keys: keys.missing_keys.clear())
        result = lin.load_state_dict({"weight": lin.weight.detach().clone()})
        assert list(result.missing_keys) == []
        # adding a key makes a strict load fail
        other = lib.nn.Linear(2, 1)
        other.register_load_state_dict_post_hook(lambda m, keys: keys.unexpected_keys.append("made.up"))
        with pytest.raises(RuntimeError, match="made.up"):
            other.load_state_dict(lib.nn.Linear(2, 1).state_dict())


def test_post_hook_returning_a_value_is_refused():
    lin = nn.Linear(2, 1)
    lin.register_load_state_dict_post_hook(lambda m, keys: keys)
    with pytest.raises(AssertionError, match="inplace"):
        lin.load_state_dict(nn.Linear(2, 1).state_dict())
    lin = nn.Linear(2, 1)
    lin.register_state_dict_post_hook(lambda m, sd, prefix, meta: {})
    with pytest.raises(RuntimeError, match="must return None"):
        lin.state_dict()


def test_private_state_dict_hook_result_replaces_the_root_state_dict():
    for lib in (torch, ds):
        lin = lib.nn.Linear(2, 1)
        lin._register_state_dict_hook(lambda m, sd, prefix, meta: {"only": 1})
        assert lin.state_dict() == {"only": 1}


def test_pre_hook_renames_keys_and_error_msgs_fail_the_load():
    def rename(m, sd, prefix, *rest):
        if prefix + "w" in sd:
            sd[prefix + "weight"] = sd.pop(prefix + "w")

    for lib in (torch, ds):
        model = lib.nn.Sequential(lib.nn.Linear(2, 2))
        model.register_load_state_dict_pre_hook(lambda m, sd, prefix, *rest: sd.update({"0.w": sd.pop("0.weight")}))
        model[0].register_load_state_dict_pre_hook(rename)
        src = lib.nn.Sequential(lib.nn.Linear(2, 2))
        model.load_state_dict(src.state_dict())
        assert np.array_equal(model[0].weight.detach().numpy(), src[0].weight.detach().numpy())

    lin = nn.Linear(2, 1)
    lin.register_load_state_dict_pre_hook(lambda m, sd, p, meta, s, mk, uk, errors: errors.append("bad checkpoint"))
    with pytest.raises(RuntimeError, match="bad checkpoint"):
        lin.load_state_dict(nn.Linear(2, 1).state_dict())


def test_hooks_receive_metadata_and_handles_remove_them():
    seen = []
    lin = nn.Linear(2, 1)
    handle = lin.register_state_dict_post_hook(lambda m, sd, prefix, meta: seen.append(meta))
    lin.state_dict()
    handle.remove()
    lin.state_dict()
    assert seen == [{"version": 1}]
    with pytest.raises(TypeError, match="callable"):
        lin.register_state_dict_pre_hook(3)


class _Counter:
    """A module with extra state, in either library."""

    @staticmethod
    def make(lib):
        class Counter(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = lib.nn.Linear(2, 1)
                self.calls = 0

            def get_extra_state(self):
                return {"calls": self.calls}

            def set_extra_state(self, state):
                self.calls = state["calls"]

        return Counter


def test_extra_state_is_saved_and_loaded_as_in_torch():
    keys = []
    for lib in (torch, ds):
        counter = _Counter.make(lib)
        model = lib.nn.Sequential(counter(), lib.nn.ReLU())
        model[0].calls = 7
        sd = model.state_dict()
        keys.append(list(sd))
        assert sd["0._extra_state"] == {"calls": 7}
        other = lib.nn.Sequential(counter(), lib.nn.ReLU())
        assert list(other.load_state_dict(sd).missing_keys) == []
        assert other[0].calls == 7
        # missing extra state is a missing key; extra state into a module without it is unexpected
        del sd["0._extra_state"]
        result = other.load_state_dict(sd, strict=False)
        assert list(result.missing_keys) == ["0._extra_state"]
        plain = lib.nn.Linear(2, 1)
        sd2 = dict(plain.state_dict(), _extra_state=1)
        assert list(plain.load_state_dict(sd2, strict=False).unexpected_keys) == ["_extra_state"]
        with pytest.raises(RuntimeError, match="_extra_state"):
            plain.load_state_dict(sd2)
    assert keys[0] == keys[1] == ["0._extra_state", "0.lin.weight", "0.lin.bias"]


def test_default_extra_state_methods_raise():
    with pytest.raises(RuntimeError, match="get_extra_state"):
        nn.Module().get_extra_state()
    with pytest.raises(RuntimeError, match="set_extra_state"):
        nn.Module().set_extra_state(1)


def test_hooked_load_checks_every_value_before_writing():
    lin = nn.Linear(2, 2)
    lin.register_load_state_dict_post_hook(lambda m, keys: None)
    before = lin.weight.detach().numpy().copy()
    bad = {"weight": np.ones((2, 2)), "bias": np.ones(3)}
    with pytest.raises(RuntimeError, match="size mismatch"):
        lin.load_state_dict(bad)
    assert np.array_equal(lin.weight.detach().numpy(), before)


def test_to_empty_keeps_shapes_dtypes_and_parameter_objects():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)).double()
    params = list(model.parameters())
    out = model.to_empty(device="cpu")
    assert out is model and list(model.parameters()) == params
    tm = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3)).double().to_empty(device="cpu")
    for (k, v), (tk, tv) in zip(model.state_dict().items(), tm.state_dict().items()):
        assert k == tk and v.shape == tuple(tv.shape) and str(v.dtype) == str(tv.dtype).replace("torch.", "")
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(TypeError):
        model.to_empty("cpu")  # device is keyword-only, as in torch
    # recurse=False leaves the children's arrays alone
    child_w = model[0].weight.array
    model.to_empty(device="cpu", recurse=False)
    assert model[0].weight.array is child_w


def test_call_super_init_and_init_arguments_as_torch():
    for lib in (torch, ds):
        with pytest.raises(TypeError, match="unexpected keyword argument 'a'"):
            lib.nn.Module(a=1)
        with pytest.raises(TypeError, match="takes 1 positional argument but 2 were given"):
            lib.nn.Module(1)
        assert lib.nn.Module.call_super_init is False

    class Base:
        def __init__(self, value=None):
            self.value = value

    class Both(nn.Module, Base):
        call_super_init = True

        def __init__(self):
            super().__init__(value=5)

    assert Both().value == 5
