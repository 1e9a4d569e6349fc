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


def _class_mesh(ax):
    """The image of predicted classes, one pixel per grid point (the first image drawn)."""
    assert ax.images, "no class regions drawn"
    return ax.images[0]


def test_a_class_never_predicted_has_no_area() -> None:
    """Class 0 for x1 < 0, class 2 for x1 > 0, class 1 never (bias -100): drawn cell by cell from the argmax,
    no cell is class 1 (a contourf of the class index passed through 1 where 0 meets 2)."""
    from downslope import nn

    model = nn.Linear(2, 3)
    with ds.no_grad():
        model.weight.copy_(ds.tensor([[-1.0, 0.0], [0.0, 0.0], [1.0, 0.0]]))
        model.bias.copy_(ds.tensor([0.0, -100.0, 0.0]))
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (60, 2))
    y = np.where(x[:, 0] < 0, 0, 2)
    fig = plot_decision_boundary(model, x, y, grid_points=50)
    ax = fig.axes[0]
    cells = np.ma.asarray(_class_mesh(ax).get_array()).compressed()
    assert cells.size == 50 * 50
    assert set(np.unique(cells)) == {0, 2}
    # the cells are the argmax of the model on the grid, exactly
    gx = np.linspace(x[:, 0].min() - 0.1 * np.ptp(x[:, 0]), x[:, 0].max() + 0.1 * np.ptp(x[:, 0]), 50)
    expected = np.tile(np.where(gx < 0, 0, 2), 50)
    np.testing.assert_array_equal(cells, expected)
    half = (gx[1] - gx[0]) / 2  # each pixel centred on its grid point
    np.testing.assert_allclose(_class_mesh(ax).get_extent()[:2], [gx[0] - half, gx[-1] + half])
    # one border, at x1 = 0, drawn once (not a 0.5 and a 1.5 level side by side)
    v = _boundary_vertices(ax)
    assert np.abs(v[:, 0]).max() < np.ptp(gx) / 49
    borders = [c for c in ax.collections if getattr(c, "levels", None) is not None]
    assert len(borders) == 1


def test_twelve_classes_get_twelve_colours() -> None:
    from downslope import nn

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 2))
    y = np.arange(120) % 12
    fig = plot_decision_boundary(nn.Linear(2, 12), x, y, grid_points=20)
    points = [c for c in fig.axes[0].collections if c.get_label().startswith("class")]
    assert len(points) == 12
    assert len({tuple(np.round(c.get_facecolor()[0][:3], 4)) for c in points}) == 12
    from downslope.viz._mpl import color

    assert len({color(i) for i in range(20)}) == 20


def test_nan_model_is_drawn_as_not_finite_with_a_warning() -> None:
    import warnings

    from downslope import nn

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2)).astype(np.float32)
    y = np.arange(60) % 3
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))
    with ds.no_grad():
        model[0].weight.fill_(float("inf"))  # inf * 0 in the matmul: NumPy's "invalid value" must not leak
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = plot_decision_boundary(model, x, y, grid_points=30)
    messages = [str(w.message) for w in caught]
    assert all(issubclass(w.category, UserWarning) and "plot_decision_boundary" in str(w.message) for w in caught), (
        messages
    )
    assert len(messages) == 1 and "not finite" in messages[0] and "diverged" in messages[0]
    ax = fig.axes[0]
    n_bad = int(messages[0].split(" on ")[1].split(" of ")[0])
    assert n_bad > 0
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[-1] == f"not finite ({n_bad} of 900 grid points)"
    # the class map leaves those cells out (masked): none of them is painted class 0
    cells = np.ma.asarray(_class_mesh(ax).get_array())
    assert int(np.ma.getmaskarray(cells).sum()) == n_bad


def test_a_model_ending_in_softmax_is_not_softmaxed_again() -> None:
    from downslope import nn

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2))
    y = (x[:, 0] > 0).astype(int)
    model = nn.Sequential(nn.Linear(2, 2), nn.Softmax(dim=1))
    with ds.no_grad():
        model[0].weight.copy_(ds.tensor([[-10.0, 0.0], [10.0, 0.0]]))
        model[0].bias.zero_()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plot_decision_boundary(model, x, y, show="probability", grid_points=30)
    filled = fig.axes[0].collections[0]
    # the shading spans P from 0 to 1: the model's own probabilities (softmaxed twice they stay in 0.27..0.73)
    levels = np.asarray(filled.levels)
    drawn = [lvl for lvl, p in zip(levels[:-1], filled.get_paths()) if len(p.vertices)]
    assert min(drawn) < 0.05 and max(drawn) > 0.9


def test_one_hot_labels_are_read_as_their_classes() -> None:
    from downslope import nn

    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 2))
    classes = rng.integers(0, 3, 20)
    fig = plot_decision_boundary(nn.Linear(2, 3), x, np.eye(3)[classes], grid_points=10)
    ax = fig.axes[0]
    for k in range(3):
        pts = [c.get_offsets() for c in ax.collections if c.get_label() == f"class {k}"]
        np.testing.assert_array_equal(pts[0], x[classes == k])
    with pytest.raises(ValueError, match=r"class indices of shape \(N,\), got shape \(20, 3\).*y.argmax\(1\)"):
        plot_decision_boundary(nn.Linear(2, 3), x, np.eye(3)[classes] * 0.9, grid_points=10)


def test_float64_models_are_drawn() -> None:
    from downslope import nn

    rng = np.random.default_rng(0)
    model = nn.Linear(2, 3).double()
    x = rng.normal(size=(30, 2))
    fig = plot_decision_boundary(model, x, np.arange(30) % 3, grid_points=20)
    cells = np.ma.asarray(_class_mesh(fig.axes[0]).get_array()).compressed()
    gx = np.linspace(x[:, 0].min() - 0.1 * np.ptp(x[:, 0]), x[:, 0].max() + 0.1 * np.ptp(x[:, 0]), 20)
    gy = np.linspace(x[:, 1].min() - 0.1 * np.ptp(x[:, 1]), x[:, 1].max() + 0.1 * np.ptp(x[:, 1]), 20)
    X, Y = np.meshgrid(gx, gy)
    expected = (np.c_[X.ravel(), Y.ravel()] @ model.weight.detach().numpy().T + model.bias.detach().numpy()).argmax(1)
    np.testing.assert_array_equal(cells, expected)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"class_names": ["a", "b"]}, ValueError, r"class_names has 2 names .* model outputs 3 classes"),
        ({"feature_names": ("height",)}, ValueError, "feature_names must name the two features"),
        ({"grid_points": 1}, ValueError, "grid_points must be at least 2.*got 1"),
        ({"grid_points": 0}, ValueError, "grid_points must be at least 2.*got 0"),
        ({"grid_points": 2.5}, TypeError, "grid_points must be an integer.*got 2.5"),
    ],
)
def test_arguments_are_checked_before_drawing(kwargs: dict, error: type, match: str) -> None:
    from downslope import nn
    from downslope.errors import DownslopeError

    rng = np.random.default_rng(0)
    with pytest.raises(error, match=match) as info:
        plot_decision_boundary(nn.Linear(2, 3), rng.normal(size=(30, 2)), np.arange(30) % 3, **kwargs)
    assert isinstance(info.value, DownslopeError)


def test_a_sample_with_a_nan_feature_is_left_out_and_counted() -> None:
    x = np.array([[-1.0, 0.0], [1.0, 0.0], [np.nan, 1.0], [-2.0, 1.0], [2.0, -1.0]])
    y = np.array([0, 1, 1, 0, 1])
    fig = plot_decision_boundary(lambda t: t[:, :1], x, y, grid_points=20)  # crashed inside matplotlib before
    ax = fig.axes[0]
    assert ax.get_xlim() == pytest.approx((-2.4, 2.4)) and ax.get_ylim() == pytest.approx((-1.2, 1.2))
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "1 sample with NaN or inf left out" in texts
    assert sum(len(c.get_offsets()) for c in _samples(ax)) == 4


def test_one_sample_gets_a_window_around_it() -> None:
    fig = plot_decision_boundary(lambda t: t[:, :1], np.array([[0.74, 0.3]]), np.array([1]), grid_points=10)
    assert fig.axes[0].get_xlim() == pytest.approx((-0.26, 1.74)) and fig.axes[0].get_ylim() == pytest.approx(
        (-0.7, 1.3)
    )


def test_a_torch_model_is_refused_with_what_would_work() -> None:
    torch = pytest.importorskip("torch")
    x, y = np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([0, 1])
    with pytest.raises(TypeError, match=r"expected a downslope model .* got a PyTorch model \(torch\.nn\..*Linear\)"):
        plot_decision_boundary(torch.nn.Linear(2, 2), x, y)


def test_three_features_are_drawn_on_a_plane_of_two_with_the_third_held() -> None:
    import downslope as ds
    from downslope import nn

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    ds.manual_seed(0)
    model = nn.Linear(3, 3)
    with pytest.raises(ValueError, match=r"features=\(i, j\)"):
        plot_decision_boundary(model, x, rng.integers(0, 3, 60))
    with pytest.raises(ValueError, match=r"pass all of x and pick the two to draw with features=\(i, j\)"):
        plot_decision_boundary(model, x[:, :2], rng.integers(0, 3, 60))  # the model takes 3 features
    y = rng.integers(0, 3, 60)
    fig = plot_decision_boundary(model, x, y, features=(0, 2), fixed_values=[0.0, 0.7, 0.0], grid_points=30)
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x1", "x3") and "x2 = 0.7 (given)" in ax.get_title()
    # the regions are the model's argmax on the plane x2 = 0.7 (numpy's own product, float64)
    gx, gy = np.linspace(*ax.get_xlim(), 30), np.linspace(*ax.get_ylim(), 30)
    X, Y = np.meshgrid(gx, gy)
    w, b = model.weight.detach().numpy().astype(np.float64), model.bias.detach().numpy().astype(np.float64)
    grid = np.stack([X.ravel(), np.full(X.size, 0.7), Y.ravel()], axis=1)
    expected = (grid @ w.T + b).argmax(axis=1).reshape(X.shape)
    assert (np.asarray(ax.images[0].get_array()) == expected).mean() > 0.99  # float32 ties on the borders aside
    median = plot_decision_boundary(model, x, y, features=(1, 0), grid_points=10).axes[0]
    assert f"x3 = {np.median(x[:, 2]):.3g} (median)" in median.get_title() and median.get_xlabel() == "x2"


def test_three_class_borders_are_smooth_lines_on_the_true_border() -> None:
    # logits linear in x: each border is a straight line; the drawn one lies on it far closer than a cell
    w = np.array([[1.0, 0.0], [-0.5, 0.8], [-0.5, -0.8]])
    x = np.array([[-1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [1.0, -1.0]])
    fig = plot_decision_boundary(lambda t: t @ ds_tensor(w.T), x, np.array([0, 1, 2, 0]), grid_points=40)
    cell = (fig.axes[0].get_xlim()[1] - fig.axes[0].get_xlim()[0]) / 39
    worst = 0.0
    borders = [c for c in fig.axes[0].collections if c not in _samples(fig.axes[0]) and hasattr(c, "levels")]
    for collection in borders:
        for path in collection.get_paths():
            v = path.vertices
            if len(v) < 2:
                continue
            logits = v @ w.T
            order = np.argsort(logits, axis=1)
            first, second = order[:, -1], order[:, -2]
            rows = np.arange(len(v))
            # distance to where the two best classes tie: the logit gap over the size of its gradient
            gap = logits[rows, first] - logits[rows, second]
            worst = max(worst, float(np.max(gap / np.linalg.norm(w[first] - w[second], axis=1))))
    assert 0 < worst < 0.15 * cell  # the indicator's contour (a staircase) was off by 0.41 of a cell


def test_many_classes_put_the_legend_beside_the_axes_and_use_markers() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 2))
    y = np.arange(100) % 10
    w = rng.normal(size=(2, 10))
    fig = plot_decision_boundary(lambda t: t @ ds_tensor(w), x, y, grid_points=20)
    fig.canvas.draw()
    ax = fig.axes[0]
    legend_box = ax.get_legend().get_window_extent()
    assert legend_box.x0 >= ax.get_window_extent().x1  # not over the regions
    markers = {tuple(c.get_paths()[0].vertices.round(3).ravel()) for c in _samples(ax)}
    assert len(markers) == 10
    assert plot_decision_boundary(
        lambda t: t @ ds_tensor(w), x, y, grid_points=5, figsize=(4, 3)
    ).get_size_inches().tolist() == [4, 3]


def _samples(ax) -> list:
    """The scatters of the samples (one per class)."""
    from matplotlib.collections import PathCollection

    return [c for c in ax.collections if isinstance(c, PathCollection) and not c.get_label().startswith("_")]


def ds_tensor(a: np.ndarray):
    import downslope as ds

    return ds.tensor(a.astype(np.float32))


def test_no_rows_is_said_as_such_with_the_shape() -> None:
    # It used to say every one of the 0 samples had a NaN or infinite feature.
    model = ds.nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"plot_decision_boundary: x has no rows \(shape \(0, 2\)\); nothing to draw"):
        plot_decision_boundary(model, np.zeros((0, 2)), np.zeros(0, dtype=int))


def test_class_and_probability_views_of_two_classes_use_one_palette() -> None:
    """Side by side, show="class" and show="probability" colour each class alike: the points, the class
    regions, and the two ends of the probability map (P = 0: class 0's colour, P = 1: class 1's)."""
    from matplotlib.colors import to_rgba

    from downslope.viz._mpl import color

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)

    def model(t):
        return t[:, :1] + t[:, 1:]

    views = {
        show: plot_decision_boundary(model, x, y, grid_points=20, show=show).axes[0]
        for show in ("class", "probability")
    }
    for show, ax in views.items():
        points = {c.get_label(): c for c in ax.collections if c.get_label() in ("class 0", "class 1")}
        for k in (0, 1):
            np.testing.assert_allclose(points[f"class {k}"].get_facecolor()[0], to_rgba(color(k)), err_msg=show)
    regions = views["class"].images[0].get_cmap()
    shades = next(c for c in views["probability"].collections if getattr(c, "filled", False)).get_cmap()
    for k in (0, 1):
        np.testing.assert_allclose(regions(k), to_rgba(color(k)))
        np.testing.assert_allclose(shades(float(k)), to_rgba(color(k)), atol=1 / 255)  # the map's ends
    np.testing.assert_allclose(shades(0.5), to_rgba("white"), atol=2 / 255)  # undecided: neither colour
