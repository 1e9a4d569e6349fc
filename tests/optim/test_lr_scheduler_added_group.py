"""LambdaLR and MultiplicativeLR after ``add_param_group``: the new group has no lr_lambda. PyTorch fails
in a zip; downslope says so instead of leaving the new group's lr unscheduled."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

import downslope as ds
from downslope.errors import ArgumentError

torch = pytest.importorskip("torch")


def _setup(L: Any, name: str) -> tuple[Any, Any]:
    w, b = L.nn.Parameter(L.ones(1)), L.nn.Parameter(L.ones(1))
    opt = L.optim.SGD([w], lr=1.0)
    sched = getattr(L.optim.lr_scheduler, name)(opt, lambda epoch: 0.5)
    opt.add_param_group({"params": [b], "lr": 2.0})
    opt.step()
    return opt, sched


@pytest.mark.parametrize("name", ["LambdaLR", "MultiplicativeLR"])
def test_lambda_scheduler_refuses_a_group_added_after_it(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref_opt, ref_sched = _setup(torch, name)
        with pytest.raises(ValueError):
            ref_sched.step()
        opt, sched = _setup(ds, name)
        with pytest.raises(
            ArgumentError, match=rf"{name}.step: the optimizer has 2 param groups but the scheduler has 1"
        ):
            sched.step()
    # refused before any lr was written, as in PyTorch
    assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in ref_opt.param_groups]
