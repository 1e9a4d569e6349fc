"""Initializers: exact bounds, empirical mean/std against each formula, fans, gains, seeding."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.devices import to_host
from downslope.nn import init

torch = pytest.importorskip("torch")

SHAPE = (300, 200, 3, 3)  # large: 540,000 samples; fan_in = 1800, fan_out = 2700
FAN_IN, FAN_OUT = 200 * 9, 300 * 9


def assert_moments(w: np.ndarray, mean: float, std: float) -> None:
    """Sample mean within 5 standard errors; sample std within 1% of the formula."""
    n = w.size
    assert abs(w.mean() - mean) < 5 * std / math.sqrt(n), (w.mean(), mean)
    assert abs(w.std() - std) < 0.01 * std, (w.std(), std)


@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_xavier_uniform_bound_and_moments(gain: float) -> None:
    w = init.xavier_uniform_(ds.zeros(*SHAPE), gain=gain).numpy()
    bound = gain * math.sqrt(6 / (FAN_IN + FAN_OUT))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.999 * bound
    assert_moments(w, 0.0, bound / math.sqrt(3))


def test_xavier_normal_moments() -> None:
    w = init.xavier_normal_(ds.zeros(*SHAPE), gain=0.5).numpy()
    assert_moments(w, 0.0, 0.5 * math.sqrt(2 / (FAN_IN + FAN_OUT)))


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize(
    ("nonlinearity", "a"), [("relu", 0.0), ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)), ("tanh", 0.0)]
)
def test_kaiming_uniform_bound_and_moments(mode: str, nonlinearity: str, a: float) -> None:
    w = init.kaiming_uniform_(ds.zeros(*SHAPE), a=a, mode=mode, nonlinearity=nonlinearity).numpy()
    fan = FAN_IN if mode == "fan_in" else FAN_OUT
    bound = init.calculate_gain(nonlinearity, a) * math.sqrt(3 / fan)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.999 * bound
    assert_moments(w, 0.0, bound / math.sqrt(3))


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_kaiming_normal_moments(mode: str) -> None:
    w = init.kaiming_normal_(ds.zeros(*SHAPE), mode=mode, nonlinearity="relu").numpy()
    fan = FAN_IN if mode == "fan_in" else FAN_OUT
    assert_moments(w, 0.0, math.sqrt(2) / math.sqrt(fan))


def test_kaiming_default_matches_torch_default() -> None:
    """Same defaults as torch (a=0, fan_in, leaky_relu): the two libraries' samples have the same std."""
    ours = init.kaiming_uniform_(ds.zeros(500, 400)).numpy()
    ref = torch.nn.init.kaiming_uniform_(torch.empty(500, 400)).numpy()
    assert abs(ours.std() - ref.std()) < 0.01 * ref.std()


def test_normal_uniform_constant_zeros_ones() -> None:
    assert_moments(init.normal_(ds.zeros(400, 500), mean=2.0, std=3.0).numpy(), 2.0, 3.0)
    u = init.uniform_(ds.zeros(400, 500), -1.0, 3.0).numpy()
    assert u.min() >= -1.0 and u.max() < 3.0
    assert_moments(u, 1.0, 4 / math.sqrt(12))
    np.testing.assert_array_equal(init.constant_(ds.zeros(3), 1.5).numpy(), [1.5, 1.5, 1.5])
    assert not init.zeros_(ds.ones(3)).numpy().any()
    assert (init.ones_(ds.zeros(3)).numpy() == 1).all()


def test_trunc_normal_stays_inside_bounds() -> None:
    w = init.trunc_normal_(ds.zeros(100_000), std=1.0, a=-1.0, b=1.5).numpy()
    assert w.min() >= -1.0 and w.max() <= 1.5
    # Mean of N(0,1) truncated to [-1, 1.5]: (phi(a) - phi(b)) / (Phi(b) - Phi(a)).
    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    expected = (phi(-1.0) - phi(1.5)) / (cdf(1.5) - cdf(-1.0))
    assert abs(w.mean() - expected) < 0.01


@pytest.mark.parametrize("shape", [(6, 6), (4, 10), (10, 4), (8, 2, 3)])
def test_orthogonal_rows_or_columns_are_orthonormal(shape: tuple) -> None:
    w = init.orthogonal_(ds.zeros(*shape), gain=2.0).numpy().reshape(shape[0], -1).astype(np.float64)
    rows, cols = w.shape
    gram = w @ w.T if rows <= cols else w.T @ w
    np.testing.assert_allclose(gram, 4.0 * np.eye(min(rows, cols)), atol=1e-5)


@pytest.mark.parametrize(
    ("name", "param"),
    [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", None),
     ("leaky_relu", 0.3), ("selu", None)],
)  # fmt: skip
def test_calculate_gain_matches_torch(name: str, param: Any) -> None:
    assert init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param), rel=1e-12)


def test_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match=r"at least 2 dims.*got shape \(5,\)"):
        init.xavier_uniform_(ds.zeros(5))
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        init.kaiming_normal_(ds.zeros(2, 2), mode="fan_avg")
    with pytest.raises(TypeError, match="expected a Tensor"):
        init.zeros_(np.zeros(2))  # type: ignore[arg-type]


def test_initializers_work_in_place_and_follow_the_seed() -> None:
    p = ds.nn.Parameter(ds.zeros(20, 10))
    arr = p.array
    ds.manual_seed(5)
    assert init.kaiming_normal_(p) is p and p.array is arr and p.dtype == np.float32
    first = arr.copy()
    ds.manual_seed(5)
    init.kaiming_normal_(p)
    np.testing.assert_array_equal(to_host(first), p.detach().numpy())


@pytest.mark.parametrize("shape", [(400, 300), (96, 40, 5), (32, 16, 3, 3)], ids=["linear", "conv1d", "conv2d"])
def test_uniform_bounds_use_torch_fans_for_every_layer_shape(shape: tuple) -> None:
    """The fans (and so the exact bounds) agree with torch's for Linear, Conv1d and Conv2d weights."""
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    for w, bound in [
        (init.xavier_uniform_(ds.zeros(*shape)), math.sqrt(6 / (fan_in + fan_out))),
        (init.kaiming_uniform_(ds.zeros(*shape), nonlinearity="relu"), math.sqrt(2) * math.sqrt(3 / fan_in)),
        (init.kaiming_uniform_(ds.zeros(*shape), mode="fan_out", nonlinearity="relu"), math.sqrt(6 / fan_out)),
    ]:
        top = float(np.abs(w.numpy()).max())
        assert top <= bound and top > 0.99 * bound, (top, bound)


@pytest.mark.parametrize("shape", [(3, 3), (2, 5), (5, 2)])
def test_eye_matches_torch(shape: tuple) -> None:
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(init.eye_(ds.zeros(*shape)).numpy(), torch.nn.init.eye_(torch.empty(shape)).numpy())


@pytest.mark.parametrize(("shape", "groups"), [((4, 4, 3), 1), ((6, 3, 3, 3), 2), ((2, 3, 1, 3, 3), 1), ((3, 5, 3), 1)])
def test_dirac_matches_torch(shape: tuple, groups: int) -> None:
    torch = pytest.importorskip("torch")
    ours = init.dirac_(ds.ones(*shape), groups).numpy()
    np.testing.assert_array_equal(ours, torch.nn.init.dirac_(torch.ones(shape), groups).numpy())


def test_sparse_zeroes_the_asked_share_of_each_column() -> None:
    ds.manual_seed(0)
    w = init.sparse_(ds.ones(20, 4), sparsity=0.25, std=0.5).numpy()
    assert [(w[:, j] == 0).sum() for j in range(4)] == [5, 5, 5, 5]
    assert 0.2 < w[w != 0].std() < 0.9
    with pytest.raises(ValueError, match="eye_: expected a 2-D tensor"):
        init.eye_(ds.zeros(2, 2, 2))


def test_deprecated_names_without_underscore_warn_and_fill_in_place() -> None:
    w = ds.zeros(3, 4)
    with pytest.warns(FutureWarning, match="xavier_uniform is deprecated in favor of nn.init.xavier_uniform_"):
        out = init.xavier_uniform(w)
    assert out is w and np.abs(w.numpy()).max() > 0
    with pytest.warns(FutureWarning):
        init.constant(w, 0.5)
    np.testing.assert_array_equal(w.numpy(), np.full((3, 4), 0.5, np.float32))


def test_initializers_fill_a_device_tensor_with_the_cpus_draws() -> None:
    from downslope.devices import device_of, to_host

    for fill in (init.kaiming_uniform_, init.orthogonal_, init.xavier_normal_, init.eye_):
        ds.manual_seed(3)
        cpu = fill(ds.zeros(4, 3))
        ds.manual_seed(3)
        dev = ds.zeros(4, 3).to("strict")
        array = dev.array
        assert fill(dev) is dev and dev.array is array  # written in place, on its device
        assert str(device_of(dev.array)) == "strict"
        np.testing.assert_array_equal(to_host(dev.array), cpu.numpy())


@pytest.mark.parametrize("a, b", [(4.0, 5.0), (4.5, 5.0), (-6.0, -5.5), (8.0, 9.0), (-9.0, -8.0), (20.0, 21.0)])
def test_trunc_normal_with_little_mass_between_the_bounds_is_exact_and_finishes(a, b):
    import math

    ds.manual_seed(0)
    w = ds.nn.init.trunc_normal_(ds.zeros(50_000, dtype=ds.float64), 0.0, 1.0, a, b).numpy()
    pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    upper = lambda z: 0.5 * math.erfc(z / math.sqrt(2))  # noqa: E731  (P(Z > z), exact in the tails)
    sign, lo, hi = (-1.0, -b, -a) if a + b < 0 else (1.0, a, b)  # a lower tail, by symmetry
    mass = upper(lo) - upper(hi)
    exact_mean = sign * (pdf(lo) - pdf(hi)) / mass
    exact_var = 1 + (lo * pdf(lo) - hi * pdf(hi)) / mass - (exact_mean * sign) ** 2
    assert a <= w.min() and w.max() <= b
    assert abs(w.mean() - exact_mean) < 5 * w.std() / math.sqrt(w.size)
    assert abs(w.var() / exact_var - 1) < 0.05  # a spread of values, not a few repeated ones


@pytest.mark.parametrize(
    "name", ["uniform_", "normal_", "trunc_normal_", "xavier_uniform_", "kaiming_normal_", "orthogonal_"]
)
def test_random_initializers_take_a_generator_as_torch_2(name):
    fn = getattr(ds.nn.init, name)
    draws = [fn(ds.zeros(4, 5), generator=ds.Generator().manual_seed(11)).numpy() for _ in range(2)]
    np.testing.assert_array_equal(draws[0], draws[1])
    ds.manual_seed(0)
    before = ds.rand(1).item()
    ds.manual_seed(0)
    fn(ds.zeros(4, 5), generator=ds.Generator().manual_seed(11))
    assert ds.rand(1).item() == before  # the library's own generator was not drawn from
