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
    np.testing.assert_array_equal(ds.load_safetensors(path)["weight"], module.weight.numpy())


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
    np.testing.assert_array_equal(model.weight.numpy(), torch_state["w"].float().numpy())


def test_float8_tensors_are_refused_by_name(tmp_path):
    if not hasattr(torch, "float8_e4m3fn"):
        pytest.skip("torch without float8")
    path = tmp_path / "f8.safetensors"
    safetensors.torch.save_file({"w": torch.ones(2).to(torch.float8_e4m3fn)}, str(path))
    with pytest.raises(ds.errors.CheckpointError, match="is not a readable safetensors file"):
        ds.load_safetensors(path)
