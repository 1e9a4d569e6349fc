"""scaled_dot_product_attention's small no-grad path (``attention._small_attention``) against the
general fused node it stands in for: the same bits and the same output layout on random inputs,
with -inf, +inf and NaN scores, rows masked out entirely, float64, and causal or not; taken only
where no gradient is recorded and the general path would run its plain NumPy steps."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope.nn import attention

torch = pytest.importorskip("torch")


def _heads(a: np.ndarray, heads: int, requires_grad: bool) -> tuple[ds.Tensor, ds.Tensor, ds.Tensor]:
    """q, k, v split from a packed (B, T, 3 * C) projection as nanoGPT does: (B, H, T, C / H) views."""
    b, t, c3 = a.shape
    c = c3 // 3
    x = ds.tensor(a, dtype=ds.float64 if a.dtype == np.float64 else ds.float32, requires_grad=requires_grad)
    q, k, v = x.split(c, dim=2)
    return tuple(z.view(b, t, heads, c // heads).transpose(1, 2) for z in (q, k, v))  # type: ignore[return-value]


def _packed(rng: np.random.Generator, shape: tuple[int, int, int], dtype: Any, special: str) -> np.ndarray:
    a = rng.standard_normal(shape).astype(dtype)
    c = shape[2] // 3
    if special == "inf":  # scores of -inf and +inf: a query row times keys of both signs
        a[0, 1, 0] = np.inf
        a[0, :, c] = rng.choice([-1.0, 1.0], size=shape[1])
    elif special == "masked-row":  # every key of a row scores -inf: the row attends to nothing
        a[0, 2, 0] = np.inf
        a[0, :, c] = -1.0
    elif special == "nan":
        a[0, 1, c + 1] = np.nan
    elif special == "overflow":  # finite inputs whose scores overflow to +inf
        a[0, -1, :c] = 3e38 if dtype == np.float32 else 1e308
        a[0, :, c : 2 * c] = 10.0
    elif special == "ties":
        a[..., :c] = np.round(a[..., :c])
        a[..., c : 2 * c] = np.round(a[..., c : 2 * c])
    return a


@pytest.mark.host_only  # the small path is the host arrays'
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("is_causal", [True, False])
@pytest.mark.parametrize("special", ["none", "inf", "masked-row", "nan", "overflow", "ties"])
@pytest.mark.parametrize("shape, heads", [((1, 32, 192), 4), ((5, 7, 96), 2), ((2, 3, 24), 1), ((1, 9, 48), 4)])
def test_small_path_gives_the_general_paths_bits(
    dtype: Any, is_causal: bool, special: str, shape: tuple[int, int, int], heads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _packed(np.random.default_rng(0), shape, dtype, special)
    taken = []
    small = attention._small_attention
    monkeypatch.setattr(attention, "_small_attention", lambda *args: taken.append(1) or small(*args))
    with np.errstate(all="ignore"):
        general = F.scaled_dot_product_attention(*_heads(a, heads, True), is_causal=is_causal)  # records: general
        assert not taken
        with ds.no_grad():
            fast = F.scaled_dot_product_attention(*_heads(a, heads, False), is_causal=is_causal)
        assert taken == [1]
        plain = F.scaled_dot_product_attention(*_heads(a, heads, False), is_causal=is_causal)  # nothing requires grad
        assert taken == [1, 1]
    want = general.detach().numpy()
    for got in (fast, plain):
        assert got.dtype == general.dtype and got.stride() == general.stride()
        assert got.numpy().tobytes() == want.tobytes(), np.argwhere(~((got.numpy() == want) | np.isnan(want)))


def test_small_path_output_merges_heads_as_torchs() -> None:
    """The output lies in memory as the query does (B, T, H, D), so ``transpose(1, 2).view(B, T, C)``
    works on it, as on PyTorch's; values as PyTorch's."""
    a = np.random.default_rng(1).standard_normal((2, 6, 48)).astype(np.float32)
    with ds.no_grad():
        y = F.scaled_dot_product_attention(*_heads(a, 4, False), is_causal=True)
        merged = y.transpose(1, 2).view(2, 6, 16).numpy()
    tq, tk, tv = (z.view(2, 6, 4, 4).transpose(1, 2) for z in torch.tensor(a).split(16, dim=2))
    ty = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
    np.testing.assert_allclose(merged, ty.transpose(1, 2).reshape(2, 6, 16).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "q_shape, keys, width, is_causal, small",
    [
        ((1, 4, 32, 16), 32, 16, True, True),
        ((1, 4, 64, 16), 64, 16, True, False),  # 16384 scores: the compiled softmax's size
        ((1, 1, 300, 4), 40, 4, True, False),  # enough queries for the causal blocks
        ((1, 1, 8, 4096), 8, 4096, False, True),
        ((1, 1, 16, 4096), 16, 4096, False, False),  # a product oneDNN's GEMM would take
        ((0, 4, 8, 16), 8, 16, False, False),  # empty
    ],
)
def test_small_path_only_where_the_general_path_runs_numpys_steps(
    q_shape: tuple[int, ...], keys: int, width: int, is_causal: bool, small: bool
) -> None:
    assert attention._small_enough(q_shape, keys, width, is_causal) is small


@pytest.mark.host_only  # the small path is the host arrays'
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lengths", [(5, 5), (1, 9), (6, 3), (40, 40)])
def test_small_path_on_contiguous_and_3d_inputs(
    dtype: Any, lengths: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Queries in order (3-d, and 4-d contiguous), fewer or more queries than keys (the causal mask
    top-left aligned): the general path's bits, in order."""
    taken = []
    small = attention._small_attention
    monkeypatch.setattr(attention, "_small_attention", lambda *args: taken.append(1) or small(*args))
    rng = np.random.default_rng(4)
    length, keys = lengths
    for lead in ((2,), (2, 3)):
        arrays = [rng.standard_normal(lead + (n, 8)).astype(dtype) for n in (length, keys, keys)]
        for is_causal in (True, False):
            with np.errstate(all="ignore"):
                general = _attend(arrays, is_causal, True)
                fast = _attend(arrays, is_causal, False)
            assert fast.stride() == general.stride() and fast.numpy().flags.c_contiguous
            assert fast.numpy().tobytes() == general.detach().numpy().tobytes()
    assert len(taken) == 4


def _attend(arrays: list[np.ndarray], is_causal: bool, requires_grad: bool) -> ds.Tensor:
    dtype = ds.float64 if arrays[0].dtype == np.float64 else ds.float32
    q, k, v = (ds.tensor(a, dtype=dtype, requires_grad=requires_grad) for a in arrays)
    return F.scaled_dot_product_attention(q, k, v, is_causal=is_causal)
