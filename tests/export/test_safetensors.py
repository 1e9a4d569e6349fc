"""safetensors weights round trip with PyTorch: downslope-trained weights give the same outputs in
torch, torch-trained weights give the same outputs in downslope (1e-5)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("safetensors")
torch = pytest.importorskip("torch")
import safetensors.torch  # noqa: E402
import torch.nn as tnn  # noqa: E402

import downslope as ds  # noqa: E402
from downslope import nn, optim  # noqa: E402
from downslope.errors import ArgumentTypeError, CheckpointError  # noqa: E402


class DsLSTMNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(3, 6, num_layers=2, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(12, 2)

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


class TorchLSTMNet(tnn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = tnn.LSTM(3, 6, num_layers=2, batch_first=True, bidirectional=True)
        self.fc = tnn.Linear(12, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


def _mlp(lib: object) -> object:
    return lib.Sequential(lib.Linear(5, 16), lib.ReLU(), lib.Linear(16, 16), lib.Tanh(), lib.Linear(16, 3))  # type: ignore[attr-defined]


def _cnn(lib: object) -> object:
    m = lib  # nn or torch.nn: the same names
    return m.Sequential(  # type: ignore[attr-defined]
        m.Conv2d(1, 4, 3, padding=1), m.BatchNorm2d(4), m.ReLU(), m.MaxPool2d(2),  # type: ignore[attr-defined]
        m.Flatten(), m.Linear(4 * 4 * 4, 8), m.BatchNorm1d(8), m.ReLU(), m.Linear(8, 3),  # type: ignore[attr-defined]
    )  # fmt: skip


MODELS: dict[str, tuple[Callable[[], object], Callable[[], object], tuple[int, ...]]] = {
    "mlp": (lambda: _mlp(nn), lambda: _mlp(tnn), (5,)),
    "cnn_batchnorm": (lambda: _cnn(nn), lambda: _cnn(tnn), (1, 8, 8)),
    "lstm": (DsLSTMNet, TorchLSTMNet, (4, 3)),
}


def _data(shape: tuple[int, ...], n: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((n,) + shape).astype(np.float32), rng.integers(0, 2, n)


@pytest.mark.parametrize("name", list(MODELS))
def test_downslope_trained_weights_run_in_torch(name: str, tmp_path: Path) -> None:
    make_ds, make_torch, shape = MODELS[name]
    ds.manual_seed(0)
    model = make_ds()
    x, y = _data(shape)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(5):
        loss = nn.CrossEntropyLoss()(model(ds.tensor(x)), ds.tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    path = tmp_path / "w.safetensors"
    ds.save_safetensors(model.state_dict(), path)
    twin = make_torch()
    loaded = safetensors.torch.load_file(str(path))
    assert set(loaded) == set(twin.state_dict())
    twin.load_state_dict(loaded)  # strict: every key and shape matches
    if name == "cnn_batchnorm":
        tracked = loaded["1.num_batches_tracked"]
        assert tracked.dtype == torch.int64 and tracked.shape == () and int(tracked) == 5
    model.eval()
    twin.eval()
    test = _data(shape, 7)[0] * 1.5
    with torch.no_grad():
        expected = twin(torch.from_numpy(test)).numpy()
    with ds.no_grad():
        got = model(ds.tensor(test)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(MODELS))
def test_torch_trained_weights_run_in_downslope(name: str, tmp_path: Path) -> None:
    make_ds, make_torch, shape = MODELS[name]
    torch.manual_seed(0)
    twin = make_torch()
    x, y = _data(shape)
    opt = torch.optim.Adam(twin.parameters(), lr=1e-2)
    twin.train()
    for _ in range(5):
        loss = tnn.functional.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    path = tmp_path / "w.safetensors"
    safetensors.torch.save_file(twin.state_dict(), str(path))
    model = make_ds()
    result = model.load_state_dict(ds.load_safetensors(path))
    assert not result.missing_keys and not result.unexpected_keys
    model.eval()
    twin.eval()
    test = _data(shape, 9)[0] * 1.5
    with torch.no_grad():
        expected = twin(torch.from_numpy(test)).numpy()
    with ds.no_grad():
        got = model(ds.tensor(test)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_values_dtypes_and_metadata_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    state = {"a": np.arange(6, dtype=np.float64).reshape(2, 3), "n": np.asarray(7, np.int64), "t": ds.ones(2)}
    ds.save_safetensors(state, path, metadata={"format": "pt"})
    back = ds.load_safetensors(path)
    assert set(back) == {"a", "n", "t"}
    np.testing.assert_array_equal(back["a"], state["a"])
    assert back["a"].dtype == np.float64 and back["n"].shape == () and int(back["n"]) == 7
    assert back["t"].dtype == np.float32
    module = nn.Linear(2, 3)
    ds.save_safetensors(module, path)  # a Module is taken as its state_dict()
    np.testing.assert_array_equal(ds.load_safetensors(path)["weight"], module.weight.detach().numpy())


def test_bad_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArgumentTypeError, match="'lr' is a float"):
        ds.save_safetensors({"w": np.ones(2), "lr": 0.1}, tmp_path / "x.safetensors")
    with pytest.raises(CheckpointError, match="no file"):
        ds.load_safetensors(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        ds.load_safetensors(tmp_path / "junk.safetensors")


def test_bfloat16_tensors_from_torch_load_widened_to_float32_exactly(tmp_path):
    torch_state = {
        "w": torch.randn(3, 5, dtype=torch.float32).to(torch.bfloat16),
        "b": torch.arange(4, dtype=torch.float32),
        "n": torch.tensor(7, dtype=torch.int64),
    }
    path = tmp_path / "bf16.safetensors"
    safetensors.torch.save_file(torch_state, str(path))
    loaded = ds.load_safetensors(path)
    assert loaded["w"].dtype == np.float32 and loaded["w"].shape == (3, 5)
    np.testing.assert_array_equal(loaded["w"], torch_state["w"].float().numpy())
    np.testing.assert_array_equal(loaded["b"], torch_state["b"].numpy())
    assert loaded["n"].dtype == np.int64 and loaded["n"].shape == () and int(loaded["n"]) == 7
    model = ds.nn.Linear(5, 3, bias=False)
    model.load_state_dict({"weight": loaded["w"]})
    np.testing.assert_array_equal(model.weight.detach().numpy(), torch_state["w"].float().numpy())


def test_float8_tensors_are_refused_by_name(tmp_path):
    if not hasattr(torch, "float8_e4m3fn"):
        pytest.skip("torch without float8")
    path = tmp_path / "f8.safetensors"
    safetensors.torch.save_file({"w": torch.ones(2).to(torch.float8_e4m3fn)}, str(path))
    with pytest.raises(ds.errors.CheckpointError, match="tensor 'w' has dtype F8_E4M3, which NumPy cannot hold"):
        ds.load_safetensors(path)


# ---------------------------------------------------------------------- as safetensors.torch.load_file
def test_values_are_tensors_as_torch_load_file_gives(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    state = {"w": torch.randn(3, 4), "h": torch.randn(2).half(), "b": torch.randn(3).bfloat16(), "i": torch.arange(3)}
    safetensors.torch.save_file(state, str(path))
    theirs = safetensors.torch.load_file(str(path))
    ours = ds.load_safetensors(path)
    assert list(ours) == list(theirs)
    for key, ref in theirs.items():
        assert isinstance(ours[key], ds.Tensor) and not ours[key].requires_grad
        want = ref.float() if ref.dtype == torch.bfloat16 else ref  # bfloat16 widens exactly to float32
        assert str(ours[key].dtype) == str(want.dtype).removeprefix("torch.")
        np.testing.assert_array_equal(ours[key].numpy(), want.numpy())
    # what Hugging Face remapping code does with the values
    np.testing.assert_array_equal(ours["w"].t().numpy(), theirs["w"].t().numpy())
    assert ours["h"].float().dtype == np.float32 and ours["h"].to(ds.float64).dtype == np.float64
    model = nn.Linear(4, 3)
    model.load_state_dict({"weight": ours["w"].t().t(), "bias": ours["b"]})
    np.testing.assert_array_equal(model.bias.detach().numpy(), state["b"].float().numpy())


def test_device_argument(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    ds.save_safetensors({"w": np.ones(2, np.float32)}, path)
    assert ds.load_safetensors(path, device="cpu")["w"].device == ds.device("cpu")
    got = ds.load_safetensors(path, device="strict")["w"]  # the test stand-in for a GPU: copied there
    assert str(got.device) == "strict"
    with pytest.raises(Exception, match="not available"):
        ds.load_safetensors(path, device="mps")


def test_metadata_is_read_from_the_header(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    safetensors.torch.save_file({"w": torch.ones(2)}, str(path), metadata={"format": "pt", "note": "x"})
    assert ds.safetensors_metadata(path) == {"format": "pt", "note": "x"}
    with safetensors.safe_open(str(path), framework="np") as f:
        assert ds.safetensors_metadata(path) == f.metadata()
    ds.save_safetensors({"w": np.ones(2)}, path)
    assert ds.safetensors_metadata(path) == {}
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        ds.safetensors_metadata(tmp_path / "junk.safetensors")


def _sharded(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """A Hugging Face style sharded checkpoint: two bfloat16 shards and their index."""
    import json

    torch.manual_seed(0)
    state = {f"layer.{i}.weight": torch.randn(3, 2).bfloat16() for i in range(4)}
    keys = list(state)
    weight_map = {}
    for n, part in enumerate((keys[:2], keys[2:])):
        name = f"model-0000{n + 1}-of-00002.safetensors"
        safetensors.torch.save_file({k: state[k] for k in part}, str(tmp_path / name), metadata={"format": "pt"})
        weight_map |= {k: name for k in part}
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {"total_size": 48}, "weight_map": weight_map}))
    return index, state


def test_a_shard_index_loads_every_shard_merged(tmp_path: Path) -> None:
    index, state = _sharded(tmp_path)
    got = ds.load_safetensors(index)
    assert sorted(got) == sorted(state)
    for key, ref in state.items():
        np.testing.assert_array_equal(got[key].numpy(), ref.float().numpy())
    assert ds.safetensors_metadata(index) == {"total_size": 48}


def test_a_broken_shard_index_is_refused_by_name(tmp_path: Path) -> None:
    import json

    index, _ = _sharded(tmp_path)
    spec = json.loads(index.read_text())
    spec["weight_map"]["layer.9.weight"] = "model-00001-of-00002.safetensors"
    index.write_text(json.dumps(spec))
    with pytest.raises(CheckpointError, match=r"puts \['layer.9.weight'\] in shard 'model-00001-of-00002"):
        ds.load_safetensors(index)
    spec["weight_map"] = {"a": "missing.safetensors"}
    index.write_text(json.dumps(spec))
    with pytest.raises(CheckpointError, match="shard 'missing.safetensors' named by .* is missing"):
        ds.load_safetensors(index)
    spec["weight_map"] = {"a": "../elsewhere.safetensors"}
    index.write_text(json.dumps(spec))
    with pytest.raises(CheckpointError, match="outside its folder"):
        ds.load_safetensors(index)
    index.write_text("{}")
    with pytest.raises(CheckpointError, match="weight_map"):
        ds.load_safetensors(index)


def test_save_takes_torch_tensors(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    w = torch.randn(2, 3).bfloat16()
    ds.save_safetensors({"w": w, "h": torch.ones(2).half()}, path)
    back = safetensors.torch.load_file(str(path))
    assert back["w"].dtype == torch.float32 and back["h"].dtype == torch.float16
    np.testing.assert_array_equal(back["w"].numpy(), w.float().numpy())
