"""Built-in datasets: seeded synthetic generators, scikit-learn's data, standardization."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.data import datasets
from downslope.errors import ConfigError, DataError


@pytest.mark.parametrize("name", list(datasets.SYNTHETIC))
def test_synthetic_sets_are_seeded_float32_and_well_formed(name):
    a, b, c = datasets.load(name, seed=1), datasets.load(name, seed=1), datasets.load(name, seed=2)
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.array_equal(a.X, c.X)
    assert a.X.dtype == np.float32 and a.X.ndim == 2 and len(a) == len(a.y)
    if a.task == "classification":
        assert a.y.dtype == np.int64 and a.n_classes >= 2
        counts = np.bincount(a.y)
        assert counts.min() > 0.2 * counts.max()  # no class starved
    else:
        assert a.y.dtype == np.float32 and a.y.shape == (len(a), 1)


def test_line_least_squares_recovers_slope_and_intercept():
    t = datasets.line(n_samples=2000, slope=-1.5, intercept=4.0, noise=0.1, seed=3)
    A = np.hstack([t.X, np.ones((len(t), 1), np.float32)])
    (slope, intercept), *_ = np.linalg.lstsq(A, t.y[:, 0], rcond=None)
    assert abs(slope + 1.5) < 0.01 and abs(intercept - 4.0) < 0.01


def test_noise_free_moons_and_circles_have_their_geometry():
    m = datasets.moons(n_samples=200, noise=0.0)
    outer = m.X[m.y == 0]
    np.testing.assert_allclose(np.hypot(outer[:, 0], outer[:, 1]), 1.0, atol=1e-6)
    c = datasets.circles(n_samples=200, noise=0.0, factor=0.3)
    radius = np.hypot(c.X[:, 0], c.X[:, 1])
    np.testing.assert_allclose(radius[c.y == 1], 0.3, atol=1e-6)
    np.testing.assert_allclose(radius[c.y == 0], 1.0, atol=1e-6)


def test_xor_labels_follow_the_sign_rule_without_noise():
    t = datasets.xor(n_samples=300, noise=0.0)
    np.testing.assert_array_equal(t.y, (t.X[:, 0] * t.X[:, 1] < 0).astype(np.int64))


@pytest.mark.parametrize("name", datasets.SKLEARN)
def test_sklearn_sets_match_scikit_learn(name):
    skd = pytest.importorskip("sklearn.datasets")
    bunch = getattr(skd, f"load_{name}")()
    assert datasets._shipped(name) is not None  # read from scikit-learn's files, not through its loaders
    t = datasets.load(name)
    np.testing.assert_allclose(t.X, bunch.data.astype(np.float32), rtol=1e-6)
    np.testing.assert_allclose(t.y.reshape(-1), bunch.target)
    assert t.task == ("regression" if name == "diabetes" else "classification")
    assert list(t.feature_names) == [str(f) for f in bunch.feature_names]
    assert list(t.class_names) == [str(c) for c in getattr(bunch, "target_names", [])]
    if name == "digits":
        assert t.image_shape == (1, 8, 8)


def test_shipped_sets_load_without_importing_scikit_learn():
    import subprocess
    import sys

    pytest.importorskip("sklearn")
    code = "import sys; from downslope.data import datasets; datasets.load('digits'); print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_unknown_dataset_and_bad_option_list_choices():
    with pytest.raises(ConfigError, match="unknown dataset 'mnist'.*moons.*digits"):
        datasets.load("mnist")
    with pytest.raises(ConfigError, match="moons"):
        datasets.load("moons", wrong_option=3)


def test_table_rejects_mismatched_lengths():
    with pytest.raises(DataError, match="3 feature rows but 2 targets"):
        datasets.Table(np.zeros((3, 2)), np.zeros(2), "classification")


def test_standardizer_uses_training_statistics_only():
    rng = np.random.default_rng(0)
    train = rng.normal(5.0, 3.0, (500, 3)).astype(np.float32)
    train[:, 2] = 7.0  # a constant column must not become NaN
    test = rng.normal(5.0, 3.0, (100, 3)).astype(np.float32)
    s = datasets.Standardizer().fit(train)
    z = s.transform(train)
    np.testing.assert_allclose(z[:, :2].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z[:, :2].std(0), 1, atol=1e-4)
    np.testing.assert_array_equal(z[:, 2], 0)
    np.testing.assert_allclose(
        s.transform(test), (test - train.mean(0)) / np.where(train.std(0) > 0, train.std(0), 1), rtol=1e-4, atol=1e-5
    )
    restored = datasets.Standardizer()
    restored.load_state_dict(s.state_dict())
    np.testing.assert_array_equal(restored.transform(test), s.transform(test))
    with pytest.raises(DataError, match="fitted on 3 features, got data with 2"):
        s.transform(test[:, :2])


def test_standardizer_passes_one_hot_features_through():
    import numpy as np

    from downslope.data.datasets import Standardizer

    X = np.zeros((100, 3), np.float32)
    X[:, 0] = np.arange(100)
    X[0, 1] = 1.0  # a category seen once: standardized, it would be about sqrt(100) = 10
    X[1:, 2] = 1.0
    plain = Standardizer().fit(X).transform(X)
    assert plain[0, 1] > 9.9
    scaler = Standardizer().fit(X, passthrough=[1, 2])
    out = scaler.transform(X)
    assert np.array_equal(out[:, 1:], X[:, 1:]) and np.allclose(out[:, 0], plain[:, 0])
    state = scaler.state_dict()
    assert state["mean"][1:].tolist() == [0.0, 0.0] and state["scale"][1:].tolist() == [1.0, 1.0]
