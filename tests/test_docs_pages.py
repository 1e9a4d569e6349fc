"""The code on docs/distributed.md and docs/gpu.md runs as written, and docs/porting.md's claim about
NumPy arrays taken before an optimizer is built says what the library (and torch) do."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import downslope as ds

DOCS = Path(__file__).resolve().parents[1] / "docs"

# the pages' code runs on the host (NumPy arrays handed to fit and loaders, .numpy() reads), which the
# strict-device pass would split between its stand-in device and the host
pytestmark = pytest.mark.host_only


@pytest.mark.parametrize("page, count", [("distributed.md", 4), ("gpu.md", 2)])
def test_every_python_block_of_the_page_runs(page, count, tmp_path, monkeypatch, run_python_blocks):
    monkeypatch.chdir(tmp_path)  # distributed.md's script writes runs/mlp
    assert run_python_blocks(DOCS / page) == count  # a single process: a world of one; gpu.md: "cpu" here


def test_gpu_page_has_no_indented_python_left():
    # an indented block escapes the test above; the install line is the one shell line kept indented
    text = (DOCS / "gpu.md").read_text()
    assert not re.search(r"^    (import |from |history = |x = ds\.)", text, flags=re.M)


def _numpy_before_optimizer_follows(lib, make_opt) -> tuple[bool, bool]:
    m = lib.nn.Linear(3, 2)
    arr = m.weight.detach().numpy()
    before = arr.copy()
    opt = make_opt(lib, m)

    def closure():
        opt.zero_grad()
        loss = m(lib.ones(1, 3)).pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return not np.array_equal(arr, before), np.array_equal(arr, m.weight.detach().numpy())


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_a_numpy_array_taken_before_the_optimizer_follows_training_as_porting_md_says(name):
    def make(lib, m):
        return getattr(lib.optim, name)(m.parameters(), lr=0.1)

    assert _numpy_before_optimizer_follows(ds, make) == _numpy_before_optimizer_follows(torch, make) == (True, True)
    saving = (DOCS / "porting.md").read_text().split("**Saving.**")[1].split("\n- **")[0]
    assert "so does a NumPy array" in saving and "does not (it keeps the old values)" not in saving


def test_under_lbfgs_the_old_numpy_array_keeps_the_old_values_as_porting_md_says():
    def make(lib, m):
        return lib.optim.LBFGS(m.parameters(), lr=0.1)

    assert _numpy_before_optimizer_follows(ds, make) == (False, False)
    saving = (DOCS / "porting.md").read_text().split("**Saving.**")[1].split("\n- **")[0]
    assert "except under `LBFGS`" in saving
