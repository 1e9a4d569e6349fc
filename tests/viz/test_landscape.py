"""Optimizer paths on the test functions (against closed forms and PyTorch's optimizers) and the
landscape figure and GIF."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

import downslope as ds
from downslope import optim
from downslope.viz.landscape import (
    OptimizerPath,
    animate_landscape,
    default_optimizers,
    optimizer_paths,
    plot_landscape,
    run_landscape,
)
from downslope.viz.testfunctions import get_surface

pytest.importorskip("matplotlib")


def test_sgd_on_quadratic_matches_closed_form() -> None:
    # f = (x^2 + 20 y^2)/2: one SGD step multiplies x by (1 - lr) and y by (1 - 20 lr).
    lr, steps = 0.07, 30
    path = optimizer_paths("quadratic", {"sgd": (optim.SGD, {"lr": lr})}, start=(-5.0, 2.0), steps=steps)["sgd"]
    k = np.arange(steps + 1)
    expected = np.stack([-5.0 * (1 - lr) ** k, 2.0 * (1 - 20 * lr) ** k], axis=1)
    np.testing.assert_allclose(path.points, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(path.losses, 0.5 * (expected[:, 0] ** 2 + 20 * expected[:, 1] ** 2), rtol=2e-5)
    assert not path.diverged


def test_paths_start_at_start_and_losses_match_points() -> None:
    paths = optimizer_paths("himmelblau", default_optimizers("himmelblau"), start=(0.5, -1.0), steps=25)
    assert list(paths) == ["SGD", "Momentum", "Nesterov", "RMSprop", "Adagrad", "Adam"]
    surface = get_surface("himmelblau")
    for path in paths.values():
        assert path.points.shape == (26, 2) and path.losses.shape == (26,)
        np.testing.assert_array_equal(path.points[0], [0.5, -1.0])
        # float32 loss: rounding error up to a few ulps of the largest term (|f| ~ 200 here).
        expected = surface.value(path.points[:, 0], path.points[:, 1])
        np.testing.assert_allclose(path.losses, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())


def test_adam_on_quadratic_ends_near_minimum() -> None:
    path = optimizer_paths("quadratic", {"adam": (optim.Adam, {"lr": 0.1})}, steps=200)["adam"]
    assert np.abs(path.final_point).max() < 1e-3
    assert path.final_loss < 1e-6
    assert path.losses[0] == pytest.approx(get_surface("quadratic").value(-5.0, 2.0))


def test_paths_match_pytorch_optimizers() -> None:
    torch = pytest.importorskip("torch")

    def rosenbrock(p):  # written again in torch, independently
        return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2

    cases = {
        "momentum": (optim.SGD, torch.optim.SGD, {"lr": 1e-3, "momentum": 0.9}),
        "nesterov": (optim.SGD, torch.optim.SGD, {"lr": 1e-3, "momentum": 0.9, "nesterov": True}),
        "adam": (optim.Adam, torch.optim.Adam, {"lr": 0.05}),
        "rmsprop": (optim.RMSprop, torch.optim.RMSprop, {"lr": 0.01}),
    }
    ours = optimizer_paths("rosenbrock", {k: (c[0], c[2]) for k, c in cases.items()}, start=(-1.5, 2.0), steps=40)
    for name, (_, torch_cls, kwargs) in cases.items():
        p = torch.tensor([-1.5, 2.0], requires_grad=True)
        opt = torch_cls([p], **kwargs)
        ref = [p.detach().numpy().copy()]
        for _ in range(40):
            opt.zero_grad()
            rosenbrock(p).backward()
            opt.step()
            ref.append(p.detach().numpy().copy())
        np.testing.assert_allclose(ours[name].points, np.array(ref), rtol=1e-4, atol=1e-5, err_msg=name)


def test_divergence_is_flagged_and_stops() -> None:
    # lr * curvature = 0.2 * 20 = 4 > 2: plain gradient descent blows up along y.
    path = optimizer_paths("quadratic", {"sgd": (optim.SGD, {"lr": 0.2})}, steps=200)["sgd"]
    assert path.diverged
    finite = np.isfinite(path.points).all(axis=1)
    assert finite[0] and not finite[-1]
    assert np.isfinite(path.final_point).all() and np.isfinite(path.final_loss)


def test_factory_spec_and_bad_specs() -> None:
    paths = optimizer_paths("beale", {"adam": lambda params: optim.Adam(params, lr=0.05)}, steps=3)
    assert paths["adam"].points.shape == (4, 2)
    with pytest.raises(TypeError, match="optimizer 'x'"):
        optimizer_paths("beale", {"x": (optim.Adam,)}, steps=3)
    with pytest.raises(ValueError, match="start must be one finite point"):
        optimizer_paths("beale", {"adam": (optim.Adam, {})}, start=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="steps"):
        optimizer_paths("beale", {"adam": (optim.Adam, {})}, steps=-1)


def test_landscape_figure_contents(tmp_path: Path) -> None:
    paths = optimizer_paths("himmelblau", default_optimizers("himmelblau"), steps=20)
    out = tmp_path / "land.png"
    fig = plot_landscape("himmelblau", paths, grid_size=40, save_path=out)
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    ax_map, ax_loss = fig.axes[0], fig.axes[1]
    assert ax_map.get_xlabel() == "x" and ax_map.get_ylabel() == "y"
    assert ax_loss.get_xlabel() == "step" and ax_loss.get_yscale() == "log"
    assert len(fig.axes) == 3  # map, loss panel, colour bar
    # Per optimizer: the path, a start marker and an end marker; plus 4 minima stars and 2 legend keys.
    assert len(ax_map.lines) == 3 * len(paths) + 4 + 2
    stars = [line for line in ax_map.lines if line.get_marker() == "*"]
    np.testing.assert_allclose(
        sorted((s.get_xdata()[0], s.get_ydata()[0]) for s in stars), sorted(get_surface("himmelblau").minima)
    )
    assert len(ax_loss.lines) == len(paths)
    first_path = ax_map.lines[len(stars)]  # minima are drawn first, then each path's line and markers
    np.testing.assert_allclose(first_path.get_xydata(), paths["SGD"].points)
    legend = [t.get_text() for t in ax_loss.get_legend().get_texts()]
    assert paths["SGD"].settings.startswith("lr=")  # every path says the rate it ran at
    assert legend[0].startswith(f"SGD ({paths['SGD'].settings}): f=")
    assert ax_map.get_xlim() == (-5.0, 5.0)


def test_saddle_uses_symlog_and_marks_saddle() -> None:
    paths = optimizer_paths("saddle", {"sgd": (optim.SGD, {"lr": 0.05})}, steps=10)
    fig = plot_landscape("saddle", paths, grid_size=30)
    assert fig.axes[1].get_yscale() == "symlog"
    assert any(line.get_marker() == "P" for line in fig.axes[0].lines)


def test_gif_is_written(tmp_path: Path) -> None:
    from PIL import Image

    paths = optimizer_paths("beale", {"adam": (optim.Adam, {"lr": 0.05}), "sgd": (optim.SGD, {"lr": 0.01})}, steps=12)
    out = animate_landscape("beale", paths, tmp_path / "race.gif", max_frames=5, grid_size=30, dpi=40)
    data = out.read_bytes()
    assert data[:6] in (b"GIF89a", b"GIF87a")
    with Image.open(out) as im:
        assert im.n_frames == 5


def test_plot_landscape_refuses_wrong_paths() -> None:
    with pytest.raises(TypeError, match="OptimizerPath"):
        plot_landscape("beale", {"a": np.zeros((3, 2))})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="non-empty"):
        plot_landscape("beale", {})
    assert OptimizerPath("a", np.zeros((1, 2)), np.zeros(1)).final_loss == 0.0


def test_divergence_means_a_loss_that_grew_not_a_path_that_left_downhill() -> None:
    # a rate just above 2/L on the bowl blows up slowly, inside the window: flagged
    slow = optimizer_paths("quadratic", {"gd": (optim.SGD, {"lr": 0.105})}, steps=60)["gd"]
    assert slow.diverged and slow.settings == "lr=0.105"
    # past the saddle, every optimizer runs downhill for ever: not a divergence, whichever leaves first
    escapes = optimizer_paths(
        "saddle", {"sgd": (optim.SGD, {"lr": 0.3}), "adam": (optim.Adam, {"lr": 0.3})}, steps=200, start=(0.5, 0.01)
    )
    assert not any(p.diverged for p in escapes.values())
    stable = optimizer_paths("quadratic", {"momentum": (optim.SGD, {"lr": 0.09, "momentum": 0.9})}, steps=60)
    assert not stable["momentum"].diverged and stable["momentum"].settings == "lr=0.09, momentum=0.9"


def test_a_slowly_rising_loss_a_path_off_the_map_and_a_tiny_gap_are_said_in_the_legend():
    from downslope import optim
    from downslope.viz import landscape
    from downslope.viz.testfunctions import Surface

    q100 = Surface(
        "q100", "(x²+100y²)/2", lambda x, y: 0.5 * (x * x + 100 * y * y), minima=((0.0, 0.0),),
        minimum_value=0.0, window=((-6.0, 6.0), (-3.0, 3.0)), start=(-5.0, 2.0),
    )  # fmt: skip
    specs = {"over": (optim.SGD, {"lr": 0.0205}), "under": (optim.SGD, {"lr": 0.019})}
    paths = landscape.optimizer_paths(q100, specs, steps=30)  # 2/L = 0.02: 0.0205 grows ~10% a step
    over, under = paths["over"], paths["under"]
    assert not over.diverged and over.rising and over.left_at is not None
    assert not under.rising and under.left_at is None
    label = landscape._legend_label(q100, "over", over)
    assert "loss rising" in label and f"left the plotted region at step {over.left_at}" in label
    assert landscape._legend_label(q100, "under", under) == f"under (lr=0.019): f={under.final_loss:.3g}"
    quadratic = landscape.optimizer_paths("quadratic", {"gd": (optim.SGD, {"lr": 0.09})}, steps=400)
    fig = landscape.plot_landscape("quadratic", quadratic, grid_size=30)
    texts = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert any("f − f* below 1e-12 from step" in t for t in texts)
    assert "1e-12: smaller gaps drawn here" in texts


def test_a_bowl_of_chosen_condition_number_and_momentum_race_as_theory_says(tmp_path):
    from downslope.viz.testfunctions import quadratic_surface

    kappa = 100.0
    beta = ((kappa**0.5 - 1) / (kappa**0.5 + 1)) ** 2  # heavy ball's best coefficient for this bowl
    lines = run_landscape(quadratic_surface(kappa), ["sgd", "momentum"], steps=300, out_dir=tmp_path, momentum=beta)
    rows = [r.split(",") for r in (tmp_path / "paths.csv").read_text().splitlines()[1:]]
    final = {name: float(f) for name, _, step, _, _, f in rows if step == "300"}
    # gradient descent needs about kappa steps per e-fold, momentum about sqrt(kappa)
    assert final["momentum"] < 1e-12 < final["sgd"]
    assert any("lr 0.018" in line for line in lines)
    with pytest.raises(ds.DownslopeError, match="condition number"):
        quadratic_surface(0.5)


def test_default_nesterov_rate_is_its_own_and_every_default_race_is_stable() -> None:
    from downslope.viz.landscape import named_optimizers
    from downslope.viz.testfunctions import SURFACES, Surface, quadratic_surface

    for name, surface in SURFACES.items():
        rate = surface.learning_rates["nesterov"]
        assert default_optimizers(name)["Nesterov"][1]["lr"] == rate  # type: ignore[index]
        assert named_optimizers(name, ["nesterov"])["nesterov"][1]["lr"] == rate  # type: ignore[index]
        paths = optimizer_paths(name, steps=300)
        for label, path in paths.items():
            said = f"{name} {label}"
            assert not path.diverged and not path.rising and path.final_loss < path.losses[0], said
            if surface.minimum_value is not None:  # a minimum to reach: every path stays on the map to its end
                assert path.stopped_at is None and path.left_at is None, said
    # on the bowl (L = 20), Nesterov is stable for lr * L < 2(1 + b)/(1 + 2b) ~ 1.36 at b = 0.9: its rate is
    # below that limit, and it beats heavy-ball momentum at momentum's rate, which 0.09 would not
    lr, beta = SURFACES["quadratic"].learning_rates["nesterov"], 0.9
    assert lr * 20 < 2 * (1 + beta) / (1 + 2 * beta)
    race = optimizer_paths("quadratic", steps=300)
    assert race["Nesterov"].final_loss < race["Momentum"].final_loss
    assert quadratic_surface(100).learning_rates["nesterov"] * 100 < 2 * (1 + beta) / (1 + 2 * beta)
    # a surface that names no Nesterov rate lends momentum's
    own = Surface("bowl", "bowl", lambda x, y: x * x + y * y, ((0.0, 0.0),), 0.0, ((-1, 1), (-1, 1)), (0.5, 0.5),
                  learning_rates={"momentum": 0.02})  # fmt: skip
    assert default_optimizers(own)["Nesterov"][1]["lr"] == 0.02  # type: ignore[index]


def test_default_nesterov_on_the_bowl_matches_pytorch() -> None:
    torch = pytest.importorskip("torch")
    spec = default_optimizers("quadratic")["Nesterov"]
    path = optimizer_paths("quadratic", {"n": spec}, steps=100)["n"]
    p = torch.tensor([-5.0, 2.0], requires_grad=True)
    opt = torch.optim.SGD([p], **spec[1])  # type: ignore[index]
    expected = [p.detach().clone().numpy()]
    for _ in range(100):
        opt.zero_grad()
        (0.5 * (p[0] ** 2 + 20 * p[1] ** 2)).backward()
        opt.step()
        expected.append(p.detach().clone().numpy())
    np.testing.assert_allclose(path.points, np.array(expected), rtol=1e-4, atol=1e-5)
    assert not path.diverged and np.abs(path.final_point).max() < 1e-2  # x shrinks ~0.925 a step: 5 -> 2e-3


def test_a_run_stopped_early_says_where_in_the_legend_and_on_the_loss_panel(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from downslope.viz import landscape

    saddle = get_surface("saddle")
    specs = {"momentum": (optim.SGD, {"lr": 0.05, "momentum": 0.9}), "gd": (optim.SGD, {"lr": 0.05})}
    paths = optimizer_paths("saddle", specs, steps=500)
    (x0, x1), (y0, y1) = saddle.window
    limit = landscape.DIVERGENCE_WINDOWS * max(x1 - x0, y1 - y0) + 1.8
    for name, path in paths.items():
        # torch's own run of the same optimizer: the step where the point first lies beyond the limit
        p = torch.tensor([-1.8, 0.02], requires_grad=True)
        opt = torch.optim.SGD([p], **specs[name][1])
        k = 0
        while p.detach().abs().max() <= limit and k < 500:
            opt.zero_grad()
            (p[0] ** 2 - p[1] ** 2).backward()
            opt.step()
            k += 1
        assert k < 500 and path.stopped_at == k and path.final_step == k - 1
        finite = np.isfinite(path.points).all(axis=1)
        assert finite[:k].all() and not finite[k:].any()
        assert not path.diverged  # it ran downhill past the saddle, but the run ended there
        label = landscape._legend_label(saddle, name, path)
        assert f"f={path.final_loss:.3g} at step {k - 1}" in label and f"stopped at step {k}" in label
    fig = plot_landscape("saddle", paths, grid_size=30)
    notes = [t.get_text() for t in fig.axes[1].texts]
    assert [n.split(",")[0] for n in notes] == [f"stopped at step {p.stopped_at}" for p in paths.values()]
    lines = run_landscape("saddle", ["momentum"], steps=500, out_dir=tmp_path)
    assert f"stopped at step {paths['momentum'].stopped_at}" in lines[0]


def test_contour_levels_resolve_the_basin_on_every_surface_with_a_known_minimum() -> None:
    from downslope.viz.testfunctions import SURFACES

    for name, surface in SURFACES.items():
        if surface.minimum_value is None:
            continue
        paths = optimizer_paths(name, {"adam": (optim.Adam, {"lr": 0.1})}, steps=2)
        filled = plot_landscape(name, paths, grid_size=120).axes[0].collections[0]
        levels = np.asarray(filled.levels)
        drawn = [i for i, band in enumerate(filled.get_paths()) if len(band.vertices)]
        # the bands below f - f* = 1e-3 (where the optimizers end) are drawn, several of them
        assert sum(levels[i + 1] <= 1e-3 for i in drawn) >= 3, name
        assert 0 in drawn, name  # the lowest level is reached on the map
    beale = plot_landscape("beale", optimizer_paths("beale", steps=2), grid_size=200).axes[0].collections[0]
    assert beale.levels[0] <= 1e-5  # every default optimizer ends between 1e-5 and 1e-2 here


def test_each_gif_frame_says_its_own_step_and_values_and_is_projector_sized(tmp_path: Path, monkeypatch) -> None:
    from matplotlib.figure import Figure
    from matplotlib.text import Text
    from PIL import Image

    drawn: list[str] = []
    original = Figure.draw_artist

    def record(self, artist):
        if isinstance(artist, Text):
            drawn.append(artist.get_text())
        return original(self, artist)

    monkeypatch.setattr(Figure, "draw_artist", record)
    paths = optimizer_paths("quadratic", {"sgd": (optim.SGD, {"lr": 0.05})}, steps=8)
    out = animate_landscape("quadratic", paths, tmp_path / "race.gif", max_frames=9, grid_size=30)
    with Image.open(out) as im:
        assert im.size[0] >= 960 and im.n_frames == 9
    losses = paths["sgd"].losses
    for k in range(9):
        assert f"step {k} of 8" in drawn
        assert any(t.startswith(f"sgd (lr=0.05): f={losses[k]:.3g} at step {k}") for t in drawn), k


@pytest.mark.host_only  # optimizer_paths records the iterates on the host
def test_a_blow_up_a_nan_gradient_and_an_infinite_loss_are_diverged_and_say_why(tmp_path: Path) -> None:
    from downslope.viz.testfunctions import Surface

    # Rosenbrock, SGD at lr 50: one float32 step lands ~1e4 out, where f (float64, as torch's float32 gives
    # 3.6e17 there too) is 1e17: a blow-up, not an escape downhill
    p0 = np.array([-1.5, 2.0], dtype=np.float32)
    grad = np.array([-2 * (1 - p0[0]) - 400 * p0[0] * (p0[1] - p0[0] ** 2), 200 * (p0[1] - p0[0] ** 2)], np.float32)
    x, y = (p0 - np.float32(50.0) * grad).astype(np.float64)
    f1 = (1 - x) ** 2 + 100 * (y - x * x) ** 2
    path = optimizer_paths("rosenbrock", {"sgd": (optim.SGD, {"lr": 50.0})}, steps=50)["sgd"]
    assert path.diverged and path.stopped_at == 1
    assert path.divergence == f"diverged at step 1: f = {f1:.3g}" == "diverged at step 1: f = 3.6e+17"
    fig = plot_landscape("rosenbrock", {"sgd": path}, grid_size=30)
    legend = fig.axes[1].get_legend().get_texts()[0].get_text().replace("\n    ", " ")
    assert legend == "sgd (lr=50): f=12.5 at step 0 (diverged at step 1: f = 3.6e+17)"
    assert "window-widths" not in legend
    notes = [t.get_text() for t in fig.axes[1].texts]
    assert notes == ["diverged at step 1: f = 3.6e+17"]
    lines = run_landscape("rosenbrock", ["sgd"], lr=50.0, steps=20, out_dir=tmp_path)
    assert (
        lines[0] == "sgd  lr 50      diverged at step 1: f = 3.6e+17; last finite point (-1.5, 2) at step 0, f = 12.5"
    )

    # a cone: SGD at lr 1 from (1, 0) lands on the tip, where the gradient is 0/0 (torch gives NaN there too)
    cone = Surface(
        "cone", "sqrt(x^2+y^2)", lambda x, y: (x * x + y * y).sqrt(), minima=((0.0, 0.0),), minimum_value=0.0,
        window=((-2.0, 2.0), (-2.0, 2.0)), start=(1.0, 0.0),
    )  # fmt: skip
    path = optimizer_paths(cone, {"sgd": (optim.SGD, {"lr": 1.0})}, steps=5)["sgd"]
    assert path.diverged and path.stopped_at == 2
    assert path.divergence == "diverged at step 1: the gradient is not finite (nan, nan)"
    np.testing.assert_array_equal(path.points[:2], [[1.0, 0.0], [0.0, 0.0]])

    # f = exp(x) overflows float32 at x = 100 although the point is finite: f = inf at the start
    cliff = Surface(
        "cliff", "exp(x) + y^2", lambda x, y: x.exp() + y * y, minima=(), minimum_value=None,
        window=((-2.0, 2.0), (-2.0, 2.0)), start=(100.0, 0.0),
    )  # fmt: skip
    path = optimizer_paths(cliff, {"sgd": (optim.SGD, {"lr": 0.1})}, steps=5)["sgd"]
    assert path.diverged and path.divergence == "diverged at step 0: f = inf" and path.stopped_at == 1


@pytest.mark.host_only  # optimizer_paths records the iterates on the host
def test_a_factory_may_return_an_optimizer_and_its_scheduler() -> None:
    torch = pytest.importorskip("torch")
    p = torch.tensor([-5.0, 2.0], requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.09)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=30)
    expected = [p.detach().numpy().copy()]
    for _ in range(30):
        opt.zero_grad()
        (0.5 * (p[0] ** 2 + 20 * p[1] ** 2)).backward()
        opt.step()
        sched.step()
        expected.append(p.detach().numpy().copy())

    def cosine(params):
        o = optim.SGD(params, lr=0.09)
        return o, optim.lr_scheduler.CosineAnnealingLR(o, T_max=30)

    def plateau(params):
        o = optim.SGD(params, lr=0.09)
        return o, optim.lr_scheduler.ReduceLROnPlateau(o, patience=0)

    paths = optimizer_paths("quadratic", {"cosine": cosine, "plateau": plateau}, start=(-5.0, 2.0), steps=30)
    np.testing.assert_allclose(paths["cosine"].points, np.array(expected), atol=1e-5)
    assert paths["cosine"].settings == "lr=0.09, CosineAnnealingLR"
    assert not paths["plateau"].diverged and paths["plateau"].settings == "lr=0.09, ReduceLROnPlateau"

    def other_optimizer(params):
        o = optim.SGD(params, lr=0.1)
        return o, optim.lr_scheduler.StepLR(optim.SGD(list(params), lr=0.1), 5)

    bad = {
        "three": (lambda params: (optim.SGD(params, lr=0.1), None, None), TypeError, "returned tuple of 3"),
        "none": (lambda params: None, TypeError, "returned NoneType; expected an optimizer"),
        "number": (lambda params: (optim.SGD(params, lr=0.1), 5), TypeError, r"\(optimizer, int\)"),
        "other": (other_optimizer, ValueError, "steps another optimizer"),
    }
    for name, (factory, error, match) in bad.items():
        with pytest.raises(error, match=match):
            optimizer_paths("quadratic", {name: factory}, steps=3)


@pytest.mark.host_only  # optimizer_paths records the iterates on the host
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"levels": 0}, ValueError, r"levels must be at least 2 \(contour levels\), got 0"),
        ({"levels": 1}, ValueError, "levels must be at least 2"),
        ({"grid_size": 2.5}, TypeError, "grid_size must be an integer of at least 2 .*got 2.5"),
        ({"grid_size": 1}, ValueError, "grid_size must be at least 2"),
    ],
)
def test_plot_landscape_refuses_bad_grid_and_levels(kwargs: dict, error: type, match: str) -> None:
    paths = optimizer_paths("beale", {"adam": (optim.Adam, {"lr": 0.1})}, steps=5)
    with pytest.raises(error, match=match):
        plot_landscape("beale", paths, **kwargs)


@pytest.mark.host_only  # optimizer_paths records the iterates on the host
def test_the_notes_of_stopped_runs_stay_inside_the_loss_panel_and_apart() -> None:
    paths = optimizer_paths("saddle", steps=200)  # the default race: several runs leave the window downhill
    fig = plot_landscape("saddle", paths, grid_size=30)
    fig.canvas.draw()
    panel = fig.axes[1].get_window_extent()
    from matplotlib.text import Text

    boxes = [Text.get_window_extent(t) for t in fig.axes[1].texts]  # the text, without its line to the curve
    assert len(boxes) >= 2
    for box in boxes:  # they ran past the right edge before
        assert panel.x0 <= box.x0 and box.x1 <= panel.x1 and panel.y0 <= box.y0 and box.y1 <= panel.y1
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b)


@pytest.mark.host_only  # optimizer_paths records the iterates on the host
def test_the_colour_bar_is_ticked_at_decades() -> None:
    paths = optimizer_paths("rosenbrock", {"adam": (optim.Adam, {"lr": 0.05})}, steps=5)
    fig = plot_landscape("rosenbrock", paths, grid_size=40)
    colorbar = fig.axes[2]
    ticks = [t for t in colorbar.get_yticks() if colorbar.get_ylim()[0] <= t <= colorbar.get_ylim()[1]]
    assert len(ticks) >= 3
    assert np.allclose(np.log10(ticks), np.round(np.log10(ticks)))  # 1e-03, 1e-02, ... not 9e-01, 7e-02


@pytest.mark.host_only  # optimizer_paths records the iterates on the host
def test_paths_differ_by_dash_and_marker_and_draw_into_given_axes() -> None:
    from matplotlib.figure import Figure

    paths = optimizer_paths("beale", steps=10)
    fig = plot_landscape("beale", paths, grid_size=30)
    loss_lines = [
        line
        for line in fig.axes[1].lines
        if line.get_label() in {t.get_text() for t in fig.axes[1].get_legend().get_texts()}
    ]
    assert len({(str(line.get_linestyle()), line.get_marker()) for line in loss_lines}) == len(paths)
    outer = Figure(figsize=(12, 5))
    given = outer.subplots(1, 2)
    assert plot_landscape("beale", paths, grid_size=30, ax=given) is outer
    assert given[1].get_title() == "Loss per step" and given[0].get_title().startswith(f"{len(paths)} optimizers")
    assert tuple(outer.get_size_inches()) == (12, 5)
    small = plot_landscape("beale", paths, grid_size=30, figsize=(8, 3.5))
    assert tuple(small.get_size_inches()) == (8, 3.5)
