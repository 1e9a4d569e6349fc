"""A small C3D-style video classifier on random clips of shape (N, 3, 8, 16, 16): Conv3d +
BatchNorm3d + ReLU, MaxPool3d with kernel (1, 2, 2) first to keep time, AdaptiveAvgPool3d(1),
Dropout, and the trilinear resize of clips with ``F.interpolate``."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class C3D(nn.Module):
    def __init__(self, num_classes=4):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv3d(3, 8, kernel_size=3, padding=1),
            nn.BatchNorm3d(8),
            nn.ReLU(inplace=True),
            nn.MaxPool3d(kernel_size=(1, 2, 2), stride=(1, 2, 2)),
            nn.Conv3d(8, 16, kernel_size=3, padding=1),
            nn.BatchNorm3d(16),
            nn.ReLU(inplace=True),
            nn.MaxPool3d(kernel_size=2, stride=2),
        )
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(0.3)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        x = self.pool(self.features(x)).flatten(1)
        return self.fc(self.dropout(x))


def build():
    return C3D()


def train(model, stochastic=False):
    rng = np.random.default_rng(25)
    clips = torch.tensor(rng.standard_normal((12, 3, 6, 12, 12)).astype(np.float32))
    clips = F.interpolate(clips, size=(8, 16, 16), mode="trilinear", align_corners=False)
    labels = torch.tensor(rng.integers(0, 4, 12))
    if not stochastic:
        model.dropout.p = 0.0
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(3):
        model.train()
        for i in range(0, 12, 6):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(clips[i : i + 6]), labels[i : i + 6])
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        return F.cross_entropy(model(clips), labels).item()
