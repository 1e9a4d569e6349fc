"""Small models do not start numba: one training step (Adam, cross-entropy, a batch of 8) of an MLP, a
small CNN (Conv2d, BatchNorm2d, MaxPool2d), GRU and LSTM classifiers, a 2-layer TransformerEncoder of
width 32 and an EmbeddingBag text classifier runs in a fresh Python without importing numba.

Importing numba and loading the cached kernels costs a process 0.4-2 s, more than such a model's
whole first steps; the compiled kernels start only above their layers' size gates (the
``JIT_*_MIN_SIZE`` constants), and the last test checks that a layer above its gate still starts them.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = [
    pytest.mark.host_only,  # numba and its kernels are the host's
    pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="numba is not installed"),
    pytest.mark.skipif(os.environ.get("DOWNSLOPE_JIT", "1") == "0", reason="the compiled kernels are switched off"),
]

# Records the stack of whatever imports numba first, so that a failure names the layer that did.
_WATCH = """
import sys, traceback

class _Watch:
    first = None

    def find_spec(self, name, path=None, target=None):
        if name == "numba" and _Watch.first is None:
            frames = [f for f in traceback.extract_stack() if "downslope" in f.filename]
            _Watch.first = "".join(traceback.format_list(frames))
        return None

sys.meta_path.insert(0, _Watch())
"""

_MODELS = """
import numpy as np
import downslope as torch
import downslope.nn as nn
import downslope.nn.functional as F

rng = np.random.default_rng(0)
torch.manual_seed(0)
B = 8


class Recurrent(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.emb = nn.Embedding(100, 16)
        self.rnn = cell(16, 32, batch_first=True)
        self.fc = nn.Linear(32, 10)

    def forward(self, tokens):
        out, _ = self.rnn(self.emb(tokens))
        return self.fc(out[:, -1])


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(100, 32)
        self.enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(32, 4, 64, batch_first=True), 2)
        self.fc = nn.Linear(32, 10)

    def forward(self, tokens):
        return self.fc(self.enc(self.emb(tokens)).mean(1))


class Bag(nn.Module):
    def __init__(self):
        super().__init__()
        self.bag = nn.EmbeddingBag(1000, 32, mode="mean")
        self.fc = nn.Linear(32, 10)

    def forward(self, tokens, offsets):
        return self.fc(self.bag(tokens, offsets))


images = torch.from_numpy(rng.standard_normal((B, 1, 28, 28)).astype(np.float32))
tokens = torch.from_numpy(rng.integers(0, 100, (B, 20)))
bag_tokens, bag_offsets = torch.from_numpy(rng.integers(0, 1000, 10 * B)), torch.from_numpy(np.arange(0, 10 * B, 10))
models = {
    "mlp": (nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10)), (images,)),
    "cnn": (
        nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(16 * 7 * 7, 10),
        ),
        (images,),
    ),
    "gru": (Recurrent(nn.GRU), (tokens,)),
    "lstm": (Recurrent(nn.LSTM), (tokens,)),
    "transformer": (Encoder(), (tokens[:, :5],)),
    "embedding_bag": (Bag(), (bag_tokens, bag_offsets)),
}
labels = torch.from_numpy(rng.integers(0, 10, B))
for name, (model, inputs) in models.items():
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    opt.zero_grad()
    loss = F.cross_entropy(model(*inputs), labels)
    loss.backward()
    opt.step()
    assert np.isfinite(loss.item()), name
    with torch.no_grad():  # inference too: EmbeddingBag sums straight from the table without a graph
        model(*inputs)
    if "numba" in sys.modules:
        print(f"{name} imported numba:\\n{_Watch.first}")
        sys.exit(1)
print("no numba")
"""


def _run(source: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, timeout=300, env=env, check=False
    )


def test_the_first_training_step_of_small_models_does_not_import_numba() -> None:
    done = _run(_WATCH + textwrap.dedent(_MODELS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("no numba")


def test_a_layer_above_its_size_gate_still_starts_the_compiled_kernels() -> None:
    source = """
    import sys
    import numpy as np
    import downslope as ds
    import downslope.nn as nn
    from downslope.nn import normalization

    rows = normalization.JIT_LAYER_NORM_MIN_SIZE // 32
    nn.LayerNorm(32)(ds.from_numpy(np.ones((rows - 1, 32), np.float32)))
    assert "numba" not in sys.modules, "below the gate"
    nn.LayerNorm(32)(ds.from_numpy(np.ones((rows, 32), np.float32)))
    assert "downslope.nn._jit_kernels" in sys.modules, "at the gate"
    print("started")
    """
    done = _run(textwrap.dedent(source))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "started"
