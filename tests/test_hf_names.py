"""Names Hugging Face, nanoGPT and lit-gpt code reads from torch, checked against torch: torch.version,
torch.nn.attention's sdpa_kernel and SDPBackend, torch.backends.cuda's attention flags and
sdp_kernel, and the torch.nn.modules.<file> paths of the layers."""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")
from torch.nn import attention as torch_attention  # noqa: E402

from downslope.nn import attention  # noqa: E402

FLAGS = ("flash_sdp_enabled", "mem_efficient_sdp_enabled", "math_sdp_enabled", "cudnn_sdp_enabled")


def _flags(lib: object) -> tuple[bool, ...]:
    return tuple(getattr(lib.backends.cuda, name)() for name in FLAGS)  # type: ignore[attr-defined]


def test_version_says_what_a_cpu_build_of_torch_says() -> None:
    public = {n for n in dir(torch.version) if not n.startswith("_") and n not in ("Optional",)}
    assert public <= set(ds.version.__all__)
    assert torch.version.cuda is None  # the reference is torch's CPU build: no CUDA, no ROCm
    for name in ("cuda", "hip", "rocm", "xpu"):
        assert getattr(ds.version, name) is getattr(torch.version, name) is None
    assert ds.version.debug is False and isinstance(ds.version.git_version, str)
    assert ds.version.__version__ == ds.__version__
    assert importlib.import_module("downslope.version") is ds.version


def test_sdp_backend_has_torchs_members_and_values() -> None:
    theirs = {name: int(member) for name, member in torch_attention.SDPBackend.__members__.items()}
    ours = {name: int(member) for name, member in attention.SDPBackend.__members__.items()}
    assert ours == theirs
    assert str(attention.SDPBackend.MATH) == str(torch_attention.SDPBackend.MATH)
    assert ds.backends.cuda.SDPBackend is attention.SDPBackend


@pytest.mark.parametrize(
    "chosen", [["MATH"], ["FLASH_ATTENTION", "MATH"], ["EFFICIENT_ATTENTION"], ["CUDNN_ATTENTION", "MATH"], "MATH"]
)
def test_sdpa_kernel_sets_and_restores_the_flags_as_torchs(chosen: list[str] | str) -> None:
    seen = []
    for lib, module in ((ds, attention), (torch, torch_attention)):
        pick = (
            getattr(module.SDPBackend, chosen)
            if isinstance(chosen, str)
            else [getattr(module.SDPBackend, c) for c in chosen]
        )
        before = _flags(lib)
        with module.sdpa_kernel(pick) as entered:
            inside = _flags(lib)
        seen.append((before, inside, _flags(lib), entered))
    assert seen[0] == seen[1]


def test_sdpa_kernel_changes_nothing_attention_computes() -> None:
    rng = np.random.default_rng(0)
    q, k, v = (ds.tensor(rng.standard_normal((1, 2, 3, 4))) for _ in range(3))
    plain = ds.nn.functional.scaled_dot_product_attention(q, k, v)
    with attention.sdpa_kernel(attention.SDPBackend.FLASH_ATTENTION):
        chosen = ds.nn.functional.scaled_dot_product_attention(q, k, v)
    np.testing.assert_array_equal(plain.numpy(), chosen.numpy())


def test_sdpa_kernel_refuses_what_is_no_backend() -> None:
    with pytest.raises(ds.ArgumentTypeError, match="expected an SDPBackend .* got str 'MATH'"):
        with attention.sdpa_kernel("MATH"):  # type: ignore[arg-type]
            pass
    with pytest.raises(AssertionError, match="SDPBackend"):  # torch refuses it too
        with torch_attention.sdpa_kernel("MATH"):
            pass


def test_backends_cuda_sdp_kernel_is_deprecated_and_sets_the_flags_as_torchs() -> None:
    seen = []
    for lib in (ds, torch):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with lib.backends.cuda.sdp_kernel(enable_flash=False, enable_mem_efficient=False):
                inside = _flags(lib)
        seen.append((inside, _flags(lib), [w.category for w in caught], str(caught[0].message)))
    assert seen[0] == seen[1]


def test_the_attention_flags_are_settable_as_torchs() -> None:
    for lib in (ds, torch):
        lib.backends.cuda.enable_flash_sdp(False)
        lib.backends.cuda.enable_math_sdp(False)
    assert _flags(ds) == _flags(torch) == (False, True, False, True)
    for lib in (ds, torch):
        lib.backends.cuda.enable_flash_sdp(True)
        lib.backends.cuda.enable_math_sdp(True)
    assert _flags(ds) == _flags(torch)


def test_training_script_flags_are_settable() -> None:
    # nanoGPT and lit-gpt set these before training; here they are kept and change nothing
    names = [("cuda.matmul", "allow_tf32"), ("cudnn", "allow_tf32"), ("cudnn", "benchmark"), ("cudnn", "deterministic")]
    for path, name in names:
        owner = ds.backends
        for part in path.split("."):
            owner = getattr(owner, part)
        before = getattr(owner, name)
        setattr(owner, name, True)
        assert getattr(owner, name) is True
        setattr(owner, name, before)


MODULE_FILES = [
    "linear", "activation", "normalization", "sparse", "rnn", "container", "transformer", "flatten", "padding",
    "pixelshuffle", "upsampling", "distance", "fold", "channelshuffle", "adaptive", "conv", "pooling", "loss",
    "batchnorm", "dropout", "instancenorm",
]  # fmt: skip
# torch's names that downslope has no layer for: Container (deprecated in torch), LinearCrossEntropyLoss
# (new in torch 2.13)
ABSENT = {"Container", "LinearCrossEntropyLoss"}


@pytest.mark.parametrize("file", MODULE_FILES)
def test_torch_nn_modules_paths_give_the_layers(file: str) -> None:
    theirs = importlib.import_module(f"torch.nn.modules.{file}")
    ours = importlib.import_module(f"downslope.nn.modules.{file}")
    assert getattr(ds.nn.modules, file) is ours  # named without an import too
    for name in set(theirs.__all__) - ABSENT:
        assert getattr(ours, name) is getattr(ds.nn, name), name
        assert name in ours.__all__


def test_torch_nn_modules_linear_holds_the_attention_projection_class() -> None:
    from downslope.nn.modules.linear import Linear, NonDynamicallyQuantizableLinear

    projection = ds.nn.MultiheadAttention(4, 2).out_proj
    assert type(projection) is NonDynamicallyQuantizableLinear and isinstance(projection, Linear)
    assert type(torch.nn.MultiheadAttention(4, 2).out_proj).__name__ == NonDynamicallyQuantizableLinear.__name__


def test_adamw_names_torchs_kernel_flags_in_its_signature() -> None:
    # nanoGPT's configure_optimizers: `'fused' in inspect.signature(torch.optim.AdamW).parameters`
    import inspect

    import torch

    ours, theirs = inspect.signature(ds.optim.AdamW).parameters, inspect.signature(torch.optim.AdamW).parameters
    for flag in ("foreach", "capturable", "differentiable", "fused"):
        assert flag in ours and ours[flag].default == theirs[flag].default
    group = ds.optim.AdamW([ds.nn.Parameter(ds.ones(2))], fused=False).param_groups[0]
    assert group["fused"] is False and group["foreach"] is None
