"""Fine-tuning in the style of the transfer-learning tutorial: a pretrained-style backbone frozen
with ``requires_grad_(False)`` / ``param.requires_grad = False``, a new head, an optimizer over
``filter(lambda p: p.requires_grad, ...)``, ReduceLROnPlateau on the validation loss, and the best
weights kept with ``copy.deepcopy(model.state_dict())``."""

import copy

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from torch.optim import lr_scheduler


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d((2, 2)),
        )
        self.fc = nn.Linear(32, 5)

    def forward(self, x):
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.fc(x)


def build():
    return Classifier()


def train(model, stochastic=False):
    rng = np.random.default_rng(5)
    inputs = torch.tensor(rng.standard_normal((60, 3, 8, 8)).astype(np.float32))
    labels = torch.tensor((inputs.mean(dim=(1, 2, 3)).numpy() * 10).astype(np.int64) % 5)
    for param in model.features.parameters():
        param.requires_grad = False
    model.features[1].requires_grad_(False)
    num_ftrs = model.fc.in_features
    model.fc = nn.Linear(num_ftrs, 5)
    model.fc.weight.data.copy_(torch.linspace(-0.1, 0.1, 5 * num_ftrs).view(5, num_ftrs))
    model.fc.bias.data.zero_()
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(filter(lambda p: p.requires_grad, model.parameters()), lr=0.1, momentum=0.9)
    scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=1)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == 5 * num_ftrs + 5, trainable
    best_loss, best_wts = float("inf"), copy.deepcopy(model.state_dict())
    for epoch in range(8):
        model.train()
        optimizer.zero_grad()
        loss = criterion(model(inputs[:40]), labels[:40])
        loss.backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            val_loss = criterion(model(inputs[40:]), labels[40:]).item()
        scheduler.step(val_loss)
        if val_loss < best_loss:
            best_loss, best_wts = val_loss, copy.deepcopy(model.state_dict())
        print(f"epoch {epoch} train {loss.item():.4f} val {val_loss:.4f} lr {optimizer.param_groups[0]['lr']}")
    model.load_state_dict(best_wts)
    assert model.features[0].weight.grad is None
    return best_loss
