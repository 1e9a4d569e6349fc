"""``downslope.backends`` and its parts import as modules, as ``torch.backends.cudnn`` does."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types

import pytest

import downslope as ds


@pytest.mark.parametrize("name", ["cudnn", "mps", "cuda", "mkldnn", "mkl", "openmp"])
def test_each_part_imports_as_a_module_and_is_ds_backends_own(name: str) -> None:
    module = importlib.import_module(f"downslope.backends.{name}")
    assert module is getattr(ds.backends, name)
    assert isinstance(module, types.ModuleType) and module.__name__ == f"downslope.backends.{name}"
    assert importlib.util.find_spec(f"downslope.backends.{name}") is not None


def test_import_statements_of_ported_code_work_in_a_fresh_interpreter() -> None:
    code = (
        "import downslope.backends.cudnn\n"
        "import downslope.backends.cudnn as cudnn\n"
        "from downslope.backends import cudnn as c2, mps, cuda\n"
        "import downslope as ds\n"
        "cudnn.benchmark = True\n"
        "assert ds.backends.cudnn.benchmark is True and c2 is cudnn is ds.backends.cudnn\n"
        "ds.backends.cudnn.allow_tf32 = False\n"
        "assert downslope.backends.cudnn.allow_tf32 is False\n"
        "assert mps.is_available() is False and cuda.matmul.allow_tf32 is False\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_flags_set_through_either_name_are_the_same_flags() -> None:
    from downslope.backends import cudnn

    before = ds.backends.cudnn.deterministic
    try:
        cudnn.deterministic = not before
        assert ds.backends.cudnn.deterministic is (not before)
        with cudnn.flags(enabled=False, deterministic=before):
            assert ds.backends.cudnn.deterministic is before
        assert cudnn.deterministic is (not before)
    finally:
        cudnn.deterministic = before


def test_torch_has_the_same_modules() -> None:
    torch = pytest.importorskip("torch")
    for name in ("cudnn", "mps", "cuda", "mkldnn", "mkl", "openmp"):
        assert isinstance(importlib.import_module(f"torch.backends.{name}"), types.ModuleType)
        if name in ("mkldnn", "mkl", "openmp"):
            assert callable(getattr(torch.backends, name).is_available)
        assert hasattr(getattr(torch.backends, name), "is_built") or name in ("cudnn", "mkldnn", "mkl", "openmp")


def test_mkldnn_flags_are_kept_and_restored_as_torch_s() -> None:
    torch = pytest.importorskip("torch")
    for lib in (torch, ds):
        assert lib.backends.mkldnn.enabled is True
        with lib.backends.mkldnn.flags(enabled=False):
            assert lib.backends.mkldnn.enabled is False
        assert lib.backends.mkldnn.enabled is True


def test_cudnn_version_without_cudnn_is_torchs_none() -> None:
    torch = pytest.importorskip("torch")
    if torch.backends.cudnn.is_available():
        pytest.skip("compares with PyTorch's answer without cuDNN")
    assert ds.backends.cudnn.version() is torch.backends.cudnn.version() is None
