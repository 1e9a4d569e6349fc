"""A corpus of bad inputs across the public API. Each must fail with a clear message raised by
downslope's own code (the innermost frame is in the package, not inside NumPy), naming what was
expected and what was given, and be one of downslope's own exception types (a DownslopeError subclass,
which also derives from the matching built-in, so `except ValueError` keeps working)."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim
from downslope.data import ArrayDataset, DataLoader, train_test_split
from downslope.errors import DownslopeError

PACKAGE = str(Path(ds.__file__).parent)


def _model():
    return nn.Linear(2, 1)


def _fit(**overrides):
    m = _model()
    args = dict(
        model=m,
        loss_fn=nn.MSELoss(),
        optimizer=optim.SGD(m.parameters(), lr=0.1),
        train=(np.zeros((8, 2)), np.zeros((8, 1))),
        epochs=1,
        verbose=0,
    )
    args.update(overrides)
    return ds.fit(**args)


def _nan_rows():
    x = np.ones((6, 2))
    x[4, 1] = np.inf
    return x


CASES: list[tuple[str, Callable[[], object], str]] = [
    # tensors
    ("tensor of strings", lambda: ds.tensor(["a", "b"]), "cannot make a tensor"),
    ("tensor of objects", lambda: ds.tensor([{"a": 1}]), "cannot make a tensor"),
    ("ragged list", lambda: ds.tensor([[1.0, 2.0], [3.0]]), "cannot make a tensor"),
    ("grad on int tensor", lambda: ds.tensor([1, 2], requires_grad=True), "floating"),
    ("unknown dtype", lambda: ds.tensor([1.0], dtype="float31"), "dtype"),
    ("date dtype", lambda: ds.tensor([1.0], dtype="M8[D]"), "unsupported dtype"),
    ("relu of complex", lambda: ds.tensor([1j], requires_grad=True).relu(), "not implemented for complex"),
    ("negative shape", lambda: ds.zeros(2, -1), "non-negative"),
    ("matmul shapes", lambda: ds.ones(2, 3) @ ds.ones(4, 5), "(2, 3) and (4, 5)"),
    ("matmul scalar", lambda: ds.tensor(2.0) @ ds.ones(2), "at least one dimension"),
    ("reshape size", lambda: ds.ones(2, 3).reshape(4, 2), "(2, 3)"),
    ("bad index", lambda: ds.ones(2, 3)[5], "shape (2, 3)"),
    ("float index", lambda: ds.ones(3)[ds.tensor([0.5])], "integer or boolean"),
    ("backward non-scalar", lambda: ds.ones(3, requires_grad=True).exp().backward(), "scalar"),
    ("backward no grad", lambda: ds.ones(3).sum().backward(), "does not require grad"),
    ("gradient shape", lambda: ds.ones(3, requires_grad=True).exp().backward(ds.ones(4)), "shape"),
    ("item of many", lambda: ds.ones(3).item(), "one-element"),
    ("permute twice", lambda: ds.ones(2, 3).permute(0, 0), "permutation"),
    ("broadcast_to", lambda: ds.ones(3).expand(2, 4), "cannot broadcast"),
    ("stack shapes", lambda: ds.stack([ds.ones(2), ds.ones(3)]), "same shape"),
    ("cat shapes", lambda: ds.cat([ds.ones(2, 2), ds.ones(3, 3)], dim=0), "do not match"),
    ("pad odd", lambda: ds.pad(ds.ones(2, 2), (1, 2, 3)), "even number"),
    ("gather dims", lambda: ds.ones(2, 3).gather(1, ds.tensor([0, 1])), "dims"),
    ("seed type", lambda: ds.manual_seed(1.5), "integer seed"),
    ("inplace into graph", lambda: ds.ones(2, requires_grad=True).__setitem__(0, 1.0), "in-place"),
    # layers and losses
    ("linear input width", lambda: nn.Linear(2, 1)(ds.zeros(3, 5)), "(3, 5)"),
    ("mse shapes", lambda: nn.MSELoss()(ds.zeros(4, 1), ds.zeros(4)), "(4, 1)"),
    ("l1 shapes", lambda: nn.L1Loss()(ds.zeros(4, 2), ds.zeros(2, 4)), "shape"),
    ("bce shapes", lambda: nn.BCEWithLogitsLoss()(ds.zeros(4, 1), ds.zeros(4)), "shape"),
    ("ce class range", lambda: nn.CrossEntropyLoss()(ds.zeros(4, 3), ds.tensor([0, 1, 2, 3])), "out of range"),
    ("ce batch mismatch", lambda: nn.CrossEntropyLoss()(ds.zeros(4, 3), ds.tensor([0, 1])), "4"),
    ("reduction name", lambda: nn.MSELoss(reduction="avg"), "reduction"),
    ("dropout p", lambda: nn.Dropout(1.5), "[0, 1]"),
    ("state_dict shape", lambda: _model().load_state_dict({"weight": np.zeros((3, 3)), "bias": np.zeros(1)}), "(3, 3)"),
    ("state_dict missing", lambda: _model().load_state_dict({"weight": np.zeros((1, 2))}), "bias"),
    (
        "state_dict unexpected",
        lambda: _model().load_state_dict({"weight": np.zeros((1, 2)), "bias": np.zeros(1), "extra": np.zeros(1)}),
        "extra",
    ),
    (
        "state_dict complex",
        lambda: _model().load_state_dict({"weight": np.zeros((1, 2), np.complex64), "bias": np.zeros(1)}),
        "'weight' has dtype complex64",
    ),
    (
        "state_dict nan",
        lambda: _model().load_state_dict({"weight": np.zeros((1, 2)), "bias": np.array([np.nan])}),
        "'bias' holds 1 NaN/infinite value(s)",
    ),
    ("batchnorm features", lambda: nn.BatchNorm1d(3)(ds.zeros(4, 5)), "3"),
    ("embedding index", lambda: nn.Embedding(5, 2)(ds.tensor([7])), "7"),
    # optimizers and schedules
    ("negative lr", lambda: optim.Adam(_model().parameters(), lr=-1), "lr=-1"),
    ("betas", lambda: optim.Adam(_model().parameters(), betas=(0.9, 1.5)), "1.5"),
    ("unknown option", lambda: optim.SGD(_model().parameters(), lr=0.1, momentun=0.9), "momentun"),
    ("param set", lambda: optim.SGD(set(_model().parameters()), lr=0.1), "set"),
    ("empty params", lambda: optim.SGD([], lr=0.1), "empty"),
    ("nesterov without momentum", lambda: optim.SGD(_model().parameters(), lr=0.1, nesterov=True), "Nesterov"),
    (
        "step_size",
        lambda: optim.lr_scheduler.StepLR(optim.SGD(_model().parameters(), lr=0.1), step_size=0),
        "step_size",
    ),
    (
        "plateau mode",
        lambda: optim.lr_scheduler.ReduceLROnPlateau(optim.SGD(_model().parameters(), lr=0.1), mode="up"),
        "mode",
    ),
    ("clip nonfinite", lambda: _clip_nan(), "is nan"),
    # data and fit
    ("nan features", lambda: ArrayDataset(_nan_rows(), np.zeros(6)), "row 4, column 1"),
    ("length mismatch", lambda: ArrayDataset(np.zeros((5, 2)), np.zeros(4)), "5"),
    ("empty dataset", lambda: ArrayDataset(np.zeros((0, 2)), np.zeros(0)), "empty"),
    ("batch size zero", lambda: DataLoader(ArrayDataset(np.zeros((4, 2)), np.zeros(4)), batch_size=0), "batch_size"),
    (
        "batch size text",
        lambda: DataLoader(ArrayDataset(np.zeros((4, 2)), np.zeros(4)), batch_size="big"),
        "batch_size",
    ),
    ("split too big", lambda: train_test_split(np.zeros((4, 2)), test_size=7), "4"),
    ("epochs zero", lambda: _fit(epochs=0), "epochs"),
    ("fit wrong width", lambda: _fit(train=(np.zeros((8, 3)), np.zeros((8, 1)))), "(8, 3)"),
    ("fit nan", lambda: _fit(train=(_nan_rows(), np.zeros((6, 1)))), "non-finite"),
    ("validation split", lambda: _fit(validation_split=1.5), "validation_split"),
    ("unknown metric", lambda: _fit(metrics=["acuracy"]), "acuracy"),
]


def _clip_nan():
    p = ds.tensor([1.0], requires_grad=True)
    p.grad = ds.tensor([np.nan])
    return optim.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


@pytest.mark.parametrize("name, call, fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input_fails_clearly_from_our_code(name, call, fragment):
    with pytest.raises(Exception) as info:
        call()
    exc = info.value
    message = str(exc)
    assert fragment in message, f"{name}: message {message!r} lacks {fragment!r}"
    assert len(message) > 15, f"{name}: message too terse: {message!r}"
    innermost = traceback.extract_tb(exc.__traceback__)[-1].filename
    assert innermost.startswith(PACKAGE), f"{name}: {type(exc).__name__} raised from {innermost}, not from downslope"
    module = Path(innermost).relative_to(PACKAGE).as_posix()
    assert isinstance(exc, DownslopeError), f"{name}: {type(exc).__name__} from {module}, not a DownslopeError"
    # ...and still the built-in type PyTorch/NumPy users catch.
    assert isinstance(exc, (ValueError, TypeError, IndexError, KeyError, RuntimeError, FloatingPointError)), name


def test_corpus_size():
    # The closing note quotes this count: bad inputs tried, each ending in a clear error.
    assert len(CASES) >= 50
