"""Input dtypes the normalization layers (and PReLU) take, against torch: an integer input, or a
floating input of another dtype than the layer's weights and statistics, is refused with a DTypeError
saying what to cast, where torch refuses it; what torch takes gives torch's output dtype."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import DTypeError

torch = pytest.importorskip("torch")

_LAYERS: dict[str, tuple[Callable[[Any], Any], tuple[int, ...]]] = {
    "BatchNorm1d": (lambda L: L.nn.BatchNorm1d(2), (3, 2, 3)),
    "BatchNorm2d": (lambda L: L.nn.BatchNorm2d(2), (3, 2, 3, 3)),
    "BatchNorm3d": (lambda L: L.nn.BatchNorm3d(2), (2, 2, 2, 2, 3)),
    "BatchNorm2d-no-affine": (lambda L: L.nn.BatchNorm2d(2, affine=False), (3, 2, 3, 3)),
    "BatchNorm2d-no-stats": (lambda L: L.nn.BatchNorm2d(2, track_running_stats=False), (3, 2, 3, 3)),
    "BatchNorm2d-bare": (lambda L: L.nn.BatchNorm2d(2, affine=False, track_running_stats=False), (3, 2, 3, 3)),
    "LayerNorm": (lambda L: L.nn.LayerNorm(3), (3, 2, 3, 3)),
    "LayerNorm-no-affine": (lambda L: L.nn.LayerNorm(3, elementwise_affine=False), (3, 2, 3, 3)),
    "GroupNorm": (lambda L: L.nn.GroupNorm(1, 2), (3, 2, 3, 3)),
    "GroupNorm-no-affine": (lambda L: L.nn.GroupNorm(1, 2, affine=False), (3, 2, 3, 3)),
    "InstanceNorm1d": (lambda L: L.nn.InstanceNorm1d(2), (3, 2, 3)),
    "InstanceNorm2d": (lambda L: L.nn.InstanceNorm2d(2), (3, 2, 3, 3)),
    "InstanceNorm2d-affine": (lambda L: L.nn.InstanceNorm2d(2, affine=True), (3, 2, 3, 3)),
    "InstanceNorm2d-stats": (lambda L: L.nn.InstanceNorm2d(2, track_running_stats=True), (3, 2, 3, 3)),
    "InstanceNorm3d": (lambda L: L.nn.InstanceNorm3d(2), (2, 2, 2, 2, 3)),
    "RMSNorm": (lambda L: L.nn.RMSNorm(3), (3, 2, 3, 3)),
    "RMSNorm-no-affine": (lambda L: L.nn.RMSNorm(3, elementwise_affine=False), (3, 2, 3, 3)),
    "LocalResponseNorm": (lambda L: L.nn.LocalResponseNorm(2), (3, 2, 3, 3)),
    "PReLU": (lambda L: L.nn.PReLU(), (3, 2, 3, 3)),
    "PReLU-channels": (lambda L: L.nn.PReLU(2), (3, 2, 3, 3)),
}


def _run(L: Any, make: Callable[[Any], Any], data: np.ndarray, train: bool) -> Any:
    layer = make(L).train(train)
    x = torch.from_numpy(data.copy()) if L is torch else ds.from_numpy(data.copy())
    try:
        return str(layer(x).dtype).split(".")[-1]
    except (RuntimeError, NotImplementedError) as e:
        return e


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.int64, np.float16])
@pytest.mark.parametrize("name", sorted(_LAYERS))
def test_layer_input_dtypes_match_torch(name: str, dtype: Any, train: bool) -> None:
    if name == "LocalResponseNorm" and dtype == np.float16:
        pytest.skip("torch has no float16 average pooling on the CPU; downslope computes it")
    make, shape = _LAYERS[name]
    data = np.random.default_rng(0).integers(0, 3, shape).astype(dtype)
    theirs, ours = _run(torch, make, data, train), _run(ds, make, data, train)
    if isinstance(theirs, Exception):
        assert isinstance(ours, DTypeError), f"torch refuses ({theirs}); downslope gave {ours}"
        assert np.dtype(dtype).name in str(ours)  # says what was given
    else:
        assert ours == theirs


def _functional(L: Any, name: str, x: Any, p2: Any, p3: Any) -> Any:
    F = L.nn.functional
    calls = {
        "batch_norm-train": lambda: F.batch_norm(x, p2 * 0, p2.clone(), p2, p2 * 0, training=True),
        "batch_norm-eval": lambda: F.batch_norm(x, p2 * 0, p2, training=False),
        "batch_norm-weight": lambda: F.batch_norm(x, None, None, p2, None, training=True),
        "layer_norm": lambda: F.layer_norm(x, (3,), p3, p3),
        "layer_norm-bare": lambda: F.layer_norm(x, (3,)),
        "group_norm": lambda: F.group_norm(x, 1, p2, p2),
        "group_norm-bare": lambda: F.group_norm(x, 1),
        "instance_norm": lambda: F.instance_norm(x, weight=p2, bias=p2),
        "instance_norm-stats": lambda: F.instance_norm(x, p2 * 0, p2.clone()),
        "rms_norm": lambda: F.rms_norm(x, (3,), p3),
        "prelu": lambda: F.prelu(x, p2),
    }
    return calls[name]()


_PAIRS = [
    (np.float64, np.float32),
    (np.float32, np.float64),
    (np.int64, np.float32),
    (np.float16, np.float32),
    (np.float32, np.float16),
    (np.int64, np.float64),
]


@pytest.mark.parametrize("x_dtype, p_dtype", _PAIRS, ids=[f"{np.dtype(a)}-{np.dtype(b)}" for a, b in _PAIRS])
@pytest.mark.parametrize(
    "name",
    [
        "batch_norm-train", "batch_norm-eval", "batch_norm-weight", "layer_norm", "layer_norm-bare", "group_norm",
        "group_norm-bare", "instance_norm", "instance_norm-stats", "rms_norm", "prelu",
    ],
)  # fmt: skip
def test_functional_dtypes_match_torch(name: str, x_dtype: Any, p_dtype: Any) -> None:
    data = np.random.default_rng(1).integers(0, 3, (3, 2, 3, 3)).astype(x_dtype)
    results = []
    for L, make in ((torch, torch.from_numpy), (ds, ds.from_numpy)):
        try:
            out = _functional(L, name, make(data.copy()), make(np.ones(2, p_dtype)), make(np.ones(3, p_dtype)))
            results.append(str(out.dtype).split(".")[-1])
        except (RuntimeError, NotImplementedError) as e:
            results.append(e)
    theirs, ours = results
    if isinstance(theirs, Exception):
        assert isinstance(ours, DTypeError), f"torch refuses ({theirs}); downslope gave {ours}"
    else:
        assert ours == theirs


def test_message_says_what_to_cast() -> None:
    with pytest.raises(DTypeError, match=r"layer_norm: input dtype float64 differs from weight dtype float32; cast"):
        ds.nn.LayerNorm(3)(ds.from_numpy(np.ones((2, 3))))
    with pytest.raises(DTypeError, match=r"batch_norm: expected a floating-point input, got int64"):
        ds.nn.BatchNorm2d(2)(ds.from_numpy(np.ones((2, 2, 3, 3), np.int64)))


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("shape", [(8, 6), (2, 6, 4, 4)])
def test_a_half_batch_norm_takes_half_input_as_torch(shape: tuple[int, ...], train: bool) -> None:
    """A module.half() BatchNorm normalizes float16 input in float32 with its float16 running statistics
    (the float32 inner call must not meet the dtype check meant for callers)."""
    x = np.random.default_rng(0).normal(size=shape).astype(np.float16)
    module = torch.nn.BatchNorm1d(6) if len(shape) == 2 else torch.nn.BatchNorm2d(6)
    ours = (ds.nn.BatchNorm1d(6) if len(shape) == 2 else ds.nn.BatchNorm2d(6)).half()
    module = module.half()
    for m in (module, ours):
        m.train(train)
    got = ours(ds.tensor(x))
    want = module(torch.tensor(x))
    assert got.dtype == ds.float16
    np.testing.assert_allclose(
        got.detach().numpy().astype(np.float32), want.detach().numpy().astype(np.float32), atol=2e-3
    )
    np.testing.assert_allclose(ours.running_mean.numpy(), module.running_mean.numpy(), atol=1e-3)
