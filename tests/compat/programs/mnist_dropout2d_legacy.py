"""The older MNIST example of PyTorch's examples repository: ``nn.Dropout2d`` on the second
convolution's feature maps, ``x.view(-1, 320)``, ``F.dropout(x, training=self.training)``, SGD with
momentum, and the test loop summing ``F.nll_loss(..., reduction="sum")`` with
``pred.eq(target.data.view_as(pred)).cpu().sum()``."""

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

    def forward(self, x):
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
    rng = np.random.default_rng(4)
    data = torch.from_numpy(rng.standard_normal((96, 1, 28, 28)).astype(np.float32))
    target = torch.from_numpy((data[:, 0, :14].sum(dim=(1, 2)).numpy() > 0).astype(np.int64) * 3)
    if not stochastic:
        model.conv2_drop.p = model.p = 0.0
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
    for epoch in range(1, 3):
        model.train()
        for batch_idx in range(3):
            x, y = data[batch_idx * 32 : (batch_idx + 1) * 32], target[batch_idx * 32 : (batch_idx + 1) * 32]
            optimizer.zero_grad()
            output = model(x)
            loss = F.nll_loss(output, y)
            loss.backward()
            optimizer.step()
            print("Train Epoch: {} [{}/{}]\tLoss: {:.6f}".format(epoch, batch_idx * len(x), len(data), loss.item()))
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        output = model(data)
        test_loss += F.nll_loss(output, target, reduction="sum").item()
        pred = output.data.max(1, keepdim=True)[1]
        correct += pred.eq(target.data.view_as(pred)).cpu().sum()
    test_loss /= len(data)
    print(
        "Test set: Average loss: {:.4f}, Accuracy: {}/{} ({:.0f}%)".format(
            test_loss, correct, len(data), 100.0 * correct / len(data)
        )
    )
    return test_loss
