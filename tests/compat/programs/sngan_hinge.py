"""An SNGAN-style discriminator: every layer wrapped in ``nn.utils.spectral_norm``, LeakyReLU, the
hinge loss ``F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()``, Adam with betas
(0.0, 0.9), evaluated in train mode (each forward runs a power-iteration step)."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import spectral_norm


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            spectral_norm(nn.Conv2d(1, 8, 3, 2, 1)),
            nn.LeakyReLU(0.1),
            spectral_norm(nn.Conv2d(8, 16, 3, 2, 1)),
            nn.LeakyReLU(0.1),
        )
        self.fc = spectral_norm(nn.Linear(16 * 4 * 4, 1))

    def forward(self, x):
        return self.fc(torch.flatten(self.main(x), 1))


def build():
    return Discriminator()


def train(netD, stochastic=False):
    rng = np.random.default_rng(22)
    optimizer = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.0, 0.9))
    for i in range(10):
        real = torch.tensor((rng.random((16, 1, 16, 16)) > 0.7).astype(np.float32))
        fake = torch.tensor(rng.random((16, 1, 16, 16)).astype(np.float32))
        optimizer.zero_grad()
        d_loss = F.relu(1.0 - netD(real)).mean() + F.relu(1.0 + netD(fake)).mean()
        d_loss.backward()
        optimizer.step()
    return d_loss.item()
