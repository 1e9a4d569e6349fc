"""torch.optim's per-optimizer module paths and the helpers optimizer code copied from PyTorch imports
(``torch.optim.optimizer.ParamsT``, ``_use_grad_for_differentiable``), and ``torch.nn.utils.clip_grad``."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

import downslope as ds

torch = pytest.importorskip("torch")

MODULES = ["adam", "adamw", "nadam", "radam", "adamax", "rmsprop", "adagrad", "adadelta", "rprop", "asgd", "sgd",
           "sparse_adam", "lbfgs", "lr_scheduler", "swa_utils", "optimizer"]  # fmt: skip


@pytest.mark.parametrize("name", MODULES)
def test_optim_submodule_exposes_torchs_classes(name: str) -> None:
    ref = importlib.import_module(f"torch.optim.{name}")
    ours = importlib.import_module(f"downslope.optim.{name}")
    # the classes (torch's lower-case names there are its functional kernels: adam(), sgd()...)
    classes = [n for n in ref.__all__ if isinstance(getattr(ref, n), type)]
    assert classes
    for cls in classes:
        assert getattr(ours, cls) is getattr(ds.optim, cls, getattr(ours, cls)), cls


def test_params_t_accepts_what_optimizers_take() -> None:
    from downslope.optim.optimizer import ParamsT

    w = ds.nn.Parameter(ds.ones(2))

    def build(params: ParamsT) -> Any:
        return ds.optim.SGD(params, lr=0.1)

    for params in ([w], [{"params": [w]}], [("w", w)]):
        assert build(params).param_groups[0]["params"][0] is w


@pytest.mark.parametrize("differentiable", [False, True])
@pytest.mark.parametrize("outer", [False, True])
def test_use_grad_for_differentiable_sets_the_grad_mode_as_torch(differentiable: bool, outer: bool) -> None:
    from torch.optim.optimizer import _use_grad_for_differentiable as torch_decorator

    from downslope.optim.optimizer import _use_grad_for_differentiable as ours_decorator

    seen = []
    for L, decorate in ((ds, ours_decorator), (torch, torch_decorator)):

        class Probe(L.optim.Optimizer):  # type: ignore[name-defined,misc]
            def __init__(self, params: Any) -> None:
                super().__init__(params, {"lr": 0.1, "differentiable": differentiable})

            @decorate
            def step(self, closure: Any = None, lib: Any = L) -> Any:
                """The step's docstring."""
                return lib.is_grad_enabled()

        opt = Probe([L.nn.Parameter(L.ones(1))])
        with L.set_grad_enabled(outer):
            inside = opt.step()
            after = L.is_grad_enabled()
        seen.append((inside, after, Probe.step.__doc__, Probe.step.__name__))
    assert seen[0] == seen[1]


def test_nn_utils_clip_grad_module_path() -> None:
    from downslope.nn.utils.clip_grad import clip_grad_norm, clip_grad_norm_, clip_grad_value_

    assert clip_grad_norm_ is ds.nn.utils.clip_grad_norm_
    assert clip_grad_value_ is ds.nn.utils.clip_grad.clip_grad_value_
    assert clip_grad_norm is ds.nn.utils.clip_grad_norm
    for name in importlib.import_module("torch.nn.utils.clip_grad").__all__:
        assert hasattr(ds.nn.utils.clip_grad, name), name


def test_default_to_fused_or_foreach_answers_as_torch_for_host_tensors() -> None:
    # timm's optim/_helpers.py and sgdw.py import it from torch.optim.optimizer
    torch = pytest.importorskip("torch")
    from torch.optim.optimizer import _default_to_fused_or_foreach as torchs

    from downslope.optim.optimizer import _default_to_fused_or_foreach

    for differentiable in (False, True):
        assert _default_to_fused_or_foreach([ds.ones(2)], differentiable) == torchs([torch.ones(2)], differentiable)
