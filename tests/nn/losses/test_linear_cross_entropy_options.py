"""linear_cross_entropy's ``options`` (LinearCrossEntropyOptions) are checked as torch 2.13 checks them:
a ValueError for bad fields and for a chunk size that disagrees with the chunking method, a warning
where they are ignored, and a frozen dataclass."""

from __future__ import annotations

import dataclasses
import warnings

import pytest

import downslope as ds

torch = pytest.importorskip("torch")

BAD_FIELDS = [
    {"acc_policy": "fast"},
    {"chunking_method": "aspect_ratio:0"},
    {"chunking_method": "rows"},
    {"batch_chunk_size": 0},
    {"batch_chunk_size": 2.5},
    {"acc_dtype": "int32"},
]


def _dtype(lib, value):
    return getattr(lib, value) if value == "int32" else value


@pytest.mark.parametrize("fields", BAD_FIELDS, ids=lambda f: next(iter(f.items())).__str__())
def test_bad_fields_raise_value_error_as_torch(fields: dict) -> None:
    t_fields = {k: _dtype(torch, v) for k, v in fields.items()}
    d_fields = {k: _dtype(ds, v) for k, v in fields.items()}
    with pytest.raises(ValueError) as theirs:
        torch.nn.LinearCrossEntropyOptions(**t_fields)
    with pytest.raises(ValueError) as ours:
        ds.nn.LinearCrossEntropyOptions(**d_fields)
    # the same first words as torch's message, after the name of where it was raised
    assert str(theirs.value).split(":")[0][:30] in str(ours.value)


def test_good_fields_accepted_and_frozen() -> None:
    for fields in ({}, {"chunking_method": "aspect_ratio:4"}, {"batch_chunk_size": 8, "acc_dtype": ds.float32}):
        options = ds.nn.LinearCrossEntropyOptions(**fields)
        torch.nn.LinearCrossEntropyOptions(**{k: (torch.float32 if k == "acc_dtype" else v) for k, v in fields.items()})
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.acc_policy = "compact"  # type: ignore[misc]


@pytest.mark.parametrize(
    "chunk, method", [(3, "aspect_ratio"), (32, "aspect_ratio"), (8, "aspect_ratio:4"), (5, "auto")]
)
def test_chunk_size_against_method_as_torch(chunk: int, method: str) -> None:
    x, w = torch.randn(64, 4), torch.randn(5, 4)
    y = torch.randint(0, 5, (64,))

    def call(lib, a, b, t):
        options = lib.nn.LinearCrossEntropyOptions(batch_chunk_size=chunk, chunking_method=method)
        try:
            return float(lib.nn.functional.linear_cross_entropy(a, b, t, options=options))
        except ValueError as e:
            return str(e).split("(")[-1]

    theirs = call(torch, x, w, y)
    ours = call(ds, ds.tensor(x.numpy()), ds.tensor(w.numpy()), ds.tensor(y.numpy()))
    if isinstance(theirs, str):
        assert ours == theirs
    else:
        assert ours == pytest.approx(theirs, rel=1e-5)


def test_options_ignored_warns_as_torch() -> None:
    options = ds.nn.LinearCrossEntropyOptions()
    x, w = ds.randn(4, 3), ds.randn(5, 3)
    with pytest.warns(UserWarning, match="options`` ignored"):
        ds.nn.functional.linear_cross_entropy(x, w, ds.tensor([0, 1, 2, 3]), label_smoothing=0.1, options=options)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds.nn.functional.linear_cross_entropy(x, w, ds.tensor([0, 1, 2, 3]), options=options)
