"""PyTorch names downslope leaves out on purpose say why (downslope._unsupported), and stay missing
for hasattr/getattr(default); set_printoptions works as torch's does."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys

import pytest

import downslope as ds
from downslope import _unsupported
from downslope.errors import DownslopeError

TOP_LEVEL = sorted(n for ns, n in _unsupported.UNSUPPORTED if ns == "torch")
TENSOR = sorted(n for ns, n in _unsupported.UNSUPPORTED if ns == "torch.Tensor")


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_top_level_name_says_why(name: str) -> None:
    reason = _unsupported.reason("torch", name)
    with pytest.raises(AttributeError, match=re.escape(reason)) as info:
        getattr(ds, name)
    assert isinstance(info.value, DownslopeError)
    assert f"downslope.{name}" in str(info.value)
    assert not hasattr(ds, name)
    assert getattr(ds, name, "default") == "default"


@pytest.mark.parametrize("name", TENSOR)
def test_tensor_name_says_why(name: str) -> None:
    t = ds.zeros(2)
    with pytest.raises(AttributeError, match=re.escape(_unsupported.reason("torch.Tensor", name))) as info:
        getattr(t, name)
    assert isinstance(info.value, DownslopeError)
    assert not hasattr(t, name)
    assert getattr(t, name, None) is None
    assert not _unsupported.provides(ds.Tensor, name)  # on the class: a placeholder, as a property is


def test_reported_repros() -> None:
    with pytest.raises(AttributeError, match="sharing tensors between processes"):
        ds.zeros(2).share_memory_()
    with pytest.raises(AttributeError, match="storage-level API"):
        ds.zeros(2).storage()
    with pytest.raises(AttributeError, match="sparse tensors"):
        ds.sparse_csr_tensor  # noqa: B018
    with pytest.raises(AttributeError, match="half-precision complex"):
        ds.complex32  # noqa: B018


def test_provides_tells_real_names_from_placeholders() -> None:
    assert _unsupported.provides(ds.Tensor, "reshape") and _unsupported.provides(ds, "zeros")
    assert not _unsupported.provides(ds, "complex32") and not _unsupported.provides(ds.Tensor, "no_such_method")


def test_unknown_names_keep_the_plain_error() -> None:
    with pytest.raises(AttributeError, match="module 'downslope' has no attribute 'no_such_name'") as info:
        ds.no_such_name  # noqa: B018
    assert not isinstance(info.value, DownslopeError)
    with pytest.raises(AttributeError):
        ds.zeros(1).no_such_method  # noqa: B018


def test_import_of_left_out_module_says_why() -> None:
    with pytest.raises(ModuleNotFoundError, match="sharing tensors between processes") as info:
        importlib.import_module("downslope.multiprocessing")
    assert isinstance(info.value, DownslopeError)
    with pytest.raises(ImportError, match="sharing tensors between processes"):
        from downslope import multiprocessing  # noqa: F401
    with pytest.raises(ModuleNotFoundError, match="No module named 'downslope.no_such_module'"):
        importlib.import_module("downslope.no_such_module")


def test_existing_submodules_still_import() -> None:
    # the finder sits last on sys.meta_path: real modules never reach it
    code = "import downslope, downslope.nn, downslope.special, downslope.distributions; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


@pytest.fixture
def torch_and_restore():
    torch = pytest.importorskip("torch")
    yield torch
    ds.set_printoptions(profile="default")
    torch.set_printoptions(profile="default")


def _shown(text: str) -> list[str]:
    """The printed numbers and ellipses of a one-dimensional tensor's repr."""
    return re.findall(r"\.\.\.|-?\d+(?:\.\d*)?(?:e[+-]\d+)?", text.split("[", 1)[1].split("]", 1)[0])


@pytest.mark.parametrize(
    "options",
    [
        {"threshold": 5, "edgeitems": 2},
        {"threshold": 10, "edgeitems": 1},
        {"profile": "short"},
        {"profile": "full"},
        {"profile": "default", "threshold": 3},
        {"threshold": float("inf")},
    ],
)
def test_set_printoptions_summarizes_as_torch(torch_and_restore, options) -> None:
    torch = torch_and_restore
    torch.set_printoptions(**options)
    ds.set_printoptions(**options)
    for n in (4, 20, 1500):
        assert _shown(repr(ds.arange(n))) == _shown(repr(torch.arange(n)))


def test_set_printoptions_precision_and_sci_mode_as_torch(torch_and_restore) -> None:
    torch = torch_and_restore
    values = [1.23456789, -0.000123456, 12345.678]
    for options in ({"precision": 2, "sci_mode": True}, {"precision": 6, "sci_mode": True}, {"precision": 3}):
        torch.set_printoptions(**options)
        ds.set_printoptions(**options)
        want = [float(v) for v in _shown(repr(torch.tensor(values, dtype=torch.float64)))]
        got = [float(v) for v in _shown(repr(ds.tensor(values, dtype=ds.float64)))]
        assert got == want
    ds.set_printoptions(precision=2, sci_mode=False)
    assert _shown(repr(ds.tensor([1e-8, 1.23456]))) == ["0.", "1.23"]


def test_set_printoptions_linewidth_and_bad_profile(torch_and_restore) -> None:
    ds.set_printoptions(linewidth=30)
    assert max(len(line) for line in repr(ds.arange(40).cpu()).splitlines()) <= 30
    with pytest.raises(ds.ConfigError, match="profile must be one of"):
        ds.set_printoptions(profile="long")


def test_flex_attention_import_says_why_and_nn_attention_keeps_its_names() -> None:
    # torch.nn.attention is a package with a flex_attention submodule that LLM code imports
    with pytest.raises(ModuleNotFoundError, match="FlexAttention compiles user score and mask functions") as info:
        importlib.import_module("downslope.nn.attention.flex_attention")
    assert isinstance(info.value, DownslopeError)
    with pytest.raises(ImportError, match="pass it as attn_mask to F.scaled_dot_product_attention"):
        from downslope.nn.attention import flex_attention  # noqa: F401
    from downslope.nn.attention import SDPBackend, sdpa_kernel

    assert callable(sdpa_kernel) and SDPBackend.MATH.name == "MATH"
    with pytest.raises(ModuleNotFoundError, match="No module named 'downslope.nn.attention.no_such_module'"):
        importlib.import_module("downslope.nn.attention.no_such_module")
