"""``downslope.cuda``, ``downslope.cuda.amp``, ``downslope.cpu`` and ``downslope.cpu.amp`` import as
modules, as torch's do (``from torch.cuda.amp import autocast, GradScaler`` tops many training scripts),
and ``torch.cuda.amp.custom_fwd``/``custom_bwd`` decorate custom Functions as torch's."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types

import numpy as np
import pytest
import torch

import downslope as ds


@pytest.mark.parametrize("name", ["cuda", "cuda.amp", "cpu", "cpu.amp"])
def test_each_namespace_imports_as_the_module_attribute_access_gives(name: str) -> None:
    module = importlib.import_module(f"downslope.{name}")
    obj = ds
    for part in name.split("."):
        obj = getattr(obj, part)
    assert module is obj
    assert isinstance(module, types.ModuleType) and module.__name__ == f"downslope.{name}"
    assert importlib.util.find_spec(f"downslope.{name}") is not None
    # dir() lists the names (a module's dir() would list only its __dict__)
    torch_module = importlib.import_module(f"torch.{name}")
    for attr in ("autocast", "GradScaler") if name.endswith("amp") else ("is_available", "amp"):
        assert attr in dir(module) and hasattr(torch_module, attr)


def test_import_statements_of_ported_scripts_work_in_a_fresh_interpreter_without_cupy() -> None:
    code = (
        "import sys\n"
        "from downslope.cuda.amp import autocast, GradScaler, custom_fwd, custom_bwd\n"
        "import downslope.cuda\n"
        "import downslope.cuda.amp\n"
        "from downslope.cuda import amp\n"
        "from downslope.cpu.amp import autocast as cpu_autocast\n"
        "import downslope as ds\n"
        "assert amp is ds.cuda.amp and downslope.cuda is ds.cuda and autocast == ds.cuda.amp.autocast\n"
        "assert 'cupy' not in sys.modules, 'importing downslope.cuda must not import CuPy'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def _square_function(lib: types.ModuleType) -> type:
    with pytest.warns(FutureWarning, match="torch.cuda.amp.custom_fwd"):
        fwd = lib.cuda.amp.custom_fwd(cast_inputs=lib.float32)
    with pytest.warns(FutureWarning, match="torch.cuda.amp.custom_bwd"):

        class Square(lib.autograd.Function):
            @staticmethod
            @fwd
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x

            @staticmethod
            @lib.cuda.amp.custom_bwd
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return 2 * x * g

    return Square


def test_cuda_amp_custom_fwd_and_custom_bwd_decorate_a_function_as_torch() -> None:
    grads = []
    for lib in (torch, ds):
        square = _square_function(lib)
        x = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
        y = square.apply(x)
        (y * lib.tensor([1.0, 2.0, 3.0])).sum().backward()
        grads.append((y.detach().numpy(), x.grad.numpy()))
    np.testing.assert_array_equal(grads[0][0], grads[1][0])
    np.testing.assert_array_equal(grads[0][1], grads[1][1])


def test_cuda_amp_custom_fwd_without_arguments_decorates_directly() -> None:
    with pytest.warns(FutureWarning):
        wrapped = ds.cuda.amp.custom_fwd(lambda ctx, x: x + 1)
    ctx = types.SimpleNamespace()
    assert wrapped(ctx, 1.0) == 2.0 and ctx._fwd_used_autocast is False


def test_cuda_typed_tensor_classes_answer_isinstance_by_device():
    # old code: `if isinstance(x.data, torch.cuda.FloatTensor): ...` on CPU tensors is False, as in torch
    for name in ("FloatTensor", "DoubleTensor", "LongTensor", "ByteTensor", "BoolTensor"):
        cls = getattr(ds.cuda, name)
        assert repr(cls) == f"<class 'downslope.cuda.{name}'>"
        cpu = getattr(ds, name)([1, 0])
        assert isinstance(cpu, getattr(ds, name)) and not isinstance(cpu, cls)
    if not ds.cuda.is_available():
        with pytest.raises(ds.errors.StateError, match="device 'cuda' is not available"):
            ds.cuda.FloatTensor(2)


@pytest.mark.skipif(torch.cuda.is_available(), reason="compares with PyTorch's answers without CUDA")
def test_rng_state_all_without_cuda_is_torchs_empty_list_and_a_no_op() -> None:
    """Checkpoint code saves ds.cuda.get_rng_state_all() beside the host state and restores it."""
    assert ds.cuda.get_rng_state_all() == torch.cuda.get_rng_state_all() == []
    assert ds.cuda.set_rng_state_all([]) is None and torch.cuda.set_rng_state_all([]) is None
    _ = ds.manual_seed(4)
    state, after = ds.get_rng_state(), ds.rand(2).tolist()
    ds.set_rng_state(state)
    ds.cuda.set_rng_state_all(ds.cuda.get_rng_state_all())  # the host state alone decides every draw
    assert ds.rand(2).tolist() == after
    with pytest.raises(TypeError, match="set_rng_state_all: expected a list of states .* got int"):
        ds.cuda.set_rng_state_all(3)
