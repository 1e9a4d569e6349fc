"""``--optimizer gd`` is full-batch gradient descent unless a batch size is given, in train and
compare, and recorded so a resumed or repeated run does the same; compare's footnote says what the
logged training loss is (the loss over all rows: batch losses weighted by batch size)."""

from __future__ import annotations

import numpy as np
import pytest
import tomllib
import torch

from downslope.cli import main

pytest.importorskip("matplotlib")


def _config(run):
    return tomllib.loads((run / "config.toml").read_text())


def _flat(cfg):
    out = {}
    for key, value in cfg.items():
        out.update(value if isinstance(value, dict) else {key: value})
    return out


def test_gd_is_full_batch_unless_a_batch_size_is_given(tmp_path, capsys):
    base = ["train", "--data", "line", "--model", "linear", "--optimizer", "gd", "--epochs", "3", "--quiet"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    assert _flat(_config(tmp_path / "a"))["batch_size"] == "full"
    assert main([*base, "--batch-size", "16", "--out", str(tmp_path / "b")]) == 0
    assert _flat(_config(tmp_path / "b"))["batch_size"] == "16"
    adam = ["train", "--data", "line", "--model", "linear", "--epochs", "3", "--quiet", "--out", str(tmp_path / "c")]
    assert main(adam) == 0
    assert _flat(_config(tmp_path / "c"))["batch_size"] == "64"  # the other optimizers keep mini-batches
    # the recorded config repeats the run: full batch again
    assert (
        main(["train", "--config", str(tmp_path / "a" / "config.toml"), "--quiet", "--out", str(tmp_path / "d")]) == 0
    )
    assert _flat(_config(tmp_path / "d"))["batch_size"] == "full"
    capsys.readouterr()


def test_compare_runs_gd_full_batch_and_says_what_the_training_loss_is(tmp_path, capsys):
    args = ["compare", "--data", "line", "--model", "linear", "--optimizers", "gd,sgd", "--lrs", "0.1", "--epochs", "2"]
    assert main([*args, "--quiet", "--out", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith(("gd ", "sgd "))}
    assert rows["gd"][-1] == "1" and int(rows["sgd"][-1]) > 1  # updates per epoch
    assert "batch losses weighted by batch size" in out


def test_the_logged_loss_is_torchs_loss_over_all_rows_weighted_by_batch_size():
    """What the footnote says, against torch: the epoch's loss is the row-weighted mean of the batch
    losses, each before its update (not the plain mean over batches)."""
    import downslope as ds
    from downslope import nn, optim

    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 2))
    y = X @ [2.0, -1.0] + 0.5 + 0.1 * rng.normal(size=50)
    ds.manual_seed(0)
    m = nn.Linear(2, 1, dtype=ds.float64)
    tm = torch.nn.Linear(2, 1, dtype=torch.float64)
    with torch.no_grad():
        tm.weight.copy_(torch.tensor(m.weight.detach().numpy()))
        tm.bias.copy_(torch.tensor(m.bias.detach().numpy()))
    data = (ds.tensor(X, dtype=ds.float64), ds.tensor(y[:, None], dtype=ds.float64))
    h = ds.fit(m, nn.MSELoss(), optim.SGD(m.parameters(), lr=0.05, momentum=0.9), data, epochs=1, batch_size=16,
               shuffle=False, verbose=0)  # fmt: skip
    opt = torch.optim.SGD(tm.parameters(), lr=0.05, momentum=0.9)
    losses, sizes = [], []
    for i in range(0, 50, 16):
        xb, yb = torch.tensor(X[i : i + 16]), torch.tensor(y[i : i + 16, None])
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(tm(xb), yb)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        sizes.append(len(xb))
    assert h["loss"][0] == pytest.approx(np.average(losses, weights=sizes), rel=1e-9)
