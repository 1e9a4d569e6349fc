"""The loss bases take PyTorch's constructor arguments in PyTorch's order: ``_Loss(size_average, reduce,
reduction)`` and ``_WeightedLoss(weight, size_average, reduce, reduction)``, the legacy flags mapped as
``torch.nn._reduction.legacy_get_string`` maps them (with its deprecation warning); every built-in loss
binds its arguments at PyTorch's positions."""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.nn.modules.loss import _Loss, _WeightedLoss

torch = pytest.importorskip("torch")
from torch.nn.modules import loss as tloss  # noqa: E402

FLAGS = [
    (None, None, "mean"),
    (None, None, "sum"),
    (None, None, "none"),
    (False, None, "mean"),
    (True, None, "mean"),
    (None, False, "mean"),
    (None, True, "mean"),
    (False, False, "mean"),
    (True, True, "sum"),  # a legacy flag given: the explicit reduction is ignored, as in PyTorch
    (False, True, "none"),
]


def _subclass(base: type, weighted: bool) -> type:
    if weighted:

        class Focal(base):  # type: ignore[misc, valid-type]
            def __init__(
                self, weight: Any = None, size_average: Any = None, reduce: Any = None, reduction: str = "mean"
            ):
                super().__init__(weight, size_average, reduce, reduction)

        return Focal

    class Plain(base):  # type: ignore[misc, valid-type]
        def __init__(self, size_average: Any = None, reduce: Any = None, reduction: str = "mean") -> None:
            super().__init__(size_average, reduce, reduction)

    return Plain


def _warnings(make: Any) -> tuple[Any, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        made = make()
    return made, [f"{w.category.__name__}: {w.message}" for w in caught]


@pytest.mark.parametrize(("size_average", "reduce", "reduction"), FLAGS)
@pytest.mark.parametrize("weighted", [False, True])
def test_subclass_written_for_torch_maps_legacy_flags_as_torch(
    size_average: Any, reduce: Any, reduction: str, weighted: bool
) -> None:
    ours_cls = _subclass(_WeightedLoss if weighted else _Loss, weighted)
    theirs_cls = _subclass(tloss._WeightedLoss if weighted else tloss._Loss, weighted)
    head = (ds.ones(3),) if weighted else ()
    theirs_head = (torch.ones(3),) if weighted else ()
    ours, our_warnings = _warnings(lambda: ours_cls(*head, size_average, reduce, reduction))
    theirs, their_warnings = _warnings(lambda: theirs_cls(*theirs_head, size_average, reduce, reduction))
    assert ours.reduction == theirs.reduction
    assert our_warnings == their_warnings
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)


def test_base_signatures_are_torchs() -> None:
    for ours, theirs in ((_Loss, tloss._Loss), (_WeightedLoss, tloss._WeightedLoss)):
        want = [p for p in inspect.signature(theirs.__init__).parameters]
        assert list(inspect.signature(ours.__init__).parameters) == want
        assert [p.default for p in inspect.signature(ours.__init__).parameters.values()][1:] == [
            p.default for p in inspect.signature(theirs.__init__).parameters.values()
        ][1:]


def _loss_names() -> list[str]:
    return sorted(
        n for n, c in vars(torch.nn).items() if isinstance(c, type) and issubclass(c, tloss._Loss) and hasattr(ds.nn, n)
    )


@pytest.mark.parametrize("name", _loss_names())
def test_builtin_losses_take_torchs_arguments_in_torchs_order(name: str) -> None:
    skip = {"device", "dtype"}
    theirs = [p for p in inspect.signature(getattr(torch.nn, name).__init__).parameters if p not in skip]
    ours = [p for p in inspect.signature(getattr(ds.nn, name).__init__).parameters if p not in skip]
    assert ours == theirs
    assert issubclass(getattr(ds.nn, name), _WeightedLoss) == issubclass(getattr(torch.nn, name), tloss._WeightedLoss)


@pytest.mark.parametrize(
    "name", [n for n in _loss_names() if "size_average" in inspect.signature(getattr(torch.nn, n)).parameters]
)
@pytest.mark.parametrize(("size_average", "reduce"), [(False, None), (None, False), (True, True)])
def test_builtin_losses_map_legacy_keywords_as_torch(name: str, size_average: Any, reduce: Any) -> None:
    ours, our_warnings = _warnings(lambda: getattr(ds.nn, name)(size_average=size_average, reduce=reduce))
    theirs, their_warnings = _warnings(lambda: getattr(torch.nn, name)(size_average=size_average, reduce=reduce))
    assert ours.reduction == theirs.reduction
    assert our_warnings == their_warnings


def test_positional_torch_calls_bind_alike() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    labels = np.array([0, 2, 1, 1])
    w = np.array([0.5, 1.0, 2.0])
    pairs = [
        (lambda lib, w: lib.nn.CrossEntropyLoss(w, None, 1, None, "sum", 0.1), "labels"),
        (lambda lib, w: lib.nn.NLLLoss(w, None, 2, None, "sum"), "labels"),
        (lambda lib, w: lib.nn.MultiMarginLoss(2, 0.5, w, None, None, "sum"), "labels"),
        (lambda lib, w: lib.nn.MSELoss(None, None, "sum"), "same"),
        (lambda lib, w: lib.nn.SmoothL1Loss(None, None, "sum", 0.5), "same"),
        (lambda lib, w: lib.nn.PoissonNLLLoss(True, True, None, 1e-6, None, "none"), "positive"),
        (lambda lib, w: lib.nn.BCEWithLogitsLoss(None, None, None, "sum", w + 1), "prob"),
        (lambda lib, w: lib.nn.KLDivLoss(None, None, "sum", True), "same"),
    ]
    for i, (make, target) in enumerate(pairs):
        t = {"labels": labels, "same": x[::-1].copy(), "positive": np.abs(x) + 1.0, "prob": 1 / (1 + np.exp(-x))}[
            target
        ]
        theirs = make(torch, torch.tensor(w))(torch.tensor(x), torch.tensor(t))
        dt = t if t.dtype.kind != "f" else ds.tensor(t, dtype=ds.float64)
        ours = make(ds, ds.tensor(w, dtype=ds.float64))(ds.tensor(x, dtype=ds.float64), dt)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-10, err_msg=f"case {i}")


def test_own_losses_refuse_an_unknown_reduction_subclasses_keep_theirs() -> None:
    with pytest.raises(ValueError, match="reduction"):
        ds.nn.MSELoss(reduction="average")
    custom = _subclass(_Loss, False)(None, None, "batchmean")  # a reduction the subclass defines itself
    assert custom.reduction == "batchmean"


def test_weighted_loss_registers_weight_as_a_buffer_as_torch() -> None:
    ours = _subclass(_WeightedLoss, True)([1.0, 2.0])
    assert isinstance(ours.weight, ds.Tensor) and ours.weight.dtype == np.float32
    assert list(ours.state_dict()) == ["weight"] and not list(ours.parameters())
    assert isinstance(ds.nn.CrossEntropyLoss(), _WeightedLoss) and isinstance(ds.nn.NLLLoss2d(), ds.nn.NLLLoss)
    assert not isinstance(ds.nn.BCEWithLogitsLoss(), _WeightedLoss)  # a plain _Loss in PyTorch too
