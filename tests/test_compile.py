"""ds.compile against torch.compile (torch 2.13): the OptimizedModule wrapper a compiled Module is, what a
compiled function is, and which arguments are refused. Nothing is compiled on either side here: torch's
wrapper is built without running its compiler."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _pair() -> tuple[Any, Any]:
    ours = ds.nn.Sequential(ds.nn.Linear(2, 3), ds.nn.ReLU())
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU())
    return ours, theirs


def test_a_compiled_module_is_an_optimized_module_wrapping_the_model_as_torchs() -> None:
    ours, theirs = _pair()
    c, t = ds.compile(ours), torch.compile(theirs)
    assert type(c).__name__ == type(t).__name__ == "OptimizedModule"
    assert isinstance(c, ds.nn.Module) and isinstance(t, torch.nn.Module)
    assert c._orig_mod is ours and t._orig_mod is theirs
    assert repr(c) == repr(t)
    assert list(c.state_dict()) == list(t.state_dict()) == ["_orig_mod.0.weight", "_orig_mod.0.bias"]
    assert [n for n, _ in c.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in c.named_modules()] == [n for n, _ in t.named_modules()]
    assert all(p is q for p, q in zip(c.parameters(), ours.parameters(), strict=True))
    assert len(c) == len(t) == 2
    assert getattr(c, "_orig_mod", c) is ours  # how saving code unwraps a compiled model
    # torch's import path, and isinstance through it (how libraries ask whether a model was compiled)
    from downslope._dynamo.eval_frame import OptimizedModule

    assert isinstance(c, OptimizedModule) and isinstance(c, ds._dynamo.OptimizedModule)


def test_attribute_reads_writes_and_modes_reach_the_model_as_torchs() -> None:
    ours, theirs = _pair()
    for lib, model in ((ds, ours), (torch, theirs)):
        c = lib.compile(model)
        assert c.training and model.training
        assert c.eval() is c and model.training is False and c.training is False
        c.train()
        assert model.training and model[0].training
        c.extra = 5  # a plain attribute lands on the model, not the wrapper
        assert model.extra == 5 and "extra" not in c.__dict__
        del c.extra
        assert not hasattr(model, "extra")
        assert c.requires_grad_(False) is c and not model[0].weight.requires_grad
        c.requires_grad_(True)
        assert c.to(lib.float64) is c and model[0].weight.dtype == lib.float64


def test_indexing_is_not_forwarded_as_in_torch() -> None:
    ours, theirs = _pair()
    for c in (ds.compile(ours), torch.compile(theirs)):
        with pytest.raises(TypeError):
            c[0]


def test_calling_runs_the_model_and_its_hooks() -> None:
    ours, _ = _pair()
    seen = []
    ours.register_forward_hook(lambda m, args, out: seen.append(out.shape))
    c = ds.compile(ours)
    x = ds.randn(4, 2)
    np.testing.assert_array_equal(c(x).detach().numpy(), ours(x).detach().numpy())
    assert seen == [(4, 3), (4, 3)]


def test_a_state_dict_of_a_torch_compiled_model_loads_with_its_prefixed_keys() -> None:
    ours, theirs = _pair()
    saved = {k: ds.tensor(v.numpy()) for k, v in torch.compile(theirs).state_dict().items()}
    c = ds.compile(ours)
    assert str(c.load_state_dict(saved)) == "<All keys matched successfully>"
    np.testing.assert_array_equal(ours[0].weight.detach().numpy(), theirs[0].weight.detach().numpy())
    x = np.random.default_rng(0).standard_normal((3, 2)).astype(np.float32)
    np.testing.assert_allclose(
        c(ds.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6
    )
    # unprefixed keys are refused by both, naming the missing and the unexpected keys
    with pytest.raises(RuntimeError, match='(?s)Missing key.*"_orig_mod.0.weight".*Unexpected key.*"0.weight"'):
        c.load_state_dict(ours.state_dict())
    with pytest.raises(RuntimeError, match='(?s)Missing key.*"_orig_mod.0.weight".*Unexpected key.*"0.weight"'):
        torch.compile(theirs).load_state_dict(theirs.state_dict())


def test_a_compiled_model_copies_pickles_trains_and_resumes(tmp_path: Any) -> None:
    ours, _ = _pair()
    c = ds.compile(ours)
    d = copy.deepcopy(c)
    assert type(d) is type(c) and d._orig_mod is not ours and list(d.state_dict()) == list(c.state_dict())
    p = pickle.loads(pickle.dumps(c))
    assert type(p) is type(c) and p.training
    ds.manual_seed(0)
    x, y = ds.randn(16, 2), ds.randn(16, 3)
    before = ours[0].weight.detach().numpy().copy()
    ds.fit(c, "mse", "sgd", (x, y), epochs=2, verbose=0, checkpoint_dir=tmp_path)
    assert not np.array_equal(before, ours[0].weight.detach().numpy())  # the model's own parameters trained
    history = ds.fit(c, "mse", "sgd", (x, y), epochs=3, verbose=0, resume_from=tmp_path / "last.ckpt")
    assert len(history.history["loss"]) == 3


def test_module_compile_stays_in_place_and_disable_returns_the_model() -> None:
    ours, theirs = _pair()
    assert ours.compile() is None and theirs.compile() is None
    assert type(ours) is ds.nn.Sequential and list(ours.state_dict()) == ["0.weight", "0.bias"]
    assert ds.compile(ours, disable=True) is ours and torch.compile(theirs, disable=True) is theirs


def test_a_compiled_function_is_a_wrapper_of_it_as_torchs() -> None:
    def f(x: Any) -> Any:
        return x * 2

    for lib in (ds, torch):
        cf = lib.compile(f)
        assert cf is not f and cf.__wrapped__ is f and cf.__name__ == "f"
        assert lib.compile(f, disable=True) is f
        assert lib.compile(mode="reduce-overhead")(f).__wrapped__ is f
    assert ds.compile(f)(ds.ones(2)).tolist() == [2.0, 2.0]
    # compiling a compiled module compiles the model's forward: a function in both
    ours, theirs = _pair()
    assert not isinstance(ds.compile(ds.compile(ours)), ds.nn.Module)
    assert not isinstance(torch.compile(torch.compile(theirs)), torch.nn.Module)


@pytest.mark.parametrize(
    "options",
    [
        {"mode": "max-autotune"},
        {"mode": "reduce-overhead"},
        {"mode": "max-autotune-no-cudagraphs"},
        {"fullgraph": True},
        {"dynamic": True},
        {"backend": "eager"},
        {"backend": "aot_eager"},
        {"name": "net", "recompile_limit": 3},
    ],
)
def test_torchs_accepted_arguments_are_accepted(options: dict[str, Any]) -> None:
    ours, theirs = _pair()
    assert type(ds.compile(ours, **options)).__name__ == type(torch.compile(theirs, **options)).__name__


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"mode": "bogus"}, RuntimeError, "Unrecognized mode=bogus, should be one of: default, lite"),
        ({"mode": "default", "options": {}}, RuntimeError, "Either mode or options can be specified"),
        ({"backend": "nope"}, RuntimeError, "Invalid backend: 'nope'"),
        ({"bogus": 1}, TypeError, "unexpected keyword argument 'bogus'"),
    ],
)
def test_torchs_refused_arguments_are_refused_with_its_message(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    ours, theirs = _pair()
    with pytest.raises(error, match=message):
        ds.compile(ours, **options)
    with pytest.raises(error, match=message):
        torch.compile(theirs, **options)


def test_a_value_that_is_not_callable_is_refused_as_torch() -> None:
    for lib in (ds, torch):
        with pytest.raises(AssertionError, match="A callable function is expected, but <class 'int'> is provided"):
            lib.compile(5)


def test_list_backends_as_torchs() -> None:
    assert ds._dynamo.list_backends() == torch._dynamo.list_backends()
    listed = set(torch._dynamo.list_backends(exclude_tags=()))
    assert set(ds._dynamo.list_backends(exclude_tags=())) <= listed
