"""downslope.testing.assert_close against torch.testing.assert_close: the same inputs pass or fail alike,
with the same error type and message (torch's type names aside)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

NAN, INF = math.nan, math.inf

# (id, inputs built from a library (ds or torch), keywords)
CASES: list[tuple[str, Callable[[Any], tuple[Any, Any]], dict[str, Any]]] = [
    ("equal", lambda L: (L.tensor([1.0, 2.0]), L.tensor([1.0, 2.0])), {}),
    ("far", lambda L: (L.tensor([1.0, 2.0]), L.tensor([1.0, 2.5])), {}),
    ("2-d", lambda L: (L.tensor([[1.0, 2.0], [3.0, 4.0]]), L.tensor([[1.0, 2.0], [3.5, 4.1]])), {}),
    ("float32 within", lambda L: (L.tensor([1.0, 100.0]), L.tensor([1.0 + 1e-5, 100.0001])), {}),
    ("float32 just out", lambda L: (L.tensor([0.0, 100.0]), L.tensor([2e-5, 100.0])), {}),
    ("float64 default", lambda L: (L.tensor([1.0], dtype=L.float64), L.tensor([1.0 + 1e-6], dtype=L.float64)), {}),
    ("float64 within", lambda L: (L.tensor([1.0], dtype=L.float64), L.tensor([1.0 + 1e-7], dtype=L.float64)), {}),
    ("float16", lambda L: (L.tensor([1.0, 2.0], dtype=L.float16), L.tensor([1.001, 2.0], dtype=L.float16)), {}),
    ("float16 out", lambda L: (L.tensor([1.0, 2.0], dtype=L.float16), L.tensor([1.01, 2.0], dtype=L.float16)), {}),
    ("nan", lambda L: (L.tensor([1.0, NAN]), L.tensor([1.0, NAN])), {}),
    ("nan against a number", lambda L: (L.tensor([1.0, NAN, 3.0]), L.tensor([1.0, 2.0, 4.0])), {}),
    ("nan equal_nan", lambda L: (L.tensor([1.0, NAN]), L.tensor([1.0, NAN])), {"equal_nan": True}),
    ("inf", lambda L: (L.tensor([1.0, INF]), L.tensor([1.0, INF])), {}),
    ("inf -inf", lambda L: (L.tensor([1.0, INF]), L.tensor([1.0, -INF])), {}),
    ("dtype", lambda L: (L.tensor([1.0]), L.tensor([1.0], dtype=L.float64)), {}),
    ("dtype unchecked", lambda L: (L.tensor([1.0]), L.tensor([1.0], dtype=L.float64)), {"check_dtype": False}),
    ("shape", lambda L: (L.ones(2), L.ones(3)), {}),
    ("ints", lambda L: (L.tensor([1, 2, 3]), L.tensor([1, 5, 3])), {}),
    ("ints with tolerance", lambda L: (L.tensor([100, 2]), L.tensor([101, 2])), {"rtol": 0.02, "atol": 0.0}),
    ("bools", lambda L: (L.tensor([True, False]), L.tensor([True, True])), {}),
    ("0-d", lambda L: (L.tensor(1.0), L.tensor(1.5)), {}),
    ("zero expected", lambda L: (L.tensor([0.5, 1.0]), L.tensor([0.0, 1.0])), {}),
    ("requires grad", lambda L: (L.ones(2, requires_grad=True) * 2, L.full((2,), 2.0)), {}),
    ("given tolerances", lambda L: (L.tensor([1.0, 2.0]), L.tensor([1.0, 2.5])), {"rtol": 0.1, "atol": 0.1}),
    ("rtol alone", lambda L: (L.ones(2), L.ones(2)), {"rtol": 1e-3}),
    ("numbers", lambda L: (1.0, 1.5), {}),
    ("numbers close", lambda L: (1.0, 1.0 + 1e-8), {}),
    ("int and float", lambda L: (1, 1.0), {}),
    ("int and float unchecked", lambda L: (1, 1.0), {"check_dtype": False}),
    ("booleans", lambda L: (True, False), {}),
    ("none", lambda L: (None, 1), {}),
    ("sequences", lambda L: ([L.tensor(1.0), 2.0], (L.tensor(1.0), 2.5)), {}),
    ("sequence lengths", lambda L: ([1, 2], [1]), {}),
    ("mappings", lambda L: ({"a": L.ones(2), "b": 1}, {"a": L.zeros(2), "b": 1}), {}),
    ("mapping keys", lambda L: ({"a": 1}, {"b": 1}), {}),
    ("numpy", lambda L: (np.array([1.0, 2.0]), np.array([1.0, 2.1])), {}),
    ("message", lambda L: (L.ones(2), L.zeros(2)), {"msg": "custom"}),
    ("message callable", lambda L: ([L.ones(2)], [L.zeros(2)]), {"msg": lambda m: "X " + m}),
]


def _outcome(fn: Callable[..., None], lib: Any, make: Callable[[Any], tuple[Any, Any]], kwargs: dict) -> tuple:
    actual, expected = make(lib)
    try:
        fn(actual, expected, **kwargs)
    except Exception as error:  # the outcome compared: its type (as a builtin) and message
        kind = next(k for k in type(error).__mro__ if k.__module__ == "builtins")
        text = (
            str(error)
            .replace("torch.Size(", "")
            .replace("downslope.Size(", "")
            .replace("torch.", "")
            .replace("])", "]")
        )
        return kind, text
    return None, ""


@pytest.mark.parametrize(("make", "kwargs"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_assert_close_passes_and_fails_as_torchs(make: Callable, kwargs: dict) -> None:
    theirs = _outcome(torch.testing.assert_close, torch, make, kwargs)
    ours = _outcome(ds.testing.assert_close, ds, make, kwargs)
    assert ours[0] is theirs[0]
    if ours[1] != theirs[1]:  # shapes print as tuples here: (2,) for torch.Size([2])
        assert ours[1].replace("(", "[").replace(",)", "]").replace(")", "]") == theirs[1].replace(")", "]")


def test_a_tensor_against_a_number_is_refused_naming_both_types() -> None:
    with pytest.raises(ds.ArgumentTypeError, match=r"No comparison pair .*Tensor'> and <class 'float'>\."):
        ds.testing.assert_close(ds.tensor(1.0), 1.0)
    with pytest.raises(TypeError, match="No comparison pair"):
        torch.testing.assert_close(torch.tensor(1.0), 1.0)


def test_the_module_loads_on_first_use() -> None:
    import subprocess
    import sys

    code = "import sys, downslope; print('downslope.testing' in sys.modules, 'downslope.version' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
