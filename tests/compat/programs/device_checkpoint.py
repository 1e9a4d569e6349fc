"""Device-agnostic code and checkpoints in memory (the "Saving and Loading Models" recipe):
``torch.device("cuda" if torch.cuda.is_available() else "cpu")``, ``model.to(device)``,
``torch.save(model.state_dict(), buffer)`` to an ``io.BytesIO``, a fresh model restored with
``load_state_dict(torch.load(buffer, weights_only=True))`` and evaluated under ``torch.no_grad()``."""

import io

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim


class TheModelClass(nn.Module):
    def __init__(self):
        super(TheModelClass, self).__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 48)
        self.fc2 = nn.Linear(48, 32)
        self.fc3 = nn.Linear(32, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.view(-1, 16 * 5 * 5)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


def build():
    return TheModelClass()


def train(model, stochastic=False):
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rng = np.random.default_rng(0)
    inputs = torch.tensor(rng.standard_normal((32, 3, 32, 32)).astype(np.float32)).to(device)
    labels = torch.tensor(rng.integers(0, 10, 32)).to(device)
    model.to(device)
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    for epoch in range(6):
        optimizer.zero_grad()
        loss = criterion(model(inputs), labels)
        loss.backward()
        optimizer.step()
        print("epoch {} loss {:.4f}".format(epoch, loss.item()))

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    restored = TheModelClass().to(device)
    restored.load_state_dict(torch.load(buffer, weights_only=True, map_location=device))
    restored.eval()
    with torch.no_grad():
        outputs = restored(inputs)
        _, predicted = torch.max(outputs, 1)
        correct = (predicted == labels).sum().item()
        test_loss = criterion(outputs, labels).item()
    print("restored model: loss {:.4f}, {} of {} right".format(test_loss, correct, labels.size(0)))
    return test_loss
