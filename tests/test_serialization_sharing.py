"""ds.save keeps an array or tensor saved under two names shared after ds.load (tied weights), as torch.save
does; a directory as the path is refused naming it; file_kind tells the weight files downslope meets apart."""

from __future__ import annotations

import io

import numpy as np
import pytest

import downslope as ds
from downslope.errors import CheckpointError


def _round_trip(lib, state):
    buffer = io.BytesIO()
    lib.save(state, buffer)
    buffer.seek(0)
    return lib.load(buffer)


def test_a_tensor_saved_twice_comes_back_shared_as_from_torch():
    torch = pytest.importorskip("torch")
    seen = {}
    for lib in (torch, ds):
        w = lib.ones(3)
        other = lib.ones(3)
        back = _round_trip(lib, {"emb": w, "out": w, "other": other, "nested": [w]})
        back["emb"].add_(1)
        seen[lib] = [float(back["out"][0]), float(back["nested"][0][0]), float(back["other"][0])]
    assert seen[ds] == seen[torch] == [2.0, 2.0, 1.0]


def test_tied_weights_of_a_model_stay_tied_and_are_stored_once(tmp_path):
    model = ds.nn.Sequential(ds.nn.Embedding(10, 4), ds.nn.Linear(4, 10, bias=False))
    model[1].weight = model[0].weight  # tied input and output embeddings
    path = tmp_path / "tied.pt"
    ds.save({"model": model.state_dict(), "array": model[0].weight.array, "again": model[0].weight.array}, path)
    import zipfile

    with zipfile.ZipFile(path) as archive:
        assert sum(n.endswith(".npy") for n in archive.namelist()) == 1  # one copy of the weight in the file
    back = ds.load(path)
    np.testing.assert_array_equal(back["model"]["0.weight"].numpy(), model[0].weight.detach().numpy())
    back["again"][0, 0] = 7.0
    assert back["array"][0, 0] == 7.0
    back["model"]["0.weight"].add_(1)
    assert float(back["model"]["1.weight"][0, 1]) == float(back["model"]["0.weight"][0, 1])


def test_saving_to_a_directory_names_it_and_leaves_nothing_behind(tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    with pytest.raises(CheckpointError, match=f"save: {folder} is a directory; give a file name such as "):
        ds.save({"a": 1}, folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights"] and not list(folder.iterdir())


def test_file_kind_tells_checkpoints_pickles_onnx_and_safetensors_apart(tmp_path):
    from downslope.serialization import file_kind

    torch = pytest.importorskip("torch")
    ours, theirs, pickled, other = tmp_path / "a.pt", tmp_path / "b.pt", tmp_path / "c.pkl", tmp_path / "d.bin"
    ds.save({"w": ds.ones(2)}, ours)
    torch.save({"w": torch.ones(2)}, theirs)
    torch.save({"w": torch.ones(2)}, pickled, _use_new_zipfile_serialization=False)
    other.write_bytes(b"hello world")
    assert file_kind(ours) == "a ds.save checkpoint"
    assert file_kind(theirs) == "a torch.save checkpoint"
    assert file_kind(pickled) == "a Python pickle"
    assert file_kind(other) == "" and file_kind(tmp_path / "missing") == ""


def test_sharing_survives_map_location_onto_a_device():
    w = ds.ones(3)
    buffer = io.BytesIO()
    ds.save({"emb": w, "out": w, "raw": w.array}, buffer)
    buffer.seek(0)
    placed = ds.load(buffer, map_location="strict")
    assert placed["emb"].array is placed["out"].array is placed["raw"]  # one copy on the device
