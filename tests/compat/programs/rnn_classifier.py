"""Sequence classification with nn.RNN (in the style of the char-RNN name classification
tutorial): one-hot characters, the last hidden state into a Linear layer, CrossEntropyLoss, SGD
with momentum, and accuracy from argmax."""

import numpy as np
import torch
import torch.nn as nn

ALPHABET = "abcdefghijklmnopqrstuvwxyz"


class RNNClassifier(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super(RNNClassifier, self).__init__()
        self.rnn = nn.RNN(input_size, hidden_size, batch_first=True)
        self.h2o = nn.Linear(hidden_size, output_size)

    def forward(self, line_tensor):
        rnn_out, hidden = self.rnn(line_tensor)
        return self.h2o(hidden[0])


def line_to_tensor(line, length=8):
    tensor = torch.zeros(length, len(ALPHABET))
    for li, letter in enumerate(line[:length]):
        tensor[li][ALPHABET.find(letter)] = 1
    return tensor


def make_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    lines, labels = [], []
    for _ in range(n):
        label = int(rng.integers(0, 3))
        letters = ALPHABET[label * 8 : label * 8 + 10]
        lines.append("".join(rng.choice(list(letters), size=8)))
        labels.append(label)
    return torch.stack([line_to_tensor(line) for line in lines]), torch.tensor(labels)


def build():
    return RNNClassifier(len(ALPHABET), 32, 3)


def train(rnn, stochastic=False):
    x, y = make_data()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(rnn.parameters(), lr=0.02, momentum=0.9)
    rnn.train()
    for epoch in range(12):
        order = torch.randperm(len(x)) if stochastic else torch.arange(len(x))
        for i in range(0, len(x), 16):
            idx = order[i : i + 16]
            output = rnn(x[idx])
            loss = criterion(output, y[idx])
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(rnn.parameters(), 1.0)
            optimizer.step()
    with torch.no_grad():
        output = rnn(x)
        accuracy = (output.argmax(1) == y).float().mean()
        loss = criterion(output, y)
    print("loss {:.4f} accuracy {:.2f}".format(loss.item(), accuracy.item()))
    return loss.item()
