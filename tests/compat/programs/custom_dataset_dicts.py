"""A custom Dataset subclass as in the "Datasets & DataLoaders" tutorial: ``__len__`` and
``__getitem__`` returning a dict of tensors, batched by the DataLoader's default collate into a
dict; a regression model trained with Adam and MSELoss on ``batch["features"]``."""

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


class HousingDataset(Dataset):
    def __init__(self, n=120, seed=0):
        rng = np.random.default_rng(seed)
        self.features = rng.standard_normal((n, 6)).astype(np.float32)
        self.prices = (self.features @ np.arange(1, 7, dtype=np.float32) / 6 + 0.1 * rng.standard_normal(n)).astype(
            np.float32
        )

    def __len__(self):
        return len(self.prices)

    def __getitem__(self, idx):
        if torch.is_tensor(idx):
            idx = idx.tolist()
        sample = {"features": torch.from_numpy(self.features[idx]), "price": torch.tensor(self.prices[idx])}
        return sample


def build():
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 1))


def train(model, stochastic=False):
    dataset = HousingDataset()
    loader = DataLoader(dataset, batch_size=16, shuffle=stochastic, num_workers=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    loss_fn = nn.MSELoss()
    for epoch in range(6):
        running = 0.0
        for i_batch, sample_batched in enumerate(loader):
            assert sample_batched["features"].size() == (len(sample_batched["price"]), 6)
            optimizer.zero_grad()
            prediction = model(sample_batched["features"]).squeeze(1)
            loss = loss_fn(prediction, sample_batched["price"])
            loss.backward()
            optimizer.step()
            running += loss.item() * len(sample_batched["price"])
        print(f"epoch {epoch}: loss {running / len(dataset):.4f}")
    return running / len(dataset)
