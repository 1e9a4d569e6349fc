"""spectral_norm's state format against torch: state_dict()._metadata records the format version, and an
old checkpoint (it stored ``weight_orig``, the normalized ``weight`` and ``weight_u``, no ``weight_v``) is
converted on load as torch's load pre-hook does: ``weight_v`` solved from the others."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

_LAYERS = {
    "linear": (lambda L: L.nn.Linear(3, 4), (4, 3), (1, 3)),
    "conv2d": (lambda L: L.nn.Conv2d(2, 3, 2), (3, 2, 2, 2), (1, 2, 3, 3)),
    "conv_transpose": (lambda L: L.nn.ConvTranspose2d(3, 2, 2), (3, 2, 2, 2), (1, 3, 2, 2)),
}


def _legacy_checkpoint(L: Any, weight_shape: tuple[int, ...], dim: int, metadata: bool) -> Any:
    """An old checkpoint: the weight before normalization, the weight divided by its largest singular value,
    the left singular-vector estimate; the module's version metadata without spectral_norm's."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal(weight_shape)
    matrix = np.moveaxis(w, dim, 0).reshape(weight_shape[dim], -1)
    u = rng.standard_normal(weight_shape[dim])
    u /= np.linalg.norm(u)
    sigma = np.linalg.norm(matrix, 2)
    out_channels = weight_shape[dim]
    sd = OrderedDict(
        [
            ("bias", L.tensor(rng.standard_normal(weight_shape[1] if dim == 1 else out_channels), dtype=L.float64)),
            ("weight_orig", L.tensor(w, dtype=L.float64)),
            ("weight", L.tensor(w / sigma, dtype=L.float64)),
            ("weight_u", L.tensor(u, dtype=L.float64)),
        ]
    )
    if metadata:
        sd._metadata = OrderedDict({"": {"version": 1}})
    return sd


@pytest.mark.parametrize("layer", list(_LAYERS))
@pytest.mark.parametrize("metadata", [True, False])
def test_an_old_spectral_norm_checkpoint_loads_as_torch(layer: str, metadata: bool) -> None:
    make, weight_shape, input_shape = _LAYERS[layer]
    dim = 1 if layer == "conv_transpose" else 0
    x = np.random.default_rng(1).standard_normal(input_shape)
    results = []
    for L in (torch, ds):
        module = L.nn.utils.spectral_norm(make(L).double())
        keys = module.load_state_dict(_legacy_checkpoint(L, weight_shape, dim, metadata))
        assert list(keys.missing_keys) == [] and list(keys.unexpected_keys) == []
        module.eval()
        out = module(L.tensor(x, dtype=L.float64))
        results.append((module.weight_v.detach().numpy().copy(), out.detach().numpy()))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-9, atol=1e-12)


def test_state_dict_records_the_spectral_norm_version_as_torch() -> None:
    seen = []
    for L in (torch, ds):
        model = L.nn.Sequential(L.nn.utils.spectral_norm(L.nn.Linear(3, 4)), L.nn.Linear(4, 1))
        L.nn.utils.spectral_norm(model[1], name="bias")
        sd = model.state_dict()
        seen.append((list(sd), {k: dict(v) for k, v in sd._metadata.items()}))
        L.nn.utils.remove_spectral_norm(model[0])
        seen.append({k: dict(v) for k, v in model.state_dict()._metadata.items()})
    assert seen[2:] == seen[:2]


def test_a_current_checkpoint_without_metadata_loads_as_it_is() -> None:
    outs = []
    for L in (torch, ds):
        L.manual_seed(0)
        source = L.nn.utils.spectral_norm(L.nn.Linear(3, 4).double())
        sd = OrderedDict(
            (k, L.tensor(np.arange(v.numel(), dtype=np.float64).reshape(tuple(v.shape)) / 7 + 0.5, dtype=L.float64))
            for k, v in source.state_dict().items()
        )  # no _metadata: built by hand
        target = L.nn.utils.spectral_norm(L.nn.Linear(3, 4).double())
        target.load_state_dict(sd)
        outs.append(target.weight_v.detach().numpy().copy())
        np.testing.assert_array_equal(outs[-1], sd["weight_v"].numpy())
    np.testing.assert_array_equal(outs[1], outs[0])
