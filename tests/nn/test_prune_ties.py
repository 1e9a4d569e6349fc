"""Pruning picks the same entries as torch when importances tie (zero-initialised biases, quantized
weights, equal channel norms): torch's CPU topk selects with libstdc++'s nth_element/partial_sort, whose
choice among equal values downslope replays."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
import torch.nn.utils.prune as torch_prune

import downslope as ds
import downslope.nn.utils.prune as ds_prune
from downslope.nn.utils.prune import _topk_indices


def _patterns(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "all_zero": np.zeros(n),
        "half_tied": np.where(np.arange(n) % 2 == 0, 0.0, rng.random(n) + 0.5),
        "few_values": rng.integers(0, 3, n).astype(float),
        "rounded": np.round(rng.standard_normal(n), 1),
        "sorted_runs": (np.arange(n) // 3).astype(float),
        "with_nan": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 4, n).astype(float)),
    }


@pytest.mark.parametrize("n", [1, 7, 8, 33, 200, 2000])
@pytest.mark.parametrize("largest", [False, True])
def test_topk_indices_are_torch_topk_indices_with_ties(n: int, largest: bool) -> None:
    rng = np.random.default_rng(n)
    for name, values in _patterns(n, rng).items():
        v = values.astype(np.float32)
        # small k takes torch's partial_sort path (64 k <= n), larger k its nth_element path
        for k in sorted({0, 1, max(1, n // 64), n // 3, n // 2, n - 1, n} - {-1}):
            expected = set(torch.topk(torch.from_numpy(v), k, largest=largest).indices.tolist())
            assert set(_topk_indices(v, k, largest).tolist()) == expected, (name, k)


def _mask(lib: types.ModuleType, prune: types.ModuleType, values: np.ndarray, how: str) -> np.ndarray:
    layer = lib.nn.Linear(values.shape[1], values.shape[0])
    with lib.no_grad():
        layer.weight.copy_(lib.tensor(values.astype(np.float32)))
        layer.bias.zero_()
    if how == "l1_bias":
        prune.l1_unstructured(layer, "bias", amount=0.5)
        return layer.bias_mask.numpy()
    if how == "l1":
        prune.l1_unstructured(layer, "weight", amount=0.4)
    elif how == "l1_twice":  # the second pass prunes among the entries left
        prune.l1_unstructured(layer, "weight", amount=0.3)
        prune.l1_unstructured(layer, "weight", amount=0.3)
    elif how == "ln_rows":
        prune.ln_structured(layer, "weight", amount=0.5, n=1, dim=0)
    elif how == "ln_columns":
        prune.ln_structured(layer, "weight", amount=2, n=2, dim=1)
    elif how == "global":
        other = lib.nn.Linear(3, 4)
        with lib.no_grad():
            other.weight.zero_()
        prune.global_unstructured(
            [(layer, "weight"), (layer, "bias"), (other, "weight")], pruning_method=prune.L1Unstructured, amount=0.5
        )
        return np.concatenate(
            [layer.weight_mask.numpy().ravel(), layer.bias_mask.numpy(), other.weight_mask.numpy().ravel()]
        )
    return layer.weight_mask.numpy()


@pytest.mark.parametrize("how", ["l1_bias", "l1", "l1_twice", "ln_rows", "ln_columns", "global"])
@pytest.mark.parametrize("pattern", ["all_zero", "few_values", "equal_rows"])
def test_pruning_masks_are_torch_masks_when_importances_tie(how: str, pattern: str) -> None:
    rng = np.random.default_rng(3)
    if pattern == "all_zero":
        values = np.zeros((8, 6))
    elif pattern == "few_values":
        values = rng.integers(-2, 3, (8, 6)).astype(float)
    else:  # every row the same norm, every column too: structured pruning ties everywhere
        values = np.tile(np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0]), (8, 1))
    expected = _mask(torch, torch_prune, values, how)
    np.testing.assert_array_equal(_mask(ds, ds_prune, values, how), expected)
