"""A CRNN text recognizer trained with CTC, as in OCR tutorials: a small CNN whose feature map is
turned into a sequence with ``permute(3, 0, 1, 2).flatten(2)``, a bidirectional GRU, ``log_softmax(2)``
over (T, N, C) and ``nn.CTCLoss(blank=0, zero_infinity=True)`` with ``torch.full`` input lengths;
greedy decoding by ``argmax(2)`` with repeats and blanks removed."""

import numpy as np
import torch
import torch.nn as nn


class CRNN(nn.Module):
    def __init__(self, num_classes=6):
        super().__init__()
        self.cnn = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d((2, 1)),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d((2, 1)),
        )  # fmt: skip
        self.rnn = nn.GRU(16 * 2, 24, bidirectional=True)
        self.fc = nn.Linear(48, num_classes)

    def forward(self, x):
        features = self.cnn(x)  # (N, C, H, W): the width is the time axis
        seq = features.permute(3, 0, 1, 2).flatten(2)  # (T, N, C*H)
        out, _ = self.rnn(seq)
        return self.fc(out).log_softmax(2)


def greedy_decode(log_probs):
    best = log_probs.argmax(2).transpose(0, 1).tolist()
    decoded = []
    for row in best:
        labels, prev = [], 0
        for k in row:
            if k != prev and k != 0:
                labels.append(k)
            prev = k
        decoded.append(labels)
    return decoded


def build():
    return CRNN()


def train(model, stochastic=False):
    rng = np.random.default_rng(27)
    images = torch.tensor(rng.standard_normal((8, 1, 8, 16)).astype(np.float32))
    target_lengths = torch.tensor(rng.integers(2, 5, 8))
    targets = torch.tensor(rng.integers(1, 6, (8, 4)))
    criterion = nn.CTCLoss(blank=0, zero_infinity=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(15):
        optimizer.zero_grad()
        log_probs = model(images)
        input_lengths = torch.full((images.size(0),), log_probs.size(0), dtype=torch.long)
        loss = criterion(log_probs, targets, input_lengths, target_lengths)
        loss.backward()
        optimizer.step()
    decoded = greedy_decode(model(images).detach())
    assert len(decoded) == 8 and all(all(1 <= k < 6 for k in row) for row in decoded)
    return loss.item()
