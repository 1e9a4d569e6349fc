"""RNNBase's helper methods that code subclassing torch's RNN, LSTM and GRU calls (check_input,
get_expected_hidden_size, check_hidden_size, check_forward_args, permute_hidden; LSTM's
get_expected_cell_size), against torch: the same expected shapes, the same refusals, the same
permuted states."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import DownslopeError

torch = pytest.importorskip("torch")

_CONFIGS = [
    ("RNN", {}),
    ("GRU", {"bidirectional": True, "num_layers": 2}),
    ("LSTM", {"batch_first": True}),
    ("LSTM", {"proj_size": 2, "bidirectional": True}),
]


def _layer(lib: Any, kind: str, options: dict[str, Any]) -> Any:
    return getattr(lib.nn, kind)(3, 4, **options).double()


def _states(lib: Any, layer: Any, shape_h: tuple[int, ...], shape_c: tuple[int, ...]) -> Any:
    rng = np.random.default_rng(0)
    h = lib.tensor(rng.standard_normal(shape_h), dtype=lib.float64)
    if isinstance(layer, lib.nn.LSTM):
        return h, lib.tensor(rng.standard_normal(shape_c), dtype=lib.float64)
    return h


@pytest.mark.parametrize("kind, options", _CONFIGS)
@pytest.mark.parametrize("packed", [False, True])
def test_expected_sizes_and_checks_pass_as_torch(kind: str, options: dict[str, Any], packed: bool) -> None:
    seen = []
    for lib in (torch, ds):
        layer = _layer(lib, kind, options)
        if packed:
            x, batch_sizes = lib.zeros(9, 3, dtype=lib.float64), lib.tensor([4, 3, 2])
        else:
            x, batch_sizes = lib.zeros(5, 6, 3, dtype=lib.float64), None
        expected_h = tuple(layer.get_expected_hidden_size(x, batch_sizes))
        expected_c = tuple(layer.get_expected_cell_size(x, batch_sizes)) if kind == "LSTM" else None
        hidden = _states(lib, layer, expected_h, expected_c or ())
        assert layer.check_forward_args(x, hidden, batch_sizes) is None
        seen.append((expected_h, expected_c))
    assert seen[1] == seen[0]


def _refusal(call: Any) -> BaseException:
    with pytest.raises(Exception) as caught:
        call()
    return caught.value


_SAME_WORDS = ("input_size", "hidden", "message", "cell")  # torch's wording, with the same numbers


def _bad_calls(lib: Any, layer: Any, kind: str) -> dict[str, Any]:
    """Calls of the helpers with a wrong dtype, number of dims, input size or state shape."""
    good = lib.zeros(5, 6, 3, dtype=lib.float64)
    expected_h = tuple(layer.get_expected_hidden_size(good, None))
    cases = {
        "dtype": lambda: layer.check_input(lib.zeros(5, 6, 3), None),
        "dims": lambda: layer.check_input(lib.zeros(5, 3, dtype=lib.float64), None),
        "packed dims": lambda: layer.check_input(good, lib.tensor([3, 2])),
        "input_size": lambda: layer.check_input(lib.zeros(5, 6, 2, dtype=lib.float64), None),
        "hidden": lambda: layer.check_hidden_size(lib.zeros(1, 2, 3), expected_h),
        "message": lambda: layer.check_hidden_size(lib.zeros(2), expected_h, "want {} have {}"),
    }
    if kind == "LSTM":
        bad_c = lib.zeros(expected_h[0], expected_h[1], 7, dtype=lib.float64)
        cases["cell"] = lambda: layer.check_forward_args(good, (lib.zeros(*expected_h), bad_c), None)
    return cases


@pytest.mark.parametrize("kind, options", _CONFIGS)
def test_bad_inputs_and_states_are_refused_as_torch(kind: str, options: dict[str, Any]) -> None:
    errors: dict[str, list[BaseException]] = {}
    for lib in (torch, ds):
        for name, call in _bad_calls(lib, _layer(lib, kind, options), kind).items():
            errors.setdefault(name, []).append(_refusal(call))
    for name, (theirs, ours) in errors.items():
        assert isinstance(ours, DownslopeError), name
        for cls in (ValueError, RuntimeError):
            if isinstance(theirs, cls):
                assert isinstance(ours, cls), (name, cls)  # code catching torch's class catches ours
        if name in _SAME_WORDS:
            assert str(ours) == str(theirs), name


@pytest.mark.parametrize("kind, options", _CONFIGS)
def test_permute_hidden_as_torch(kind: str, options: dict[str, Any]) -> None:
    outs = []
    for lib in (torch, ds):
        layer = _layer(lib, kind, options)
        x = lib.zeros(5, 4, 3, dtype=lib.float64) if not layer.batch_first else lib.zeros(4, 5, 3, dtype=lib.float64)
        hidden = _states(
            lib, layer, tuple(layer.get_expected_hidden_size(x, None)),
            tuple(layer.get_expected_cell_size(x, None)) if kind == "LSTM" else (),
        )  # fmt: skip
        assert layer.permute_hidden(hidden, None) is hidden
        permuted = layer.permute_hidden(hidden, lib.tensor([2, 0, 3, 1]))
        parts = permuted if isinstance(permuted, tuple) else (permuted,)
        outs.append([p.detach().numpy() for p in parts])
    for ours, theirs in zip(outs[1], outs[0], strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_an_lstm_subclass_with_torch_style_forward_runs_as_torch() -> None:
    outs = []
    for lib in (torch, ds):

        class Checked(lib.nn.LSTM):
            order = lib.tensor([1, 0])

            def forward(self, x: Any, hx: Any = None) -> Any:  # the pattern of torch-era LSTM variants
                if hx is not None:
                    self.check_forward_args(x, hx, None)
                    hx = self.permute_hidden(hx, self.order)
                return super().forward(x, hx)

        lib.manual_seed(0)
        layer = Checked(3, 4).double()
        with lib.no_grad():
            for i, p in enumerate(layer.parameters()):
                p.copy_(lib.tensor(np.sin(np.arange(p.numel()) + i).reshape(tuple(p.shape)), dtype=lib.float64))
        x = lib.tensor(np.cos(np.arange(30.0)).reshape(5, 2, 3), dtype=lib.float64)
        hx = lib.ones(1, 2, 4, dtype=lib.float64), lib.zeros(1, 2, 4, dtype=lib.float64) + 0.5
        out, (h, c) = layer(x, hx)
        outs.append([t.detach().numpy() for t in (out, h, c)])
        with pytest.raises(RuntimeError, match=r"Expected hidden\[1\] size \(1, 2, 4\), got \[1, 2, 3\]"):
            layer(x, (hx[0], lib.zeros(1, 2, 3, dtype=lib.float64)))
    for ours, theirs in zip(outs[1], outs[0], strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
