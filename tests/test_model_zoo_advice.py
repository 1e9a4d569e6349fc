"""The advice of ``downslope.hub`` / ``downslope.utils.model_zoo`` (downslope downloads nothing) gives a route
that works for what those functions fetch, a ``torch.save`` ``.pth`` file: the steps the message names are
run here as written, and the model ends up with PyTorch's weights."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import CheckpointError

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")


def _advice() -> str:
    with pytest.raises(ImportError) as caught:
        exec("import downslope.utils.model_zoo", {})
    text = str(caught.value)
    with pytest.raises(AttributeError) as attribute:
        ds.hub  # noqa: B018
    assert str(attribute.value).split(": ", 1)[1] == text.split(": ", 1)[1]  # one advice for both spellings
    return text


def _steps(text: str, pattern: str) -> list[str]:
    found = re.search(pattern, text)
    assert found is not None, (pattern, text)
    return [step for step in found.groups()]


def _follow(steps: list[str], folder: Path, model: Any) -> None:
    names = {"torch": torch, "downslope": ds, "numpy": np, "safetensors": __import__("safetensors"), "model": model}
    for step in steps:
        for file in ("model.pth", "model.safetensors", "model.npz"):
            step = step.replace(f"'{file}'", repr(str(folder / file)))
        exec(step, names)


def test_the_advice_names_a_route_that_loads_a_torch_checkpoint(tmp_path: Path) -> None:
    text = _advice()
    torch.manual_seed(0)
    reference = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    reference(torch.randn(8, 3))  # running statistics away from their defaults
    torch.save(reference.state_dict(), tmp_path / "model.pth")  # what load_state_dict_from_url downloads
    with pytest.raises(CheckpointError):  # the route must not go through ds.load, which refuses pickles
        ds.load(tmp_path / "model.pth")
    expected = {k: v.numpy() for k, v in reference.state_dict().items()}

    routes = [
        r"convert it once with PyTorch: (safetensors\.torch\.save_file\(.*?\)), then (model\.load_state_dict\("
        r"downslope\.load_safetensors\(.*?\)\))",
        r"\(or (numpy\.savez\(.*?\)\.items\(\)\}\)), then (model\.load_state_dict\(dict\(numpy\.load\(.*?\)\)\))\)",
    ]
    for pattern in routes:
        model = ds.nn.Sequential(ds.nn.Linear(3, 4), ds.nn.BatchNorm1d(4))
        _follow(_steps(text, pattern), tmp_path, model)
        got = {k: v.detach().numpy() for k, v in model.state_dict().items()}
        assert got.keys() == expected.keys()
        for key, value in expected.items():
            np.testing.assert_array_equal(got[key], value, err_msg=f"{pattern}: {key}")
