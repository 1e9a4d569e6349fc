"""The text classification tutorial's model and loop (torchtext tutorial, without torchtext): tokens
mapped to ids by a hand-made vocabulary, ``collate_batch`` building one flat tensor of token ids
and the bag offsets with ``torch.tensor(offsets[:-1]).cumsum(dim=0)``, ``nn.EmbeddingBag`` + Linear,
``init_weights`` with ``uniform_``/``zero_``, SGD lr 5 with StepLR and ``clip_grad_norm_(0.1)``."""

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

WORDS = {
    0: "match goal team player league score coach season win".split(),
    1: "market stock price trade bank profit share growth rate".split(),
    2: "science study research cell space planet data energy lab".split(),
}


def make_corpus(n, seed):
    rng = np.random.default_rng(seed)
    corpus = []
    for _ in range(n):
        label = int(rng.integers(0, 3))
        words = list(rng.choice(WORDS[label], size=int(rng.integers(3, 9))))
        words += list(rng.choice(WORDS[(label + 1) % 3], size=2))
        corpus.append((label, " ".join(words)))
    return corpus


VOCAB = {w: i + 1 for i, w in enumerate(sorted({w for ws in WORDS.values() for w in ws}))}


def text_pipeline(x):
    return [VOCAB.get(token, 0) for token in x.split()]


def collate_batch(batch):
    label_list, text_list, offsets = [], [], [0]
    for _label, _text in batch:
        label_list.append(_label)
        processed_text = torch.tensor(text_pipeline(_text), dtype=torch.int64)
        text_list.append(processed_text)
        offsets.append(processed_text.size(0))
    label_list = torch.tensor(label_list, dtype=torch.int64)
    offsets = torch.tensor(offsets[:-1]).cumsum(dim=0)
    text_list = torch.cat(text_list)
    return label_list, text_list, offsets


class TextClassificationModel(nn.Module):
    def __init__(self, vocab_size, embed_dim, num_class):
        super(TextClassificationModel, self).__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, embed_dim, sparse=False)
        self.fc = nn.Linear(embed_dim, num_class)
        self.init_weights()

    def init_weights(self):
        initrange = 0.5
        self.embedding.weight.data.uniform_(-initrange, initrange)
        self.fc.weight.data.uniform_(-initrange, initrange)
        self.fc.bias.data.zero_()

    def forward(self, text, offsets):
        embedded = self.embedding(text, offsets)
        return self.fc(embedded)


def build():
    return TextClassificationModel(len(VOCAB) + 1, 16, 3)


def train(model, stochastic=False):
    train_iter, test_iter = make_corpus(160, 0), make_corpus(60, 1)
    train_dataloader = DataLoader(train_iter, batch_size=16, shuffle=stochastic, collate_fn=collate_batch)
    test_dataloader = DataLoader(test_iter, batch_size=16, shuffle=False, collate_fn=collate_batch)
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=5)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1.0, gamma=0.1)
    for epoch in range(1, 4):
        model.train()
        total_acc, total_count = 0, 0
        for idx, (label, text, offsets) in enumerate(train_dataloader):
            optimizer.zero_grad()
            predicted_label = model(text, offsets)
            loss = criterion(predicted_label, label)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
            optimizer.step()
            total_acc += (predicted_label.argmax(1) == label).sum().item()
            total_count += label.size(0)
        scheduler.step()
        print("| epoch {:3d} | accuracy {:8.3f}".format(epoch, total_acc / total_count))
    model.eval()
    total_loss, total_count = 0.0, 0
    with torch.no_grad():
        for idx, (label, text, offsets) in enumerate(test_dataloader):
            predicted_label = model(text, offsets)
            total_loss += criterion(predicted_label, label).item() * label.size(0)
            total_count += label.size(0)
    return total_loss / total_count
