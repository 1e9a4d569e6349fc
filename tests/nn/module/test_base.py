"""Module's attribute lookup, shallow copies, set_submodule and train()'s argument, against PyTorch."""

from __future__ import annotations

import copy
from typing import Any

import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _looked_up(m: Any) -> tuple[str, Any]:
    """What ``m.parameters`` is (the method or the child), the parameter count and the children's names."""
    attr = m.parameters
    kind = "method" if callable(attr) and not hasattr(attr, "_modules") else type(attr).__name__
    count = len(list(type(m).parameters(m)))
    return kind, (count, [n for n, _ in m.named_children()])


def test_a_child_named_like_a_method_leaves_the_method_as_torch() -> None:
    # N-BEATS (philipperemy/n-beats): a plain list, then a ParameterList under the method's name, then
    # optim.Adam(self.parameters()): torch keeps the child only in _modules, so the method is found
    def build(lib: Any) -> Any:
        class Net(lib.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.parameters = []
                self.parameters.extend(lib.nn.Linear(3, 2).parameters())
                self.parameters = lib.nn.ParameterList(self.parameters)

        return Net()

    theirs, ours = build(torch), build(ds)
    assert _looked_up(ours) == _looked_up(theirs) == ("method", (2, ["parameters"]))
    assert "parameters" not in vars(ours) and "parameters" not in vars(theirs)
    ds.optim.Adam(ours.parameters(), lr=0.1)  # raised "ParameterList has no forward()" before
    assert ours.get_submodule("parameters") is ours._modules["parameters"]


def test_a_method_named_child_through_delete_reset_and_none_as_torch() -> None:
    def steps(lib: Any) -> list[Any]:
        class Net(lib.nn.Module):
            def encode(self, x: Any) -> Any:
                return "method"

            @property
            def head(self) -> str:
                return "property"

        m = Net()
        seen = []
        m.train = lib.nn.Linear(2, 2)  # child first, then the method is called
        seen.append((m.train(False) is m, m.training, [n for n, _ in m.named_children()]))
        m.encode = lib.nn.ReLU()
        seen.append((m.encode(None), "encode" in vars(m)))
        m.head = lib.nn.Tanh()
        seen.append((m.head, type(m._modules["head"]).__name__))
        del m.encode
        seen.append((m.encode(None), [n for n, _ in m.named_children()]))
        m.encode = lib.nn.ReLU()  # re-set, then set to None
        m.encode = None
        seen.append((m.encode(None), m._modules["encode"], "encode" in vars(m)))
        m._modules["eval"] = lib.nn.ReLU()  # written into the registry directly
        seen.append((m.eval() is m, m.training))
        with pytest.raises(KeyError, match="already exists"):
            m.add_module("to", lib.nn.ReLU())
        with pytest.raises(KeyError, match="already exists"):
            m.cuda = lib.nn.Parameter(lib.zeros(1))
        m.fc = lib.nn.Linear(2, 2)  # an ordinary name: the child itself
        seen.append((type(m.fc).__name__, [n for n, _ in m.named_children()]))
        return seen

    assert steps(ds) == steps(torch)


def test_ordinary_children_stay_plain_attributes() -> None:
    # the fast path of every forward: a registered name that the class does not define is read from the
    # instance dict, not through __getattr__
    m = ds.nn.Module()
    m.fc = ds.nn.Linear(2, 2)
    m.register_buffer("count", ds.zeros(1))
    m.scale = ds.nn.Parameter(ds.ones(1))
    assert vars(m)["fc"] is m.fc and vars(m)["count"] is m.count and vars(m)["scale"] is m.scale


def _copy_steps(lib: Any) -> list[Any]:
    class Net(lib.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = lib.nn.Linear(3, 2)
            self.w = lib.nn.Parameter(lib.zeros(2))
            self.hidden = 8

    n = Net()
    c = copy.copy(n)
    seen: list[Any] = [(c._modules is n._modules, c._parameters is n._parameters, c._buffers is n._buffers)]
    c.fc = lib.nn.Linear(3, 5)  # replaced through the copy
    seen.append((n.fc.out_features, c.fc.out_features, n.fc is c.fc))
    c.add_module("extra", lib.nn.ReLU())
    seen.append(([k for k, _ in n.named_children()], type(n.extra).__name__))
    n.w = lib.nn.Parameter(lib.ones(3))  # a parameter replaced through the original
    seen.append((tuple(c.w.shape), c.w is n.w))
    n.register_buffer("steps", lib.zeros(1))
    seen.append((hasattr(c, "steps"), [k for k, _ in c.named_buffers()]))
    del n.extra
    seen.append((hasattr(c, "extra"), hasattr(n, "extra")))
    c.fc = None
    seen.append((n.fc, [k for k, _ in n.named_children()]))
    c.hidden = 16  # a plain attribute is the copy's own
    c.train(False)
    seen.append((n.hidden, n.training, c.training))
    cc = copy.copy(c)  # a copy of the copy shares them too
    cc.add_module("last", lib.nn.Tanh())
    seen.append((type(n.last).__name__, type(c.last).__name__))
    return seen


def test_copy_copy_shares_the_registries_as_torch() -> None:
    assert _copy_steps(ds) == _copy_steps(torch)


def test_copy_copy_of_a_sequential_runs_the_shared_layers_as_torch() -> None:
    results = []
    for lib in (torch, ds):
        lib.manual_seed(0)
        m = lib.nn.Sequential(lib.nn.Linear(2, 2))
        c = copy.copy(m)
        c.add_module("extra", lib.nn.ReLU())
        c[0] = lib.nn.Identity()
        x = lib.tensor([[1.0, -2.0]])
        results.append((len(m), type(m[0]).__name__, m(x).tolist(), c(x).tolist(), len(c)))
    assert results[0] == results[1] == (2, "Identity", [[1.0, 0.0]], [[1.0, 0.0]], 2)


def test_deepcopy_keeps_its_own_registries() -> None:
    m = ds.nn.Sequential(ds.nn.Linear(2, 2))
    d = copy.deepcopy(m)
    d.add_module("extra", ds.nn.ReLU())
    assert len(m) == 1 and len(d) == 2 and d._modules is not m._modules


def _set_submodule_steps(lib: Any) -> list[Any]:
    m = lib.nn.Module()
    m.a = lib.nn.Sequential(lib.nn.Linear(1, 1))
    m.plain = 3
    seen: list[Any] = []
    m.set_submodule("head", lib.nn.ReLU())  # a new name: added (strict=False is the default)
    m.set_submodule("a.0", lib.nn.Tanh(), strict=True)  # an existing one: replaced
    m.set_submodule("a.extra", lib.nn.ReLU(), strict=False)
    seen.append([n for n, _ in m.named_modules()])
    for target, module, strict, error in (
        ("b", lib.nn.ReLU(), True, AttributeError),
        ("a.b", lib.nn.ReLU(), True, AttributeError),
        ("plain", lib.nn.ReLU(), False, AttributeError),  # an attribute that is not a Module
        ("parameters", lib.nn.ReLU(), False, AttributeError),  # a method is not a Module either
        ("missing.b", lib.nn.ReLU(), False, AttributeError),
        ("", lib.nn.ReLU(), False, ValueError),
        ("head", 3, False, ValueError),
    ):
        with pytest.raises(error):
            m.set_submodule(target, module, strict=strict)
    seen.append([n for n, _ in m.named_modules()])
    return seen


def test_set_submodule_adds_or_replaces_as_torch() -> None:
    assert _set_submodule_steps(ds) == _set_submodule_steps(torch)


@pytest.mark.parametrize("mode", ["no", 1, None])
def test_train_refuses_a_non_bool_with_torchs_value_error(mode: Any) -> None:
    for lib in (torch, ds):
        with pytest.raises(ValueError, match="expected to be boolean"):
            lib.nn.Linear(1, 1).train(mode)
