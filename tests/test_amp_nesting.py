"""Autocast state as torch keeps it: nesting, the dtype queries, and custom_fwd/custom_bwd."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

import downslope as ds
from downslope import amp

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _quiet() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _trace(lib: Any) -> list[Any]:
    seen = []

    def look() -> None:
        seen.append((lib.is_autocast_enabled("cpu"), str(lib.get_autocast_dtype("cpu")).rsplit(".", 1)[-1]))

    look()
    with lib.autocast("cpu", dtype=lib.bfloat16):
        look()
        with lib.autocast("cpu", enabled=False):
            look()
            with lib.autocast("cpu", dtype=lib.float16):
                look()
            look()
        look()
    look()
    return seen


def test_nested_autocast_switches_and_restores_as_torch() -> None:
    assert _trace(ds) == _trace(torch)
    assert _trace(ds)[2] == (False, "bfloat16")


def test_the_dtype_queries_and_older_spellings_match_torch() -> None:
    assert ds.get_autocast_dtype("cpu") is ds.bfloat16 and ds.get_autocast_dtype("cuda") == ds.float16
    assert str(torch.get_autocast_dtype("cuda")) == "torch.float16"
    assert ds.is_autocast_cpu_enabled() is torch.is_autocast_cpu_enabled() is False
    assert ds.get_autocast_cpu_dtype() is ds.bfloat16
    with ds.autocast("cpu", dtype=ds.float16):
        assert ds.is_autocast_cpu_enabled() and ds.get_autocast_cpu_dtype() == ds.float16
        assert not ds.is_autocast_enabled()  # no argument: "cuda", as torch
    assert amp.is_autocast_available("cpu") and amp.is_autocast_available("cuda")
    assert not amp.is_autocast_available("gpu")
    with pytest.raises(ValueError, match="device_type"):
        ds.get_autocast_dtype("gpu")


def test_bfloat16_reads_as_a_floating_dtype() -> None:
    for name in ("is_floating_point", "is_complex", "is_signed", "itemsize"):
        assert getattr(ds.bfloat16, name) == getattr(torch.bfloat16, name)


def test_a_decorated_autocast_block_nests_too() -> None:
    @ds.autocast("cpu", enabled=False)
    def inner() -> bool:
        return ds.is_autocast_enabled("cpu")

    with ds.autocast("cpu"):
        assert inner() is False
        assert ds.is_autocast_enabled("cpu")


def _function(lib: Any, cast_inputs: Any = None) -> Any:
    seen: dict[str, Any] = {}

    class Double(lib.autograd.Function):
        @staticmethod
        @lib.amp.custom_fwd(device_type="cpu", cast_inputs=cast_inputs)
        def forward(ctx: Any, x: Any) -> Any:
            seen["fwd"] = lib.is_autocast_enabled("cpu")
            return x * 2

        @staticmethod
        @lib.amp.custom_bwd(device_type="cpu")
        def backward(ctx: Any, g: Any) -> Any:
            seen["bwd"] = lib.is_autocast_enabled("cpu")
            return g * 2

    return Double, seen


@pytest.mark.parametrize("cast_inputs", [None, "float32"])
@pytest.mark.parametrize("inside", [True, False])
def test_custom_fwd_and_bwd_see_the_autocast_state_torchs_do(cast_inputs: Any, inside: bool) -> None:
    results = []
    for lib in (torch, ds):
        fn, seen = _function(lib, None if cast_inputs is None else getattr(lib, cast_inputs))
        x = lib.ones(2, requires_grad=True)
        with lib.autocast("cpu", dtype=lib.bfloat16, enabled=inside):
            y = fn.apply(x)
        y.sum().backward()
        results.append((seen, x.grad.tolist(), y.tolist()))
    assert results[0] == results[1]


def test_custom_fwd_needs_a_device_type_string() -> None:
    with pytest.raises(ValueError, match="device_type"):
        amp.custom_fwd(lambda ctx, x: x, device_type=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        amp.custom_bwd(lambda ctx, g: g)  # type: ignore[call-arg]
