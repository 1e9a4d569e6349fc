"""A word-level LSTM language model in the style of PyTorch's examples (word_language_model):
Embedding -> LSTM -> Linear decoder, init_weights with uniform_/zeros_, batchify and get_batch
over a tiny corpus, hidden state detached between batches (repackage_hidden), clip_grad_norm_ and
the example's manual update ``p.data.add_(p.grad, alpha=-lr)``."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

CORPUS = """the cat sat on the mat . the dog sat on the log . a cat and a dog met on the mat .
the dog saw the cat . the cat saw a bird on the log . a bird sat on the cat .
the mat was red and the log was brown . a dog and a bird sat on a red mat ."""


class Dictionary(object):
    def __init__(self):
        self.word2idx = {}
        self.idx2word = []

    def add_word(self, word):
        if word not in self.word2idx:
            self.idx2word.append(word)
            self.word2idx[word] = len(self.idx2word) - 1
        return self.word2idx[word]

    def __len__(self):
        return len(self.idx2word)


def tokenize(text, dictionary):
    ids = []
    for line in text.split("\n"):
        words = line.split() + ["<eos>"]
        ids.append(torch.tensor([dictionary.add_word(word) for word in words]).type(torch.int64))
    return torch.cat(ids)


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    return data.view(bsz, -1).t().contiguous()


def get_batch(source, i, bptt=8):
    seq_len = min(bptt, len(source) - 1 - i)
    data = source[i : i + seq_len]
    target = source[i + 1 : i + 1 + seq_len].view(-1)
    return data, target


def repackage_hidden(h):
    """Wraps hidden states in new Tensors, to detach them from their history."""
    if isinstance(h, torch.Tensor):
        return h.detach()
    else:
        return tuple(repackage_hidden(v) for v in h)


class RNNModel(nn.Module):
    """Container module with an encoder, a recurrent module, and a decoder."""

    def __init__(self, ntoken, ninp, nhid, nlayers, dropout=0.5):
        super(RNNModel, self).__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        self.init_weights()
        self.nhid = nhid
        self.nlayers = nlayers

    def init_weights(self):
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output)
        decoded = decoded.view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        return (weight.new_zeros(self.nlayers, bsz, self.nhid), weight.new_zeros(self.nlayers, bsz, self.nhid))


DICTIONARY = Dictionary()
TRAIN_DATA = tokenize(CORPUS, DICTIONARY)


def build():
    return RNNModel(len(DICTIONARY), 16, 32, 2, dropout=0.2)


def train(model, stochastic=False):
    if not stochastic:
        model.drop.p = model.rnn.dropout = 0.0
    train_data = batchify(TRAIN_DATA, 4)
    criterion = nn.NLLLoss()
    lr = 2.0
    for epoch in range(1, 9):
        model.train()
        total_loss = 0.0
        hidden = model.init_hidden(4)
        for batch, i in enumerate(range(0, train_data.size(0) - 1, 8)):
            data, targets = get_batch(train_data, i)
            model.zero_grad()
            hidden = repackage_hidden(hidden)
            output, hidden = model(data, hidden)
            loss = criterion(output, targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
            for p in model.parameters():
                p.data.add_(p.grad, alpha=-lr)
            total_loss += loss.item()
        cur_loss = total_loss / (batch + 1)
        print(
            "| epoch {:3d} | lr {:02.2f} | loss {:5.2f} | ppl {:8.2f}".format(epoch, lr, cur_loss, math.exp(cur_loss))
        )
    return cur_loss
