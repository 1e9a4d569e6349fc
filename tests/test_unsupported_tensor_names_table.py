"""Every torch.Tensor name the compatibility table marks "not supported" says why when read from a
tensor (UnsupportedNameError, an AttributeError), and the guards torch answers with a constant on a
CPU build (is_cpu, is_meta, get_device, ...) give torch's answers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import downslope as ds
from downslope import _unsupported

TABLE = Path(__file__).resolve().parents[1] / "docs" / "pytorch_compat.md"


def _table_not_supported(namespace: str) -> list[str]:
    """The names the committed table lists as not supported in ``namespace``'s section."""
    text = TABLE.read_text()
    section = text.split(f"## `{namespace}` ")[1].split("\n## ")[0]
    if "Not supported:" not in section:
        return []
    return re.findall(r"`([A-Za-z_][A-Za-z_0-9]*)`", section.split("Not supported:")[1])


NOT_SUPPORTED = _table_not_supported("torch.Tensor")


def test_the_table_lists_tensor_names() -> None:
    assert len(NOT_SUPPORTED) > 50 and "storage_offset" in NOT_SUPPORTED  # the parse found the section


@pytest.mark.parametrize("name", NOT_SUPPORTED)
def test_not_supported_tensor_name_says_why(name: str) -> None:
    t = ds.ones(2, 2)
    with pytest.raises(_unsupported.UnsupportedNameError) as info:
        getattr(t, name)
    assert f"torch.Tensor.{name}" in str(info.value)
    assert _unsupported.reason("torch.Tensor", name) in str(info.value)
    # an AttributeError: feature checks written for torch take their fallback
    assert not hasattr(t, name) and getattr(t, name, "fallback") == "fallback"


CONSTANT_GUARDS = [
    "is_meta",
    "is_nested",
    "is_quantized",
    "is_mps",
    "is_xpu",
    "is_xla",
    "is_ipu",
    "is_mtia",
    "is_maia",
    "is_vulkan",
    "is_mkldnn",
]


@pytest.mark.parametrize("name", CONSTANT_GUARDS)
def test_constant_guards_answer_as_torch_on_the_cpu(name: str) -> None:
    torch = pytest.importorskip("torch")
    for make in (lambda L: L.ones(2, 2), lambda L: L.zeros((), dtype=L.int64), lambda L: L.nn.Linear(2, 2).weight):
        ours, theirs = getattr(make(ds), name), getattr(make(torch), name)
        assert type(ours) is bool and ours == theirs


@pytest.mark.host_only
def test_host_tensors_are_cpu_with_device_minus_one_as_torch() -> None:
    torch = pytest.importorskip("torch")
    assert ds.ones(3).get_device() == torch.ones(3).get_device() == -1
    assert ds.ones(3).is_cpu is torch.ones(3).is_cpu is True
    assert ds.nn.Linear(2, 2).weight.is_cpu is True


def test_other_devices_are_not_cpu() -> None:
    t = ds.ones(2).to("strict")
    assert t.is_cpu is False and t.get_device() == 0 and t.is_meta is False
    assert t.cpu().is_cpu is True and t.cpu().get_device() == -1


@pytest.mark.skipif(not ds.cuda.is_available(), reason="needs a CUDA GPU with CuPy")
def test_cuda_tensor_answers_its_index() -> None:
    t = ds.ones(2).cuda()
    assert t.is_cpu is False and t.get_device() == 0 and t.is_cuda
