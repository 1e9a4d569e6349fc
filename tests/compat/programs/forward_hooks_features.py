"""Feature extraction with forward hooks, as in the feature-visualization and style-transfer
recipes: ``activation[name] = output.detach()`` recorded by ``register_forward_hook``, a hook handle
removed with ``handle.remove()``, and a feature-matching loss on live (non-detached) features
captured by a second hook; the frozen extractor's parameters are excluded with ``requires_grad_(False)``."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

activation = {}


def get_activation(name):
    def hook(model, input, output):
        activation[name] = output.detach()

    return hook


class Extractor(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1)

    def forward(self, x):
        return self.conv2(F.relu(self.conv1(x)))


class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.extractor = Extractor()
        self.generator = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Tanh(), nn.Conv2d(8, 3, 3, padding=1))


def build():
    return Pair()


def train(pair, stochastic=False):
    rng = np.random.default_rng(23)
    content = torch.tensor(rng.standard_normal((4, 3, 10, 10)).astype(np.float32))
    extractor, generator = pair.extractor, pair.generator
    extractor.requires_grad_(False)
    handle = extractor.conv1.register_forward_hook(get_activation("conv1"))
    extractor(content)
    target_features = activation["conv1"]
    handle.remove()
    live = {}
    extractor.conv1.register_forward_hook(lambda m, i, o: live.__setitem__("conv1", o))
    optimizer = torch.optim.Adam(generator.parameters(), lr=3e-3)
    for step in range(20):
        optimizer.zero_grad()
        out = generator(content)
        extractor(out)
        loss = F.mse_loss(live["conv1"], target_features) + 0.1 * F.mse_loss(out, content)
        loss.backward()
        optimizer.step()
    assert all(p.grad is None for p in extractor.parameters())
    return loss.item()
