"""ds.save / ds.load give back the types torch.save / torch.load give back: nn.Parameter (with its
requires_grad), tensors that require grad, OrderedDict (a state_dict) and NumPy scalars."""

from __future__ import annotations

import io
import json
import zipfile
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import CheckpointError

torch = pytest.importorskip("torch")


def _ours(obj: Any, **options: Any) -> Any:
    buffer = io.BytesIO()
    ds.save(obj, buffer)
    buffer.seek(0)
    return ds.load(buffer, **options)


def _theirs(obj: Any) -> Any:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def _kind(value: Any) -> Any:
    """What kind of object came back, comparable across the two libraries."""
    name = type(value).__name__
    if hasattr(value, "requires_grad"):
        return (name, value.requires_grad, value.tolist())
    if isinstance(value, dict):
        return (name, [(k, _kind(v)) for k, v in value.items()])
    if isinstance(value, np.generic):
        return (name, value.item())
    return (name, value)


def _both(make: Any) -> tuple[Any, Any]:
    return _kind(_ours(make(ds))), _kind(_theirs(make(torch)))


@pytest.mark.parametrize(
    "make",
    [
        lambda lib: lib.nn.Parameter(lib.ones(2)),
        lambda lib: lib.nn.Parameter(lib.ones(2), requires_grad=False),
        lambda lib: lib.ones(2, requires_grad=True),
        lambda lib: lib.ones(2, requires_grad=True) * 2,  # not a leaf: comes back a leaf that requires grad
        lambda lib: lib.ones(2),
        lambda lib: OrderedDict(b=1, a=lib.zeros(1)),
        lambda lib: {"n": OrderedDict([("x", OrderedDict(y=2))])},
    ],
)
def test_types_come_back_as_from_torch(make: Any) -> None:
    ours, theirs = _both(make)
    assert ours == theirs


def test_a_state_dict_stays_an_ordered_dict_and_loads_into_a_model() -> None:
    model = ds.nn.Linear(2, 1)
    state = _ours(model.state_dict())
    assert type(state) is OrderedDict and list(state) == ["weight", "bias"]
    ds.nn.Linear(2, 1).load_state_dict(state)
    onto = _ours(model.state_dict(), map_location="strict")
    assert type(onto) is OrderedDict


@pytest.mark.parametrize(
    "value",
    [
        np.float32(1.5),
        np.float64(0.1),
        np.int64(-3),
        np.int8(7),
        np.uint64(2**64 - 1),
        np.bool_(True),
        np.float16(np.inf),
    ],
)
def test_numpy_scalars_keep_their_type(value: Any) -> None:
    ours, theirs = _ours({"v": value})["v"], _theirs({"v": value})["v"]
    assert type(ours) is type(theirs) is type(value)
    assert ours == theirs == value


def test_parameters_keep_their_class_and_grad_on_a_device() -> None:
    p = _ours({"p": ds.nn.Parameter(ds.ones(2)), "t": ds.ones(2, requires_grad=True)}, map_location="strict")
    assert isinstance(p["p"], ds.nn.Parameter) and p["p"].requires_grad and str(p["p"].device) == "strict"
    assert p["t"].requires_grad and type(p["t"]) is ds.Tensor


def _with_tree(tree: Any, arrays: dict[str, np.ndarray]) -> io.BytesIO:
    """A checkpoint whose meta.json holds ``tree`` (checksums made right), for hostile-input tests."""
    from downslope import serialization as ser

    blobs = {k: ser._npy_bytes(a) for k, a in arrays.items()}
    meta = {
        "format": ser.FORMAT,
        "version": 3,
        "tree": tree,
        "checksums": {k: ser._digest(b) for k, b in blobs.items()},
    }
    raw = json.dumps(meta).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("meta.json", raw)
        archive.writestr("meta.sha256", ser._digest(raw))
        for k, b in blobs.items():
            archive.writestr(f"{k}.npy", b)
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize(
    "tree",
    [
        {"__scalar__": ["object", 1]},
        {"__scalar__": ["int8", 1000]},
        {"__scalar__": ["int64", 1.5]},
        {"__scalar__": ["bool", 1]},
        {"__scalar__": "float32"},
        {"__parameter__": "a0"},
        {"__parameter__": ["a0", "yes"]},
        {"__parameter__": ["a1", True]},
        {"__tensor__": ["i0", True]},  # an integer tensor cannot require grad
        {"__odict__": {"a": 1}},
        {"__odict__": [["a"]]},
    ],
)
def test_malformed_new_tags_are_refused_with_where(tree: Any) -> None:
    source = _with_tree({"x": tree}, {"a0": np.zeros(2, np.float32), "i0": np.zeros(2, np.int64)})
    with pytest.raises(CheckpointError, match=r"state\['x'\]"):
        ds.load(source)


def test_files_without_the_new_tags_read_as_before() -> None:
    source = _with_tree({"w": {"__tensor__": "a0"}, "n": 1.5, "d": {"k": [1, 2]}}, {"a0": np.ones(2, np.float32)})
    state = ds.load(source)
    assert type(state) is dict and type(state["w"]) is ds.Tensor and not state["w"].requires_grad and state["n"] == 1.5


def test_a_state_dicts_module_versions_survive_save_and_load_as_torchs() -> None:
    # torchvision's MNASNet reads local_metadata["version"] in _load_from_state_dict after torch.load
    torch = pytest.importorskip("torch")
    seen = {}
    for lib in (torch, ds):

        class Versioned(lib.nn.Module):
            _version = 2

            def __init__(self) -> None:
                super().__init__()
                self.lin = lib.nn.Linear(2, 2)  # noqa: B023

            def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):  # type: ignore[no-untyped-def]
                seen[lib.__name__] = local_metadata.get("version")  # noqa: B023
                super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)

        buffer = io.BytesIO()
        lib.save(Versioned().state_dict(), buffer)
        buffer.seek(0)
        loaded = lib.load(buffer)
        assert dict(loaded._metadata) == dict(Versioned().state_dict()._metadata)
        Versioned().load_state_dict(loaded)
    assert seen == {"torch": 2, "downslope": 2}
    moved = _ours(ds.nn.Linear(2, 2).state_dict(), map_location="strict")
    assert moved._metadata[""] == {"version": 1}


def test_a_state_dict_tag_is_refused_in_a_file_older_than_the_format_that_has_it() -> None:
    tree = {"__state_dict__": [[["w", 1]], {"__odict__": [["", {"version": 1}]]}]}
    with pytest.raises(ds.errors.CheckpointError, match="neither a type tag alone nor an escaped key"):
        ds.load(_with_tree(tree, {}))
