"""A convolutional autoencoder in the usual tutorial form: Conv2d + ReLU + MaxPool2d encoder,
ConvTranspose2d + Upsample + Sigmoid decoder, MSELoss between reconstruction and input, Adam."""

import numpy as np
import torch
import torch.nn as nn


class Autoencoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 8, 3, stride=1, padding=1),
            nn.ReLU(True),
            nn.MaxPool2d(2, stride=2),
            nn.Conv2d(8, 4, 3, stride=1, padding=1),
            nn.ReLU(True),
            nn.MaxPool2d(2, stride=2),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(4, 8, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(True),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(8, 1, 3, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, x):
        x = self.encoder(x)
        x = self.decoder(x)
        return x


def build():
    return Autoencoder()


def train(model, stochastic=False):
    rng = np.random.default_rng(8)
    images = np.zeros((48, 1, 16, 16), np.float32)
    for img in images:
        r, c = rng.integers(2, 12, 2)
        img[0, r : r + 4, c : c + 4] = 1.0
    data = torch.tensor(images)
    criterion = nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-5)
    for epoch in range(5):
        for i in range(0, 48, 16):
            img = data[i : i + 16]
            output = model(img)
            loss = criterion(output, img)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print("epoch [{}/{}], loss:{:.4f}".format(epoch + 1, 5, loss.item()))
    return loss.item()
