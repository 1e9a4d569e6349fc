"""softmax's and log_softmax's short path for small rows (``reductions._small_rows``) against the
general path: the same bits on random rows with -inf (a top-k filter's), rows of only -inf, +inf,
NaN and ties, float64; taken only for a plain int last dim of C-contiguous host float arrays below
the compiled kernels' size where no gradient is recorded."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.ops import reductions

torch = pytest.importorskip("torch")

OPS = {"softmax": ds.softmax, "log_softmax": ds.log_softmax}


def _logits(rng: np.random.Generator, shape: tuple[int, ...], special: str, dtype: Any) -> np.ndarray:
    a = rng.standard_normal(shape) * 4
    rows = a.reshape(-1, shape[-1])  # a view: writes reach ``a``
    if special == "filtered":  # nanoGPT's top-k filter: all but the best 10 set to -inf
        rows[rows < np.sort(rows, axis=-1)[:, -10:-9]] = -np.inf
    elif special == "all-inf":
        rows[0] = -np.inf
    elif special == "inf":
        rows[-1, 1] = np.inf
    elif special == "nan":
        rows[0, 2] = np.nan
    elif special == "ties":
        a = np.round(a)
    elif special == "huge":  # x - max(x) past the dtype's range: -inf, probability 0
        rows[0, 0], rows[0, 1] = np.finfo(dtype).max, -np.finfo(dtype).max
    return a.astype(dtype)


def _tensor(a: np.ndarray, requires_grad: bool) -> ds.Tensor:
    return ds.tensor(a, dtype=ds.float64 if a.dtype == np.float64 else ds.float32, requires_grad=requires_grad)


@pytest.mark.host_only  # the short path is the host arrays'
@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("special", ["none", "filtered", "all-inf", "inf", "nan", "ties", "huge"])
@pytest.mark.parametrize("shape", [(1, 65), (5, 65), (3, 4, 17), (65,)])
@pytest.mark.parametrize("dim", [-1, "last"])
def test_short_path_gives_the_general_paths_bits(
    op: str, dtype: Any, special: str, shape: tuple, dim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _logits(np.random.default_rng(0), shape, special, dtype)
    d = len(shape) - 1 if dim == "last" else dim
    taken = []
    short = reductions._small_rows
    monkeypatch.setattr(reductions, "_small_rows", lambda *args: taken.append(short(*args) is not None) or short(*args))
    f = OPS[op]
    with np.errstate(all="raise"):  # the short path silences what the general path does
        general = f(_tensor(a, True), d)
        assert taken == [False]
        with ds.no_grad():
            fast = f(_tensor(a, True), d)
        plain = f(_tensor(a, False), d)
    assert taken == [False, True, True]
    want = general.detach().numpy()
    for got in (fast, plain):
        assert not got.requires_grad and got.dtype == general.dtype and got.stride() == general.stride()
        assert got.numpy().tobytes() == want.tobytes()


@pytest.mark.parametrize("op", list(OPS))
def test_short_path_values_as_torch(op: str) -> None:
    a = _logits(np.random.default_rng(1), (5, 65), "filtered", np.float32)
    with ds.no_grad():
        got = OPS[op](ds.tensor(a), -1).numpy()
    want = getattr(torch, op)(torch.tensor(a), -1).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def _calls(x: ds.Tensor, **kwargs: Any) -> bool:
    return (
        reductions._small_rows(x, kwargs.pop("dim", -1), kwargs.pop("dtype", None), kwargs.pop("axis", None))
        is not None
    )


@pytest.mark.host_only  # as above
def test_short_path_only_where_the_general_path_runs_numpys_steps() -> None:
    x = ds.randn(5, 65)
    with ds.no_grad():
        assert _calls(x) and _calls(x, dim=1)
        assert not _calls(x, dim=0)  # not the last dim
        assert not _calls(x, dim=np.int64(-1))  # a NumPy int: the checks
        assert not _calls(x, dim=True)
        assert not _calls(x, dtype=ds.float64)
        assert not _calls(x, axis=-1)
        assert not _calls(ds.randn(65, 5).t())  # not C-contiguous
        assert not _calls(ds.randn(5, 65).half())
        assert not _calls(ds.tensor(3.0), dim=0)  # 0-d
        assert not _calls(ds.randn(0, 65))
        assert not _calls(ds.randn(4, reductions.JIT_SOFTMAX_MIN_SIZE // 4))  # the compiled kernels' size
        assert not _calls(x.numpy())  # not a Tensor
    assert _calls(x)  # nothing requires grad
    assert not _calls(ds.randn(5, 65, requires_grad=True))


def test_gradients_unchanged_where_the_input_requires_grad() -> None:
    a = np.random.default_rng(2).standard_normal((5, 65))
    g = np.random.default_rng(3).standard_normal((5, 65))
    for op in OPS:
        x, tx = _tensor(a, True), torch.tensor(a, requires_grad=True)
        (OPS[op](x, -1) * _tensor(g, False)).sum().backward()
        (getattr(torch, op)(tx, -1) * torch.tensor(g)).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
