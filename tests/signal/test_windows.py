"""downslope.signal.windows against torch.signal.windows: names, signatures, values (float32 and float64,
symmetric and periodic, each shape parameter's edge cases), the factory keywords, and the errors."""

from __future__ import annotations

import inspect
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ArgumentError, ArgumentTypeError

torch = pytest.importorskip("torch")
W = ds.signal.windows
TW = torch.signal.windows

NAMES = sorted(TW.__all__)
LENGTHS = [0, 1, 2, 7, 8, 64]
# Each window with its shape parameters: the defaults, then values at and near their edges.
PARAMETERS: dict[str, list[dict[str, Any]]] = {
    "bartlett": [{}],
    "blackman": [{}],
    "cosine": [{}],
    "hamming": [{}],
    "hann": [{}],
    "nuttall": [{}],
    "exponential": [
        {},
        {"tau": 0.25},
        {"tau": 3.0},
        {"tau": 100.0},
        {"tau": float("inf")},
        {"center": 0.0, "sym": False},
        {"center": 2.5, "sym": False, "tau": 2.0},
        {"center": -3.0, "sym": False},
        {"center": 100.0, "sym": False},
    ],
    "gaussian": [{}, {"std": 0.3}, {"std": 7.0}, {"std": 1e3}, {"std": float("inf")}],
    "general_cosine": [
        {"a": [0.5, 0.5]},
        {"a": [1.0]},
        {"a": (0.42, 0.5, 0.08)},
        {"a": [0.2, -0.3, 0.1, 0.05, 0.01]},
    ],
    "general_hamming": [{}, {"alpha": 0.5}, {"alpha": 0.0}, {"alpha": 1.0}, {"alpha": 0.7}],
    "kaiser": [{}, {"beta": 0.0}, {"beta": 1e-3}, {"beta": 5.0}, {"beta": 40.0}, {"beta": 80.0}],
}
CASES = [
    (name, params, M, sym)
    for name, options in PARAMETERS.items()
    for params in options
    for M in LENGTHS
    for sym in ([params["sym"]] if "sym" in params else [True, False])
]


def _ours(name: str, M: int, params: dict[str, Any], sym: bool, dtype: str) -> Any:
    kw = {k: v for k, v in params.items() if k != "sym"}
    return getattr(W, name)(M, sym=sym, dtype=getattr(ds, dtype), **kw)


def _theirs(name: str, M: int, params: dict[str, Any], sym: bool, dtype: str) -> Any:
    kw = {k: v for k, v in params.items() if k != "sym"}
    return getattr(TW, name)(M, sym=sym, dtype=getattr(torch, dtype), **kw)


def _case_id(case: tuple[str, dict[str, Any], int, bool]) -> str:
    name, params, M, sym = case
    return f"{name}-{params}-M{M}-{'sym' if sym else 'periodic'}"


def test_the_names_are_torchs() -> None:
    assert sorted(W.__all__) == NAMES
    assert all(callable(getattr(W, name)) for name in NAMES)
    assert ds.signal.__all__ == ["windows"]


@pytest.mark.parametrize("name", NAMES)
def test_signatures_are_torchs(name: str) -> None:
    ours = inspect.signature(getattr(W, name)).parameters
    theirs = inspect.signature(getattr(TW, name)).parameters
    assert list(ours) == list(theirs)
    for key, param in theirs.items():
        assert ours[key].kind == param.kind, key
        if key != "layout":  # torch.strided, which downslope has no object for (every array is strided)
            assert ours[key].default == param.default, key


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_float64_values_match_torch(case: tuple[str, dict[str, Any], int, bool]) -> None:
    name, params, M, sym = case
    ours, theirs = _ours(name, M, params, sym, "float64"), _theirs(name, M, params, sym, "float64")
    assert ours.shape == tuple(theirs.shape) == (M,) and ours.dtype == ds.float64
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_float32_values_are_torchs_float64_window_rounded_once(case: tuple[str, dict[str, Any], int, bool]) -> None:
    """Ours is torch's float64 window rounded to float32 (half a unit in the last place); torch's own
    float32 window computes in float32 and is a few units away (the next test, at torch's tolerances)."""
    name, params, M, sym = case
    ours = _ours(name, M, params, sym, "float32")
    exact = _theirs(name, M, params, sym, "float64").numpy()
    assert ours.shape == (M,) and ours.dtype == ds.float32
    tiny = np.finfo(np.float32).tiny  # below it float32 is subnormal and has no relative precision
    np.testing.assert_allclose(ours.numpy(), exact, rtol=np.finfo(np.float32).eps, atol=tiny)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_float32_values_match_torchs_float32_window(case: tuple[str, dict[str, Any], int, bool]) -> None:
    name, params, M, sym = case
    ours = torch.from_numpy(_ours(name, M, params, sym, "float32").numpy())
    torch.testing.assert_close(ours, _theirs(name, M, params, sym, "float32"), equal_nan=True)


def test_the_strangers_line() -> None:
    ours = ds.signal.windows.hann(8, sym=False)
    np.testing.assert_allclose(ours.numpy(), torch.signal.windows.hann(8, sym=False).numpy(), rtol=1e-6, atol=1e-7)
    assert ours.dtype == ds.float32 and not ours.requires_grad


@pytest.mark.parametrize("name", ["bartlett", "blackman", "hamming", "hann", "kaiser"])
@pytest.mark.parametrize("M", LENGTHS)
@pytest.mark.parametrize("periodic", [True, False])
def test_top_level_window_is_the_signal_window(name: str, M: int, periodic: bool) -> None:
    top = getattr(ds, f"{name}_window")(M, periodic, dtype=ds.float64)
    np.testing.assert_allclose(
        getattr(W, name)(M, sym=not periodic, dtype=ds.float64).numpy(), top.numpy(), rtol=1e-12, atol=1e-15
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("beta", [100.0, 500.0, 1000.0])
@pytest.mark.parametrize("sym", [True, False])
def test_kaiser_with_a_large_beta_has_values(dtype: str, beta: float, sym: bool) -> None:
    """I0(beta) overflows float32 from beta ~ 90 and float64 from ~ 710, where torch's window is NaN;
    the closed form, in 50-digit arithmetic: I0(beta sqrt(1 - (2n/N - 1)^2)) / I0(beta)."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    M = 9
    N = M - 1 if sym else M
    exact = [
        float(mpmath.besseli(0, beta * mpmath.sqrt(1 - (mpmath.mpf(2 * n) / N - 1) ** 2)) / mpmath.besseli(0, beta))
        for n in range(M)
    ]
    ours = W.kaiser(M, beta=beta, sym=sym, dtype=getattr(ds, dtype)).numpy()
    eps, tiny = np.finfo(dtype).eps, np.finfo(dtype).tiny
    np.testing.assert_allclose(
        ours, np.array(exact).astype(dtype), rtol=eps if dtype == "float32" else 1e-12, atol=tiny
    )


@pytest.mark.parametrize(
    ("name", "kw"),
    [("kaiser", {"beta": float("inf")}), ("kaiser", {"beta": float("nan")}), ("gaussian", {"std": float("nan")}),
     ("exponential", {"tau": float("nan")}), ("exponential", {"center": float("inf"), "sym": False}),
     ("general_hamming", {"alpha": float("nan")})],
)  # fmt: skip
def test_nan_parameters_give_torchs_nan_window(name: str, kw: dict[str, Any]) -> None:
    ours, theirs = getattr(W, name)(6, **kw), getattr(TW, name)(6, **kw)
    np.testing.assert_array_equal(np.isnan(ours.numpy()), np.isnan(theirs.numpy()))
    assert np.isnan(ours.numpy()).all()


def test_coefficients_may_be_any_iterable_of_numbers() -> None:
    expected = TW.general_cosine(5, a=[0.5, 0.5], dtype=torch.float64).numpy()
    for a in ([0.5, 0.5], (0.5, 0.5), iter([0.5, 0.5]), np.array([0.5, 0.5]), ds.tensor([0.5, 0.5])):
        np.testing.assert_allclose(W.general_cosine(5, a=a, dtype=ds.float64).numpy(), expected, rtol=1e-12, atol=1e-15)


def test_length_may_be_a_numpy_integer_or_an_integer_tensor() -> None:
    expected = W.hann(8).numpy()
    np.testing.assert_array_equal(W.hann(np.int64(8)).numpy(), expected)
    np.testing.assert_array_equal(W.hann(ds.tensor(8)).numpy(), expected)


@pytest.mark.parametrize("name", NAMES)
def test_factory_keywords(name: str) -> None:
    kw: dict[str, Any] = {"a": [0.5, 0.5]} if name == "general_cosine" else {}
    saved = ds.get_default_dtype()
    ds.set_default_dtype(ds.float64)
    try:
        assert getattr(W, name)(4, **kw).dtype == ds.float64  # the default dtype, as torch
    finally:
        ds.set_default_dtype(saved)
    assert getattr(W, name)(4, **kw).dtype == ds.float32
    leaf = getattr(W, name)(4, requires_grad=True, layout=None, **kw)
    assert leaf.requires_grad and leaf.is_leaf
    (leaf * ds.arange(4.0)).sum().backward()
    np.testing.assert_array_equal(leaf.grad.numpy(), np.arange(4.0))
    placed = getattr(W, name)(4, device="strict", **kw)
    assert placed.device.type == "strict"
    np.testing.assert_array_equal(placed.cpu().numpy(), getattr(W, name)(4, **kw).numpy())


# (name, M, keywords, our error, words of our message, torch's built-in error type)
BAD = [
    ("hann", -1, {}, ArgumentError, "hann requires non-negative window length, got M=-1", ValueError),
    ("kaiser", -3, {}, ArgumentError, "kaiser requires non-negative window length, got M=-3", ValueError),
    ("hann", 8.0, {}, ArgumentTypeError, "hann(): argument 'M' (the window length) must be int, not float", TypeError),
    ("gaussian", 8.5, {}, ArgumentTypeError, "argument 'M' (the window length) must be int, not float", TypeError),
    ("bartlett", "8", {}, ArgumentTypeError, "argument 'M' (the window length) must be int, not str", TypeError),
    ("cosine", None, {}, ArgumentTypeError, "argument 'M' (the window length) must be int, not NoneType", TypeError),
    ("gaussian", 8, {"std": 0}, ArgumentError, "standard deviation must be positive, got: std=0", ValueError),
    ("gaussian", 8, {"std": -1.0}, ArgumentError, "standard deviation must be positive, got: std=-1.0", ValueError),
    ("gaussian", 0, {"std": 0.0}, ArgumentError, "standard deviation must be positive", ValueError),
    ("exponential", 8, {"tau": 0}, ArgumentError, "exponential: tau must be positive, got: tau=0", ValueError),
    ("exponential", 8, {"tau": -2.0}, ArgumentError, "tau must be positive, got: tau=-2.0", ValueError),
    ("exponential", 8, {"center": 1.0}, ArgumentError, "center must be None for symmetric windows (sym=True)", ValueError),
    ("exponential", 0, {"center": 1.0}, ArgumentError, "center must be None for symmetric windows", ValueError),
    ("kaiser", 8, {"beta": -1.0}, ArgumentError, "kaiser: beta must be non-negative, got: beta=-1.0", ValueError),
    ("hann", 8, {"dtype": "int64"}, ArgumentError, "hann expects float32 or float64 dtypes, got: int64", ValueError),
    ("nuttall", 8, {"dtype": "float16"}, ArgumentError, "nuttall expects float32 or float64 dtypes, got: float16", ValueError),
    ("bartlett", -1, {"dtype": "int64"}, ArgumentError, "requires non-negative window length", ValueError),
    ("general_cosine", 8, {"a": 5}, ArgumentTypeError, "coefficients 'a' must be a list/tuple of floats, not int", TypeError),
    ("general_cosine", 8, {"a": []}, ArgumentError, "general_cosine: coefficients cannot be empty, got a=[]", ValueError),
]  # fmt: skip


@pytest.mark.parametrize(("name", "M", "kw", "error", "words", "builtin"), BAD, ids=lambda v: repr(v)[:40])
def test_bad_input_raises_torchs_error_type_with_a_clear_message(
    name: str, M: Any, kw: dict[str, Any], error: type[Exception], words: str, builtin: type[Exception]
) -> None:
    with pytest.raises(error) as raised:
        getattr(W, name)(M, **kw)
    assert words in str(raised.value)
    assert isinstance(raised.value, builtin)
    torch_kw = {k: getattr(torch, v) if k == "dtype" else v for k, v in kw.items()}
    with pytest.raises(builtin):
        getattr(TW, name)(M, **torch_kw)


def test_a_parameter_that_is_no_number_is_refused() -> None:
    with pytest.raises(ArgumentTypeError, match="gaussian\\(\\): argument 'std' must be float, not str"):
        W.gaussian(4, std="1")
    with pytest.raises(ArgumentTypeError, match="argument 'alpha' must be float, not NoneType"):
        W.general_hamming(4, alpha=None)
    with pytest.raises(ArgumentTypeError, match="general_cosine\\(\\): argument 'a' must be float, not str"):
        W.general_cosine(4, a=["x"])
    with pytest.raises(TypeError, match="positional argument"):
        W.hann(4, False)  # sym is keyword-only, as in torch
    with pytest.raises(TypeError):
        TW.hann(4, False)


def test_lengths_zero_and_one_skip_the_coefficients_as_torch() -> None:
    for M in (0, 1):
        np.testing.assert_array_equal(W.general_cosine(M, a=[]).numpy(), TW.general_cosine(M, a=[]).numpy())


def test_the_package_loads_on_first_use() -> None:
    code = "import sys, downslope; print('downslope.signal' in sys.modules); downslope.signal.windows.hann(3)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False"]
