"""The everyday training loop of the "Datasets & DataLoaders" and "Optimizing Model Parameters"
tutorials: TensorDataset, random_split, DataLoader, an MLP with nn.Sequential, CrossEntropyLoss,
SGD with momentum and weight decay, a train and a test loop with ``'{:.4f}'.format`` logging and
``argmax(1) == y`` accuracy."""

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset, TensorDataset, random_split


class NeuralNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(8 * 8, 64),
            nn.ReLU(),
            nn.Linear(64, 64),
            nn.ReLU(),
            nn.Linear(64, 4),
        )

    def forward(self, x):
        x = self.flatten(x)
        logits = self.linear_relu_stack(x)
        return logits


def train_loop(dataloader, model, loss_fn, optimizer, batch_size):
    size = len(dataloader.dataset)
    model.train()
    for batch, (X, y) in enumerate(dataloader):
        pred = model(X)
        loss = loss_fn(pred, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if batch % 4 == 0:
            loss, current = loss.item(), batch * batch_size + len(X)
            print("loss: {:.4f}  [{:>5d}/{:>5d}]".format(loss, current, size))


def test_loop(dataloader, model, loss_fn):
    model.eval()
    size = len(dataloader.dataset)
    num_batches = len(dataloader)
    test_loss, correct = 0, 0
    with torch.no_grad():
        for X, y in dataloader:
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()
    test_loss /= num_batches
    correct /= size
    print(f"Test Error: \n Accuracy: {(100 * correct):>0.1f}%, Avg loss: {test_loss:>8f} \n")
    return test_loss


def build():
    return NeuralNetwork()


def train(model, stochastic=False):
    rng = np.random.default_rng(0)
    images = rng.standard_normal((240, 8, 8)).astype(np.float32)
    labels = (images[:, :4].sum(axis=(1, 2)) > 0).astype(np.int64) + 2 * (images[:, :, :4].sum(axis=(1, 2)) > 0)
    dataset = TensorDataset(torch.from_numpy(images), torch.from_numpy(labels))
    if stochastic:
        training_data, test_data = random_split(dataset, [200, 40])
    else:
        training_data, test_data = Subset(dataset, range(200)), Subset(dataset, range(200, 240))
    first_x, first_y = dataset[:10]
    assert first_x.shape == (10, 8, 8) and len(training_data) == 200
    batch_size = 20
    train_dataloader = DataLoader(training_data, batch_size=batch_size, shuffle=stochastic)
    test_dataloader = DataLoader(test_data, batch_size=batch_size)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    for t in range(5):
        print(f"Epoch {t + 1}\n-------------------------------")
        train_loop(train_dataloader, model, loss_fn, optimizer, batch_size)
        loss = test_loop(test_dataloader, model, loss_fn)
    print("Done!")
    return loss
