"""layer_norm's small no-grad path (``normalization._layer_norm_small``) against the recorded row path
it stands in for: the same bits on random rows, rows far from zero, constant rows, NaN and inf,
float64, with and without the affine parameters; taken only where nothing is recorded and the rows
are too few for the compiled kernel."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope.nn import normalization

torch = pytest.importorskip("torch")


def _rows(
    rng: np.random.Generator, shape: tuple[int, ...], norm: tuple[int, ...], special: str, dtype: Any
) -> np.ndarray:
    a = rng.standard_normal(shape)
    rows = a.reshape(-1, int(np.prod(norm)))  # a view: writes reach ``a``
    if special == "far":  # the mean's rounding shifts every deviation: the second pass runs
        a = a * 1e-2 + 1e4
    elif special == "constant":
        rows[-1] = 7.0
    elif special == "nan":
        rows[0, -1] = np.nan
    elif special == "inf":
        rows[-1, 0] = -np.inf
    return a.astype(dtype)


def _tensor(a: np.ndarray, requires_grad: bool) -> ds.Tensor:
    return ds.tensor(a, dtype=ds.float64 if a.dtype == np.float64 else ds.float32, requires_grad=requires_grad)


@pytest.mark.host_only  # the small path is the host arrays'
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine", ["both", "weight", "bias", "none"])
@pytest.mark.parametrize("special", ["none", "far", "constant", "nan", "inf"])
@pytest.mark.parametrize(
    "shape, norm", [((1, 32, 64), (64,)), ((5, 7, 64), (64,)), ((3, 4, 5, 6), (5, 6)), ((2, 1), (1,))]
)
def test_small_path_gives_the_recorded_paths_bits(
    dtype: Any, affine: str, special: str, shape: tuple, norm: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(0)
    a = _rows(rng, shape, norm, special, dtype)
    w = rng.uniform(0.5, 1.5, norm).astype(dtype) if affine in ("both", "weight") else None
    b = rng.standard_normal(norm).astype(dtype) if affine in ("both", "bias") else None
    taken = []
    small = normalization._layer_norm_small
    monkeypatch.setattr(normalization, "_layer_norm_small", lambda *args: taken.append(1) or small(*args))

    def run(requires_grad: bool) -> ds.Tensor:
        tw = None if w is None else _tensor(w, requires_grad)
        tb = None if b is None else _tensor(b, requires_grad)
        return F.layer_norm(_tensor(a, requires_grad), norm, tw, tb)

    with np.errstate(all="ignore"):
        recorded = run(True)
        assert not taken and recorded.requires_grad
        with ds.no_grad():
            fast = run(True)
        assert taken == [1]
        plain = run(False)  # nothing requires grad
        assert taken == [1, 1]
    want = recorded.detach().numpy()
    for got in (fast, plain):
        assert not got.requires_grad and got.shape == recorded.shape and got.dtype == recorded.dtype
        assert got.numpy().tobytes() == want.tobytes()


def test_small_path_values_as_torch() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 9, 64)).astype(np.float32) * 3 + 1
    ln, tln = ds.nn.LayerNorm(64), torch.nn.LayerNorm(64)
    with torch.no_grad():
        tln.weight.uniform_(0.5, 1.5)
        tln.bias.normal_()
    ln.load_state_dict({k: ds.tensor(v.numpy()) for k, v in tln.state_dict().items()})
    with ds.no_grad(), torch.no_grad():
        np.testing.assert_allclose(ln(ds.tensor(x)).numpy(), tln(torch.tensor(x)).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.host_only  # as above
def test_small_path_not_taken_from_the_compiled_kernels_size(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = []
    monkeypatch.setattr(normalization, "_layer_norm_small", lambda *args: taken.append(1))
    x = ds.randn(2, normalization.JIT_LAYER_NORM_MIN_SIZE // 32, 16)  # 8192 values
    with ds.no_grad():
        F.layer_norm(x, (16,))
    assert taken == []
    with ds.no_grad():
        F.layer_norm(ds.randn(2, normalization.JIT_LAYER_NORM_MIN_SIZE // 32 - 1, 16), (16,))
    assert taken == [1]


def test_gradients_unchanged_where_a_parameter_requires_grad() -> None:
    """Only the weight requires grad: the recorded path runs, and its gradients are torch's."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 5, 16))
    ln, tln = ds.nn.LayerNorm(16).double(), torch.nn.LayerNorm(16).double()
    ln.bias.requires_grad_(False)
    tln.bias.requires_grad_(False)
    g = rng.standard_normal((2, 5, 16))
    (ln(ds.tensor(x, dtype=ds.float64)) * ds.tensor(g, dtype=ds.float64)).sum().backward()
    (tln(torch.tensor(x)) * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(ln.weight.grad.numpy(), tln.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
