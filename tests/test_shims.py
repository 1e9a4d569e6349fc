"""The compiler/TorchScript/fx/serialization shims that training libraries call: they answer as
torch's do when nothing is being compiled."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def test_compiling_and_scripting_questions_answer_false_as_torch_eagerly() -> None:
    for ours, theirs in (
        (ds.compiler.is_compiling, torch.compiler.is_compiling),
        (ds.compiler.is_dynamo_compiling, torch.compiler.is_dynamo_compiling),
        (ds._dynamo.is_compiling, torch._dynamo.is_compiling),
        (ds.jit.is_scripting, torch.jit.is_scripting),
        (ds.jit.is_tracing, torch.jit.is_tracing),
    ):
        assert ours() is theirs() is False
    assert ds._dynamo.reset() is None and ds.compiler.reset() is None
    ds._dynamo.config.suppress_errors = True  # a switch that code sets: kept


def test_decorators_return_the_function() -> None:
    def f(x: int) -> int:
        return x + 1

    assert ds.compiler.disable(f) is f and ds.compiler.disable(recursive=False)(f) is f
    assert ds.compiler.disable(f, reason="io") is f and ds._dynamo.disable(f) is f
    assert ds.jit.ignore(f) is f and ds.jit.ignore(drop=True)(f) is f
    assert ds.jit.unused(f) is f and ds.jit.export(f) is f
    with pytest.raises(RuntimeError, match="must be a bool or a function"):
        ds.jit.ignore("yes")
    assert torch.compiler.disable(f)(1) == ds.compiler.disable(f)(1) == 2


def test_fx_wrap_returns_its_argument_at_module_level_only() -> None:
    namespace: dict[str, object] = {"ds": ds}
    exec("import builtins\nw1 = ds.fx.wrap('len')\nw2 = ds.fx.wrap(builtins.abs)", namespace)
    assert namespace["w1"] == "len" and namespace["w2"] is abs
    with pytest.raises(NotImplementedError, match="top level of a module") as ours:
        ds.fx.wrap("len")
    with pytest.raises(NotImplementedError) as theirs:
        torch.fx.wrap("len")
    assert str(ours.value) == str(theirs.value)


def test_assert_raises_assertion_error_as_torch() -> None:
    ds._assert(ds.tensor(True), "fine")
    ds._assert(1, "fine")
    for lib in (ds, torch):
        with pytest.raises(AssertionError, match="^shape$"):
            lib._assert(lib.tensor(False), "shape")


def test_safe_globals_are_recorded_as_torchs() -> None:
    for lib in (ds, torch):
        ser = lib.serialization
        ser.clear_safe_globals()
        ser.add_safe_globals([OrderedDict, OrderedDict])
        assert ser.get_safe_globals() == [OrderedDict]
        with ser.safe_globals([dict]):
            assert set(ser.get_safe_globals()) == {OrderedDict, dict}
        assert ser.get_safe_globals() == [OrderedDict]
        ser.clear_safe_globals()
        assert ser.get_safe_globals() == []


def test_module_compile_is_an_in_place_no_op() -> None:
    model = ds.nn.Linear(2, 1)
    x = ds.ones(1, 2)
    before = model(x).tolist()
    assert model.compile(mode="max-autotune", fullgraph=True) is None
    assert model(x).tolist() == before


def test_the_shims_load_lazily() -> None:
    code = "import sys, downslope; print(any(m in sys.modules for m in ('downslope.jit', 'downslope.compiler', 'downslope.fx')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


_BASES = [
    ("batchnorm", "_BatchNorm"),
    ("batchnorm", "_NormBase"),
    ("conv", "_ConvNd"),
    ("instancenorm", "_InstanceNorm"),
    ("pooling", "_MaxPoolNd"),
    ("pooling", "_AvgPoolNd"),
    ("dropout", "_DropoutNd"),
    ("loss", "_Loss"),
    ("loss", "_WeightedLoss"),
]


@pytest.mark.parametrize(("module", "name"), _BASES)
def test_private_layer_bases_cover_the_layers_torchs_cover(module: str, name: str) -> None:
    import importlib
    import inspect

    ours = getattr(importlib.import_module(f"downslope.nn.modules.{module}"), name)
    theirs = getattr(importlib.import_module(f"torch.nn.modules.{module}"), name)
    layers = [n for n, c in vars(torch.nn).items() if inspect.isclass(c) and hasattr(ds.nn, n)]
    expected = sorted(n for n in layers if issubclass(getattr(torch.nn, n), theirs))
    assert expected and sorted(n for n in layers if issubclass(getattr(ds.nn, n), ours)) == expected


def test_isinstance_on_built_layers_and_subclassing_the_loss_bases() -> None:
    from downslope.nn.modules.batchnorm import BatchNorm2d, _BatchNorm, _NormBase
    from downslope.nn.modules.loss import _Loss, _WeightedLoss

    assert BatchNorm2d is ds.nn.BatchNorm2d
    assert ds.nn.modules.batchnorm._BatchNorm is _BatchNorm  # named without an import, as torch.nn.modules.batchnorm
    assert ds.nn.modules.module is ds.nn.module
    assert isinstance(ds.nn.BatchNorm2d(3), _BatchNorm) and isinstance(ds.nn.InstanceNorm1d(3), _NormBase)
    assert not isinstance(ds.nn.Linear(2, 2), _NormBase)
    frozen = [
        m for m in ds.nn.Sequential(ds.nn.Conv2d(1, 2, 3), ds.nn.BatchNorm2d(2)).modules() if isinstance(m, _BatchNorm)
    ]
    assert len(frozen) == 1

    def focal(lib: object, base: type) -> object:
        class Focal(base):  # type: ignore[misc, valid-type]
            def __init__(
                self, weight: object = None, size_average: object = None, reduce: object = None, reduction: str = "mean"
            ) -> None:
                super().__init__(weight, size_average, reduce, reduction)

        return Focal

    import torch.nn.modules.loss as tloss

    for size_average, reduce, reduction in ((None, None, "sum"), (False, None, "mean"), (None, False, "mean")):
        mine = focal(ds, _WeightedLoss)(ds.ones(3), size_average, reduce, reduction)
        with pytest.warns(UserWarning) if (size_average, reduce) != (None, None) else contextlib.nullcontext():
            theirs = focal(torch, tloss._WeightedLoss)(torch.ones(3), size_average, reduce, reduction)
        assert mine.reduction == theirs.reduction and list(mine.state_dict()) == ["weight"]
        assert isinstance(mine, _Loss)


def test_jit_script_and_trace_return_what_they_are_given_and_warn_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ds.jit, "_warned", set())
    ds.manual_seed(0)
    model = ds.nn.Sequential(ds.nn.Linear(3, 2), ds.nn.ReLU())
    x = ds.randn(4, 3)
    with pytest.warns(UserWarning, match="no TorchScript.*runs eagerly"):
        assert ds.jit.script(model) is model
    with pytest.warns(UserWarning, match="no TorchScript"):
        assert ds.jit.trace(model, x) is model
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per name: no second warning
        assert ds.jit.script(model) is model and ds.jit.trace(model, (x,)) is model

        def f(a: ds.Tensor, b: ds.Tensor) -> ds.Tensor:
            return a + b

        assert ds.jit.trace(f, (x, x)) is f and ds.jit.script(f) is f
    # torch's traced and scripted modules compute what the module computes; so do these
    theirs = torch.nn.Linear(3, 2)
    ours = ds.nn.Linear(3, 2)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    xt = torch.tensor(x.numpy())
    np.testing.assert_allclose(
        ds.jit.trace(ours, x)(x).detach().numpy(),
        torch.jit.trace(theirs, xt)(xt).detach().numpy(),
        rtol=1e-5,  # float32 through two libraries' GEMMs: an output near 0 differs in its last bits
        atol=1e-6,
    )
    with pytest.raises(RuntimeError, match="boom"):  # trace runs the model once, as torch's, so it fails there

        def broken(a: ds.Tensor) -> ds.Tensor:
            raise RuntimeError("boom")

        ds.jit.trace(broken, x)


def test_jit_save_and_load_refuse_naming_what_to_use(tmp_path: Path) -> None:
    model = ds.nn.Linear(2, 1)
    with pytest.raises(RuntimeError, match=r"jit.save: .*ds.save\(model.state_dict\(\), path\).*ds.onnx.export"):
        ds.jit.save(model, tmp_path / "m.pt")
    with pytest.raises(RuntimeError, match=r"jit.load: .*no TorchScript"):
        ds.jit.load(tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()


def test_vision_script_names_exist_as_in_torch() -> None:
    for name in ("distributed.is_available", "distributed.is_initialized", "distributed.get_rank",
                 "distributed.get_world_size", "jit.script", "jit.trace", "jit.save", "jit.load",
                 "nn.modules.utils._pair", "utils.hooks.RemovableHandle"):  # fmt: skip
        ours, theirs = ds, torch
        for part in name.split("."):
            ours, theirs = getattr(ours, part), getattr(theirs, part)
        assert callable(ours) and callable(theirs), name


def test_torchscript_declarations_in_model_files_run_eagerly_as_in_torch() -> None:
    # timm's `fused_attn: torch.jit.Final[bool]`, torchvision densenet's `@torch.jit._overload_method`,
    # torchvision ops' `@torch.jit._script_if_tracing`, RWKV's `torch.jit.ScriptModule` + `script_method`
    torch = pytest.importorskip("torch")
    for lib in (torch, ds):

        class TimeShift(lib.jit.ScriptModule):
            def __init__(self) -> None:
                super().__init__()
                self.pad = lib.nn.ZeroPad2d((0, 0, 1, -1))  # noqa: B023

            @lib.jit.script_method
            def forward(self, x):
                return self.pad(x)

        class Block(lib.nn.Module):
            fused: lib.jit.Final[bool]

            def __init__(self) -> None:
                super().__init__()
                self.fused = True

            @lib.jit._overload_method  # type: ignore[misc]
            def scale(self, x: int) -> int:  # the stub TorchScript reads; the definition below replaces it
                ...

            def scale(self, x):  # type: ignore[no-redef]  # noqa: F811
                return x * 2

        shifted = TimeShift()(lib.arange(3.0).reshape(1, 3, 1))
        assert isinstance(TimeShift(), lib.nn.Module)
        assert lib.jit._script_if_tracing(Block().scale)(shifted).flatten().tolist() == [0.0, 0.0, 2.0]
        assert lib.jit.Attribute([1], list).value == [1]
    from downslope.jit.annotations import List, Optional, Tuple  # noqa: F401  (timm densenet's import line)

    assert ds.jit.annotations.List is torch.jit.annotations.List


def test_torch_nn_module_paths_that_model_files_import_from() -> None:
    torch = pytest.importorskip("torch")
    from downslope.nn.modules.transformer import _get_activation_fn
    from downslope.nn.utils.fusion import fuse_conv_bn_eval

    assert fuse_conv_bn_eval is ds.nn.utils.fuse_conv_bn_eval
    x = np.linspace(-2, 2, 7, dtype=np.float32)
    for name in ("relu", "gelu"):
        # torch's function in float64: its float32 vector loop's erf is 3.4e-6 off at x = -2 on an AVX2 machine
        want = torch.nn.modules.transformer._get_activation_fn(name)(torch.tensor(x, dtype=torch.float64)).numpy()
        np.testing.assert_allclose(_get_activation_fn(name)(ds.tensor(x)).numpy(), want, rtol=1e-6, atol=1e-7)
    with pytest.raises(ds.errors.ArgumentError, match="relu/gelu"):
        _get_activation_fn("tanh")


def test_fx_tracer_names_say_why_and_what_instead() -> None:
    # torchvision's create_feature_extractor calls torch.fx.symbolic_trace
    with pytest.raises(AttributeError, match="no symbolic tracer.*register_forward_hook"):
        ds.fx.symbolic_trace  # noqa: B018
    assert not hasattr(ds.fx, "GraphModule")
    with pytest.raises(ImportError):
        exec("from downslope.fx.graph_module import GraphModule", {})
