"""The "Saving and loading a general checkpoint" recipe: a dict with epoch, model_state_dict,
optimizer_state_dict and loss written by ``torch.save`` to a buffer, training resumed from it with
``optimizer.load_state_dict``; label-smoothed cross entropy, OneCycleLR stepped per batch and
gradient accumulation over two micro-batches."""

import io

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(10, 32), nn.Linear(32, 32)])
        self.norm = nn.LayerNorm(32)
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        for block in self.blocks:
            x = F.gelu(block(x))
        return self.head(self.norm(x))


def build():
    return Net()


def train(model, stochastic=False):
    rng = np.random.default_rng(7)
    x = torch.from_numpy(rng.standard_normal((128, 10)).astype(np.float32))
    y = torch.from_numpy(
        np.argmax(rng.standard_normal((10, 4)).astype(np.float32)[None] * x.numpy()[..., None], 1).sum(1) % 4
    )
    optimizer = optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    steps_per_epoch, epochs = 4, 6
    scheduler = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.01, steps_per_epoch=steps_per_epoch, epochs=epochs)

    def run_epoch(epoch):
        model.train()
        for step in range(steps_per_epoch):
            optimizer.zero_grad()
            for micro in range(2):
                start = step * 32 + micro * 16
                loss = F.cross_entropy(model(x[start : start + 16]), y[start : start + 16], label_smoothing=0.1) / 2
                loss.backward()
            optimizer.step()
            scheduler.step()
        return loss.item() * 2

    for epoch in range(3):
        loss = run_epoch(epoch)
    buffer = io.BytesIO()
    torch.save(
        {
            "epoch": epoch,
            "model_state_dict": model.state_dict(),
            "optimizer_state_dict": optimizer.state_dict(),
            "scheduler_state_dict": scheduler.state_dict(),
            "loss": loss,
        },
        buffer,
    )
    buffer.seek(0)
    model = Net()
    optimizer = optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    scheduler = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.01, steps_per_epoch=steps_per_epoch, epochs=epochs)
    checkpoint = torch.load(buffer, weights_only=True)
    model.load_state_dict(checkpoint["model_state_dict"])
    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
    scheduler.load_state_dict(checkpoint["scheduler_state_dict"])
    start_epoch = checkpoint["epoch"] + 1
    for epoch in range(start_epoch, epochs):
        loss = run_epoch(epoch)
        print(f"epoch {epoch} loss {loss:.4f} lr {scheduler.get_last_lr()[0]:.5f}")
    model.eval()
    with torch.no_grad():
        return F.cross_entropy(model(x), y).item()
