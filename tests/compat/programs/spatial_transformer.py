"""The "Spatial Transformer Networks" tutorial's network on random data of MNIST's shape: a
localization network regressing a 2x3 affine matrix (its last layer initialized to the identity
with ``weight.data.zero_()`` and ``bias.data.copy_(torch.tensor([1, 0, 0, 0, 1, 0], dtype=torch.float))``),
``F.affine_grid`` + ``F.grid_sample``, then the classic MNIST classifier with Dropout2d."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)
        self.p = 0.5
        self.localization = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=7),
            nn.MaxPool2d(2, stride=2),
            nn.ReLU(True),
            nn.Conv2d(8, 10, kernel_size=5),
            nn.MaxPool2d(2, stride=2),
            nn.ReLU(True),
        )
        self.fc_loc = nn.Sequential(nn.Linear(10 * 3 * 3, 32), nn.ReLU(True), nn.Linear(32, 3 * 2))
        self.fc_loc[2].weight.data.zero_()
        self.fc_loc[2].bias.data.copy_(torch.tensor([1, 0, 0, 0, 1, 0], dtype=torch.float))

    def stn(self, x):
        xs = self.localization(x)
        xs = xs.view(-1, 10 * 3 * 3)
        theta = self.fc_loc(xs)
        theta = theta.view(-1, 2, 3)
        grid = F.affine_grid(theta, x.size(), align_corners=False)
        x = F.grid_sample(x, grid, align_corners=False)
        return x

    def forward(self, x):
        x = self.stn(x)
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.view(-1, 320)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, p=self.p, training=self.training)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


def build():
    return Net()


def train(model, stochastic=False):
    rng = np.random.default_rng(17)
    data = torch.tensor(rng.random((64, 1, 28, 28)).astype(np.float32))
    target = torch.tensor(rng.integers(0, 10, 64))
    if not stochastic:
        model.conv2_drop.p = model.p = 0.0
    optimizer = optim.SGD(model.parameters(), lr=0.01)
    model.train()
    for batch_idx in range(4):
        x, y = data[16 * batch_idx : 16 * (batch_idx + 1)], target[16 * batch_idx : 16 * (batch_idx + 1)]
        optimizer.zero_grad()
        output = model(x)
        loss = F.nll_loss(output, y)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        model.eval()
        test_loss = F.nll_loss(model(data), target, reduction="sum").item() / len(data)
    return test_loss
