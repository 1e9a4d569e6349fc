"""torch.nn.parallel's wrappers (src/downslope/nn/parallel.py) against torch on a machine without GPUs:
DataParallel passes through; DistributedDataParallel (tests/distributed/test_ddp.py) needs a process group."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import downslope as ds
from downslope import nn

torch = pytest.importorskip("torch")


def test_import_path_and_names_are_torchs():
    module = importlib.import_module("downslope.nn.parallel")
    assert ds.nn.parallel is module and nn.DataParallel is module.DataParallel
    assert {"DataParallel", "DistributedDataParallel"} <= set(dir(module))


@pytest.mark.skipif(ds.cuda.is_available(), reason="torch's CPU-only DataParallel is the reference")
def test_data_parallel_without_gpus_is_torchs_pass_through():
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    theirs = torch.nn.DataParallel(torch.nn.Linear(3, 2), device_ids=[0, 1])
    inner = nn.Linear(3, 2)
    inner.load_state_dict({k: v.numpy() for k, v in theirs.module.state_dict().items()})
    ours = nn.DataParallel(inner, device_ids=[0, 1])
    assert ours.module is inner and ours.device_ids == theirs.device_ids == []
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    y, ty = ours(ds.tensor(x, requires_grad=True)), theirs(torch.tensor(x, requires_grad=True))
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-6, atol=1e-6)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(inner.weight.grad.numpy(), theirs.module.weight.grad.numpy(), rtol=1e-6)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})  # "module." keys load back


def test_data_parallel_refuses_what_is_not_a_module():
    with pytest.raises(TypeError, match="nn.Module"):
        nn.DataParallel(lambda x: x)


def test_distributed_data_parallel_without_a_process_group_says_what_to_call(monkeypatch):
    monkeypatch.setattr(nn.parallel, "_group", None)  # downslope.distributed not imported: no process group
    with pytest.raises(ds.DownslopeError, match="downslope import distributed as dist; dist.init_process_group"):
        nn.parallel.DistributedDataParallel(nn.Linear(2, 2), device_ids=[0])
