"""The shared plotting helpers: the colour-blind-safe palette, series styles, number reading and ax=/figsize=."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ArgumentError, ArgumentTypeError
from downslope.viz._mpl import as_float_array, color, linestyle, marker, target_axes

pytest.importorskip("matplotlib")

# Machado, Oliveira & Fernandes (2009), severity 1: linear-RGB matrices simulating each dichromacy
SIMULATIONS = {
    "normal": np.eye(3),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.01182, 0.04294, 0.968881]]),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.3039]]),
}  # fmt: skip


def _lab(rgb: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) of a linear-RGB colour."""
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ rgb
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _closest_pair(colours: list[tuple[float, float, float]], matrix: np.ndarray) -> float:
    """The smallest CIE76 colour difference between two of ``colours`` as seen through ``matrix``."""
    linear = [
        np.where(np.array(c) <= 0.04045, np.array(c) / 12.92, ((np.array(c) + 0.055) / 1.055) ** 2.4) for c in colours
    ]
    labs = [_lab(np.clip(matrix @ c, 0, 1)) for c in linear]
    return min(float(np.linalg.norm(a - b)) for a, b in itertools.combinations(labs, 2))


def test_the_first_ten_series_colours_stay_apart_for_colour_blind_readers() -> None:
    from matplotlib.colors import to_rgb

    series = [to_rgb(color(i)) for i in range(10)]
    for name, matrix in SIMULATIONS.items():
        # tab10 (the palette before) had pairs 5-7 apart under deuteranopia/protanopia (Nesterov/RMSprop)
        assert _closest_pair(series[:6], matrix) >= 15, name
        assert _closest_pair(series, matrix) >= 12, name
    # the decision regions' tints (over white, at the opacity drawn for three or more classes) stay apart too
    from downslope.viz.boundary import REGION_ALPHA

    tints = [tuple(1 - REGION_ALPHA * (1 - np.array(c))) for c in series]
    assert _closest_pair(tints, SIMULATIONS["normal"]) >= 10
    assert _closest_pair(tints, SIMULATIONS["deuteranopia"]) >= 5


def test_series_also_differ_by_dash_pattern_and_marker() -> None:
    assert len({str(linestyle(i)) for i in range(8)}) == 8
    assert len({marker(i) for i in range(12)}) == 12


def test_a_long_list_of_numbers_reads_in_one_call_and_tensors_in_a_list_still_read() -> None:
    values = np.random.default_rng(0).random(1000).tolist()
    assert as_float_array(values, "x").tolist() == values
    assert as_float_array([ds.tensor(1.5, requires_grad=True), 2, None is None], "x").tolist() == [1.5, 2.0, 1.0]
    with pytest.raises(ArgumentTypeError, match="expected numbers"):
        as_float_array(["a", "b"], "x")


def test_target_axes_checks_what_it_is_given() -> None:
    from matplotlib.figure import Figure

    fig, given = target_axes(None, (3, 2), (7, 4), 1, "plot_x")
    assert given is None and tuple(fig.get_size_inches()) == (3.0, 2.0)
    outer = Figure()
    axes = outer.subplots(1, 2)
    fig, given = target_axes(axes, None, (7, 4), 2, "plot_x")
    assert fig is outer and list(given) == list(axes)
    with pytest.raises(ArgumentTypeError, match=r"plot_x: ax: expected a matplotlib Axes, got ndarray of 2 items"):
        target_axes(axes, None, (7, 4), 1, "plot_x")
    with pytest.raises(ArgumentError, match="both ax= and figsize="):
        target_axes(axes[0], (3, 2), (7, 4), 1, "plot_x")
    with pytest.raises(ArgumentError, match="figsize must be two positive numbers"):
        target_axes(None, (0, 2), (7, 4), 1, "plot_x")
