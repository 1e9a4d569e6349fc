"""interpolate's compiled per-dim kernels (and the NumPy path beside them) against torch: values and
gradients in float32 and float64, the same forward bits as the NumPy formulation, create_graph, and
a backward without the gathers' np.add.at."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import jit_gate

torch = pytest.importorskip("torch")
TF = torch.nn.functional

_CASES = [
    ("linear", (2, 3, 7), {"scale_factor": 2}),
    ("linear", (2, 3, 7), {"size": 5}),
    ("bilinear", (2, 3, 6, 5), {"scale_factor": 2}),
    ("bilinear", (2, 3, 6, 5), {"size": (9, 4)}),
    ("bilinear", (1, 2, 5, 7), {"scale_factor": (1.5, 0.6)}),
    ("trilinear", (1, 2, 4, 3, 5), {"scale_factor": 2}),
    ("trilinear", (1, 2, 4, 3, 5), {"size": (3, 7, 5)}),
    ("nearest", (2, 3, 6, 5), {"scale_factor": 2}),
    ("nearest", (1, 2, 4, 3, 5), {"size": (7, 2, 9)}),
    ("nearest-exact", (2, 3, 6, 5), {"size": (4, 11)}),
]


def _kwargs(mode: str, extra: dict[str, Any], align_corners: bool) -> dict[str, Any]:
    kwargs = {"mode": mode, **extra}
    if mode not in ("nearest", "nearest-exact"):
        kwargs["align_corners"] = align_corners
    return kwargs


@pytest.mark.parametrize("case", _CASES)
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_interpolate_matches_torch(resample_path: str, case: Any, align_corners: bool, dtype: str) -> None:
    mode, shape, extra = case
    if mode.startswith("nearest") and align_corners:
        pytest.skip("align_corners applies to the linear modes")
    kwargs = _kwargs(mode, extra, align_corners)
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape)
    r = rng.standard_normal(TF.interpolate(torch.tensor(x), **kwargs).shape)
    results = []
    for lib in (torch, ds):
        xt = lib.tensor(x, dtype=getattr(lib, dtype), requires_grad=True)
        out = lib.nn.functional.interpolate(xt, **kwargs)
        (out * lib.tensor(r, dtype=getattr(lib, dtype))).sum().backward()
        results.append((out.detach().numpy(), xt.grad.numpy()))
    tol = 1e-12 if dtype == "float64" else 2e-6
    for want, got in zip(*results):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("case", _CASES)
def test_interpolate_kernel_forward_is_the_numpy_formulation(case: Any) -> None:
    if jit_gate.kernels("downslope.nn._jit_resample", np.zeros(1)) is None:
        pytest.skip("numba is not installed (the jit extra)")
    mode, shape, extra = case
    x = ds.tensor(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    compiled = F.interpolate(x, **_kwargs(mode, extra, False)).numpy()
    with jit_gate.disabled():
        plain = F.interpolate(x, **_kwargs(mode, extra, False)).numpy()
    np.testing.assert_array_equal(compiled, plain)


@pytest.mark.parametrize("case", [_CASES[2], _CASES[6], _CASES[7]])
def test_interpolate_create_graph_matches_numpy_path(case: Any) -> None:
    if jit_gate.kernels("downslope.nn._jit_resample", np.zeros(1)) is None:
        pytest.skip("numba is not installed (the jit extra)")
    mode, shape, extra = case
    x = np.random.default_rng(1).standard_normal(shape)

    def second(compiled: bool) -> np.ndarray:
        xt = ds.tensor(x, dtype=ds.float64, requires_grad=True)
        if compiled:
            out = F.interpolate(xt, **_kwargs(mode, extra, False))
        else:
            with jit_gate.disabled():
                out = F.interpolate(xt, **_kwargs(mode, extra, False))
        (gx,) = ds.autograd.grad((out * out * out).sum(), [xt], create_graph=True)
        return ds.autograd.grad((gx * gx).sum(), [xt])[0].numpy()

    np.testing.assert_allclose(second(True), second(False), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_interpolate_backward_is_compiled(monkeypatch: Any, mode: str) -> None:
    # the NumPy formulation's gathers scatter their gradients through np.add.at (which made
    # bilinear's backward 2-4x slower than torch's); the compiled path scatters in its own kernel
    x = ds.randn(2, 3, 8, 8, requires_grad=True)
    if jit_gate.kernels("downslope.nn._jit_resample", x.array) is None:
        pytest.skip("no numba (the jit extra), or the data is not on the host")
    from downslope.graph import ArrayRules

    calls: list[Any] = []
    original = ArrayRules.scatter

    def spy(*args: Any) -> Any:
        if args[2]:  # an advanced index: np.add.at
            calls.append(args[0])
        return original(*args)

    monkeypatch.setattr(ArrayRules, "scatter", staticmethod(spy))
    with jit_gate.disabled():
        F.interpolate(x, scale_factor=2, mode=mode).sum().backward()
    assert calls  # the spy sees the NumPy formulation's scatters
    calls.clear()
    F.interpolate(x, scale_factor=2, mode=mode).sum().backward()
    assert not calls
