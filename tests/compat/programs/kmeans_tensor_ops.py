"""K-means written with tensor operations, as in tutorials that use PyTorch as an array library:
``torch.cdist``-free pairwise distances by broadcasting, ``argmin``, ``scatter_add_`` and
``bincount`` to update the centroids, ``index_select`` for the initial centroids, then a small
Linear head trained on the cluster assignments (so there is a loss to compare)."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def kmeans(x, k, iters=10):
    centroids = x.index_select(0, torch.arange(k) * (x.size(0) // k))
    for _ in range(iters):
        distances = ((x.unsqueeze(1) - centroids.unsqueeze(0)) ** 2).sum(-1)
        labels = distances.argmin(dim=1)
        sums = torch.zeros(k, x.size(1)).scatter_add_(0, labels.unsqueeze(1).expand(-1, x.size(1)), x)
        counts = torch.bincount(labels, minlength=k).clamp(min=1).unsqueeze(1).float()
        centroids = sums / counts
    return centroids, labels


def build():
    return nn.Linear(2, 3)


def train(model, stochastic=False):
    rng = np.random.default_rng(19)
    centres = np.array([[0.0, 0.0], [3.0, 3.0], [-3.0, 2.0]], np.float32)
    points = np.concatenate([c + 0.5 * rng.standard_normal((40, 2)).astype(np.float32) for c in centres])
    x = torch.from_numpy(points)
    centroids, labels = kmeans(x, 3)
    inertia = ((x - centroids[labels]) ** 2).sum().item()
    print(f"inertia {inertia:.3f}, cluster sizes {torch.bincount(labels).tolist()}")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(50):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), labels)
        loss.backward()
        optimizer.step()
    return loss.item() + inertia / 1000
