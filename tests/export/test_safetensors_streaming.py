"""save_safetensors writes the header and then each array's buffer straight to the (temporary) file: the
same bytes safetensors.numpy.save makes, without a copy of the arrays or of the file in memory. Files of
another kind given to load_safetensors, and directories, are named as what they are."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ArgumentTypeError, CheckpointError

st = pytest.importorskip("safetensors.numpy")


def test_the_file_is_the_one_safetensors_writes_for_every_dtype_layout_and_byte_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    state = {
        "w": rng.normal(size=(3, 4)).astype(np.float32),
        "wT": rng.normal(size=(4, 3)).T,  # not contiguous
        "big_endian": np.arange(5, dtype=">i4"),
        "n": np.asarray(7, np.int64),  # 0-d, as num_batches_tracked
        "empty": np.zeros((0, 3), np.float16),
        "mask": rng.normal(size=6) > 0,
        "é": np.arange(3, dtype=np.int8),
        "t": ds.ones(2, 2),
        "c": np.ones(2, np.complex64),
    }
    for dtype in (np.uint8, np.int16, np.uint16, np.uint32, np.uint64, np.float64):
        state[f"x_{np.dtype(dtype).name}"] = np.arange(3).astype(dtype)
    path = tmp_path / "w.safetensors"
    ds.save_safetensors(state, path, metadata={"format": "pt"})
    arrays = {k: np.array(v.numpy() if isinstance(v, ds.Tensor) else v, order="C") for k, v in state.items()}
    assert path.read_bytes() == st.save(arrays, metadata={"format": "pt"})
    back = ds.load_safetensors(path)
    for key, want in arrays.items():
        np.testing.assert_array_equal(back[key].numpy(), want)
        assert back[key].shape == want.shape


def test_saving_makes_no_copy_of_the_arrays_or_of_the_file(tmp_path: Path) -> None:
    weights = {f"layer{i}.weight": np.ones((512, 1024), np.float32) for i in range(4)}  # 8 MiB
    total = sum(a.nbytes for a in weights.values())
    tracemalloc.start()
    try:
        ds.save_safetensors(weights, tmp_path / "w.safetensors")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < total // 8  # a copy of one array (2 MiB) or of the file would show here
    assert (tmp_path / "w.safetensors").stat().st_size > total


def test_a_dtype_safetensors_lacks_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ArgumentTypeError, match="'z' has dtype complex128, which safetensors does not hold"):
        ds.save_safetensors({"z": np.ones(2, np.complex128)}, tmp_path / "z.safetensors")
    assert not list(tmp_path.iterdir())


def test_saving_to_a_directory_names_it(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="is a directory; give a file name such as .*model.safetensors"):
        ds.save_safetensors({"w": np.ones(2, np.float32)}, tmp_path)
    assert not list(tmp_path.iterdir())


def test_a_ds_save_checkpoint_torch_file_or_onnx_model_is_named_as_what_it_is(tmp_path: Path) -> None:
    ours = tmp_path / "w.pt"
    ds.save(ds.nn.Linear(3, 2).state_dict(), ours)
    with pytest.raises(CheckpointError, match=r"is a ds.save checkpoint, not a safetensors file; read it with ds.load"):
        ds.load_safetensors(ours)
    with pytest.raises(CheckpointError, match="is a ds.save checkpoint"):
        ds.safetensors_metadata(ours)
    torch = pytest.importorskip("torch")
    theirs = tmp_path / "torch.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), theirs)
    with pytest.raises(CheckpointError, match="is a torch.save checkpoint, not a safetensors file; downslope never"):
        ds.load_safetensors(theirs)
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"\x08\x08\x12\x09downslope")  # a ModelProto's ir_version, then producer_name
    with pytest.raises(CheckpointError, match="is an ONNX model, not a safetensors file"):
        ds.load_safetensors(onnx)
    garbage = tmp_path / "g.safetensors"
    garbage.write_bytes(b"\xff" * 64)  # no known kind: the format's own complaint stays
    with pytest.raises(CheckpointError, match="header length is"):
        ds.load_safetensors(garbage)


def test_a_model_directory_lists_its_safetensors_files_and_points_at_the_one_to_give(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="is a directory with no .safetensors file in it"):
        ds.load_safetensors(tmp_path)
    for name in ("model-00002-of-00002.safetensors", "model-00001-of-00002.safetensors"):
        ds.save_safetensors({name[:11]: np.ones(2, np.float32)}, tmp_path / name)
    with pytest.raises(CheckpointError, match=r"holds model-00001-of-00002.safetensors, model-00002-of-00002"):
        ds.load_safetensors(tmp_path)
    (tmp_path / "model.safetensors.index.json").write_text("{}")
    with pytest.raises(CheckpointError, match=r"such as '.*model.safetensors.index.json' \(the shard index merges"):
        ds.load_safetensors(str(tmp_path))
    with pytest.raises(CheckpointError, match="is a directory, not a file"):
        ds.safetensors_metadata(tmp_path)
