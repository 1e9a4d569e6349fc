"""A bidirectional LSTM sentence classifier over variable-length batches, in the style of the
well-known sentiment-analysis tutorials: ``pad_sequence`` to build batches, ``pack_padded_sequence(...,
lengths.cpu(), batch_first=True, enforce_sorted=False)``, the last forward and backward hidden states
joined with ``torch.cat((hidden[-2, :, :], hidden[-1, :, :]), dim=1)``, BCEWithLogitsLoss and
``torch.round(torch.sigmoid(preds))`` accuracy."""

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence


class RNN(nn.Module):
    def __init__(self, vocab_size, embedding_dim, hidden_dim, output_dim, n_layers, bidirectional, dropout, pad_idx):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_idx)
        self.rnn = nn.LSTM(embedding_dim, hidden_dim, num_layers=n_layers, bidirectional=bidirectional,
                           dropout=dropout, batch_first=True)  # fmt: skip
        self.fc = nn.Linear(hidden_dim * 2, output_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, text, text_lengths):
        embedded = self.dropout(self.embedding(text))
        packed_embedded = pack_padded_sequence(embedded, text_lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_output, (hidden, cell) = self.rnn(packed_embedded)
        output, output_lengths = pad_packed_sequence(packed_output, batch_first=True)
        assert output.size(1) == int(text_lengths.max())
        hidden = self.dropout(torch.cat((hidden[-2, :, :], hidden[-1, :, :]), dim=1))
        return self.fc(hidden)


def binary_accuracy(preds, y):
    rounded_preds = torch.round(torch.sigmoid(preds))
    correct = (rounded_preds == y).float()
    return correct.sum() / len(correct)


def make_batches(seed):
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(6):
        lengths = rng.integers(2, 11, 8)
        sentences = [torch.tensor(rng.integers(2, 30, n)) for n in lengths]
        labels = torch.tensor([float((s.numpy() % 2).sum() > len(s) / 2) for s in sentences])
        batches.append((pad_sequence(sentences, batch_first=True, padding_value=1), torch.tensor(lengths), labels))
    return batches


def build():
    return RNN(30, 12, 16, 1, 2, True, 0.3, pad_idx=1)


def train(model, stochastic=False):
    if not stochastic:
        model.dropout.p = model.rnn.dropout = 0.0
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    criterion = nn.BCEWithLogitsLoss()
    batches = make_batches(12)
    for epoch in range(6):
        model.train()
        epoch_loss, epoch_acc = 0.0, 0.0
        for text, text_lengths, label in batches:
            optimizer.zero_grad()
            predictions = model(text, text_lengths).squeeze(1)
            loss = criterion(predictions, label)
            acc = binary_accuracy(predictions, label)
            loss.backward()
            optimizer.step()
            epoch_loss += loss.item()
            epoch_acc += acc.item()
        print(
            f"Epoch: {epoch + 1:02} | Train Loss: {epoch_loss / len(batches):.3f} | Acc: {epoch_acc / len(batches) * 100:.2f}%"
        )
    return epoch_loss / len(batches)
