"""Logistic regression fitted by L-BFGS with a closure (the pattern of torch.optim's documentation:
``optimizer.step(closure)`` where the closure zeroes the gradients, recomputes the loss and
calls backward), then evaluated with BCEWithLogitsLoss and a sigmoid threshold."""

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim


class LogisticRegression(nn.Module):
    def __init__(self, n_features):
        super().__init__()
        self.linear = nn.Linear(n_features, 1)

    def forward(self, x):
        return self.linear(x).squeeze(1)


def build():
    return LogisticRegression(5)


def train(model, stochastic=False):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5)).astype(np.float32)
    w_true = np.array([1.5, -2.0, 0.5, 0.0, 1.0], dtype=np.float32)
    y = (X @ w_true + 0.5 * rng.standard_normal(200) > 0).astype(np.float32)
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    criterion = nn.BCEWithLogitsLoss()
    optimizer = optim.LBFGS(model.parameters(), lr=1, max_iter=20, history_size=10)

    def closure():
        optimizer.zero_grad()
        loss = criterion(model(X), y) + 1e-3 * model.linear.weight.pow(2).sum()
        loss.backward()
        return loss

    for step in range(3):
        loss = optimizer.step(closure)
        print("step {} loss {:.6f}".format(step, loss.item()))
    with torch.no_grad():
        predicted = (torch.sigmoid(model(X)) > 0.5).float()
        accuracy = (predicted == y).sum().item() / y.size(0)
        final = criterion(model(X), y).item()
    print("accuracy {:.3f}".format(accuracy))
    return final
