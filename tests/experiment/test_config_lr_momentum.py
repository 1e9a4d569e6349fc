"""lr and momentum left out mean the optimizer's defaults (None); an explicit momentum of 0 is honoured
and a learning rate of 0 is refused (it trains nothing); a run's stored lr = 0.0 (how older runs wrote
the default) still reads as the default."""

from __future__ import annotations

import pytest
import torch

from downslope.errors import ConfigError
from downslope.experiment import build_optimizer, normalize_config, to_toml
from downslope.tensor import tensor


def _group(cfg):
    return build_optimizer(cfg, [tensor([0.0], requires_grad=True)]).param_groups[0]


@pytest.mark.parametrize("lr", [0, 0.0])
def test_a_learning_rate_of_zero_is_refused(lr):
    with pytest.raises(ConfigError, match=r"lr must be > 0 \(a learning rate of 0 trains nothing\)"):
        normalize_config({"lr": lr}, "run.toml")
    with pytest.raises(ConfigError, match=r"lr must be > 0, got -0.1"):
        normalize_config({"lr": -0.1}, "run.toml")


def test_explicit_momentum_zero_is_honoured_and_absent_means_the_default():
    ref = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.01, momentum=0.0).param_groups[0]
    assert _group(normalize_config({"optimizer": "momentum", "momentum": 0}))["momentum"] == ref["momentum"]
    assert _group(normalize_config({"optimizer": "momentum"}))["momentum"] == 0.9
    assert _group(normalize_config({"optimizer": "sgd"}))["momentum"] == 0.0


def test_absent_lr_is_the_optimizer_default_and_is_not_written():
    cfg = normalize_config({"optimizer": "adam"})
    assert cfg["lr"] is None and cfg["momentum"] is None
    adam = torch.optim.Adam([torch.zeros(1, requires_grad=True)]).param_groups[0]
    assert _group(cfg)["lr"] == adam["lr"]
    text = to_toml(cfg)
    assert "lr =" not in text and "momentum =" not in text
    assert normalize_config(normalize_config({"lr": 0.05}))["lr"] == 0.05  # normalizing twice keeps it


def test_a_stored_lr_of_zero_from_an_older_run_reads_as_the_default():
    assert normalize_config({"lr": 0.0, "momentum": 0.0}, "runs/old/config.toml", stored=True)["lr"] is None


def test_momentum_zero_steps_like_torch_sgd_without_momentum():
    import numpy as np

    start = np.array([1.0, -2.0, 0.5])
    cfg = normalize_config({"optimizer": "momentum", "momentum": 0.0, "lr": 0.1})
    w = tensor(start.copy(), requires_grad=True)
    opt = build_optimizer(cfg, [w])
    tw = torch.tensor(start.copy(), requires_grad=True)
    topt = torch.optim.SGD([tw], lr=0.1, momentum=0.0)
    for _ in range(3):
        for o, p in ((opt, w), (topt, tw)):
            o.zero_grad()
            (p * p * p).sum().backward()
            o.step()
    np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy(), rtol=1e-6)
