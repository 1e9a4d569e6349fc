"""nn.init on complex tensors, as torch: both parts filled, the complex normal's parts each with
std / sqrt(2), and the inits torch refuses for complex refused. Checked by the statistics of large
draws against the closed forms, with torch's own draws held to the same check."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

SHAPE = (400, 300)  # fan_in 300, fan_out 400; 120k draws per part
N = SHAPE[0] * SHAPE[1]
NAMES = ["complex64", "complex128"]


def _parts(m: Any, name: str, fill: Any) -> tuple[np.ndarray, np.ndarray]:
    w = m.empty(*SHAPE, dtype=getattr(m, name))
    out = fill(m, w)
    assert out is w
    z = w.numpy() if m is ds else w.detach().numpy()
    assert z.dtype == np.dtype(name)
    return z.real.astype(np.float64), z.imag.astype(np.float64)


def _check_normal(part: np.ndarray, mean: float, std: float) -> None:
    # sample mean and std of N draws lie within 6 standard errors of the closed form
    assert abs(part.mean() - mean) < 6 * std / math.sqrt(N)
    assert abs(part.std() - std) < 6 * std / math.sqrt(2 * N)


def _check_uniform(part: np.ndarray, lo: float, hi: float) -> None:
    assert part.min() >= lo and part.max() <= hi
    assert part.min() < lo + (hi - lo) * 1e-3 and part.max() > hi - (hi - lo) * 1e-3  # the whole range is used
    _check_normal(part, (lo + hi) / 2, (hi - lo) / math.sqrt(12))


GAIN_RELU = math.sqrt(2.0)
UNIFORMS = [
    ("uniform_", lambda m, w: m.nn.init.uniform_(w, -0.5, 2.0), (-0.5, 2.0)),
    ("xavier_uniform_", lambda m, w: m.nn.init.xavier_uniform_(w, gain=1.5), (-1.5 * math.sqrt(6 / 700), 1.5 * math.sqrt(6 / 700))),
    ("kaiming_uniform_", lambda m, w: m.nn.init.kaiming_uniform_(w, nonlinearity="relu"),
     (-GAIN_RELU * math.sqrt(3 / 300), GAIN_RELU * math.sqrt(3 / 300))),
    ("Tensor.uniform_", lambda m, w: w.uniform_(1.0, 3.0), (1.0, 3.0)),
]  # fmt: skip
NORMALS = [
    ("normal_", lambda m, w: m.nn.init.normal_(w, 0.5, 2.0), (0.5, 2.0)),
    ("xavier_normal_", lambda m, w: m.nn.init.xavier_normal_(w, gain=1.5), (0.0, 1.5 * math.sqrt(2 / 700))),
    ("kaiming_normal_", lambda m, w: m.nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"),
     (0.0, GAIN_RELU / math.sqrt(400))),
    ("Tensor.normal_", lambda m, w: w.normal_(-1.0, 3.0), (-1.0, 3.0)),
]  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("what", "fill", "bounds"), UNIFORMS, ids=[u[0] for u in UNIFORMS])
def test_uniform_inits_fill_both_parts(name: str, what: str, fill: Any, bounds: tuple[float, float]) -> None:
    lo, hi = bounds
    for m in (torch, ds):
        m.manual_seed(0)
        re, im = _parts(m, name, fill)
        _check_uniform(re, lo, hi)
        _check_uniform(im, lo, hi)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("what", "fill", "moments"), NORMALS, ids=[n[0] for n in NORMALS])
def test_normal_inits_are_torchs_complex_normal(name: str, what: str, fill: Any, moments: tuple[float, float]) -> None:
    mean, std = moments
    for m in (torch, ds):
        m.manual_seed(0)
        re, im = _parts(m, name, fill)
        _check_normal(re, mean, std / math.sqrt(2))  # E|z - mean|^2 = std^2, split evenly between the parts
        _check_normal(im, mean, std / math.sqrt(2))
        assert abs(np.corrcoef(re.ravel(), im.ravel())[0, 1]) < 6 / math.sqrt(N)  # independent parts


@pytest.mark.parametrize("name", NAMES)
def test_sparse_complex_draws_complex_normal(name: str) -> None:
    for m in (torch, ds):
        m.manual_seed(0)
        re, im = _parts(m, name, lambda m, w: m.nn.init.sparse_(w, sparsity=0.5, std=0.4))
        assert ((re == 0) & (im == 0)).sum(axis=0).tolist() == [200] * SHAPE[1]  # half of each column
        kept = (re != 0) | (im != 0)
        for part in (re[kept], im[kept]):
            assert abs(part.std() - 0.4 / math.sqrt(2)) < 6 * 0.4 / math.sqrt(2 * part.size)


@pytest.mark.parametrize("fn", ["trunc_normal_", "orthogonal_"])
def test_inits_torch_refuses_for_complex(fn: str) -> None:
    with pytest.raises(Exception):  # noqa: B017 - torch's own error types differ per init
        getattr(torch.nn.init, fn)(torch.empty(4, 3, dtype=torch.cfloat))
    with pytest.raises(ds.errors.DTypeError, match=f"init.{fn}: not implemented for complex"):
        getattr(ds.nn.init, fn)(ds.empty(4, 3, dtype=ds.cfloat))


@pytest.mark.parametrize("name", ["float32", "float64"])
def test_constant_complex_value_into_real_tensor_as_torch(name: str) -> None:
    with pytest.raises(RuntimeError, match="cannot be converted"):
        torch.nn.init.constant_(torch.zeros(2, dtype=getattr(torch, name)), 1j)
    with pytest.raises(ds.errors.DTypeError, match="cannot be converted to type .* without overflow"):
        ds.nn.init.constant_(ds.zeros(2, dtype=getattr(ds, name)), 1j)
    ref = torch.nn.init.constant_(torch.zeros(2, dtype=getattr(torch, name)), 2 + 0j).numpy()
    ours = ds.nn.init.constant_(ds.zeros(2, dtype=getattr(ds, name)), 2 + 0j).numpy()
    assert ours.dtype == ref.dtype
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("name", NAMES)
def test_constant_complex_tensor_takes_complex_value(name: str) -> None:
    ref = torch.nn.init.constant_(torch.zeros(3, dtype=getattr(torch, name)), 2 - 1j).numpy()
    ours = ds.nn.init.constant_(ds.zeros(3, dtype=getattr(ds, name)), 2 - 1j).numpy()
    assert ours.dtype == ref.dtype
    np.testing.assert_array_equal(ours, ref)
