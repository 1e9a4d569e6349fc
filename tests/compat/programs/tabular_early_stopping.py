"""Tabular regression with the usual hand-written loop: standardization with ``mean(dim=0)`` and
``std(dim=0)``, an MLP with BatchNorm1d and Dropout, ``model.train()``/``model.eval()``, validation
under ``torch.no_grad()``, early stopping with patience, and the best state kept with
``copy.deepcopy(model.state_dict())``."""

import copy

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def build():
    return nn.Sequential(
        nn.Linear(8, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 1)
    )


def train(model, stochastic=False):
    rng = np.random.default_rng(16)
    X = torch.tensor(rng.standard_normal((200, 8)).astype(np.float32) * 3 + 1)
    y = X[:, :3].sum(dim=1, keepdim=True) + 0.1 * torch.tensor(rng.standard_normal((200, 1)).astype(np.float32))
    mean, std = X[:150].mean(dim=0), X[:150].std(dim=0)
    X = (X - mean) / std
    train_loader = DataLoader(TensorDataset(X[:150], y[:150]), batch_size=30, shuffle=stochastic)
    X_val, y_val = X[150:], y[150:]
    if not stochastic:
        model[3].p = 0.0
    criterion = nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    best_loss, best_state, patience, bad_epochs = float("inf"), None, 3, 0
    for epoch in range(40):
        model.train()
        for xb, yb in train_loader:
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            val_loss = criterion(model(X_val), y_val).item()
        if val_loss < best_loss - 1e-4:
            best_loss, best_state, bad_epochs = val_loss, copy.deepcopy(model.state_dict()), 0
        else:
            bad_epochs += 1
            if bad_epochs >= patience:
                print(f"early stop at epoch {epoch}")
                break
    model.load_state_dict(best_state)
    return best_loss
