"""softmax and log_softmax on both paths, the compiled one (downslope.ops._jit_softmax, when numba is
installed) and NumPy's, against PyTorch: values and input gradients in float32/float64/float16,
row lengths around the SIMD block sizes, and the exact cases the shift by the row's max keeps
(equal logits give exactly 1/n, a dominant class exactly 0, logits of +-1000, -inf rows NaN,
subnormal probabilities); the switches; several threads; double backward through the compiled
forward."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest

import downslope as ds
from downslope import jit_gate

torch = pytest.importorskip("torch")

_KERNELS = "downslope.ops._jit_softmax"
_OPS = ["softmax", "log_softmax"]


@pytest.fixture(params=["jit", "numpy"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test on the compiled kernels (skipped without numba) or on the NumPy path."""
    if request.param == "numpy":
        with jit_gate.disabled():
            yield "numpy"
        return
    pytest.importorskip("numba")
    monkeypatch.delenv("DOWNSLOPE_JIT", raising=False)  # CI also runs the suite with the switch off
    from downslope.ops import reductions

    monkeypatch.setattr(reductions, "JIT_SOFTMAX_MIN_SIZE", 1)  # small test rows take the compiled path too
    yield "jit"


def _torch_pair(name: str, a: np.ndarray, g: np.ndarray, dim: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """torch's output and input gradient, in float64."""
    t = torch.tensor(a.astype(np.float64), requires_grad=True)
    y = getattr(torch, name)(t, dim)
    y.backward(torch.tensor(g.astype(np.float64)))
    return y.detach().numpy(), t.grad.numpy()


def _t(a: np.ndarray, requires_grad: bool = False) -> ds.Tensor:
    """``a`` as a tensor of its own dtype (a float64 array would otherwise arrive as float32)."""
    return ds.tensor(a, dtype=str(a.dtype), requires_grad=requires_grad)


def _ours_pair(name: str, a: np.ndarray, g: np.ndarray, dim: int = -1) -> tuple[np.ndarray, np.ndarray]:
    t = _t(a, requires_grad=True)
    y = getattr(ds, name)(t, dim)
    y.backward(_t(g))
    return y.detach().numpy(), t.grad.numpy()


@pytest.mark.parametrize("name", _OPS)
@pytest.mark.parametrize("n", [1, 2, 10, 15, 16, 17, 33, 63, 64, 65, 127, 1000])
def test_values_and_gradients_match_torch_in_float64(path: str, name: str, n: int) -> None:
    rng = np.random.default_rng(n)
    a = rng.standard_normal((5, n)) * 4
    g = rng.standard_normal((5, n))
    ours, ours_grad = _ours_pair(name, a, g)
    ref, ref_grad = _torch_pair(name, a, g)
    assert ours.dtype == ours_grad.dtype == np.float64
    np.testing.assert_allclose(ours, ref, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(ours_grad, ref_grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", _OPS)
@pytest.mark.parametrize("shape", [(7, 9), (3, 4, 64), (2, 50257), (129,)])
def test_float32_is_as_close_to_the_exact_result_as_torchs_float32(
    path: str, name: str, shape: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(1)
    a = (rng.standard_normal(shape) * 5).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    ours, ours_grad = _ours_pair(name, a, g)
    assert ours.dtype == ours_grad.dtype == np.float32
    ref, ref_grad = _torch_pair(name, a, g)
    t = torch.tensor(a, requires_grad=True)
    theirs = getattr(torch, name)(t, -1)
    theirs.backward(torch.tensor(g))
    theirs_err = np.abs(theirs.detach().numpy() - ref).max()
    theirs_grad_err = np.abs(t.grad.numpy() - ref_grad).max()
    assert np.abs(ours - ref).max() <= 2 * theirs_err + 1e-7
    np.testing.assert_allclose(ours_grad, ref_grad, rtol=1e-6, atol=2 * theirs_grad_err + 1e-7)
    if name == "softmax":  # every probability to float32 precision, the tiny ones too
        normal = ref > 1e-30
        np.testing.assert_allclose(ours[normal], ref[normal], rtol=3e-6)


@pytest.mark.parametrize("name", _OPS)
def test_float16_runs_in_float32_and_rounds_once(path: str, name: str) -> None:
    rng = np.random.default_rng(2)
    a = (rng.standard_normal((4, 70)) * 3).astype(np.float16)
    g = rng.standard_normal((4, 70)).astype(np.float16)
    ours, ours_grad = _ours_pair(name, a, g)
    assert ours.dtype == ours_grad.dtype == np.float16
    t = torch.tensor(a, requires_grad=True)
    theirs = getattr(torch, name)(t, -1)
    theirs.backward(torch.tensor(g))
    # one float16 rounding of a float32 result: within a float16 ulp of torch's (which may round the other way)
    np.testing.assert_allclose(
        ours.astype(np.float32), theirs.detach().numpy().astype(np.float32), rtol=1e-3, atol=1e-7
    )
    # the gradient cancels (g - exp(y) * sum(g)): its error is a float16 ulp of g's size, |g| < 4 here
    np.testing.assert_allclose(ours_grad.astype(np.float32), t.grad.numpy().astype(np.float32), rtol=2e-3, atol=4e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 3, 7, 10, 64, 1000, 50257])
def test_a_row_of_equal_logits_gives_exactly_one_over_n(path: str, dtype: type, n: int) -> None:
    for value in (0.0, 3.25, -1000.0, 1000.0):
        a = np.full((2, n), value, dtype=dtype)
        ours = ds.softmax(_t(a), -1).numpy()
        assert (ours == dtype(1) / dtype(n)).all(), (n, value)
        logs = ds.log_softmax(_t(a), -1).numpy()
        assert (logs == -np.log(dtype(n))).all() or np.abs(logs + np.log(n)).max() <= 2 * np.spacing(dtype(np.log(n)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_logits_are_exact_and_a_dominant_class_gives_exactly_zero(path: str, dtype: type) -> None:
    a = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0], [1.5, -20.0, -40.0]], dtype=dtype)
    for name in _OPS:
        ours = getattr(ds, name)(_t(a), -1).numpy()
        theirs = getattr(torch, name)(torch.tensor(a), -1).numpy()
        np.testing.assert_array_equal(ours[:2], theirs[:2])
        np.testing.assert_allclose(ours[2], theirs[2], rtol=4 * np.finfo(dtype).eps)
    assert ds.softmax(_t(a), -1).numpy()[0].tolist() == [1.0, 0.0, 0.0]
    logs = ds.log_softmax(_t(a), -1).numpy()
    assert logs[0, 0] == 0.0 and logs[0, 1] == -2000.0


@pytest.mark.parametrize("name", _OPS)
def test_non_finite_rows_give_torchs_values_without_warnings(path: str, name: str) -> None:
    rows = np.array(
        [
            [-np.inf] * 5,  # every logit -inf: NaN, as torch (-inf - -inf)
            [0.0, -np.inf, 1.0, -np.inf, 2.0],  # some -inf: probability 0
            [0.0, np.inf, 1.0, 2.0, 3.0],  # +inf: NaN row
            [0.0, np.nan, 1.0, 2.0, 3.0],  # NaN: NaN row
            [np.nan] * 5,
        ],
        dtype=np.float32,
    )
    with np.errstate(all="raise"):  # a NumPy warning here would raise
        ours = getattr(ds, name)(_t(rows), -1).numpy()
    theirs = getattr(torch, name)(torch.tensor(rows), -1).numpy()
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=0, equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_subnormal_probabilities_are_kept_as_torch_keeps_them(path: str, dtype: type) -> None:
    tiny = np.finfo(dtype).smallest_subnormal
    low = -95.0 if dtype == np.float32 else -740.0
    a = np.zeros((1, 64), dtype=dtype)
    a[0, 1:40] = np.linspace(low, low + 20.0, 39)
    ours = ds.softmax(_t(a), -1).numpy()
    theirs = torch.softmax(torch.tensor(a), -1).numpy()
    exact = torch.softmax(torch.tensor(a.astype(np.float64)), -1).numpy()
    if dtype == np.float64:
        exact = theirs
    assert (ours[0, 1:40] > 0).any()  # not flushed to zero
    np.testing.assert_allclose(ours, exact, rtol=2e-6, atol=2 * tiny)
    np.testing.assert_allclose(ours, theirs, rtol=2e-6, atol=2 * tiny)


def test_double_backward_through_the_forward_matches_torch(path: str) -> None:
    rng = np.random.default_rng(4)
    a = rng.standard_normal((3, 20))
    w = rng.standard_normal((3, 20))
    for name in _OPS:
        x = _t(a, requires_grad=True)
        (gx,) = ds.autograd.grad((getattr(ds, name)(x, -1) * _t(w)).sum(), x, create_graph=True)
        (gx * gx).sum().backward()
        t = torch.tensor(a, requires_grad=True)
        (gt,) = torch.autograd.grad((getattr(torch, name)(t, -1) * torch.tensor(w)).sum(), t, create_graph=True)
        (gt * gt).sum().backward()
        np.testing.assert_allclose(gx.detach().numpy(), gt.detach().numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", _OPS)
def test_the_two_paths_agree_to_a_few_ulps(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("numba")
    monkeypatch.delenv("DOWNSLOPE_JIT", raising=False)
    rng = np.random.default_rng(5)
    a = (rng.standard_normal((50, 300)) * 6).astype(np.float32)
    g = rng.standard_normal((50, 300)).astype(np.float32)
    fast, fast_grad = _ours_pair(name, a, g)
    with jit_gate.disabled():
        slow, slow_grad = _ours_pair(name, a, g)
    scale = np.abs(slow).max(axis=-1, keepdims=True) if name == "log_softmax" else np.abs(slow)
    assert (np.abs(fast - slow) <= 8 * np.spacing(scale.astype(np.float32))).all()
    np.testing.assert_allclose(fast_grad, slow_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.host_only  # numba's kernels run on host arrays only: on a device the NumPy-formulated path runs
def test_the_kernels_engage_for_host_rows_and_every_switch_turns_them_off(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("numba")
    monkeypatch.delenv("DOWNSLOPE_JIT", raising=False)
    from downslope.nn import _jit
    from downslope.ops import reductions

    host = np.zeros((2, 3), np.float32)
    assert reductions._softmax_kernels((1,), host) is None  # too small to earn numba's load in a process
    monkeypatch.setattr(reductions, "JIT_SOFTMAX_MIN_SIZE", 6)
    assert reductions._softmax_kernels((1,), host) is not None
    assert reductions._softmax_kernels((0,), host) is None  # not the last dim
    assert reductions._softmax_kernels((1,), host.T.copy().T) is None  # not C-contiguous
    assert reductions._softmax_kernels((1,), host.astype(np.float16)) is None
    assert reductions._softmax_kernels((1,), np.zeros((2, 0), np.float32)) is None
    assert reductions._softmax_kernels((1,), host, host.astype(np.float64)) is None  # g and y of two dtypes
    with _jit.disabled():  # the nn layers' switch is the core's
        assert reductions._softmax_kernels((1,), host) is None and _jit._off
    assert not _jit._off
    monkeypatch.setenv("DOWNSLOPE_JIT", "0")
    assert reductions._softmax_kernels((1,), host) is None


def test_the_kernels_do_not_engage_for_device_arrays() -> None:
    from downslope.devices import strict
    from downslope.ops import reductions

    device = strict.asarray(np.zeros((2, 3), np.float32))
    assert reductions._softmax_kernels((1,), device) is None
    a = np.random.default_rng(6).standard_normal((4, 33)).astype(np.float32)
    for name in _OPS:
        on_device = getattr(ds, name)(ds.tensor(a, device="strict"), -1)
        assert on_device.device == ds.device("strict")
        host = getattr(ds, name)(ds.tensor(a, device="cpu"), -1)
        np.testing.assert_allclose(on_device.cpu().numpy(), host.numpy(), rtol=1e-6, atol=1e-7)


@contextlib.contextmanager
def _threads(count: int) -> Iterator[None]:
    before = ds.get_num_threads()
    ds.set_num_threads(count)
    try:
        yield
    finally:
        ds.set_num_threads(before)


@pytest.mark.parametrize("name", _OPS)
def test_rows_split_over_threads_give_the_same_bits(path: str, name: str) -> None:
    rng = np.random.default_rng(7)
    a = (rng.standard_normal((300, 1000)) * 3).astype(np.float32)
    g = rng.standard_normal((300, 1000)).astype(np.float32)
    one = _ours_pair(name, a, g)
    with _threads(2):
        two = _ours_pair(name, a, g)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])
