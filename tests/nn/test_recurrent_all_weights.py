"""RNNBase._all_weights: the parameter names per layer and direction, as torch's, and the DeepAR
recipe that sets the LSTM's forget-gate bias through it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_all_weights_names_match_torch(kind: str, num_layers: int, bidirectional: bool, bias: bool) -> None:
    args = dict(input_size=5, hidden_size=4, num_layers=num_layers, bias=bias, bidirectional=bidirectional)
    expected = getattr(torch.nn, kind)(**args)._all_weights
    assert getattr(ds.nn, kind)(**args)._all_weights == expected


@pytest.mark.parametrize("bidirectional", [False, True])
def test_all_weights_with_projection_match_torch(bidirectional: bool) -> None:
    args = dict(input_size=5, hidden_size=4, num_layers=2, proj_size=2, bidirectional=bidirectional)
    assert ds.nn.LSTM(**args)._all_weights == torch.nn.LSTM(**args)._all_weights


def test_all_weights_names_every_parameter_once() -> None:
    lstm = ds.nn.LSTM(5, 4, num_layers=2, bidirectional=True, proj_size=3)
    names = [n for group in lstm._all_weights for n in group]
    assert sorted(names) == sorted(n for n, _ in lstm.named_parameters())


def test_deepar_forget_gate_bias_recipe() -> None:
    """Verbatim from DeepAR (model/net.py): the second quarter of each bias (the forget gate) set to 1."""
    lstm = ds.nn.LSTM(input_size=8, hidden_size=4, num_layers=2, bias=True, bidirectional=True)
    for names in lstm._all_weights:
        for name in filter(lambda n: "bias" in n, names):
            bias = getattr(lstm, name)
            n = bias.size(0)
            start, end = n // 4, n // 2
            bias.data[start:end].fill_(1.0)
    for name, p in lstm.named_parameters():
        if "bias" in name:
            np.testing.assert_array_equal(p.detach().numpy()[4:8], np.ones(4, np.float32))
