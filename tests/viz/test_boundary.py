"""Decision-boundary plots: class probabilities from logits, the boundary where it must be."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope.viz.boundary import class_probabilities, plot_decision_boundary

pytest.importorskip("matplotlib")


def test_class_probabilities_closed_forms() -> None:
    logits = np.array([[0.0, 1.0, 2.0], [5.0, 5.0, 5.0]])
    e = np.exp(logits)
    np.testing.assert_allclose(class_probabilities(logits), e / e.sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(class_probabilities(np.array([[1000.0, 0.0]])), [[1.0, 0.0]])  # no overflow
    p = class_probabilities(np.array([[2.0], [-1.0]]))
    np.testing.assert_allclose(p[:, 1], 1 / (1 + np.exp(-np.array([2.0, -1.0]))), rtol=1e-12)
    np.testing.assert_allclose(class_probabilities(np.array([0.3]), "probabilities"), [[0.7, 0.3]])
    with pytest.raises(ValueError, match="output"):
        class_probabilities(logits, "scores")


def _boundary_vertices(ax) -> np.ndarray:
    black = [
        c
        for c in ax.collections
        if hasattr(c, "get_paths")
        and c.get_paths()
        and getattr(c, "levels", None) is not None
        and len(c.levels)
        and np.allclose(c.get_edgecolor()[:, :3], 0)
    ]
    assert black, "no boundary contour drawn"
    return np.concatenate([p.vertices for p in black[-1].get_paths() if len(p.vertices)])


def test_binary_boundary_is_where_logit_is_zero() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    y = (x[:, 0] + 2 * x[:, 1] > 0.5).astype(int)
    fig = plot_decision_boundary(lambda t: t[:, :1] + 2 * t[:, 1:] - 0.5, x, y, grid_points=60, show="probability")
    ax = fig.axes[0]
    v = _boundary_vertices(ax)
    np.testing.assert_allclose(v[:, 0] + 2 * v[:, 1], 0.5, atol=1e-4)  # P = 0.5 exactly where logit = 0
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "P(class 1)"  # colour bar
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["class 0", "class 1"]
    pts = np.concatenate([c.get_offsets() for c in ax.collections if c.get_label() in ("class 0", "class 1")])
    assert sorted(map(tuple, pts)) == sorted(map(tuple, x))


def test_multiclass_regions_with_a_module() -> None:
    from downslope import nn

    layer = nn.Linear(2, 3)
    with ds.no_grad():
        layer.weight.array[...] = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]], dtype=np.float32)
        layer.bias.array[...] = 0.0
    rng = np.random.default_rng(1)
    x = rng.normal(size=(90, 2))
    y = np.argmax(x @ layer.weight.array.T, axis=1)
    for show in ("class", "probability"):
        fig = plot_decision_boundary(layer, x, y, grid_points=50, show=show, class_names=["a", "b", "c"])
        ax = fig.axes[0]
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c"]
        v = _boundary_vertices(ax)
        # Every boundary vertex lies (within a grid cell) where two scores tie for the maximum.
        scores = np.sort(v @ layer.weight.array.T.astype(np.float64), axis=1)
        cell = 2 * (np.ptp(x, axis=0).max() * 1.2) / 49
        assert np.all(scores[:, -1] - scores[:, -2] < cell)


def test_bad_inputs_are_explained() -> None:
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        plot_decision_boundary(lambda t: t, np.zeros((4, 3)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="class 5 but the model outputs 2"):
        plot_decision_boundary(lambda t: t, x + np.arange(4)[:, None], [0, 1, 0, 5])
    with pytest.raises(ValueError, match="integer class labels"):
        plot_decision_boundary(lambda t: t, x, [0, 0.5, 0, 1])
    with pytest.raises(ValueError, match="show"):
        plot_decision_boundary(lambda t: t, x, [0, 1, 0, 1], show="both")


def test_probabilities_are_distributions_property() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays

    @settings(max_examples=25, deadline=None)
    @given(arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 5)), elements=st.floats(-50, 50)))
    def check(logits: np.ndarray) -> None:
        p = class_probabilities(logits)
        assert p.shape == (logits.shape[0], max(logits.shape[1], 2))
        assert np.all(p >= 0) and np.allclose(p.sum(axis=1), 1.0)
        if logits.shape[1] > 1:  # the most likely class is the largest logit (ties within rounding aside)
            chosen = logits[np.arange(len(p)), p.argmax(axis=1)]
            assert np.all(chosen >= logits.max(axis=1) - 1e-12 * (1 + np.abs(logits).max(axis=1)))

    check()


def test_probabilities_read_as_logits_are_warned_about() -> None:
    from downslope import nn

    x = np.array([[0.0, 0.0], [1.0, 1.0], [-1.0, 0.5]])
    model = nn.Sequential(nn.Linear(2, 1), nn.Sigmoid())
    with pytest.warns(UserWarning, match="output='probabilities'"):
        plot_decision_boundary(model, x, [0, 1, 0], grid_points=20)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning when said so
        plot_decision_boundary(model, x, [0, 1, 0], grid_points=20, output="probabilities")


def test_class_names_as_labels_stand_for_their_sorted_order() -> None:
    from downslope import nn

    x = np.array([[0.0, 0.0], [1.0, 1.0], [-1.0, 0.5]])
    fig = plot_decision_boundary(nn.Linear(2, 2), x, np.array(["yes", "no", "yes"]), grid_points=20)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "no" in legend and "yes" in legend
